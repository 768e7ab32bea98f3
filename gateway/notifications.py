"""Mail the gateway writes: Jinja2 templates rendered into outbox rows.

Templates live in `templates/<recipient>/<event>.<lang>.<txt|html>.j2`; the text template
sets `subject`. Rendering happens inside the caller's transaction, so an event and its mail
are committed together. Header values are built from sanitised single-line text only.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from sqlalchemy.orm import Session

from gateway.parsing import ParsedMail
from gateway.tokens import make_token, plus_part, reply_address
from storage.models import Direction, Message, OutboxMail, Participant, Ticket, utcnow

FALLBACK_LANGUAGE = "en"
CRLF_POLICY = compat32.clone(linesep="\r\n")
# Our own header: marks mail we sent, so it is recognised when it comes back.
TICKET_HEADER = "X-Support-Ticket"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who outgoing mail is from, and how replies find their way back."""

    address: str
    name: str
    subject_tag: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str


class Notifier:
    """Renders notifications and queues them in the outbox."""

    def __init__(self, templates_dir: Path, sender: Sender) -> None:
        self.sender = sender
        self.environment = Environment(
            loader=FileSystemLoader(templates_dir),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            keep_trailing_newline=True,
        )

    def render(self, recipient_kind: str, event: str, language: str,
               context: dict[str, Any]) -> RenderedMail:
        """Text and HTML parts of one notification, in `language` or else English."""
        lang = language if self._has(recipient_kind, event, language) else FALLBACK_LANGUAGE
        text_template = self.environment.get_template(f"{recipient_kind}/{event}.{lang}.txt.j2")
        html_template = self.environment.get_template(f"{recipient_kind}/{event}.{lang}.html.j2")
        module = text_template.make_module(context)
        return RenderedMail(
            subject=single_line(str(getattr(module, "subject", ""))),
            text=str(module),
            html=html_template.render(context),
        )

    def _has(self, recipient_kind: str, event: str, language: str) -> bool:
        try:
            self.environment.get_template(f"{recipient_kind}/{event}.{language}.txt.j2")
        except TemplateNotFound:
            return False
        return True

    def queue_acknowledgement(self, session: Session, ticket: Ticket, inbound: Message,
                              mail: ParsedMail, requester: Participant) -> Message:
        """The customer's acknowledgement with the ticket number, as an outbox row."""
        session.flush()  # The ticket number and reply token need the new rows' ids.
        token_address = reply_address(
            self.sender.address, make_token(self.sender.secret, ticket.id, requester.id)
        )
        context = {
            "ticket": ticket,
            "tag": self.ticket_tag(ticket),
            "customer_name": single_line(ticket.requester_name) or ticket.requester,
            "customer_words": inbound.text,
            "attachments": inbound.attachments,
            "reply_address": token_address,
            "support_address": self.sender.address,
        }
        rendered = self.render("customer", "acknowledgement", ticket.language, context)
        return self.queue(session, ticket, requester.address, ticket.requester_name, rendered,
                          token_address, parent_id=inbound.message_id,
                          references=(*mail.references, inbound.message_id))

    def ticket_tag(self, ticket: Ticket) -> str:
        return f"[{self.sender.subject_tag} #{ticket.id}]"

    def queue(self, session: Session, ticket: Ticket, to_address: str, to_name: str,
              rendered: RenderedMail, reply_to: str, parent_id: str,
              references: tuple[str, ...]) -> Message:
        """Build the MIME message and add it as an outgoing message and an outbox row."""
        domain = self.sender.address.rpartition("@")[2]
        message_id = make_msgid(idstring=f"t{ticket.id}", domain=domain)
        headers: list[tuple[str, str | Header]] = [
            ("From", formataddr((single_line(self.sender.name), self.sender.address), "utf-8")),
            ("To", formataddr((single_line(to_name), to_address), "utf-8")),
            ("Reply-To", formataddr((single_line(self.sender.name), reply_to), "utf-8")),
            ("Subject", encode_header_text(rendered.subject)),
            ("Date", format_datetime(utcnow())),
            ("Message-ID", message_id),
            ("In-Reply-To", f"<{parent_id}>"),
            ("References", " ".join(f"<{ref}>" for ref in references[-10:])),
            ("Auto-Submitted", "auto-replied"),
            # Asks Exchange and Outlook not to answer with out-of-office replies.
            ("X-Auto-Response-Suppress", "All"),
            (TICKET_HEADER, str(ticket.id)),
            ("Content-Language", ticket.language),
        ]
        outgoing = Message(
            ticket=ticket, direction=Direction.OUT, message_id=message_id.strip("<>"),
            from_address=self.sender.address, from_name=self.sender.name,
            to_addresses=to_address, subject=rendered.subject, text=rendered.text,
            automatic=True,
        )
        session.add(outgoing)
        session.add(OutboxMail(ticket=ticket, message=outgoing, mail_from=self.sender.address,
                               recipient=to_address,
                               content=compose(headers, rendered.text, rendered.html)))
        return outgoing


def should_acknowledge(mail: ParsedMail, sender: str, envelope_sender: str | None,
                       support_address: str) -> str:
    """Why no acknowledgement may answer this mail (loop protection), or '' to send one."""
    if envelope_sender == "":
        return "null reverse-path (RFC 3834: never answered automatically)"
    if mail.is_bounce:
        return "a delivery status notification"
    if mail.automatic:
        return f"automatic mail ({mail.automatic})"
    if plus_part(sender, support_address) is not None:
        return "mail from the support address itself"
    if not mail.from_address:
        return "no usable sender address"
    return ""


def compose(headers: list[tuple[str, str | Header]], text: str, html: str) -> bytes:
    """A multipart/alternative message with CRLF line ends.

    Built with the compat32 classes: the `EmailMessage` API re-parses every header through
    its registry, which tripled the cost of each notification.
    """
    mime = MIMEMultipart("alternative")
    for name, value in headers:
        mime[name] = value  # type: ignore[assignment]  # compat32 folds Header values itself
    mime.attach(text_part(text, "plain"))
    mime.attach(text_part(html, "html"))
    return mime.as_bytes(policy=CRLF_POLICY)


def text_part(text: str, subtype: str) -> MIMENonMultipart:
    """A UTF-8 quoted-printable part, encoded by binascii (the email package's own
    quoted-printable encoder is pure Python and was the slowest step of a notification)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def encode_header_text(text: str) -> str | Header:
    """Non-ASCII header text as RFC 2047 words, folded by the generator with CRLF."""
    return text if text.isascii() else Header(text, "utf-8")


def single_line(text: str) -> str:
    """Text safe for a header: no line breaks or control characters, bounded length."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", text).strip()[:400]
