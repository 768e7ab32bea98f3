"""Mail the gateway writes: Jinja2 templates rendered into outbox rows.

`announce()` turns what one message did (an `Applied`) into mail, in the order people
should read it: the acknowledgement or the engineers' notice of a new ticket, the relayed
reply, one mail per status change to the customer and to the engineers on the ticket, and
the acting engineer's command receipt. Rendering happens inside the caller's transaction,
so an event and its mail are committed together.

Templates live in `templates/<recipient>/<event>.<lang>.<txt|html>.j2`; the text template
sets `subject`. Each recipient gets their own copy with a `Reply-To` token bound to them and
this ticket. Header values are built from sanitised single-line text only.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from gateway.config import Engineer
from gateway.loops import TICKET_HEADER
from gateway.parsing import ParsedMail
from gateway.tokens import make_token, plus_part, reply_address
from gateway.workflow import (
    STATUS_EVENTS,
    SYSTEM_ACTOR,
    UNKNOWN_SENDER,
    Applied,
    Author,
)
from storage.blobs import BlobStore
from storage.models import (
    AddressHold,
    Attachment,
    Base,
    Direction,
    Event,
    Message,
    OutboxMail,
    OutboxState,
    Participant,
    ParticipantRole,
    Ticket,
    TicketStatus,
    utcnow,
)

FALLBACK_LANGUAGE = "en"


class NotificationPolicy(Compat32):
    """compat32 with CRLF ends, which writes a header that is one short line of ASCII as it
    stands: `email.header` folding it anyway was half the cost of composing a mail."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and value == value.strip()
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
            and not any(c in value for c in "\r\n\t")
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


CRLF_POLICY = NotificationPolicy(linesep="\r\n")
# One-click answers to "is it fixed?": subject and body the customer's client prefills.
CONFIRMATION_ANSWERS = {
    "en": {"fixed": ("Fixed", "Fixed, thank you."), "not_fixed": ("Not fixed", "Not fixed: ")},
    "zh": {"fixed": ("已解决", "已解决，谢谢。"), "not_fixed": ("未解决", "未解决：")},
}
CUSTOMER_ROLES = (ParticipantRole.REQUESTER, ParticipantRole.CC)

