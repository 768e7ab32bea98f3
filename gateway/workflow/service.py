"""The service layer on a ticket: the priority the customer's words and the sender rules
give a new ticket, and the clocks' state kept on the ticket row after every change.

The clocks themselves are computed from the event log (`gateway.service.clocks`); the ticket
row keeps their due times for the mail that shows them, and `service_check_at`, the next
moment a warning or a breach falls due, which `gateway due` finds through its index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from gateway.intake.urgency import read_urgency
from gateway.phrases import Phrase
from gateway.service.clocks import (
    Moment,
    Step,
    TargetClock,
    first_response_clock,
    resolution_clock,
)
from gateway.service.levels import ServiceLevels, more_urgent
from gateway.trail import Filing
from storage.models import (
    DONE_STATUSES,
    Attachment,
    Event,
    EventKind,
    Message,
    Priority,
    Ticket,
    TicketStatus,
)

S = TicketStatus
# The events that move a clock; a message that made none of them leaves the clocks alone.
CLOCK_EVENTS = frozenset(
    {
        EventKind.CREATED,
        EventKind.REPLIED,
        EventKind.STATUS_CHANGED,
        EventKind.REOPENED,
        EventKind.CONFIRMED,
        EventKind.AUTO_CLOSED,
        EventKind.PRIORITY_CHANGED,
    }
)
ALERTS = (EventKind.SLA_WARNING, EventKind.SLA_BREACHED)
# Where a priority came from, as `tickets.priority_reason` says it (in English, for the trail
# and programs) and as a Chinese engineer's mail says it (`reason_in`).
FROM_WORDS = Phrase("the customer's words: ", "客户原话：")
FROM_RULE = Phrase("the sender rule for ", "发件人规则：")
REASONS_JOINED = Phrase("; ", "；")
# Message ids per lookup: well under every database's limit on bound parameters.
LOOKUP_CHUNK = 500


def first_priority(filing: Filing, ticket: Ticket, service: ServiceLevels) -> Event | None:
    """The priority of a new ticket: the customer's words ("Priority: P1", "线上事故"), raised
    by the sender's rule; the event that records where it came from, if it is not P3."""
    mail, read_ahead = filing.inbound.mail, filing.first_mail
    urgency = read_ahead.urgency if read_ahead else read_urgency(mail.subject, mail.text)
    rule = service.sender_rule(filing.inbound.sender)
    priority, reasons = Priority.P3.value, []
    if urgency is not None:
        priority = urgency.priority
        reasons.append(f'{FROM_WORDS.en}"{urgency.words}"')
    if rule is not None and more_urgent(rule.priority, priority) != priority:
        priority = rule.priority
        reasons.append(f"{FROM_RULE.en}{rule.sender}")
    if not reasons:
        return None
    ticket.priority = Priority(priority)
    ticket.priority_reason = REASONS_JOINED.en.join(reasons)
    return Event(
        ticket=ticket,
        type=EventKind.PRIORITY_CHANGED,
        actor=filing.inbound.sender,
        at=filing.inbound.at,
        detail=f"P3 → {priority} ({ticket.priority_reason})",
    )


def reason_in(reason: str, language: str) -> str:
    """`tickets.priority_reason` in `language`: its fixed words translated, the customer's
    own words and the rule's sender as they stand."""
    for phrase in (FROM_WORDS, FROM_RULE, REASONS_JOINED):
        reason = reason.replace(phrase.en, phrase.said_in(language))
    return reason


def clocks_of(
    history: Sequence[Moment], ticket: Ticket, service: ServiceLevels
) -> tuple[TargetClock, TargetClock]:
    """The first-response and resolution clocks of a ticket with this history."""
    target = service.target(ticket.priority.value)
    calendar = service.calendar_of(target)
    return (
        first_response_clock(history, target, calendar),
        resolution_clock(history, target, calendar),
    )


def alert_key(clock: TargetClock) -> str:
    """What makes a warning or a breach once: the target and the round (a new priority
    moves the due time, but a target warned of or missed is not mailed about again)."""
    return f"{clock.name} round {clock.round}"


def keep_clocks(
    ticket: Ticket,
    clocks: tuple[TargetClock, TargetClock],
    alerted: Iterable[tuple[EventKind, str]],
) -> None:
    """The clocks' state on the ticket row; `alerted` are the (kind, detail) of the
    warnings and breaches recorded so far."""
    response, resolution = clocks
    ticket.response_due, ticket.responded_at = response.due, response.met_at
    ticket.resolution_due, ticket.resolution_paused = resolution.due, resolution.paused
    ticket.service_check_at = next_check(ticket, clocks, list(alerted))


