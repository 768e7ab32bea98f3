"""What became of each spooled message: its receipt row, the record stage.

A message's receipt commits with the ticket change and the mail it caused, so either all of
them exist or none. Its `dedupe_key` makes a second delivery of the same message a no-op:
`Ledger.earlier_outcome` finds the first one's receipt and records the new one as its
duplicate. A batch reads its messages' earlier receipts in one query, not one a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gateway.inbound import Inbound
from gateway.spool import Receipt
from gateway.threader import ThreadMatch
from gateway.workflow import Applied
from storage.models import Message, ReceiptOutcome
from storage.models import Receipt as ReceiptRow
from storage.rows import (
    ReceiptRecord,
    assign_ids,
    forget_receipt,
    forget_receipts_of,
    record_receipt,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one spooled message."""

    spool_id: str
    outcome: ReceiptOutcome
    ticket_id: int | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Recorded:
    """A receipt row, as far as filing the batch's other messages needs it."""

    id: int
    spool_id: str
    dedupe_key: str | None
    outcome: ReceiptOutcome
    ticket_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Written:
    """What a receipt row says of its message."""

    outcome: ReceiptOutcome
    reason: str
    ticket_id: int | None = None
    message: Message | None = None


RECORDED_COLUMNS = (
    ReceiptRow.id,
    ReceiptRow.spool_id,
    ReceiptRow.dedupe_key,
    ReceiptRow.outcome,
    ReceiptRow.ticket_id,
    ReceiptRow.reason,
)
NO_MESSAGE_OF_OURS = "delivery status notification about no message of ours"


class Ledger:
    """The receipts one transaction knows of: those recorded earlier for its messages (or
    for the same messages under other spool ids), and those it writes."""

    def __init__(self, session: Session, recorded: list[Recorded]) -> None:
        self.session = session
        self.recorded = recorded

    @classmethod
    def read(
        cls, session: Session, receipts: Sequence[Receipt], dedupe_keys: Sequence[str]
    ) -> Ledger:
        """The receipts of these spool entries or these messages, in one query."""
        if not receipts:
            return cls(session, [])
        spool_ids = [receipt.spool_id for receipt in receipts]
        rows = session.execute(
            select(*RECORDED_COLUMNS).where(
                or_(ReceiptRow.spool_id.in_(spool_ids), ReceiptRow.dedupe_key.in_(dedupe_keys))
            )
        )
        return cls(session, [Recorded(*row) for row in rows])

    def earlier_outcome(self, receipt: Receipt, dedupe_key: str, now: datetime) -> Outcome | None:
        """The outcome already recorded for this spool entry, or for the same message under
        another (then this one is recorded as its duplicate); None when it is new."""
        mine = next((row for row in self.recorded if row.spool_id == receipt.spool_id), None)
        if mine is not None and mine.outcome is not ReceiptOutcome.QUARANTINED:
            return Outcome(receipt.spool_id, mine.outcome, mine.ticket_id, mine.reason)
        if mine is not None:  # Replayed from quarantine: filed afresh.
            forget_receipt(self.session, mine.id)
        same = self.first_of(dedupe_key, but=receipt.spool_id)
        if same is None:
            return None
        written = Written(ReceiptOutcome.DUPLICATE, f"duplicate of {same.spool_id}", same.ticket_id)
        return self.write(receipt, now, written)

    def first_of(self, dedupe_key: str, but: str) -> Recorded | None:
        """The receipt of the same message under another spool id."""
        return next(
            (row for row in self.recorded if row.dedupe_key == dedupe_key and row.spool_id != but),
            None,
        )

    def record(self, applied: Applied, match: ThreadMatch) -> Outcome:
        """The receipt of a message that opened a ticket or joined one."""
        outcome = ReceiptOutcome.NEW_TICKET if applied.new_ticket else ReceiptOutcome.REPLY
        reason = f"threaded by {match.method}"
        written = Written(outcome, reason, applied.ticket.id, applied.message)
        return self.record_filed(applied.inbound, written)

    def record_report(self, inbound: Inbound, message: Message | None) -> Outcome:
        """The receipt of a delivery report: kept on its ticket (`message`), or about no
        message of ours."""
        if message is None:
            return self.record_filed(inbound, Written(ReceiptOutcome.REPORT, NO_MESSAGE_OF_OURS))
        ticket_id = message.ticket.id
        reason = f"bounce of ticket #{ticket_id}"
        return self.record_filed(
            inbound, Written(ReceiptOutcome.REPORT, reason, ticket_id, message)
        )

    def record_unfiled(self, inbound: Inbound, reason: str) -> Outcome:
        """The receipt of automatic mail that belongs to no ticket and may open none."""
        return self.record_filed(inbound, Written(ReceiptOutcome.REPORT, reason))

    def record_filed(self, inbound: Inbound, written: Written) -> Outcome:
        return self.write(inbound.receipt, inbound.at, written, inbound.mail.dedupe_key)

    def write(
        self, receipt: Receipt, now: datetime, written: Written, dedupe_key: str | None = None
    ) -> Outcome:
        row_id = write_receipt(self.session, receipt, now, written, dedupe_key)
        self.recorded.append(
            Recorded(
                row_id,
                receipt.spool_id,
                dedupe_key,
                written.outcome,
                written.ticket_id,
                written.reason,
            )
        )
        return Outcome(receipt.spool_id, written.outcome, written.ticket_id, written.reason)

    def mark(self) -> int:
        """Where the ledger stands now, to go back to when a savepoint is rolled back."""
        return len(self.recorded)

    def forget_since(self, mark: int) -> None:
        """Forget the receipts written since `mark`: their savepoint took them back."""
        del self.recorded[mark:]


def write_receipt(
    session: Session, receipt: Receipt, now: datetime, written: Written, dedupe_key: str | None
) -> int:
    """The receipt row of `receipt`; its id."""
    message_pk = None
    if written.message is not None:
        assign_ids(session)  # The message the row points to needs its id.
        message_pk = written.message.id
    record = ReceiptRecord(
        spool_id=receipt.spool_id,
        raw_sha256=receipt.raw_sha256,
        dedupe_key=dedupe_key,
        source=receipt.source,
        mail_from=(receipt.mail_from or "")[:320],
        recipients=", ".join(receipt.recipients),
        received_at=receipt.received_at,
        processed_at=now,
        outcome=written.outcome,
        reason=written.reason,
        ticket_id=written.ticket_id,
        message_pk=message_pk,
    )
    return record_receipt(session, record)


def record_quarantine(session: Session, receipt: Receipt, reason: str, now: datetime) -> None:
    """The receipt of a message set aside, replacing any earlier one of its spool entry."""
    forget_receipts_of(session, receipt.spool_id)
    write_receipt(session, receipt, now, Written(ReceiptOutcome.QUARANTINED, reason), None)
