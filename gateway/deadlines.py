"""The service levels' time-based work: a warning when 75% of a target is used up, the
breach when it is passed, and the digest of new tickets that waited for a shift.

A warning goes to the ticket's assignee, else to the L1 engineers on it who are on shift
(else to all of them). At the breach the ticket is escalated to L2: the L2 engineers on
shift, else the on-call engineers for a P1, else every L2; they and the team leads are told.
Each warning and each breach is once per target and round (`alert_key`); a warning the
breach has overtaken (a late round, a raised priority) is not sent. The
ticket is locked (`FOR UPDATE SKIP LOCKED`; SQLite writes one transaction at a time), its
clocks computed from the event log and its recorded alerts read again under the lock, so
several processes and any number of `gateway due` runs send each exactly once.

New tickets that reached no engineer (`awaiting_shift_since`) go, as soon as an L1 engineer
is on shift, to the L1s on shift in one digest mail each; each ticket records `digest_sent`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.database import Sessions, reading, transaction
from gateway.notifications import Notifier
from gateway.outbox import Notice
from gateway.service.clocks import TargetClock
from gateway.service.phrasing import due_words, zone_of
from gateway.setting_values import Engineer
from gateway.trail import Acting, engineer_participant
from gateway.workflow import Rules
from gateway.workflow.routing import assign_new, least_loaded, offer
from gateway.workflow.service import (
    alert_key,
    clocks_of,
    keep_clocks,
    read_history,
)
from storage.models import (
    DONE_STATUSES,
    OPEN_STATUSES,
    SYSTEM_ACTOR,
    Event,
    EventKind,
    Participant,
    Priority,
    Ticket,
    Watch,
)

log = logging.getLogger(__name__)

# Tickets whose clocks are looked at in one round; the rest wait for the next.
ROUND_LIMIT = 1000


@dataclass(slots=True)
class DeadlineWork:
    """What one round did."""

    warnings: int = 0
    breaches: int = 0
    digests: int = 0


class Deadlines:
    """Sends the warnings, breaches and shift digests that are due."""

    def __init__(self, sessions: Sessions, notifier: Notifier, rules: Rules) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.rules = rules

    def run(self, now: datetime) -> DeadlineWork:
        work = DeadlineWork()
        for ticket_id in self.due_tickets(now):
            self.check(ticket_id, now, work)
        self.send_digests(now, work)
        return work

    def due_tickets(self, now: datetime) -> list[int]:
        """The tickets with a warning or breach due by `now`, through their index."""
        with reading(self.sessions) as session:
            return list(
                session.scalars(
                    select(Ticket.id)
                    .where(Ticket.service_check_at <= now)
                    .order_by(Ticket.service_check_at)
                    .limit(ROUND_LIMIT)
                )
            )

    def check(self, ticket_id: int, now: datetime, work: DeadlineWork) -> None:
        """One ticket's warnings and breaches due by `now`, each once."""
        with transaction(self.sessions) as session:
            ticket = session.scalars(
                select(Ticket).where(Ticket.id == ticket_id).with_for_update(skip_locked=True)
            ).first()
            if ticket is None:
                return
            history, alerted = read_history(session, ticket_id)
            if not history:  # Nothing of its own left (merged away): nothing to watch.
                ticket.service_check_at = None
                return
            clocks = clocks_of(history, ticket, self.rules.service)
            act = Acting(session, SYSTEM_ACTOR, now)
            for clock in clocks:
                if not clock.running or ticket.status in DONE_STATUSES:
                    continue
                sent = sent_alerts(alerted, alert_key(clock))
                breached = clock.due is not None and now >= clock.due
                warned = clock.warn_at is not None and now >= clock.warn_at
                # A warning the breach has overtaken (`due` ran late, a priority was raised)
                # would only say less, later: the breach alone goes.
                if EventKind.SLA_WARNING not in sent and warned and not breached:
                    alerted.append(self.warn(act, ticket, clock))
                    work.warnings += 1
                if EventKind.SLA_BREACHED not in sent and breached:
                    alerted.append(self.breach(act, ticket, clock))
                    work.breaches += 1
            keep_clocks(ticket, clocks, alerted)

    def warn(self, act: Acting, ticket: Ticket, clock: TargetClock) -> tuple[EventKind, str]:
        """The warning: recorded, and mailed to the assignee or the L1s on shift."""
        detail = alert_detail(ticket, clock, "75% of the target used")
        record_alert(act, ticket, EventKind.SLA_WARNING, detail)
        people = self.warned(act, ticket)
        self.tell(act.session, ticket, people, "sla_warning", {"target": clock.name})
        return EventKind.SLA_WARNING, detail

    def warned(self, act: Acting, ticket: Ticket) -> list[Participant]:
        if ticket.assignee:
            return [engineer_participant(act.session, ticket, ticket.assignee)]
        on_shift = {e.address for e in self.rules.roster.on_shift("L1", act.at)}
        first_line = [
            p for p in self.notifier.audience.watchers(ticket) if self.tier_of(p.address) == "L1"
        ]
        return [p for p in first_line if p.address in on_shift] or first_line

    def breach(self, act: Acting, ticket: Ticket, clock: TargetClock) -> tuple[EventKind, str]:
        """The breach: recorded, the ticket escalated to L2, and they and the leads told."""
        specialists = self.escalation_targets(ticket, act.at)
        escalated = ticket.tier != "L2" and bool(specialists)
        detail = alert_detail(ticket, clock, "target passed")
        if escalated:
            detail += f"; escalated to {', '.join(e.address for e in specialists)}"
        record_alert(act, ticket, EventKind.SLA_BREACHED, detail)
        if escalated:
            self.escalate(act, ticket, specialists)
        told = [*specialists, *self.rules.tier("lead")] if escalated else self.rules.tier("lead")
        people = [engineer_participant(act.session, ticket, e.address) for e in told]
        if ticket.assignee and ticket.assignee not in {e.address for e in told}:
            people.append(engineer_participant(act.session, ticket, ticket.assignee))
        extra = {"target": clock.name, "escalated_to": [e.address for e in specialists]}
        self.tell(act.session, ticket, people, "sla_breached", extra | {"escalated": escalated})
        return EventKind.SLA_BREACHED, detail

    def escalation_targets(self, ticket: Ticket, at: datetime) -> list[Engineer]:
        """L2 on shift; else the on-call engineers for a P1; else every L2."""
        roster = self.rules.roster
        on_shift = roster.on_shift("L2", at)
        if on_shift:
            return on_shift
        if ticket.priority is Priority.P1 and roster.on_call():
            return roster.on_call()
        return list(self.rules.tier("L2"))

    def escalate(self, act: Acting, ticket: Ticket, specialists: list[Engineer]) -> None:
        ticket.tier = "L2"
        for engineer in specialists:
            participant = engineer_participant(act.session, ticket, engineer.address)
            if participant.watch is not Watch.WORKING:
                participant.watch = Watch.FOLLOWING
        names = ", ".join(e.address for e in specialists)
        detail = f"{names} (the service-level target was passed)"
        act.session.add(
            Event(
                ticket=ticket, type=EventKind.ESCALATED, actor=act.actor, at=act.at, detail=detail
            )
        )

    def tier_of(self, address: str) -> str:
        engineer = self.rules.engineer(address)
        return engineer.tier if engineer else ""

    def tell(
        self,
        session: Session,
        ticket: Ticket,
        people: list[Participant],
        kind: str,
        extra: dict[str, object],
    ) -> None:
        """A `kind` notice about `ticket` to each of `people`, once each."""
        notifier = self.notifier
        seen: set[str] = set()
        for participant in people:
            if participant.address in seen:
                continue
            seen.add(participant.address)
            context = notifier.context.base(ticket, participant) | extra
            rendered = notifier.engineer_mail(kind, participant, context)
            notifier.outbox.queue(session, ticket, Notice(participant, rendered))

    # -- new tickets that waited for a shift ------------------------------------------------

    def send_digests(self, now: datetime, work: DeadlineWork) -> None:
        """The tickets that waited, to the L1s on shift now, in one digest mail each."""
        on_shift = self.rules.roster.on_shift("L1", now)
        if not on_shift or not self.waiting_tickets():
            return
        with transaction(self.sessions) as session:
            tickets = list(
                session.scalars(
                    select(Ticket)
                    .where(Ticket.awaiting_shift_since.is_not(None))
                    .where(Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into.is_(None))
                    .order_by(Ticket.id)
                    .with_for_update(skip_locked=True)
                )
            )
            if not tickets:
                return
            act = Acting(session, SYSTEM_ACTOR, now)
            for ticket in tickets:
                self.hand_over(act, ticket, on_shift)
            for engineer in on_shift:
                self.send_digest(session, engineer, tickets, now)
        work.digests += len(on_shift)

    def waiting_tickets(self) -> bool:
        with reading(self.sessions) as session:
            first = select(Ticket.id).where(Ticket.awaiting_shift_since.is_not(None)).limit(1)
            return session.scalars(first).first() is not None

    def hand_over(self, act: Acting, ticket: Ticket, on_shift: list[Engineer]) -> None:
        """The ticket joins the shift: the L1s on it are its engineers now."""
        ticket.awaiting_shift_since = None
        act.session.add_all(offer(ticket, on_shift))
        act.session.flush()
        names = ", ".join(e.address for e in on_shift)
        record_alert(act, ticket, EventKind.DIGEST_SENT, f"to {names}")
        if self.rules.service.assign == "least_loaded" and ticket.assignee is None:
            act.session.add(assign_new(act, ticket, least_loaded(act.session, on_shift)))

    def send_digest(
        self, session: Session, engineer: Engineer, tickets: list[Ticket], now: datetime
    ) -> None:
        notifier = self.notifier
        zone = zone_of(engineer.timezone or self.rules.service.calendar.timezone)
        language = engineer.language
        entries = []
        for ticket in tickets:
            participant = engineer_participant(session, ticket, engineer.address)
            due = ticket.response_due
            entries.append(
                {
                    "ticket": ticket,
                    "tag": notifier.outbox.sender.tag(ticket),
                    "reply_address": notifier.outbox.sender.reply_address(ticket, participant),
                    "due": due_words(due, zone, now, language) if due else "",
                    "words": ticket.messages[0].text if ticket.messages else "",
                }
            )
        context = {"tickets": entries, "count": len(entries)}
        rendered = notifier.templates.render("engineer", "shift_digest", language, context)
        notifier.outbox.queue_unticketed(session, engineer.address, rendered)


def sent_alerts(alerted: list[tuple[EventKind, str]], key: str) -> set[EventKind]:
    return {kind for kind, detail in alerted if detail.startswith(key + ":")}


def alert_detail(ticket: Ticket, clock: TargetClock, what: str) -> str:
    due = clock.due.isoformat() if clock.due else "paused"
    return f"{alert_key(clock)}: {ticket.priority.value} {what}, due {due}"


def record_alert(act: Acting, ticket: Ticket, kind: EventKind, detail: str) -> None:
    act.session.add(Event(ticket=ticket, type=kind, actor=act.actor, at=act.at, detail=detail))