# Statements built once: making one costs more than running it.
# An outgoing mail: its message on the ticket, then its outbox row.
STORE_OUTGOING = insert(Base.metadata.tables["messages"]).returning(Message.id)
QUEUE_OUTBOX = insert(Base.metadata.tables["outbox"])
# What the loop protection needs to know about one address, in one round trip: a hold on
# it, and the automatic mail it got on this ticket and in the last hour.
_HELD = (AddressHold.address == bindparam("address")) & (AddressHold.until > bindparam("now"))
MAIL_ALLOWANCE = select(
    select(AddressHold.reason).where(_HELD).limit(1).scalar_subquery(),
    select(AddressHold.until).where(_HELD).limit(1).scalar_subquery(),
    select(func.count())
    .where(
        OutboxMail.recipient == bindparam("address"), OutboxMail.ticket_id == bindparam("ticket_id")
    )
    .scalar_subquery(),
    select(func.count())
    .where(OutboxMail.recipient == bindparam("address"), OutboxMail.created_at > bindparam("since"))
    .scalar_subquery(),
)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who outgoing mail is from, and how replies find their way back."""

    address: str
    name: str
    subject_tag: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class Policy:
    """Choices about what notifications carry."""

    engineers: tuple[Engineer, ...] = ()
    # Engineers' notices attach files up to this size and link larger ones.
    attach_max_bytes: int = 5 * 1024 * 1024
    # Base URL under which the blob directory is served ('' when it is not).
    attachment_url: str = ""
    show_engineer_address: bool = False
    auto_close_days: float = 7.0
    reopen_days: float = 14.0
    # Automatic mail to one address (engineers excepted): per ticket, and per hour overall.
    auto_mail_per_ticket: int = 30
    auto_mail_per_hour: int = 20


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class MailFile:
    """A file attached to an outgoing mail."""

    filename: str
    content_type: str
    data: bytes


class Notifier:
    """Renders notifications and queues them in the outbox."""

    def __init__(
        self, templates_dir: Path, sender: Sender, blobs: BlobStore, policy: Policy | None = None
    ) -> None:
        self.sender = sender
        self.blobs = blobs
        self.policy = policy or Policy()
        self.engineer_addresses = frozenset(e.address for e in self.policy.engineers)
        self.environment = Environment(
            loader=FileSystemLoader(templates_dir),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            keep_trailing_newline=True,
        )

    # -- what one applied message causes -------------------------------------------------

    def announce(
        self,
        session: Session,
        applied: Applied,
        mail: ParsedMail,
        no_acknowledgement_because: str = "",
    ) -> None:
        """Every mail that `applied` causes, queued in the order people should read them."""
        session.flush()  # Ticket numbers and reply tokens need the new rows' ids.
        if applied.new_ticket:
            if not no_acknowledgement_because:
                self.acknowledge(session, applied, mail)
            self.tell_engineers(
                session,
                applied.ticket,
                applied.message,
                "new_ticket",
                self.watchers(applied.ticket),
            )
        elif applied.author is Author.CUSTOMER and not applied.message.automatic:
            self.forward_customer_message(session, applied)
        if applied.relay:
            self.relay_reply(session, applied)
        for event in applied.events:
            self.announce_event(session, event, applied.message)
        if wants_receipt(applied):
            self.send_receipt(session, applied)

    def announce_event(self, session: Session, event: Event, cause: Message | None = None) -> None:
        """The mail one event sends: status changes to everyone, the rest to engineers."""
        ticket = event.ticket
        if event.type in STATUS_EVENTS:
            for participant in self.customers(ticket):
                self.tell_customer_status(session, ticket, participant, event, cause)
            for participant in self.watchers(ticket, but=event.actor):
                self.tell_engineer_status(session, ticket, participant, event, cause)
        elif event.type == "assigned" and event.detail != event.actor:
            assignee = [p for p in self.watchers(ticket) if p.address == event.detail]
            self.tell_engineers(
                session, ticket, first_message(ticket), "assigned", assignee, event=event
            )
        elif event.type == "escalated":
            specialists = {e.address for e in self.policy.engineers if e.tier == "L2"}
            chosen = [p for p in self.watchers(ticket, but=event.actor) if p.address in specialists]
            self.tell_engineers(
                session, ticket, first_message(ticket), "escalated", chosen, event=event
            )

    # -- customers -------------------------------------------------------------------------

    def acknowledge(self, session: Session, applied: Applied, mail: ParsedMail) -> None:
        """The customer's acknowledgement with the ticket number."""
        ticket, requester = applied.ticket, applied.sender
        assert requester is not None
        context = self.customer_context(ticket, requester) | {
            "customer_words": applied.message.text,
            "attachments": applied.message.attachments,
            "follow_up_of": applied.follow_up_of.id if applied.follow_up_of else None,
        }
        rendered = self.render("customer", "acknowledgement", ticket.language, context)
        self.queue(
            session,
            ticket,
            requester,
            ticket.requester_name,
            rendered,
            thread=(*mail.references, applied.message.message_id),
        )

    def relay_reply(self, session: Session, applied: Applied) -> None:
        """The engineer's new words and files, from the support address, to the customers."""
        ticket, message = applied.ticket, applied.message
        files = [self.file_of(a) for a in message.attachments]
        for participant in self.customers(ticket):
            context = self.customer_context(ticket, participant) | {
                "engineer_name": single_line(message.from_name),
                "engineer_address": (
                    message.from_address if self.policy.show_engineer_address else ""
                ),
                "words": message.text,
                "attachments": message.attachments,
            }
            rendered = self.render("customer", "reply", ticket.language, context)
            self.queue(
                session,
                ticket,
                participant,
                self.name_of(ticket, participant),
                rendered,
                files=files,
            )

    def tell_customer_status(
        self,
        session: Session,
        ticket: Ticket,
        participant: Participant,
        event: Event,
        cause: Message | None,
    ) -> None:
        context = (
            self.customer_context(ticket, participant)
            | self.status_context(event)
            | {
                "actor_role": self.actor_role(ticket, event.actor),
            }
        )
        context |= self.confirmation_links(ticket, context["reply_address"], event)
        rendered = self.render("customer", "status_changed", ticket.language, context)
        self.queue(session, ticket, participant, self.name_of(ticket, participant), rendered)

    def confirmation_links(
        self, ticket: Ticket, token_address: str, event: Event
    ) -> dict[str, str]:
        """mailto links that answer "fixed" or "not fixed" with one click."""
        if event.to_status is not TicketStatus.RESOLVED:
            return {"fixed_link": "", "not_fixed_link": ""}
        answers = CONFIRMATION_ANSWERS.get(ticket.language, CONFIRMATION_ANSWERS["en"])
        links = {}
        for key, (subject, body) in answers.items():
            query = f"subject={quote(self.ticket_tag(ticket) + ' ' + subject)}&body={quote(body)}"
            links[f"{key}_link"] = f"mailto:{token_address}?{query}"
        return links

    def customer_context(self, ticket: Ticket, participant: Participant) -> dict[str, Any]:
        return self.base_context(ticket, participant) | {
            "customer_name": self.name_of(ticket, participant) or participant.address,
        }

    # -- engineers -------------------------------------------------------------------------

    def tell_engineers(
        self,
        session: Session,
        ticket: Ticket,
        message: Message,
        kind: str,
        engineers: Iterable[Participant],
        event: Event | None = None,
    ) -> None:
        """A ticket notice (new, assigned, escalated) with the customer's words and files."""
        files, listed = self.engineer_files(message.attachments)
        for participant in engineers:
            context = self.base_context(ticket, participant) | {
                "customer": display_address(ticket.requester_name, ticket.requester),
                "customer_words": message.text,
                "attachments": listed,
                "actor": event.actor if event else "",
                "follow_up_of": ticket.follow_up_of,
                "latest_words": latest_customer_words(ticket),
            }
            rendered = self.render("engineer", kind, self.language_of(participant), context)
            self.queue(session, ticket, participant, "", rendered, files=files)

    def forward_customer_message(self, session: Session, applied: Applied) -> None:
        """A customer's new message on the ticket, to the engineers on it."""
        ticket, message = applied.ticket, applied.message
        files, listed = self.engineer_files(message.attachments)
        for participant in self.watchers(ticket):
            context = self.base_context(ticket, participant) | {
                "customer": display_address(message.from_name, message.from_address),
                "customer_words": message.text,
                "attachments": listed,
            }
            rendered = self.render(
                "engineer", "customer_reply", self.language_of(participant), context
            )
            self.queue(session, ticket, participant, "", rendered, files=files)

    def tell_engineer_status(
        self,
        session: Session,
        ticket: Ticket,
        participant: Participant,
        event: Event,
        cause: Message | None,
    ) -> None:
        words = cause.text if cause is not None and cause.direction is Direction.IN else ""
        context = (
            self.base_context(ticket, participant)
            | self.status_context(event)
            | {
                "actor": event.actor,
                "actor_role": self.actor_role(ticket, event.actor),
                "words": "" if cause is not None and cause.internal else words,
            }
        )
        rendered = self.render("engineer", "status_changed", self.language_of(participant), context)
        self.queue(session, ticket, participant, "", rendered)

    def send_receipt(self, session: Session, applied: Applied) -> None:
        """One short mail per engineer's message: what was applied, what was not and why."""
        assert applied.sender is not None
        ticket = applied.ticket
        context = self.base_context(ticket, applied.sender) | {
            "results": applied.results,
            "relayed": applied.relay,
            "note": applied.message.internal and applied.author is Author.ENGINEER,
            "refused_because": applied.refused_because,
        }
        rendered = self.render(
            "engineer", "command_receipt", self.language_of(applied.sender), context
        )
        self.queue(session, ticket, applied.sender, "", rendered)

    def engineer_files(
        self, attachments: Sequence[Attachment]
    ) -> tuple[list[MailFile], list[dict[str, Any]]]:
        """Files small enough to attach, and every file listed with its link if large."""
        files, listed = [], []
        for attachment in attachments:
            attached = attachment.size <= self.policy.attach_max_bytes
            if attached:
                files.append(self.file_of(attachment))
            listed.append(
                {
                    "filename": attachment.filename,
                    "content_type": attachment.content_type,
                    "size": attachment.size,
                    "sha256": attachment.sha256,
                    "attached": attached,
                    "link": self.link_to(attachment.sha256) if not attached else "",
                }
            )
        return files, listed

    def link_to(self, sha256: str) -> str:
        if not self.policy.attachment_url:
            return ""
        relative = self.blobs.path_for(sha256).relative_to(self.blobs.root).as_posix()
        return f"{self.policy.attachment_url.rstrip('/')}/{relative}"

    def file_of(self, attachment: Attachment) -> MailFile:
        return MailFile(
            attachment.filename, attachment.content_type, self.blobs.get(attachment.sha256)
        )

    # -- who is told -----------------------------------------------------------------------

    def customers(self, ticket: Ticket) -> list[Participant]:
        """The requester and the people they copied: everyone on the customer's side."""
        return [
            p
            for p in ticket.participants
            if p.role in CUSTOMER_ROLES
            and p.address != UNKNOWN_SENDER
            and p.address not in self.engineer_addresses
            and plus_part(p.address, self.sender.address) is None
        ]

    def watchers(self, ticket: Ticket, but: str = "") -> list[Participant]:
        """The engineers on the ticket (notified of it, assigned, or who wrote on it)."""
        return [
            p
            for p in ticket.participants
            if p.role is ParticipantRole.ENGINEER
            and p.address in self.engineer_addresses
            and p.address != but
        ]

    def actor_role(self, ticket: Ticket, actor: str) -> str:
        if actor == SYSTEM_ACTOR:
            return "system"
        if actor in self.engineer_addresses:
            return "engineer"
        return "customer"

    def language_of(self, participant: Participant) -> str:
        engineer = next(
            (e for e in self.policy.engineers if e.address == participant.address), None
        )
        return engineer.language if engineer else FALLBACK_LANGUAGE

    def name_of(self, ticket: Ticket, participant: Participant) -> str:
        if participant.address == ticket.requester:
            return single_line(ticket.requester_name)
        return ""

    # -- rendering and queueing ------------------------------------------------------------

    def base_context(self, ticket: Ticket, participant: Participant) -> dict[str, Any]:
        return {
            "ticket": ticket,
            "tag": self.ticket_tag(ticket),
            "status": ticket.status.value,
            "priority": ticket.priority.value,
            "recipient": participant.address,
            "reply_address": self.token_address(ticket, participant),
            "support_address": self.sender.address,
            "support_name": self.sender.name,
        }

    def status_context(self, event: Event) -> dict[str, Any]:
        return {
            "event_type": event.type,
            "from_status": event.from_status.value if event.from_status else "",
            "to_status": event.to_status.value if event.to_status else "",
            "detail": event.detail,
            "reopen_count": event.ticket.reopen_count,
            "auto_close_days": f"{self.policy.auto_close_days:g}",
            "reopen_days": f"{self.policy.reopen_days:g}",
        }

    def render(
        self, recipient_kind: str, event: str, language: str, context: dict[str, Any]
    ) -> RenderedMail:
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

    def ticket_tag(self, ticket: Ticket) -> str:
        return f"[{self.sender.subject_tag} #{ticket.id}]"

    def token_address(self, ticket: Ticket, participant: Participant) -> str:
        token = make_token(self.sender.secret, ticket.id, participant.id)
        return reply_address(self.sender.address, token)

    def queue(
        self,
        session: Session,
        ticket: Ticket,
        participant: Participant,
        to_name: str,
        rendered: RenderedMail,
        thread: Sequence[str] = (),
        files: Sequence[MailFile] = (),
    ) -> int | None:
        """Build the MIME message and add it as an outgoing message and an outbox row (the
        new message's row id), or record on the ticket why it is not sent (None).

        Threaded on what this recipient has seen of the ticket, so their client shows one
        conversation.
        """
        why_not = self.why_not_mail(session, ticket, participant.address)
        if why_not:
            session.add(
                Event(
                    ticket=ticket,
                    type="mail_suppressed",
                    actor=SYSTEM_ACTOR,
                    at=utcnow(),
                    detail=f"{rendered.subject!r} to {participant.address}: {why_not}",
                )
            )
            return None
        thread = tuple(thread) or conversation_of(ticket, participant.address)
        domain = self.sender.address.rpartition("@")[2]
        message_id = make_msgid(idstring=f"t{ticket.id}", domain=domain)
        sender_name = single_line(self.sender.name)
        headers: list[tuple[str, str | Header]] = [
            ("From", formataddr((sender_name, self.sender.address), "utf-8")),
            ("To", formataddr((single_line(to_name), participant.address), "utf-8")),
            (
                "Reply-To",
                formataddr((sender_name, self.token_address(ticket, participant)), "utf-8"),
            ),
            ("Subject", encode_header_text(rendered.subject)),
            ("Date", format_datetime(utcnow())),
            ("Message-ID", message_id),
        ]
        if thread:
            headers.append(("In-Reply-To", f"<{thread[-1]}>"))
            headers.append(("References", " ".join(f"<{ref}>" for ref in references(thread))))
        headers += [
            ("Auto-Submitted", "auto-replied"),
            # Asks Exchange and Outlook not to answer with out-of-office replies.
            ("X-Auto-Response-Suppress", "All"),
            (TICKET_HEADER, str(ticket.id)),
            ("Content-Language", ticket.language),
        ]
        content = compose(headers, rendered.text, rendered.html, files)
        # Plain inserts: nothing reads these rows back as objects while the ticket is filed,
        # and the ORM's flush of a row costs ten times its insert.
        session.flush()  # The ticket they point to must exist first.
        now = utcnow()
        connection = session.connection()
        message_pk = connection.execute(
            STORE_OUTGOING,
            {
                "ticket_id": ticket.id,
                "direction": Direction.OUT,
                "message_id": message_id.strip("<>"),
                "from_address": self.sender.address,
                "from_name": self.sender.name,
                "to_addresses": participant.address,
                "subject": rendered.subject,
                "text": rendered.text,
                "raw_sha256": None,
                "automatic": True,
                "internal": participant.role is ParticipantRole.ENGINEER,
                "created_at": now,
            },
        ).scalar_one()
        connection.execute(
            QUEUE_OUTBOX,
            {
                "ticket_id": ticket.id,
                "message_pk": message_pk,
                "mail_from": self.sender.address,
                "recipient": participant.address,
                "content": content,
                "state": OutboxState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "created_at": now,
                "sent_at": None,
            },
        )
        # The ticket's loaded messages no longer list all its mail: threading reads them.
        session.expire(ticket, ["messages"])
        return message_pk

    def why_not_mail(self, session: Session, ticket: Ticket, address: str) -> str:
        """Why no more automatic mail may go to `address` now ('' when it may).

        Loop protection: an autoresponder that the checks on inbound mail miss still cannot
        make the gateway mail it without end. Engineers are exempt: they are configured
        people, and their notifications are their work.
        """
        now = utcnow()
        if address in self.engineer_addresses:
            return ""
        # Run on the connection: it reads plain columns, so the ORM's execution path would
        # only add cost; the outbox rows it counts are written the same way.
        session.flush()
        held_because, held_until, on_ticket, last_hour = (
            session.connection()
            .execute(
                MAIL_ALLOWANCE,
                {
                    "address": address,
                    "now": now,
                    "ticket_id": ticket.id,
                    "since": now - timedelta(hours=1),
                },
            )
            .one()
        )
        if held_until is not None:
            return f"{held_because}; held until {held_until:%Y-%m-%d %H:%M}"
        if on_ticket >= self.policy.auto_mail_per_ticket:
            return f"limit of {self.policy.auto_mail_per_ticket} automatic mails per ticket"
        if last_hour >= self.policy.auto_mail_per_hour:
            return f"limit of {self.policy.auto_mail_per_hour} automatic mails per hour"
        return ""


