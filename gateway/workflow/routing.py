"""Who hears of a ticket, and when: the engineers' shifts decide.

A new ticket goes to the L1 engineers on shift at the moment it arrives; with
`[routing] assign = "least_loaded"` it is also assigned to the one of them with the fewest
open tickets. When no L1 is on shift, a P1 goes at once to the on-call engineers (else to
anyone else on shift: L2, then the leads); anything else waits, and the next L1 shift gets
it in one digest when it starts (`gateway.timers`). Without any L1 configured nothing waits.
An engineer without a shift is always on it. Shifts are each engineer's own weekly pattern
in their own zone; they know no public holidays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.service.calendar import Shift
from gateway.setting_values import Engineer
from gateway.trail import Act, find_participant
from storage.models import (
    OPEN_STATUSES,
    SYSTEM_ACTOR,
    Event,
    EventKind,
    Message,
    Participant,
    ParticipantRole,
    Priority,
    Ticket,
)


class Roster:
    """The engineers with their shifts, each in their own zone (the team's when unset)."""

    def __init__(self, engineers: Sequence[Engineer], team_zone: str) -> None:
        self.engineers = tuple(engineers)
        self.zones = {e.address: e.timezone or team_zone for e in engineers}
        self.shifts = {e.address: Shift.build(self.zones[e.address], e.shift) for e in engineers}

    def on_shift(self, tier: str, at: datetime) -> list[Engineer]:
        """The engineers of `tier` on shift at `at`, in the order they are configured."""
        return [e for e in self.engineers if e.tier == tier and self.shifts[e.address].on(at)]

    def on_call(self) -> list[Engineer]:
        return [e for e in self.engineers if e.on_call]

    def zone_of(self, address: str) -> str:
        return self.zones.get(address, "UTC")


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a new ticket went: the engineers offered it, and whether it waits for a shift."""

    offered: tuple[Engineer, ...]
    waits: bool
    # The engineers offered it are the L1s on shift (not the on-call ones at night).
    first_line: bool = False


def route(roster: Roster, priority: Priority, at: datetime, sender: str) -> Routing:
    """Who hears of a new ticket of `priority` arriving at `at` (see the module docstring)."""
    first_line = [e for e in roster.engineers if e.tier == "L1" and e.address != sender]
    if not first_line:
        return Routing((), False)
    on_shift = [e for e in roster.on_shift("L1", at) if e.address != sender]
    if on_shift:
        return Routing(tuple(on_shift), False, first_line=True)
    if priority is Priority.P1:
        awake = roster.on_call() or roster.on_shift("L2", at) or roster.on_shift("lead", at)
        chosen = tuple(e for e in awake if e.address != sender)
        if chosen:
            return Routing(chosen, False)
    return Routing((), True)


def offer(ticket: Ticket, engineers: Sequence[Engineer]) -> list[Participant]:
    """The engineers join the ticket, to be told of it; the rows of those new to it."""
    joined = []
    for engineer in engineers:
        if find_participant(ticket, engineer.address) is None:
            role = ParticipantRole.ENGINEER
            joined.append(Participant(ticket=ticket, address=engineer.address, role=role))
    return joined


def least_loaded(session: Session, engineers: Sequence[Engineer]) -> Engineer:
    """The engineer with the fewest open tickets assigned; the first configured on a tie."""
    addresses = [e.address for e in engineers]
    counts = dict(
        session.execute(
            select(Ticket.assignee, func.count())
            .where(Ticket.assignee.in_(addresses), Ticket.status.in_(OPEN_STATUSES))
            .group_by(Ticket.assignee)
        ).all()
    )
    return min(engineers, key=lambda e: counts.get(e.address, 0))


def assign_new(
    act: Act, ticket: Ticket, engineer: Engineer, message: Message | None = None
) -> Event:
    """`ticket` assigned to `engineer` by the routing, not by anyone's hand."""
    ticket.assignee = engineer.address
    return Event(
        ticket=ticket,
        type=EventKind.ASSIGNED,
        actor=SYSTEM_ACTOR,
        at=act.at,
        detail=engineer.address,
        message=message,
    )
