"""Mail the gateway writes: Jinja2 templates rendered into outbox rows.

Templates live in `templates/<recipient>/<event>.<lang>.<txt|html>.j2`; the text template
sets `subject`. Rendering happens inside the caller's transaction, so an event and its mail
are committed together. Header values are built from sanitised single-line text only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
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
from gateway.tokens import make_token, reply_address
from storage.models import Direction, Message, OutboxMail, Participant, Ticket, utcnow

FALLBACK_LANGUAGE = "en"
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
        mime = EmailMessage(policy=SMTP)
        mime["From"] = Address(display_name=single_line(self.sender.name),
                               addr_spec=self.sender.address)
        mime["To"] = Address(display_name=single_line(to_name), addr_spec=to_address)
        mime["Reply-To"] = Address(display_name=single_line(self.sender.name),
                                   addr_spec=reply_to)
        mime["Subject"] = rendered.subject
        mime["Date"] = format_datetime(utcnow())
        mime["Message-ID"] = message_id
        mime["In-Reply-To"] = f"<{parent_id}>"
        mime["References"] = " ".join(f"<{ref}>" for ref in references[-10:])
        mime["Auto-Submitted"] = "auto-replied"
        # Asks Exchange and Outlook not to answer with out-of-office replies.
        mime["X-Auto-Response-Suppress"] = "All"
        mime[TICKET_HEADER] = str(ticket.id)
        mime["Content-Language"] = ticket.language
        mime.set_content(rendered.text, cte="quoted-printable")
        mime.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
        outgoing = Message(
            ticket=ticket, direction=Direction.OUT, message_id=message_id.strip("<>"),
            from_address=self.sender.address, from_name=self.sender.name,
            to_addresses=to_address, subject=rendered.subject, text=rendered.text,
            automatic=True,
        )
        session.add(outgoing)
        session.add(OutboxMail(ticket=ticket, message=outgoing, mail_from=self.sender.address,
                               recipient=to_address, content=mime.as_bytes()))
        return outgoing


def should_acknowledge(mail: ParsedMail, sender: str, support_address: str) -> str:
    """Why no acknowledgement may answer this mail (loop protection), or '' to send one."""
    if mail.is_bounce:
        return "a delivery status notification"
    if mail.automatic:
        return f"automatic mail ({mail.automatic})"
    support_local, _, support_domain = support_address.lower().rpartition("@")
    local, _, domain = sender.rpartition("@")
    if domain == support_domain and local.split("+")[0] == support_local:
        return "mail from the support address itself"
    if not mail.from_address:
        return "no usable sender address"
    return ""


def single_line(text: str) -> str:
    """Text safe for a header: no line breaks or control characters, bounded length."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", text).strip()[:400]