def references(thread: Sequence[str], keep: int = 10) -> list[str]:
    """The thread's first Message-ID and its latest ones (RFC 5322 3.6.4 trims the middle)."""
    if len(thread) <= keep:
        return list(thread)
    return [thread[0], *thread[-(keep - 1) :]]


def wants_receipt(applied: Applied) -> bool:
    """An engineer hears what became of their message when it carried commands or was not
    acted on; a plain reply that was relayed needs no receipt."""
    if applied.sender is None or applied.message.automatic:
        return False
    if applied.author is Author.ENGINEER:
        return bool(applied.results)
    return applied.author in (Author.UNVERIFIED_ENGINEER, Author.THIRD_PARTY)


def conversation_of(ticket: Ticket, address: str) -> tuple[str, ...]:
    """Message-IDs of what `address` wrote or was sent on the ticket, oldest first."""
    seen = tuple(
        m.message_id
        for m in ticket.messages
        if (m.direction is Direction.IN and m.from_address == address)
        or (m.direction is Direction.OUT and m.to_addresses == address)
    )
    return seen or tuple(m.message_id for m in ticket.messages[:1])


def display_address(name: str, address: str) -> str:
    """`Name <address>` for reading in a mail body, or the bare address without a name."""
    name = single_line(name)
    return f"{name} <{address}>" if name and name != address else address


