"""A ticket's trail: the rows an inbound message leaves on it.

The message row with its attachments (their bytes put in the blob store first, so a row
never names bytes that are not there), the participants, and the events that change no
status. Status changes go through `workflow.transition()` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.inbound import Inbound
from gateway.intake import Findings
from gateway.parsing import ParsedAttachment
from storage.models import (
    Attachment,
    Direction,
    Event,
    EventKind,
    Message,
    Participant,
    ParticipantRole,
    Ticket,
)


class Act(Protocol):
    """Who changes a ticket, when, and the session the change is written in: an inbound
    message being filed (its sender, the moment it is filed), or an operator's command."""

    @property
    def session(self) -> Session: ...

    @property
    def actor(self) -> str: ...

    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Acting:
    """An act on a ticket that no message carries (an `Act`): an operator's command, or the
    gateway's own time-based work; the session it is written in, who acts, and when."""

    session: Session
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Filing:
    """One inbound message being filed: the session it is written in and the message."""

    session: Session
    inbound: Inbound
    # The intake's reading of the message as a first mail, when the parser read it ahead.
    first_mail: Findings | None = None

    @property
    def actor(self) -> str:
        return self.inbound.sender

    @property
    def at(self) -> datetime:
        return self.inbound.at


def record(
    filing: Act,
    ticket: Ticket,
    kind: EventKind,
    message: Message | None = None,
    detail: str = "",
) -> Event:
    """An event by whoever acts (a message's sender, an operator) that changes no status."""
    event = Event(
        ticket=ticket,
        type=kind,
        actor=filing.actor,
        at=filing.at,
        message=message,
        detail=detail,
    )
    filing.session.add(event)
    return event


def store_inbound(filing: Filing, ticket: Ticket, text: str, internal: bool = False) -> Message:
    """The message as a message on `ticket`, with `text` as its words."""
    message = inbound_message(filing, ticket, text, internal)
    filing.session.add(message)
    note_broken_structure(filing, ticket, message)
    return message


def note_broken_structure(filing: Filing, ticket: Ticket, message: Message) -> None:
    """An event saying the message's MIME structure was broken, and where its words on the
    ticket came from; nothing for a sound message."""
    reason = filing.inbound.mail.structure_broken
    if reason:
        record(filing, ticket, EventKind.STRUCTURE_BROKEN, message, reason)


def inbound_message(filing: Filing, ticket: Ticket, text: str, internal: bool = False) -> Message:
    """The message row for the filing's message on `ticket`, its attachments' bytes
    stored."""
    inbound, mail = filing.inbound, filing.inbound.mail
    return Message(
        ticket=ticket,
        direction=Direction.IN,
        message_id=mail.message_id,
        from_address=inbound.sender,
        from_name=mail.from_name,
        to_addresses=", ".join(mail.to_addresses + mail.cc_addresses)[:4000],
        subject=mail.subject[:998],
        text=text,
        raw_sha256=inbound.receipt.raw_sha256,
        automatic=bool(inbound.automatic),
        internal=internal,
        created_at=inbound.at,
        # Set here, even when empty, so reading it later costs no query.
        attachments=[attachment_row(attachment) for attachment in mail.attachments],
    )


def attachment_row(attachment: ParsedAttachment) -> Attachment:
    """The file's row; its bytes were kept before filing (`parse_ahead`)."""
    return Attachment(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=len(attachment.data),
        sha256=attachment.sha256,
        content_id=attachment.content_id,
        inline=attachment.inline,
    )


def touch(ticket: Ticket, at: datetime) -> None:
    """Note that the ticket's own row changed (status, priority, assignee, tier) at `at`."""
    ticket.updated_at = at


def find_participant(ticket: Ticket, address: str) -> Participant | None:
    return next((p for p in ticket.participants if p.address == address), None)


def add_participant(
    session: Session, ticket: Ticket, address: str, role: ParticipantRole
) -> Participant:
    participant = Participant(ticket=ticket, address=address, role=role)
    session.add(participant)
    return participant


def engineer_participant(session: Session, ticket: Ticket, address: str) -> Participant:
    """The engineer's participant row on the ticket (their reply token is bound to it)."""
    return find_participant(ticket, address) or add_participant(
        session, ticket, address, ParticipantRole.ENGINEER
    )
