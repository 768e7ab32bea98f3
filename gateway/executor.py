"""The executor: runs `Pipeline.file` over what waits in the spool, and settles each message.

Batched (the default), the messages waiting at one time share one transaction (`BATCH_SIZE`,
`BATCH_BYTES`), so under load one commit and one fsync serve many, and a parser process
parses the next batch meanwhile. A batch is filed first without savepoints, each of which
costs two statements and a flush a message; when a message fails, that transaction is taken
back and the batch is filed again with a savepoint per message, so only the ones that fail
are set aside. With `batched=False` (`GATEWAY_BATCH_FILING=false`) each message is parsed in
this process and filed in a transaction of its own: the same tickets, mail and events,
only slower.

Only after a commit is a message's queue entry removed; a message that failed is
quarantined with its reason, and nothing after the spool may lose it. A database that is
locked or down, or a blob store that cannot take a raw message, stops the round: the
messages wait in the spool for the next one. Entries another worker on the same spool
holds are left to it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gateway.clock import Clock
from gateway.database import Sessions, savepoint, transaction
from gateway.errors import (
    GatewayError,
    SpoolUnavailable,
    TemporaryFailure,
    WriteConflict,
    internal_error,
)
from gateway.parse_ahead import (
    InlineParser,
    Parser,
    ParseResult,
    Readable,
    Refused,
    Results,
    Unavailable,
)
from gateway.parsing import ParsedMail
from gateway.pipeline import Pipeline
from gateway.receipts import Ledger, Outcome, record_quarantine
from gateway.spool import Receipt, Spool
from storage.models import ReceiptOutcome
from storage.rows import forget_rolled_back

log = logging.getLogger(__name__)

# Messages filed in one transaction: under load, one commit (one fsync) serves many.
BATCH_SIZE = 32
# And at most this many bytes of them (a larger message is a batch of its own), so that a
# batch's parsed mail stays a small multiple of the largest message in memory.
BATCH_BYTES = 8 * 1024 * 1024

Batch = list[tuple[Receipt, ParseResult]]


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """A batch held against other workers, with its parsing under way."""

    claims: contextlib.ExitStack
    receipts: list[Receipt]
    parsed: Results


@dataclass(slots=True)
class Settled:
    """What a transaction made of its messages, to finish once it has committed."""

    filed: list[tuple[Receipt, Outcome]] = field(default_factory=list)
    # Refused by a stage: quarantined with the reason.
    failed: list[tuple[Receipt, ParseResult, str]] = field(default_factory=list)
    # Broke a unique constraint: looked up again once the other writer has committed.
    raced: list[tuple[Receipt, ParsedMail, WriteConflict]] = field(default_factory=list)

    def add(self, other: Settled) -> None:
        self.filed += other.filed
        self.failed += other.failed
        self.raced += other.raced


class Executor:
    """Takes receipts from the spool and files them on tickets through the pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        spool: Spool,
        sessions: Sessions,
        clock: Clock,
        batched: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.spool = spool
        self.sessions = sessions
        self.clock = clock
        self.batched = batched
        self.inline = InlineParser(spool, spool.limits)

    def drain(self, parser: Parser | None = None) -> list[Outcome]:
        """File everything waiting in the spool, oldest first; `parser` (by default this
        process) parses each batch while the one before it is filed."""
        if not self.batched:
            return self.drain_one_by_one()
        parser = parser or self.inline
        outcomes: list[Outcome] = []
        batches = deque(batches_of(self.spool.pending()))
        upcoming = self.claim_next(batches, parser)
        try:
            while upcoming is not None:
                current, upcoming = upcoming, None
                with current.claims:
                    upcoming = self.claim_next(batches, parser)
                    parsed = current.parsed()
                    outcomes += self.file_batch(list(zip(current.receipts, parsed, strict=True)))
        except TemporaryFailure as exc:
            log.warning("messages wait in the spool: %s", exc.reason)
        finally:
            if upcoming is not None:
                upcoming.claims.close()
        return outcomes

    def drain_one_by_one(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            for receipt in self.spool.pending():
                with self.spool.claim(receipt) as held:
                    if held:
                        outcomes.append(self.file_one(receipt))
        except TemporaryFailure as exc:
            log.warning("messages wait in the spool: %s", exc.reason)
        return outcomes

    def process(self, receipt: Receipt) -> Outcome:
        """File one message now; waits while another worker files it, and then finds the
        outcome that worker recorded. A temporary failure is raised."""
        with self.spool.claim(receipt, wait=True):
            return self.file_one(receipt)

    def claim_next(self, batches: deque[list[Receipt]], parser: Parser) -> ClaimedBatch | None:
        """The next batch with entries no other worker holds, claimed, its parsing begun."""
        while batches:
            claims = contextlib.ExitStack()
            batch = batches.popleft()
            receipts = [r for r in batch if claims.enter_context(self.spool.claim(r))]
            if receipts:
                return ClaimedBatch(claims, receipts, parser.submit(receipts))
            claims.close()
        return None

    def file_one(self, receipt: Receipt) -> Outcome:
        """One message, parsed here, in a transaction of its own; then settled."""
        [parsed] = self.inline.parse([receipt])
        settled = Settled()
        try:
            with transaction(self.sessions) as session:
                ledger = read_ledger(session, [(receipt, parsed)])
                settled.filed.append((receipt, self.pipeline.file(ledger, receipt, parsed)))
        except TemporaryFailure:
            raise
        except Exception as exc:
            set_aside(settled, receipt, parsed, exc)
        [outcome] = self.settle([receipt], settled)
        return outcome

    def file_batch(self, batch: Batch) -> list[Outcome]:
        """File the batch in one transaction, then settle each message; one outcome per
        message, in order. What could not be parsed is set aside first, so that it takes
        no transaction back; a raw message the blob store could not keep stops the round."""
        settled = Settled()
        readable: Batch = []
        for receipt, parsed in batch:
            if isinstance(parsed, Unavailable):
                raise SpoolUnavailable(parsed.reason)
            if isinstance(parsed, Refused):
                settled.failed.append((receipt, parsed, parsed.reason))
            else:
                readable.append((receipt, parsed))
        settled.add(self.file_together(readable))
        return self.settle([receipt for receipt, _ in batch], settled)

    def file_together(self, batch: Batch) -> Settled:
        """The batch in one transaction, so it costs one commit (one fsync); if any message
        fails, that transaction is taken back and the batch filed again, one savepoint per
        message."""
        try:
            return self.file_in_one_transaction(batch, one_by_one=False)
        except TemporaryFailure:
            raise
        except Exception as exc:  # The careful round below says which message and why.
            log.info("filing %d message(s) one by one: %s: %s", len(batch), type(exc).__name__, exc)
        return self.file_in_one_transaction(batch, one_by_one=True)

    def file_in_one_transaction(self, batch: Batch, one_by_one: bool) -> Settled:
        """File each message; `one_by_one` gives each a savepoint and sets aside those that
        fail, else the first failure takes the whole transaction back."""
        settled = Settled()
        filed = []
        with transaction(self.sessions) as session:
            ledger = read_ledger(session, batch)
            for receipt, parsed in batch:
                mark = ledger.mark()
                try:
                    with savepoint(session) if one_by_one else contextlib.nullcontext():
                        filed.append((receipt, self.pipeline.file(ledger, receipt, parsed)))
                except TemporaryFailure:
                    raise
                except Exception as exc:
                    if not one_by_one:
                        raise
                    forget_rolled_back(session)
                    ledger.forget_since(mark)
                    set_aside(settled, receipt, parsed, exc)
        settled.filed = filed  # Only once the transaction has committed.
        return settled

    def settle(self, receipts: Sequence[Receipt], settled: Settled) -> list[Outcome]:
        """After the commit: forget what was filed, quarantine what failed, look up what
        raced; the outcomes in the order of `receipts`."""
        outcomes: dict[str, Outcome] = {}
        for receipt, outcome in settled.filed:
            self.spool.done(receipt)
            log_filed(outcome)
            outcomes[receipt.spool_id] = outcome
        for receipt, parsed, reason in settled.failed:
            outcomes[receipt.spool_id] = self.quarantine(receipt, parsed, reason)
        for receipt, mail, error in settled.raced:
            outcomes[receipt.spool_id] = self.after_race(receipt, mail, error)
        return [outcomes[receipt.spool_id] for receipt in receipts]

    def quarantine(self, receipt: Receipt, parsed: ParseResult, reason: str) -> Outcome:
        if isinstance(parsed, Refused) and parsed.trace:
            log.error("parsing %s failed\n%s", receipt.spool_id, parsed.trace.rstrip())
        log.warning("quarantined %s: %s", receipt.spool_id, reason)
        self.spool.quarantine(receipt, reason)
        try:
            with transaction(self.sessions) as session:
                record_quarantine(session, receipt, reason, self.clock.now())
        except Exception:  # The spool's quarantine holds the message and reason regardless.
            log.exception("could not record quarantine of %s", receipt.spool_id)
        return Outcome(receipt.spool_id, ReceiptOutcome.QUARANTINED, None, reason)

    def after_race(self, receipt: Receipt, mail: ParsedMail, error: WriteConflict) -> Outcome:
        """The message another process filed first; else the constraint was ours to break,
        and the message is quarantined with it rather than lost or retried forever."""
        with transaction(self.sessions) as session:
            ledger = Ledger.read(session, [receipt], [mail.dedupe_key])
            earlier = ledger.earlier_outcome(receipt, mail.dedupe_key, self.clock.now())
        if earlier is None:
            log.error("%s broke a database constraint: %s", receipt.spool_id, error.reason)
            return self.quarantine(receipt, Readable(mail), f"internal error: {error.reason}")
        if earlier.outcome is not ReceiptOutcome.QUARANTINED:
            self.spool.done(receipt)
            log_filed(earlier)
        return earlier


def log_filed(outcome: Outcome) -> None:
    """One line a person can follow: `filed 1a2b… → ticket #12 (reply, threaded by token)`."""
    where = f"ticket #{outcome.ticket_id}" if outcome.ticket_id else "no ticket"
    how = ", ".join(
        part for part in (outcome.outcome.value.replace("_", " "), outcome.reason) if part
    )
    log.info("filed %s → %s (%s)", outcome.spool_id, where, how)


def read_ledger(session: Session, batch: Batch) -> Ledger:
    """The receipts recorded earlier for the batch's messages, in one query."""
    keys = [parsed.mail.dedupe_key for _, parsed in batch if isinstance(parsed, Readable)]
    return Ledger.read(session, [receipt for receipt, _ in batch], keys)


def set_aside(settled: Settled, receipt: Receipt, parsed: ParseResult, exc: Exception) -> None:
    """Where a message that failed goes once the transaction has committed."""
    if isinstance(exc, WriteConflict) and isinstance(parsed, Readable):
        settled.raced.append((receipt, parsed.mail, exc))  # Another process filed it first.
    elif isinstance(exc, GatewayError):
        settled.failed.append((receipt, parsed, exc.reason))
    else:  # Never lose a message we answered 250 for.
        log.error("processing %s failed", receipt.spool_id, exc_info=exc)
        settled.failed.append((receipt, parsed, internal_error(exc)))


def batches_of(receipts: list[Receipt]) -> Iterator[list[Receipt]]:
    """`receipts` in order, in batches of at most `BATCH_SIZE` messages and `BATCH_BYTES`."""
    batch: list[Receipt] = []
    size = 0
    for receipt in receipts:
        if batch and (len(batch) == BATCH_SIZE or size + receipt.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(receipt)
        size += receipt.size
    if batch:
        yield batch
