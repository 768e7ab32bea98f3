"""Mail to the operators: a digest of the messages quarantined since the last one.

A quarantined message waits for someone to look at it (`gateway quarantine`, `gateway
replay`); nobody would, unless told. The operators (`GATEWAY_OPERATORS`) get at most one
digest an hour, listing each message quarantined since the one before: its spool id,
sender, subject and reason. It is time-based work (`timers`), so `gateway due --now T`
sends the digest due at T.

Each digest is a row with a unique number, written in the transaction that queues its mail:
processes that find the same digest due all write the same number, only the first commits,
and the others' transactions, mail included, are taken back. So a digest goes out once,
however many workers and `gateway due` runs look at once.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.database import Sessions, transaction
from gateway.errors import WriteConflict
from gateway.outbox import Outbox
from gateway.parsing import read_headline
from gateway.rendering import Templates
from gateway.spool import IntakeSource, Receipt, Spool
from storage.models import QuarantineDigest, ReceiptOutcome
from storage.models import Receipt as ReceiptRow

log = logging.getLogger(__name__)

DIGEST_EVERY = timedelta(hours=1)
# Header bytes read for a quarantined message's sender and subject.
HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One quarantined message, as the digest lists it."""

    spool_id: str
    at: datetime
    sender: str
    subject: str
    reason: str


class QuarantineDigests:
    """Queues the operators' digest of quarantined messages when one is due."""

    def __init__(
        self,
        sessions: Sessions,
        outbox: Outbox,
        templates: Templates,
        operators: tuple[str, ...],
        spool: Spool,
    ) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.templates = templates
        self.operators = operators
        self.spool = spool

    def send_due(self) -> int:
        """Queue the digest due now, if one is; the number of messages it lists."""
        if not self.operators:
            return 0
        now = self.outbox.clock.now()
        try:
            with transaction(self.sessions) as session:
                return self.queue_due(session, now)
        except WriteConflict:  # Another process queued this digest first.
            return 0

    def queue_due(self, session: Session, now: datetime) -> int:
        last = session.scalars(
            select(QuarantineDigest).order_by(QuarantineDigest.number.desc()).limit(1)
        ).first()
        if last is not None and now < last.covers_until + DIGEST_EVERY:
            return 0
        rows = quarantined_between(session, last.covers_until if last else None, now)
        if not rows:
            return 0
        number = (last.number if last else 0) + 1
        session.add(QuarantineDigest(number=number, covers_until=now, messages=len(rows)))
        session.flush()  # The unique number claims the digest before any mail is written.
        listed = [self.described(row) for row in rows]
        rendered = self.templates.render(
            "operator", "quarantine_digest", "en", {"messages": listed}
        )
        for address in self.operators:
            self.outbox.queue_unticketed(session, address, rendered)
        log.info(
            "quarantine digest %d: %d message(s) to %s",
            number,
            len(rows),
            ", ".join(self.operators),
        )
        return len(rows)

    def described(self, row: ReceiptRow) -> Quarantined:
        """The row with the sender and subject its message's header says, where this host
        still has the message."""
        sender, subject = row.mail_from or "(none)", ""
        receipt = Receipt(
            row.spool_id,
            row.raw_sha256,
            IntakeSource(row.source),
            row.mail_from,
            (),
            row.received_at,
            0,
        )
        # Another host's spool holds it: the digest shows the envelope sender.
        with contextlib.suppress(OSError):
            from_address, subject = read_headline(self.spool.raw(receipt)[:HEADER_BYTES])
            sender = from_address or sender
        return Quarantined(row.spool_id, row.processed_at, sender, subject, row.reason)


def quarantined_between(
    session: Session, after: datetime | None, until: datetime
) -> list[ReceiptRow]:
    """Messages quarantined after `after` (from the start when None) up to `until`."""
    query = select(ReceiptRow).where(
        ReceiptRow.outcome == ReceiptOutcome.QUARANTINED, ReceiptRow.processed_at <= until
    )
    if after is not None:
        query = query.where(ReceiptRow.processed_at > after)
    return list(session.scalars(query.order_by(ReceiptRow.processed_at, ReceiptRow.id)).all())