def next_check(
    ticket: Ticket,
    clocks: tuple[TargetClock, TargetClock],
    alerted: list[tuple[EventKind, str]],
) -> datetime | None:
    """The next moment a warning or breach of the ticket falls due; None for none."""
    if ticket.status in DONE_STATUSES or ticket.merged_into is not None:
        return None
    moments = []
    for clock in clocks:
        if not clock.running:
            continue
        key = alert_key(clock) + ":"
        sent = {kind for kind, detail in alerted if detail.startswith(key)}
        if EventKind.SLA_BREACHED in sent:
            continue  # Its warning, if never sent, was overtaken: nothing more to say.
        if EventKind.SLA_WARNING not in sent and clock.warn_at is not None:
            moments.append(clock.warn_at)
        elif clock.due is not None:
            moments.append(clock.due)
    return min(moments, default=None)


def start_clocks(ticket: Ticket, service: ServiceLevels) -> None:
    """A new ticket's clocks, which start at its creation."""
    history = [Moment(ticket.created_at, Step.CREATED)]
    keep_clocks(ticket, clocks_of(history, ticket, service), ())


def refresh_clocks(session: Session, ticket: Ticket, service: ServiceLevels) -> None:
    """The clocks of a ticket whose history just changed, from its event log."""
    history, alerted = read_history(session, ticket.id)
    if history:
        keep_clocks(ticket, clocks_of(history, ticket, service), alerted)


def touches_clocks(events: Iterable[Event]) -> bool:
    return any(event.type in CLOCK_EVENTS for event in events)


def read_history(
    session: Session, ticket_id: int
) -> tuple[list[Moment], list[tuple[EventKind, str]]]:
    """The ticket's clock moments, in order, and its recorded warnings and breaches; events
    a merge brought from another ticket are that ticket's."""
    rows = session.execute(
        select(
            Event.type, Event.at, Event.from_status, Event.to_status, Event.message_pk, Event.detail
        )
        .where(Event.ticket_id == ticket_id, Event.type.in_((*CLOCK_EVENTS, *ALERTS)))
        .where(Event.moved_from.is_(None))
        .order_by(Event.at, Event.id)
    ).all()
    replies = {row.message_pk for row in rows if row.type is EventKind.REPLIED}
    public = public_replies(session, replies)
    read = (
        moment_of(row.type, row.at, row.from_status, row.to_status, row.message_pk in public)
        for row in rows
    )
    moments = [moment for moment in read if moment is not None]
    alerted = [(row.type, row.detail) for row in rows if row.type in ALERTS]
    return moments, alerted


def public_replies(session: Session, message_pks: set[int | None]) -> set[int]:
    """Those of the messages that are an engineer's public words (text or files), not
    commands alone; looked up a chunk at a time, however many there are."""
    pks = sorted(pk for pk in message_pks if pk is not None)
    has_files = exists().where(Attachment.message_pk == Message.id)
    found: set[int] = set()
    for start in range(0, len(pks), LOOKUP_CHUNK):
        chunk = pks[start : start + LOOKUP_CHUNK]
        found.update(
            session.scalars(
                select(Message.id).where(
                    Message.id.in_(chunk), ~Message.internal, or_(Message.text != "", has_files)
                )
            )
        )
    return found


def moment_of(
    kind: EventKind,
    at: datetime,
    from_status: TicketStatus | None,
    to_status: TicketStatus | None,
    public_reply: bool,
) -> Moment | None:
    """What one event means to the clocks, if anything."""
    if kind is EventKind.CREATED:
        return Moment(at, Step.CREATED)
    if kind is EventKind.REPLIED:
        return Moment(at, Step.RESPONDED) if public_reply else None
    if kind is EventKind.REOPENED:
        return Moment(at, Step.REOPENED)
    if to_status is None or from_status is None:
        return None
    if to_status in DONE_STATUSES and from_status not in DONE_STATUSES:
        return Moment(at, Step.RESOLVED)
    if to_status is S.WAITING:
        return Moment(at, Step.WAITING)
    if from_status is S.WAITING:
        return Moment(at, Step.RESUMED)
    return None
