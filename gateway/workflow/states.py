"""The ticket state machine, and the words the workflow speaks in.

`ALLOWED` is the whole state machine; `change_status()` (through `transition()` for a
message) is the only place that assigns `ticket.status`, and every change becomes an `Event`
row: who, when, from, to, through which message, and why.
"""

from __future__ import annotations

import enum
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.errors import InvalidTransition
from gateway.inbound import Inbound
from gateway.intake import Fact
from gateway.knowledge import Found, KnowledgeBase
from gateway.phrases import Phrase, status_zh
from gateway.service.levels import ServiceLevels
from gateway.setting_values import Engineer
from gateway.settings import Intake, Knowledge
from gateway.tokens import is_gateway_side
from gateway.trail import Act, touch
from gateway.workflow.routing import Roster
from storage.models import (
    DONE_STATUSES,
    SYSTEM_ACTOR,
    Event,
    EventKind,
    Message,
    Participant,
    Ticket,
    TicketStatus,
)

S = TicketStatus
ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.WAITING, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.WAITING, S.RESOLVED, S.CLOSED}),
    S.WAITING: frozenset({S.OPEN, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}
# Event kinds that change the status; each one is announced to the people on the ticket.
STATUS_EVENTS = frozenset(
    {EventKind.STATUS_CHANGED, EventKind.REOPENED, EventKind.CONFIRMED, EventKind.AUTO_CLOSED}
)


class Author(enum.Enum):
    """Who a message on a ticket is from, as far as the gateway can prove it."""

    CUSTOMER = "customer"
    # An engineer, through their own reply token for this ticket.
    ENGINEER = "engineer"
    # An engineer's address in `From:`, but not through their own token: proves nothing.
    UNVERIFIED_ENGINEER = "unverified_engineer"
    # Someone else writing through an engineer's token (a forwarded notification).
    THIRD_PARTY = "third_party"


@dataclass(frozen=True, slots=True)
class Rules:
    """What the workflow needs from the settings."""

    engineers: tuple[Engineer, ...]
    reopen_window: timedelta
    support_address: str
    # How many people one message may add from its To and Cc.
    max_people_added: int = 10
    # Which facts a report needs, and whether the intake reads and asks for them at all.
    intake: Intake = Intake()
    # Targets, the team's calendar, sender rules and routing.
    service: ServiceLevels = field(default_factory=ServiceLevels)
    # The knowledge base: `#kb` commands, "that solved it", drafts.
    knowledge: KnowledgeBase = KnowledgeBase(Knowledge())
    engineer_addresses: frozenset[str] = field(init=False)
    roster: Roster = field(init=False)

    def __post_init__(self) -> None:
        addresses = frozenset(engineer.address for engineer in self.engineers)
        object.__setattr__(self, "engineer_addresses", addresses)
        roster = Roster(self.engineers, self.service.calendar.timezone)
        object.__setattr__(self, "roster", roster)

    def engineer(self, address: str) -> Engineer | None:
        return next((e for e in self.engineers if e.address == address.lower()), None)

    def tier(self, tier: str) -> tuple[Engineer, ...]:
        return tuple(e for e in self.engineers if e.tier == tier)

    def is_gateway_side(self, address: str) -> bool:
        """The support address (any `+token` form of it) or an engineer."""
        return is_gateway_side(address, self.support_address, self.engineer_addresses)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One command line of an engineer's message: applied or not, and what or why."""

    line: str
    applied: bool
    outcome: Phrase


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one inbound message did: the notifier's whole input."""

    inbound: Inbound
    ticket: Ticket
    message: Message
    author: Author
    _: KW_ONLY
    # The sender's participant row (None: not on the ticket).
    sender: Participant | None
    new_ticket: bool = False
    events: tuple[Event, ...] = ()
    # The engineer's words go to the customer.
    relay: bool = False
    # For engineers: one line per command, and why a message was not acted on.
    results: tuple[CommandResult, ...] = ()
    refused_because: Phrase | None = None
    follow_up_of: Ticket | None = None
    # Addresses in To/Cc not added to the ticket (over `Rules.max_people_added`).
    not_added: tuple[str, ...] = ()
    # The ticket a stranger's message referred to, which it was not let into.
    related_to: Ticket | None = None
    # The facts the customers are asked for in this message's mail: the missing ones in a
    # new ticket's acknowledgement, or those an engineer's `#ask` names.
    ask: tuple[Fact, ...] = ()
    # Knowledge-base articles that may answer a new ticket, for its acknowledgement and
    # the engineers' notice; the articles an engineer sent with `#kb SLUG`.
    suggested: tuple[Found, ...] = ()
    sent_articles: tuple[Found, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """Who changes a ticket's status, when, through which message, and why."""

    actor: str
    at: datetime
    message: Message | None = None
    kind: EventKind = EventKind.STATUS_CHANGED
    detail: str = ""


def transition(
    filing: Act,
    ticket: Ticket,
    to_status: TicketStatus,
    message: Message | None,
    kind: EventKind = EventKind.STATUS_CHANGED,
    detail: str = "",
) -> Event:
    """Move `ticket` to `to_status` for whoever acts (a message's sender, an operator), or
    raise `InvalidTransition`."""
    return change_status(
        filing.session,
        ticket,
        to_status,
        Change(filing.actor, filing.at, message, kind, detail),
    )


def change_status(
    session: Session, ticket: Ticket, to_status: TicketStatus, change: Change
) -> Event:
    """Move `ticket` to `to_status`, or raise `InvalidTransition`; returns the event row."""
    if to_status not in ALLOWED[ticket.status]:
        before, after = ticket.status.value, to_status.value
        raise InvalidTransition(
            Phrase(
                f"ticket #{ticket.id} cannot go from {before} to {after}",
                f"工单 #{ticket.id} 不能从“{status_zh(before)}”变为“{status_zh(after)}”",
            )
        )
    event = Event(
        ticket=ticket,
        type=change.kind,
        actor=change.actor,
        at=change.at,
        detail=change.detail,
        from_status=ticket.status,
        to_status=to_status,
        message=change.message,
    )
    ticket.status = to_status
    ticket.status_changed_at = change.at
    if to_status in DONE_STATUSES:
        ticket.awaiting_shift_since = None  # Settled before any shift saw it.
    touch(ticket, change.at)
    if change.kind is EventKind.REOPENED:
        ticket.reopen_count += 1
    session.add(event)
    return event


def close_if_unanswered(
    session: Session, ticket: Ticket, now: datetime, after: timedelta
) -> Event | None:
    """Close a resolved ticket whose customer has not answered within `after`."""
    if ticket.status is not S.RESOLVED or now - ticket.status_changed_at < after:
        return None
    days = after.total_seconds() / 86400
    return change_status(
        session,
        ticket,
        S.CLOSED,
        Change(
            SYSTEM_ACTOR,
            now,
            None,
            EventKind.AUTO_CLOSED,
            f"no answer from the customer in {days:g} days",
        ),
    )
