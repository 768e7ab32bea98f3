"""Support figures for a period, as `gateway report` gives them to a lead: how fast the first
response and the resolution came, how many closed tickets needed one reply, how many came
back, which targets were met, and what is still open, per priority and for all tickets.

Every figure is read from the event log as it stood at the period's end, through the readers
the service-level clocks use (`moment_of`, `public_replies`, `clocks_of`), so the report and
`gateway show` never disagree about when a ticket was answered or resolved. The rows come in
a few bulk queries (`load_trails`); everything after them is pure (`figures_of`).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.knowledge.usage import ArticleFigures, article_figures
from gateway.service.clocks import Moment, Step, TargetClock
from gateway.service.levels import PRIORITIES, ServiceLevels
from gateway.workflow import STATUS_EVENTS
from gateway.workflow.service import CLOCK_EVENTS, clocks_of, moment_of, public_replies
from storage.models import (
    OPEN_STATUSES,
    SYSTEM_ACTOR,
    Event,
    EventKind,
    Participant,
    ParticipantRole,
    Ticket,
    TicketStatus,
    is_operator,
)

ALL = "all"
PRIORITY_KEYS = (*PRIORITIES, ALL)
TARGETS = ("first_response", "resolution")
# Each bucket holds the ages below its bound, in days, and at or above the one before.
AGE_BUCKETS = (("<1d", 1.0), ("1-3d", 3.0), ("3-7d", 7.0), ("7-30d", 30.0), (">30d", math.inf))
DAY_S = 86400.0
DEFAULT_DAYS = 30
# The events the report reads: those that move a clock, and an old ticket's follow-up.
REPORT_EVENTS = frozenset({*CLOCK_EVENTS, EventKind.FOLLOWED_UP})
# Message ids are looked up this many at a time: SQLite limits a statement's parameters.


# -- the period ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """The report's period, `[since, until)`, in UTC."""

    since: datetime
    until: datetime

    def holds(self, at: datetime | None) -> bool:
        return at is not None and self.since <= at < self.until


def day_or_moment(text: str) -> date | datetime:
    """`--since`/`--until` as given: an ISO date, or an ISO date and time; `ValueError` for
    anything else."""
    text = text.strip()
    if len(text) == len("2026-11-02"):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def period_of(
    since: date | datetime | None, until: date | datetime | None, now: datetime, zone: tzinfo
) -> Period:
    """The period the options name: dates and times without an offset are in `zone` (the
    team's calendar); a date as `until` ends with that day; no `since`, the 30 days before
    the end; the end is never after `now`, since the figures know nothing of later."""
    end = now if until is None else min(moment_at(until, zone, next_day=True), now)
    start = end - timedelta(days=DEFAULT_DAYS) if since is None else moment_at(since, zone)
    if start >= end:
        raise UsageError(
            f"the period is empty: {start.isoformat()} is not before {end.isoformat()}"
        )
    return Period(start, end)


def moment_at(value: date | datetime, zone: tzinfo, next_day: bool = False) -> datetime:
    """A date's first moment (or the next day's), or a time, in `zone` unless it says."""
    if not isinstance(value, datetime):
        day = value + timedelta(days=1) if next_day else value
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)


# -- the rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event of a ticket as the report reads it."""

    kind: EventKind
    at: datetime
    actor: str
    from_status: TicketStatus | None
    to_status: TicketStatus | None
    # An engineer's reply the customer was sent (text or files).
    public_reply: bool


@dataclass(frozen=True, slots=True)
class Trail:
    """One ticket, its events up to the period's end (oldest first), and the addresses of
    the engineers who were on it or are configured."""

    ticket: Ticket
    events: tuple[EventRow, ...]
    engineers: frozenset[str]


