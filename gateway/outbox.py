"""The outbox: one rendered mail to one person, queued for delivery, or not.

`Outbox.queue` asks `loops` whether the mail may go (the caps on automatic mail, address
holds) and records on the ticket why not; otherwise it addresses the mail from the support
address with the recipient's own reply token, threads it on what they have seen of the
ticket so their client shows one conversation, composes it (`composing`) and writes it as an
outgoing message and an outbox row in the caller's transaction (`storage/rows.py`).

Every mail passes `linelength.within_limit` here, the one place before the outbox: a line
over 998 octets is folded or re-encoded away, and a mail that still has one (a bug of ours)
is kept as a failed row with the reason, logged as an error and noted on the ticket, never
sent.

`Outbox.queue_unticketed` queues mail about no ticket (the operators' digest of quarantined
messages, an engineer's sign-in link): from the support address with no reply token and no
ticket's threading, and past none of the caps, which count per ticket and hold back what
strangers could provoke; operators are configured people, as engineers are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from gateway import loops
from gateway.clock import Clock
from gateway.composing import Envelope, Headers, MailFile, addressing, compose
from gateway.linelength import LineTooLong, within_limit
from gateway.links import status_token
from gateway.rendering import RenderedMail
from gateway.tokens import make_token, reply_address
from storage.models import (
    SYSTEM_ACTOR,
    Direction,
    Event,
    EventKind,
    Participant,
    ParticipantRole,
    Ticket,
)
from storage.rows import OutgoingMail, queue_mail, queue_unticketed

log = logging.getLogger(__name__)

# The kind of the operators' digest of quarantined messages, in the outbox.
OPERATOR_DIGEST = "quarantine_digest"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who outgoing mail is from, and how replies find their way back."""

    address: str
    name: str
    subject_tag: str
    secret: bytes
    # The web service's base for status links in customers' mail; "" for none.
    public_url: str = ""

    def tag(self, ticket: Ticket) -> str:
        """The ticket's subject tag, `[Support #123]`."""
        return f"[{self.subject_tag} #{ticket.id}]"

    def reply_address(self, ticket: Ticket, participant: Participant) -> str:
        """The support address with the participant's own reply token for the ticket."""
        token = make_token(self.secret, ticket.id, participant.id)
        return reply_address(self.address, token)

    def status_url(self, ticket: Ticket, participant: Participant) -> str:
        """The participant's own link to the ticket's status page; "" without a web service."""
        if not self.public_url:
            return ""
        return f"{self.public_url}/t/{self.status_token(ticket, participant)}"

    def status_token(self, ticket: Ticket, participant: Participant) -> str:
        """The participant's token on the ticket's pages (its status page, its articles)."""
        return status_token(self.secret, ticket.id, participant.id, ticket.links_version)


@dataclass(frozen=True, slots=True)
class Notice:
    """One rendered mail to one participant, and what goes with it."""

    participant: Participant
    rendered: RenderedMail
    to_name: str = ""
    # What the recipient has seen of the conversation; by default, what the ticket holds.
    thread: tuple[str, ...] = ()
    files: tuple[MailFile, ...] = ()
    # Which notice it is ("acknowledgement", a relayed "reply", ...), for the limits that
    # count by kind and the headers that mark automatic mail (`loops`).
    kind: str = ""


