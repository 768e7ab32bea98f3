"""Time-based work: a resolved ticket the customer has not answered closes by itself, the
service levels' warnings, breaches and shift digests go out (`deadlines`), and the
operators' digest of quarantined messages goes out when one is due (`operators`).

`run_due()` acts as of the injected clock's time, so `gateway due --now T` and the tests
run the work of any moment without waiting. Each ticket is closed in its own transaction
with its notifications, and rows are claimed with `FOR UPDATE SKIP LOCKED` where the
database has it, so several gateway processes never close one ticket twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from gateway.clock import Clock
from gateway.database import Sessions, reading, transaction
from gateway.deadlines import Deadlines, DeadlineWork
from gateway.errors import DatabaseUnavailable
from gateway.notifications import Notifier
from gateway.quarantine_digest import QuarantineDigests
from gateway.workflow import close_if_unanswered
from storage.models import Ticket, TicketStatus

log = logging.getLogger(__name__)


class Timers:
    """Runs the work that falls due with the passing of time."""

    def __init__(
        self,
        sessions: Sessions,
        notifier: Notifier,
        auto_close_after: timedelta,
        clock: Clock,
        digests: QuarantineDigests,
        deadlines: Deadlines,
    ) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.auto_close_after = auto_close_after
        self.clock = clock
        self.digests = digests
        self.deadlines = deadlines
        # What the last round's service-level work did, for `gateway due` to say.
        self.deadline_work = DeadlineWork()

    def run_due(self) -> list[int]:
        """Close every resolved ticket left unanswered too long, send the service levels'
        warnings, breaches and shift digests that are due, and queue the operators' digest if
        one is due; returns the numbers of the tickets closed.

        A database that is locked or down ends the round early; the rest wait for the next.
        """
        now = self.clock.now()
        closed = []
        try:
            for ticket_id in self.overdue(now):
                if self.close(ticket_id, now):
                    closed.append(ticket_id)
            self.deadline_work = self.deadlines.run(now)
            self.digests.send_due()
        except DatabaseUnavailable as exc:
            log.warning("time-based work waits for the database: %s", exc.reason)
        return closed

    def overdue(self, now: datetime) -> list[int]:
        cutoff = now - self.auto_close_after
        with reading(self.sessions) as session:
            return list(
                session.scalars(
                    select(Ticket.id)
                    .where(
                        Ticket.status == TicketStatus.RESOLVED, Ticket.status_changed_at <= cutoff
                    )
                    .order_by(Ticket.id)
                ).all()
            )

    def close(self, ticket_id: int, now: datetime) -> bool:
        with transaction(self.sessions) as session:
            ticket = session.scalars(
                select(Ticket).where(Ticket.id == ticket_id).with_for_update(skip_locked=True)
            ).first()
            # Re-checked under the lock: the customer may have answered in the meantime.
            event = (
                close_if_unanswered(session, ticket, now, self.auto_close_after)
                if ticket is not None
                else None
            )
            if event is None:
                return False
            self.notifier.announce_event(session, event)
            return True