def touched_tickets(period: Period) -> Select[int]:
    """The tickets the period can say anything about: created before its end, and open now,
    changed since its start or with an event in it. Any other was done before it began."""
    in_period = exists().where(
        Event.ticket_id == Ticket.id,
        Event.type.in_(REPORT_EVENTS),
        Event.at >= period.since,
        Event.at < period.until,
    )
    # A ticket merged into another is part of that one's request, not one of its own.
    return select(Ticket.id).where(
        Ticket.created_at < period.until,
        Ticket.merged_into.is_(None),
        or_(
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.status_changed_at >= period.since,
            in_period,
        ),
    )


def load_trails(session: Session, period: Period, engineers: Iterable[str]) -> list[Trail]:
    """The trails of every touched ticket, in a few queries whatever their number."""
    touched = touched_tickets(period)
    tickets = session.scalars(select(Ticket).where(Ticket.id.in_(touched))).all()
    events = event_rows(session, touched, period)
    people = engineers_on(session, touched)
    configured = frozenset(engineers)
    return [
        Trail(ticket, tuple(events[ticket.id]), configured | people[ticket.id])
        for ticket in tickets
    ]


def event_rows(session: Session, touched: Select[int], period: Period) -> dict[int, list[EventRow]]:
    """The events the report reads of the touched tickets up to the period's end, by ticket,
    oldest first."""
    columns = (Event.ticket_id, Event.type, Event.at, Event.actor, Event.message_pk)
    rows = session.execute(
        select(*columns, Event.from_status, Event.to_status)
        .where(Event.ticket_id.in_(touched), Event.type.in_(REPORT_EVENTS))
        .where(Event.at < period.until, Event.moved_from.is_(None))
        .order_by(Event.ticket_id, Event.at, Event.id)
    ).all()
    replies = {r.message_pk for r in rows if r.type is EventKind.REPLIED}
    public = public_replies(session, replies)
    events: dict[int, list[EventRow]] = defaultdict(list)
    for r in rows:
        # A status change names the message that made it too: only the reply is one.
        reply = r.type is EventKind.REPLIED and r.message_pk in public
        events[r.ticket_id].append(
            EventRow(r.type, r.at, r.actor, r.from_status, r.to_status, reply)
        )
    return events


def engineers_on(session: Session, touched: Select[int]) -> dict[int, frozenset[str]]:
    """The engineers on each ticket: an engineer who has left the team still reopened a
    ticket as an engineer, not as its customer."""
    rows = session.execute(
        select(Participant.ticket_id, Participant.address).where(
            Participant.ticket_id.in_(touched), Participant.role == ParticipantRole.ENGINEER
        )
    ).all()
    found: dict[int, set[str]] = defaultdict(set)
    for ticket_id, address in rows:
        found[ticket_id].add(address)
    return defaultdict(frozenset, {key: frozenset(value) for key, value in found.items()})


# -- one ticket ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """A time measured on a ticket: calendar seconds, and business seconds in the team's
    calendar."""

    calendar_s: float
    business_s: float


@dataclass(frozen=True, slots=True)
class Reading:
    """What one ticket adds to the figures of its priority. A target's verdict is True when
    met, False when missed, None when the period does not count it."""

    priority: str
    first_response: Span | None
    resolution: Span | None
    # Its last move into closed is in the period; closed with one public reply, never reopened.
    closed: bool
    first_contact: bool
    # Resolved at least once in the period; reopened by its customer (or followed up) in it.
    resolved: bool
    reopened: bool
    verdicts: tuple[bool | None, bool | None]
    # Its status and age bucket when it is in the backlog.
    backlog: tuple[str, str] | None


def read_ticket(trail: Trail, service: ServiceLevels, period: Period) -> Reading | None:
    """One ticket's part in the figures; None for a ticket without its creation event."""
    moments = moments_of(trail)
    if not moments or moments[0].step is not Step.CREATED:
        return None
    response, resolution = clocks_of(moments, trail.ticket, service)
    ended = first_at(moments, Step.RESOLVED)
    first_contact = replies(trail) == 1 and not any(came_back(e) for e in trail.events)
    return Reading(
        priority=trail.ticket.priority.value,
        first_response=measured(moments, first_at(moments, Step.RESPONDED), service, period),
        resolution=measured(moments, last_resolve(moments), service, period),
        closed=period.holds(last_closed(trail)),
        first_contact=first_contact,
        resolved=any(m.step is Step.RESOLVED and period.holds(m.at) for m in moments),
        reopened=any(reopened_by_customer(e, trail.engineers, period) for e in trail.events),
        verdicts=(verdict(response, ended, period), verdict(resolution, None, period)),
        backlog=backlog_place(trail.ticket, period),
    )