def first_message(ticket: Ticket) -> Message:
    return ticket.messages[0]


def latest_customer_words(ticket: Ticket) -> str:
    """The customer's most recent words after their first message ('' if none)."""
    inbound = [
        m
        for m in ticket.messages[1:]
        if m.direction is Direction.IN
        and not m.internal
        and not m.automatic
        and m.from_address == ticket.requester
    ]
    return inbound[-1].text if inbound else ""


def should_acknowledge(
    mail: ParsedMail,
    sender: str,
    envelope_sender: str | None,
    support_address: str,
    *,
    automatic: str,
) -> str:
    """Why no acknowledgement may answer this mail (loop protection), or '' to send one."""
    if envelope_sender == "":
        return "null reverse-path (RFC 3834: never answered automatically)"
    if mail.is_bounce:
        return "a delivery status notification"
    if automatic:
        return f"automatic mail ({automatic})"
    if plus_part(sender, support_address) is not None:
        return "mail from the support address itself"
    if not mail.from_address:
        return "no usable sender address"
    return ""


def compose(
    headers: list[tuple[str, str | Header]], text: str, html: str, files: Sequence[MailFile] = ()
) -> bytes:
    """A multipart/alternative message (inside multipart/mixed with files) with CRLF ends.

    Built with the compat32 classes: the `EmailMessage` API re-parses every header through
    its registry, which tripled the cost of each notification.
    """
    body = MIMEMultipart("alternative", boundary=new_boundary())
    body.attach(text_part(text, "plain"))
    body.attach(text_part(html, "html"))
    mime = body
    if files:
        mime = MIMEMultipart("mixed", boundary=new_boundary())
        mime.attach(body)
        for file in files:
            mime.attach(file_part(file))
    for name, value in headers:
        mime[name] = value  # type: ignore[assignment]  # compat32 folds Header values itself
    return mime.as_bytes(policy=CRLF_POLICY)


