"""What a customer's status page shows of a ticket: where it stands, what comes next, and
its public trail, as data for the page template.

Public means what the customers of the ticket were sent or wrote themselves: their own
messages (not automatic ones) and the engineers' replies that were relayed to them, with
their files, and the ticket's status changes. Never internal notes or their files, never
an address (people are named: "you", a name, or "support"), never an event's detail
written for engineers: a change is told by its kind and who made it, in the page's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.orm import Session, selectinload

from gateway.intake import LABELS, Fact
from gateway.settings import Intake, Workflow
from gateway.web.pages import moment
from gateway.workflow import STATUS_EVENTS
from gateway.workflow.intake import asked_on, current_facts
from gateway.workflow.people import usable
from storage.models import (
    SYSTEM_ACTOR,
    Attachment,
    Direction,
    Event,
    EventKind,
    Message,
    Participant,
    ParticipantRole,
    Ticket,
    TicketStatus,
)

# Whose messages are the customers' own; of them, who holds a link (those sent mail).
CUSTOMER_ROLES = (ParticipantRole.REQUESTER, ParticipantRole.CC, ParticipantRole.COPIED)
LINK_HOLDERS = (ParticipantRole.REQUESTER, ParticipantRole.CC)
# Besides status changes: the ticket's start, and the facts we asked the customer for.
SHOWN_EVENTS = STATUS_EVENTS | {EventKind.CREATED, EventKind.INFO_REQUESTED}
# Who holds the ball in each status: us, the customer, or nobody.
BALL = {
    TicketStatus.NEW: "us",
    TicketStatus.OPEN: "us",
    TicketStatus.WAITING: "you",
    TicketStatus.RESOLVED: "you",
    TicketStatus.CLOSED: "nobody",
}


def whole_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """The ticket with everything a page shows of it, in a handful of queries rather than
    one per message."""
    return session.get(
        Ticket,
        ticket_id,
        options=(
            selectinload(Ticket.messages).selectinload(Message.attachments),
            selectinload(Ticket.events),
            selectinload(Ticket.participants),
            selectinload(Ticket.facts),
        ),
    )


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads the page (the participant the link was made for) and in which zone."""

    participant: Participant
    zone: tzinfo


def customers_of(ticket: Ticket) -> dict[str, str]:
    """The ticket's customers by address, with the name each goes by ('' for none)."""
    return {p.address: p.name for p in ticket.participants if p.role in CUSTOMER_ROLES}


def public_messages(ticket: Ticket) -> list[Message]:
    """The customers' own messages and the engineers' relayed replies, oldest first."""
    customers = customers_of(ticket)
    relayed = {e.message_pk for e in ticket.events if e.type is EventKind.REPLIED}
    return [
        m
        for m in ticket.messages
        if m.direction is Direction.IN
        and not m.internal
        and not m.automatic
        and (m.from_address in customers or (m.id in relayed and (m.text or m.attachments)))
    ]


def public_files(messages: list[Message]) -> dict[int, Attachment]:
    """The files of the public messages, by id: the only ones a status link may open."""
    return {a.id: a for m in messages for a in m.attachments}


def trail(
    ticket: Ticket, messages: list[Message], reader: Reader, support_name: str
) -> list[dict[str, Any]]:
    """The public `messages` and the changes, in the order they happened."""
    customers = customers_of(ticket)
    entries = [
        (m.created_at, 0, m.id, message_entry(m, reader, customers, support_name)) for m in messages
    ]
    entries += [
        (e.at, 1, e.id, change_entry(e, reader, customers))
        for e in ticket.events
        if e.type in SHOWN_EVENTS and e.moved_from is None
    ]
    return [entry for *_, entry in sorted(entries, key=lambda item: item[:3])]


def message_entry(
    message: Message, reader: Reader, customers: dict[str, str], support_name: str
) -> dict[str, Any]:
    """A message with its author named as the page may: "you", the name a customer goes by,
    an engineer's display name; never an address, even one given as a name."""
    mine = message.from_address == reader.participant.address
    from_customer = message.from_address in customers
    name = customers.get(message.from_address) or usable(message.from_name)
    return {
        "kind": "message",
        "at": moment(message.created_at, reader.zone),
        "by": "you" if mine else ("customer" if from_customer else "support"),
        "name": "" if mine else name,
        "support_name": support_name,
        "text": message.text,
        "files": [
            {"id": a.id, "filename": a.filename, "size": a.size} for a in message.attachments
        ],
    }


def change_entry(event: Event, reader: Reader, customers: dict[str, str]) -> dict[str, Any]:
    """A status change told by its kind and who made it; facts asked for by their names."""
    if event.actor == reader.participant.address:
        by = "you"
    elif event.actor in customers:
        by = "customer"
    else:
        by = "system" if event.actor == SYSTEM_ACTOR else "support"
    asked = (
        set(re.split(r"[\s,]+", event.detail)) if event.type is EventKind.INFO_REQUESTED else set()
    )
    language = event.ticket.language
    return {
        "kind": "change",
        "event": event.type.value,
        "to_status": event.to_status.value if event.to_status else "",
        "by": by,
        "asked": [label.said_in(language) for fact, label in LABELS.items() if fact.value in asked],
        "at": moment(event.at, reader.zone),
    }


def still_asked(ticket: Ticket) -> list[Fact]:
    """What we asked the customer for (in the acknowledgement or by `#ask`) and have not
    learned yet: what the mail they are answering asked of them."""
    known = current_facts(ticket)
    asked = asked_on(ticket)
    return [fact for fact in Fact if fact in asked and fact not in known]


def standing(
    ticket: Ticket, reader: Reader, settings: tuple[Workflow, Intake], now: datetime
) -> dict[str, Any]:
    """Where the ticket stands: its status, who holds the ball, what comes next and when."""
    workflow, intake = settings
    needed = still_asked(ticket) if ticket.status is TicketStatus.WAITING else []
    closes_at = ticket.status_changed_at + timedelta(days=workflow.auto_close_days)
    reopen_until = ticket.status_changed_at + timedelta(days=workflow.reopen_days)
    awaiting_answer = (
        ticket.status in (TicketStatus.NEW, TicketStatus.OPEN)
        and ticket.response_due is not None
        and ticket.responded_at is None
    )
    return {
        "status": ticket.status.value,
        "ball": BALL[ticket.status],
        "needed": [LABELS[fact].said_in(ticket.language) for fact in needed],
        "answer_due": moment(ticket.response_due if awaiting_answer else None, reader.zone),
        "solve_due": moment(
            None if ticket.resolution_paused else ticket.resolution_due, reader.zone
        ),
        "closes_at": moment(closes_at, reader.zone),
        "reopen_until": moment(reopen_until if reopen_until > now else None, reader.zone),
        "can_answer": ticket.status is TicketStatus.RESOLVED,
    }
