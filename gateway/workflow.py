"""The ticket state machine and what an inbound message does to a ticket.

`ALLOWED` is the whole state machine; `transition()` is the only place that assigns
`ticket.status`, and every change becomes an `Event` row (who, when, from, to, which message).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.errors import InvalidTransition
from gateway.parsing import ParsedAttachment, ParsedMail
from storage.blobs import BlobStore
from storage.models import (
    Attachment,
    Direction,
    Event,
    Message,
    Participant,
    ParticipantRole,
    Ticket,
    TicketStatus,
    utcnow,
)

S = TicketStatus
ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.WAITING, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.WAITING, S.RESOLVED, S.CLOSED}),
    S.WAITING: frozenset({S.OPEN, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}

UNKNOWN_SENDER = "unknown-sender@invalid"


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one inbound message did."""

    ticket: Ticket
    message: Message
    new_ticket: bool
    requester_participant: Participant


def transition(
    session: Session,
    ticket: Ticket,
    to_status: TicketStatus,
    actor: str,
    message: Message | None = None,
    event_type: str = "status_changed",
) -> Event:
    """Move `ticket` to `to_status`, or raise `InvalidTransition`; returns the event row."""
    if to_status not in ALLOWED[ticket.status]:
        raise InvalidTransition(
            f"ticket #{ticket.id} cannot go from {ticket.status.value} to {to_status.value}"
        )
    event = Event(
        ticket=ticket, type=event_type, actor=actor, at=utcnow(),
        from_status=ticket.status, to_status=to_status, message=message,
    )
    ticket.status = to_status
    session.add(event)
    return event


def open_ticket(session: Session, mail: ParsedMail, sender: str, blobs: BlobStore,
                raw_sha256: str) -> Applied:
    """A new ticket from `mail`, with its requester, first message and `created` event."""
    ticket = Ticket(
        status=TicketStatus.NEW,
        subject=(mail.subject or "(no subject)")[:998],
        requester=sender,
        requester_name=mail.from_name,
        language=mail.language,
    )
    session.add(ticket)
    requester = Participant(ticket=ticket, address=sender, role=ParticipantRole.REQUESTER)
    session.add(requester)
    for address in mail.cc_addresses:
        if address != sender:
            session.add(Participant(ticket=ticket, address=address, role=ParticipantRole.CC))
    message = store_inbound(session, ticket, mail, mail.text, sender, blobs, raw_sha256)
    session.add(Event(ticket=ticket, type="created", actor=sender, at=utcnow(),
                      to_status=TicketStatus.NEW, message=message))
    return Applied(ticket, message, True, requester)


def add_reply(session: Session, ticket: Ticket, mail: ParsedMail, sender: str,
              blobs: BlobStore, raw_sha256: str) -> Applied:
    """`mail` joins `ticket`; a customer answering a ticket that waits on them reopens work."""
    text = mail.reply_text or mail.text
    message = store_inbound(session, ticket, mail, text, sender, blobs, raw_sha256)
    requester = participant_for(session, ticket, sender)
    if mail.automatic:
        session.add(Event(ticket=ticket, type="automatic_reply", actor=sender, at=utcnow(),
                          message=message, detail=mail.automatic))
    elif ticket.status is TicketStatus.WAITING:
        transition(session, ticket, TicketStatus.OPEN, sender, message, "customer_replied")
    else:
        session.add(Event(ticket=ticket, type="message_added", actor=sender, at=utcnow(),
                          message=message))
    return Applied(ticket, message, False, requester)


def participant_for(session: Session, ticket: Ticket, address: str) -> Participant:
    """The ticket's participant for `address`, added as a CC when new to the ticket."""
    for participant in ticket.participants:
        if participant.address == address:
            return participant
    participant = Participant(ticket=ticket, address=address, role=ParticipantRole.CC)
    session.add(participant)
    return participant


def store_inbound(session: Session, ticket: Ticket, mail: ParsedMail, text: str, sender: str,
                  blobs: BlobStore, raw_sha256: str) -> Message:
    message = Message(
        ticket=ticket,
        direction=Direction.IN,
        message_id=mail.message_id,
        from_address=sender,
        from_name=mail.from_name,
        to_addresses=", ".join(mail.to_addresses + mail.cc_addresses)[:4000],
        subject=mail.subject[:998],
        text=text,
        raw_sha256=raw_sha256,
        automatic=bool(mail.automatic),
    )
    session.add(message)
    for attachment in mail.attachments:
        message.attachments.append(store_attachment(attachment, blobs))
    return message


def store_attachment(attachment: ParsedAttachment, blobs: BlobStore) -> Attachment:
    return Attachment(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=len(attachment.data),
        sha256=blobs.put(attachment.data),
        content_id=attachment.content_id,
        inline=attachment.inline,
    )