class Outbox:
    """Queues notices as outgoing mail, as far as `loops` lets them go."""

    def __init__(self, sender: Sender, guard: loops.MailGuard, clock: Clock) -> None:
        self.sender = sender
        self.guard = guard
        self.clock = clock

    def queue(self, session: Session, ticket: Ticket, notice: Notice) -> None:
        """Add the mail as an outgoing message and an outbox row, or record on the ticket
        why `loops` does not let it go."""
        now, address = self.clock.now(), notice.participant.address
        why_not = self.guard.why_not(session, ticket.id, address, now, notice.kind)
        if why_not:
            detail = f"{notice.rendered.subject!r} to {address}: {why_not}"
            session.add(
                Event(
                    ticket=ticket,
                    type=EventKind.MAIL_SUPPRESSED,
                    actor=SYSTEM_ACTOR,
                    at=now,
                    detail=detail,
                )
            )
            return
        envelope = self.envelope(ticket, notice, now)
        headers = self.headers(ticket, envelope, notice, now)
        mail = replace(
            outgoing(envelope, headers, notice.rendered, now, notice.files),
            internal=notice.participant.role is ParticipantRole.ENGINEER,
            kind=notice.kind,
            automatic=notice.kind != loops.RELAYED_REPLY,
        )
        queue_mail(session, ticket, mail)
        if failed(mail, f"ticket #{ticket.id}: mail to {address}"):
            session.add(
                Event(
                    ticket=ticket,
                    type=EventKind.DELIVERY_FAILED,
                    actor=SYSTEM_ACTOR,
                    at=now,
                    detail=f"mail to {address} not sent: {mail.failed_because}",
                )
            )

    def queue_unticketed(
        self, session: Session, address: str, rendered: RenderedMail, kind: str = OPERATOR_DIGEST
    ) -> None:
        """Queue mail about no ticket to `address` (an operator, or an engineer)."""
        now = self.clock.now()
        domain = self.sender.address.rpartition("@")[2]
        # Ticket 0 in the Message-ID: `loops` knows the mail again should it come back.
        message_id = loops.new_message_id(0, domain, now)
        envelope = Envelope(
            self.sender.name, self.sender.address, "", address, self.sender.address, message_id
        )
        headers = [*addressing(envelope, rendered.subject, now), *loops.generated_headers()]
        mail = replace(outgoing(envelope, headers, rendered, now), kind=kind)
        queue_unticketed(session, mail)
        failed(mail, f"mail to operator {address}")

    def envelope(self, ticket: Ticket, notice: Notice, now: datetime) -> Envelope:
        """Addressed to the participant with their own reply token, and threaded on what
        they have seen of the ticket."""
        address = notice.participant.address
        domain = self.sender.address.rpartition("@")[2]
        return Envelope(
            self.sender.name,
            self.sender.address,
            notice.to_name,
            address,
            self.sender.reply_address(ticket, notice.participant),
            loops.new_message_id(ticket.id, domain, now),
            notice.thread or conversation_of(ticket, address),
        )

    def headers(self, ticket: Ticket, envelope: Envelope, notice: Notice, now: datetime) -> Headers:
        return [
            *addressing(envelope, notice.rendered.subject, now),
            *loops.automatic_headers(ticket.id, notice.kind),
            ("Content-Language", notice.rendered.language),
        ]


def outgoing(
    envelope: Envelope,
    headers: Headers,
    rendered: RenderedMail,
    now: datetime,
    files: tuple[MailFile, ...] = (),
) -> OutgoingMail:
    """The mail composed and within its line limit, from and to whom `envelope` says, as
    it is stored: internal (to one of ours) and of no kind until the caller says otherwise,
    and with why it cannot go, if it cannot."""
    content, failed_because = checked(compose(headers, rendered.text, rendered.html, files))
    return OutgoingMail(
        message_id=envelope.message_id,
        from_address=envelope.from_address,
        from_name=envelope.from_name,
        recipient=envelope.to_address,
        subject=rendered.subject,
        text=rendered.text,
        internal=True,
        content=content,
        created_at=now,
        failed_because=failed_because,
    )


def failed(mail: OutgoingMail, which: str) -> bool:
    """Whether `mail` cannot go (a bug of ours); if so, logged as the error it is."""
    if mail.failed_because:
        log.error("%s not sent: %s", which, mail.failed_because)
    return bool(mail.failed_because)


def checked(content: bytes) -> tuple[bytes, str]:
    """The mail with no line over 998 octets and ""; or, when one is left, why it cannot go."""
    try:
        return within_limit(content), ""
    except LineTooLong as exc:
        return content, f"gateway bug, not the recipient's: {exc.reason}"


def conversation_of(ticket: Ticket, address: str) -> tuple[str, ...]:
    """Message-IDs of what `address` wrote or was sent on the ticket, oldest first."""
    seen = tuple(
        m.message_id
        for m in ticket.messages
        if (m.direction is Direction.IN and m.from_address == address)
        or (m.direction is Direction.OUT and m.to_addresses == address)
    )
    return seen or tuple(m.message_id for m in ticket.messages[:1])