def moments_of(trail: Trail) -> list[Moment]:
    read = (
        moment_of(e.kind, e.at, e.from_status, e.to_status, e.public_reply) for e in trail.events
    )
    return [moment for moment in read if moment is not None]


def first_at(moments: Sequence[Moment], step: Step) -> datetime | None:
    return next((moment.at for moment in moments if moment.step is step), None)


def last_resolve(moments: Sequence[Moment]) -> datetime | None:
    """When the ticket was last resolved; None when a reopen came after it."""
    resolved = None
    for moment in moments:
        if moment.step is Step.RESOLVED:
            resolved = moment.at
        elif moment.step is Step.REOPENED:
            resolved = None
    return resolved


def measured(
    moments: Sequence[Moment], end: datetime | None, service: ServiceLevels, period: Period
) -> Span | None:
    """The time from the ticket's creation to `end`, when `end` is in the period."""
    if end is None or not period.holds(end):
        return None
    start = moments[0].at
    return Span((end - start).total_seconds(), service.calendar.between(start, end))


def replies(trail: Trail) -> int:
    return sum(1 for event in trail.events if event.public_reply)


def came_back(event: EventRow) -> bool:
    return event.kind in (EventKind.REOPENED, EventKind.FOLLOWED_UP)


def last_closed(trail: Trail) -> datetime | None:
    """The last move into closed; a merge is no closing of the customer's problem."""
    moves = (
        e.at for e in trail.events if e.kind in STATUS_EVENTS and e.to_status is TicketStatus.CLOSED
    )
    return max(moves, default=None)


def reopened_by_customer(event: EventRow, engineers: frozenset[str], period: Period) -> bool:
    """A customer's "not fixed" or new problem, or their follow-up of a closed ticket, in the
    period; an engineer's or operator's reopen is no sign the answer failed."""
    if not period.holds(event.at):
        return False
    if event.kind is EventKind.FOLLOWED_UP:
        return True
    by_staff = event.actor in engineers or is_operator(event.actor) or event.actor == SYSTEM_ACTOR
    return event.kind is EventKind.REOPENED and not by_staff


def verdict(clock: TargetClock, stopped_at: datetime | None, period: Period) -> bool | None:
    """Met (True) or missed (False) in the period: met there, on time or late; or not met
    and due there. A first response never given to a ticket resolved before it was due
    was not missed."""
    if clock.met_at is not None:
        return not clock.breached(clock.met_at) if period.holds(clock.met_at) else None
    if clock.due is None or not period.holds(clock.due):
        return None
    if clock.stopped and stopped_at is not None and stopped_at <= clock.due:
        return None
    return False


def backlog_place(ticket: Ticket, period: Period) -> tuple[str, str] | None:
    """Its status and age bucket at the period's end, when it is still to be worked on."""
    if ticket.status not in OPEN_STATUSES:
        return None
    return ticket.status.value, age_bucket((period.until - ticket.created_at).total_seconds())


def age_bucket(seconds: float) -> str:
    days = seconds / DAY_S
    return next(name for name, bound in AGE_BUCKETS if days < bound)


# -- the figures -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Durations:
    """How long something took over the tickets counted; None without any."""

    count: int
    median_s: float | None
    p90_s: float | None
    business_median_s: float | None
    business_p90_s: float | None