def new_boundary() -> str:
    """A boundary no part can contain, so the generator need not search the parts for it:
    "=_" never occurs in quoted-printable or base64 text."""
    return f"=_{secrets.token_hex(16)}"


def text_part(text: str, subtype: str) -> MIMENonMultipart:
    """A UTF-8 quoted-printable part, encoded by binascii (the email package's own
    quoted-printable encoder is pure Python and was the slowest step of a notification)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def file_part(file: MailFile) -> MIMEBase:
    """A base64 attachment; its name goes out RFC 2231-encoded, never as raw header text."""
    maintype, _, subtype = file.content_type.partition("/")
    # message/* and multipart/* parts hold parsed structure, not bytes: the generator cannot
    # write them from a payload string, so such files travel as plain octets.
    if (
        not re.fullmatch(r"[\w.+-]+", maintype)
        or not re.fullmatch(r"[\w.+-]+", subtype)
        or maintype in ("message", "multipart")
    ):
        maintype, subtype = "application", "octet-stream"
    part = MIMEBase(maintype, subtype)
    part.set_payload(base64.encodebytes(file.data).decode("ascii"))
    part["Content-Transfer-Encoding"] = "base64"
    part.add_header(
        "Content-Disposition",
        "attachment",
        filename=("utf-8", "", single_line(file.filename) or "attachment"),
    )
    return part


def encode_header_text(text: str) -> str | Header:
    """Non-ASCII header text as RFC 2047 words, folded by the generator with CRLF."""
    return text if text.isascii() else Header(text, "utf-8")


def single_line(text: str) -> str:
    """Text safe for a header: no line breaks or control characters, bounded length."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", text).strip()[:400]
