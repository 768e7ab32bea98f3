"""A ticket's two service-level clocks, computed from its history alone.

The first-response clock runs from the customer's first message to the first public reply an
engineer writes. The resolution clock runs from the ticket's creation to its resolution;
waiting on the customer pauses it (the business time left is kept and counted again from
the customer's reply) and a reopen starts it again with the whole target, as a new round.
A target in business time starts at the first working minute after the message.

Everything here is a pure function of the `Moment`s the event log gives, the target and the
calendar, so any moment can be replayed: `gateway due --now T`, `gateway show` and the
report all see the same clocks.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.service.calendar import BusinessCalendar
from gateway.service.levels import Target

# A warning goes out when this share of a target is used up.
WARNING_SHARE = 0.75
FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"


class Step(enum.Enum):
    """What happened to a ticket, as far as its clocks care."""

    CREATED = "created"
    RESPONDED = "responded"
    WAITING = "waiting"
    RESUMED = "resumed"
    RESOLVED = "resolved"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class Moment:
    at: datetime
    step: Step


@dataclass(frozen=True, slots=True)
class TargetClock:
    """One target's clock as the history leaves it."""

    name: str
    # None while paused.
    due: datetime | None
    met_at: datetime | None
    paused: bool
    # When the warning is due (None while paused or once met).
    warn_at: datetime | None
    # 0, and one more after each reopen (resolution only).
    round: int
    # The target's length in its calendar's seconds.
    target_s: float
    # The clock no longer runs though its target was not met: a ticket resolved or
    # closed before anyone answered stops its first-response clock.
    stopped: bool = False

    @property
    def running(self) -> bool:
        return self.met_at is None and not self.paused and not self.stopped

    def breached(self, now: datetime) -> bool:
        """The target was missed: met late, or not met and past due."""
        if self.due is None:
            return False
        if self.met_at is not None:
            return self.met_at > self.due
        return now >= self.due


def first_response_clock(
    history: Sequence[Moment], target: Target, calendar: BusinessCalendar
) -> TargetClock:
    """The first-response clock of a ticket with this `history`."""
    created = history[0].at
    total = calendar.seconds_of(target.first_response)
    due = calendar.add(created, total)
    met = next((m.at for m in history if m.step is Step.RESPONDED), None)
    ended = next((m.at for m in history if m.step is Step.RESOLVED), None)
    stopped = met is None and ended is not None
    warn_at = None if met or stopped else calendar.add(created, WARNING_SHARE * total)
    return TargetClock(FIRST_RESPONSE, due, met, False, warn_at, 0, total, stopped)


@dataclass(slots=True)
class Round:
    """The resolution clock while the history is walked."""

    due: datetime | None
    resumed_at: datetime
    left: float
    met_at: datetime | None = None
    number: int = 0


def resolution_clock(
    history: Sequence[Moment], target: Target, calendar: BusinessCalendar
) -> TargetClock:
    """The resolution clock of a ticket with this `history`."""
    total = calendar.seconds_of(target.resolution)
    created = history[0].at
    state = Round(calendar.add(created, total), created, total)
    for moment in history[1:]:
        walk(state, moment, total, calendar)
    paused = state.due is None
    warn_at = None
    if state.met_at is None and not paused:
        used_before = max(state.left - (1 - WARNING_SHARE) * total, 0.0)
        warn_at = calendar.add(state.resumed_at, used_before)
    return TargetClock(RESOLUTION, state.due, state.met_at, paused, warn_at, state.number, total)


def walk(state: Round, moment: Moment, total: float, calendar: BusinessCalendar) -> None:
    """One moment's effect on the resolution clock."""
    at, step = moment.at, moment.step
    if step is Step.REOPENED:
        state.number += 1
        state.met_at, state.resumed_at, state.left = None, at, total
        state.due = calendar.add(at, total)
    elif state.met_at is not None:
        return
    elif step is Step.RESOLVED:
        state.met_at = at
        if state.due is None:  # Resolved while waiting: the clock stands where it paused.
            state.due = calendar.add(at, state.left)
    elif step is Step.WAITING and state.due is not None and at < state.due:
        state.left = calendar.between(at, state.due)
        state.due = None
    elif step is Step.RESUMED and state.due is None:
        state.resumed_at = at
        state.due = calendar.add(at, state.left)