@dataclass(frozen=True, slots=True)
class Tally:
    """Targets met and missed."""

    met: int
    missed: int

    @property
    def rate(self) -> float | None:
        return share(self.met, self.met + self.missed)


@dataclass(frozen=True, slots=True)
class Rates:
    """First-contact resolution (of the tickets closed) and reopens (of those resolved)."""

    closed: int
    first_contact: int
    resolved: int
    reopened: int

    @property
    def fcr_rate(self) -> float | None:
        return share(self.first_contact, self.closed)

    @property
    def reopen_rate(self) -> float | None:
        return share(self.reopened, self.resolved)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Tickets still to be worked on, by status and by age."""

    by_status: Mapping[str, int]
    by_age: Mapping[str, int]
    by_status_and_age: Mapping[str, Mapping[str, int]]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True, slots=True)
class Figures:
    """The whole report: each mapping by priority key (`P1`..`P4`, `all`)."""

    period: Period
    first_response: Mapping[str, Durations]
    resolution: Mapping[str, Durations]
    rates: Mapping[str, Rates]
    # By target name (`first_response`, `resolution`), then priority key.
    targets_met: Mapping[str, Mapping[str, Tally]]
    backlog: Backlog
    # The knowledge base's suggestions (`gateway.knowledge.usage`).
    articles: ArticleFigures


def compute_figures(
    session: Session, service: ServiceLevels, period: Period, engineers: Iterable[str]
) -> Figures:
    """The figures of `period` from the database."""
    trails = load_trails(session, period, engineers)
    readings = [read_ticket(trail, service, period) for trail in trails]
    articles = article_figures(session, period.since, period.until)
    return figures_of([r for r in readings if r is not None], period, articles)


def figures_of(readings: Sequence[Reading], period: Period, articles: ArticleFigures) -> Figures:
    """The figures of these tickets' readings."""
    groups = {key: [r for r in readings if key in (ALL, r.priority)] for key in PRIORITY_KEYS}
    return Figures(
        period,
        {key: durations(r.first_response for r in group) for key, group in groups.items()},
        {key: durations(r.resolution for r in group) for key, group in groups.items()},
        {key: rates(group) for key, group in groups.items()},
        {
            name: {key: tally(r.verdicts[index] for r in group) for key, group in groups.items()}
            for index, name in enumerate(TARGETS)
        },
        backlog_of(r.backlog for r in readings),
        articles,
    )


def durations(spans: Iterable[Span | None]) -> Durations:
    counted = [span for span in spans if span is not None]
    calendar = [span.calendar_s for span in counted]
    business = [span.business_s for span in counted]
    return Durations(len(counted), median(calendar), p90(calendar), median(business), p90(business))


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the value at rank ceil(0.9 n), ascending."""
    if not values:
        return None
    return sorted(values)[math.ceil(0.9 * len(values)) - 1]


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def rates(readings: Sequence[Reading]) -> Rates:
    closed = [r for r in readings if r.closed]
    return Rates(
        len(closed),
        sum(1 for r in closed if r.first_contact),
        sum(1 for r in readings if r.resolved),
        sum(1 for r in readings if r.reopened),
    )


def tally(verdicts: Iterable[bool | None]) -> Tally:
    counted = [v for v in verdicts if v is not None]
    return Tally(sum(counted), len(counted) - sum(counted))


def backlog_of(places: Iterable[tuple[str, str] | None]) -> Backlog:
    """The backlog's counts, every status and bucket present, zeros included."""
    statuses = [status.value for status in OPEN_STATUSES]
    buckets = [name for name, _ in AGE_BUCKETS]
    cross = {status: dict.fromkeys(buckets, 0) for status in statuses}
    for place in places:
        if place is not None:
            cross[place[0]][place[1]] += 1
    by_status = {status: sum(cross[status].values()) for status in statuses}
    by_age = {bucket: sum(cross[s][bucket] for s in statuses) for bucket in buckets}
    return Backlog(by_status, by_age, cross)
