"""The pipeline: one spooled message through parse → thread → apply → notify.

A message's ticket change, its outgoing mail and its `Receipt` (the record that it was
handled) commit together; the messages waiting at one time share one transaction
(`BATCH_SIZE`), so under load one commit and one fsync serve many. Only after that commit
are their queue entries removed. When a message of the batch fails, the batch is filed
again with a savepoint per message, and only the one that failed is quarantined, with its
reason; nothing after the spool may lose it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import (
    DatabaseUnavailable,
    GatewayError,
    SpoolUnavailable,
    TemporaryFailure,
    internal_error,
)
from gateway.limits import DEFAULT_LIMITS, Limits
from gateway.loops import automatic_reason
from gateway.notifications import Notifier, should_acknowledge
from gateway.parse_ahead import InlineParser, Parsed, Parser, Results
from gateway.parsing import ParsedMail, is_plain_address
from gateway.spool import Receipt, Spool
from gateway.threader import ThreadMatch, find_ticket
from gateway.workflow import (
    UNKNOWN_SENDER,
    Applied,
    Rules,
    apply_to_ticket,
    classify_author,
    open_ticket,
    record_bounce,
    wants_follow_up,
)
from storage.blobs import BlobStore
from storage.models import Base, ReceiptOutcome, Ticket, utcnow
from storage.models import Receipt as ReceiptRow

log = logging.getLogger(__name__)


# Messages filed in one transaction: under load, one commit (one fsync) serves many.
BATCH_SIZE = 32
# And at most this many bytes of them (a larger message is a batch of its own), so that a
# batch's parsed mail stays a small multiple of the largest message in memory.
BATCH_BYTES = 8 * 1024 * 1024


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


RECORDED_COLUMNS = (
    ReceiptRow.id,
    ReceiptRow.spool_id,
    ReceiptRow.dedupe_key,
    ReceiptRow.outcome,
    ReceiptRow.ticket_id,
    ReceiptRow.reason,
)
RECORD_RECEIPT = insert(Base.metadata.tables["receipts"]).returning(ReceiptRow.id)


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """A batch held against other workers, with its parsing under way."""

    claims: contextlib.ExitStack
    receipts: list[Receipt]
    parsed: Results


@dataclass(slots=True)
class Filing:
    """What one batch's transaction made of its messages."""

    filed: list[tuple[Receipt, Outcome]] = field(default_factory=list)
    # Refused by a stage, with the reason: quarantined once the batch has committed.
    failed: list[tuple[Receipt, str]] = field(default_factory=list)
    # Broke a unique constraint: looked up again once the other writer has committed.
    raced: list[tuple[Receipt, ParsedMail, IntegrityError]] = field(default_factory=list)


class Pipeline:
    """Takes receipts from the spool and files them on tickets."""

    def __init__(
        self,
        spool: Spool,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        notifier: Notifier,
        secret: bytes,
        support_address: str,
        subject_tag: str,
        rules: Rules,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.spool = spool
        self.sessions = sessions
        self.blobs = blobs
        self.notifier = notifier
        self.secret = secret
        self.support_address = support_address
        self.subject_tag = subject_tag
        self.rules = rules
        self.limits = limits
        self.clock = clock
        self.inline = InlineParser(spool, limits)

    def drain(self, parser: Parser | None = None) -> list[Outcome]:
        """Process everything waiting in the spool, oldest first, in batches; `parser`
        (by default this process) parses each batch while the one before it is filed.

        Entries another worker on the same spool holds are left to it. When the database is
        unavailable (locked, down), or the blob store cannot take a raw message (a full
        disk), the round stops and the messages wait in the spool for the next: that is not
        the messages' fault.
        """
        parser = parser or self.inline
        outcomes: list[Outcome] = []
        batches = deque(batches_of(self.spool.pending()))
        upcoming = self.claim_next(batches, parser)
        try:
            while upcoming is not None:
                current, upcoming = upcoming, None
                with current.claims:
                    upcoming = self.claim_next(batches, parser)
                    try:
                        outcomes += self.process_batch(current.receipts, current.parsed())
                    except TemporaryFailure as exc:
                        log.warning(
                            "%d message(s) wait in the spool: %s", len(current.receipts), exc.reason
                        )
                        break
        finally:
            if upcoming is not None:
                upcoming.claims.close()
        return outcomes

    def claim_next(self, batches: deque[list[Receipt]], parser: Parser) -> ClaimedBatch | None:
        """The next batch with entries no other worker holds, claimed, its parsing begun."""
        while batches:
            claims = contextlib.ExitStack()
            receipts = [
                receipt
                for receipt in batches.popleft()
                if claims.enter_context(self.spool.claim(receipt))
            ]
            if receipts:
                return ClaimedBatch(claims, receipts, parser.submit(receipts))
            claims.close()
        return None

    def process(self, receipt: Receipt) -> Outcome:
        """Parse, thread, apply and notify one message; quarantine it if that fails. Waits
        while another worker files it; then this finds the outcome that worker recorded."""
        with self.spool.claim(receipt, wait=True):
            [outcome] = self.process_batch([receipt], self.inline.submit([receipt])())
            return outcome

    def process_batch(self, receipts: list[Receipt], parsed: list[Parsed]) -> list[Outcome]:
        """File the parsed messages in one transaction, then forget or quarantine each; one
        outcome per receipt, in order."""
        if waiting := next((result.unavailable for result in parsed if result.unavailable), ""):
            raise SpoolUnavailable(waiting)
        outcomes: dict[str, Outcome] = {}
        readable = []
        for receipt, result in zip(receipts, parsed, strict=True):
            if result.mail is not None:
                readable.append((receipt, result.mail))
                continue
            if result.trace:
                log.error("parsing %s failed\n%s", receipt.spool_id, result.trace.rstrip())
            outcomes[receipt.spool_id] = self.quarantine(receipt, result.refusal)
        filing = self.file_all(readable)
        for receipt, outcome in filing.filed:
            self.spool.done(receipt)
            outcomes[receipt.spool_id] = outcome
        for receipt, reason in filing.failed:
            outcomes[receipt.spool_id] = self.quarantine(receipt, reason)
        for receipt, mail, error in filing.raced:
            outcome = self.record_duplicate_after_race(receipt, mail, error)
            if outcome.outcome is not ReceiptOutcome.QUARANTINED:
                self.spool.done(receipt)
            outcomes[receipt.spool_id] = outcome
        return [outcomes[receipt.spool_id] for receipt in receipts]

    def file_all(self, parsed: list[tuple[Receipt, ParsedMail]]) -> Filing:
        """The batch in one transaction, so it costs one commit (one fsync).

        Filed first without savepoints, each of which costs two statements and an ORM flush
        more a message; if any message fails, that transaction is taken back and the batch
        is filed again with one savepoint per message, so only the ones that fail are set
        aside.
        """
        try:
            try:
                return self.file_batch(parsed, one_by_one=False)
            except OperationalError:
                raise
            except Exception as exc:  # The careful round below says which message and why.
                log.info(
                    "filing %d message(s) one by one: %s: %s", len(parsed), type(exc).__name__, exc
                )
            return self.file_batch(parsed, one_by_one=True)
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc

    def file_batch(self, parsed: list[tuple[Receipt, ParsedMail]], one_by_one: bool) -> Filing:
        """File each message; `one_by_one` gives each a savepoint and sets aside those that
        fail, else the first failure takes the whole transaction back."""
        filing = Filing()
        filed = []
        with self.sessions.begin() as session:
            recorded = recorded_receipts(session, parsed)
            for receipt, mail in parsed:
                try:
                    with session.begin_nested() if one_by_one else contextlib.nullcontext():
                        outcome, row = self.file(session, receipt, mail, recorded)
                except OperationalError:
                    raise
                except Exception as exc:
                    if not one_by_one:
                        raise
                    # The savepoint took back rows the session still holds as loaded (a new
                    # ticket's, see storage/rows.py); what it holds is flushed, so let go.
                    session.expunge_all()
                    set_aside(filing, receipt, mail, exc)
                    continue
                if row is not None:
                    recorded.append(row)
                filed.append((receipt, outcome))
        filing.filed = filed  # Only once the transaction has committed.
        return filing

    def file(
        self, session: Session, receipt: Receipt, mail: ParsedMail, recorded: list[Recorded]
    ) -> tuple[Outcome, Recorded | None]:
        """The outcome recorded earlier, or the ticket change, its mail and the receipt,
        which commit together, with that new receipt; `recorded` holds the receipts
        already written for this batch's messages."""
        earlier = self.earlier_outcome(session, receipt, mail, recorded)
        if earlier is not None:
            return earlier, None
        row = self.file_new(session, receipt, mail)
        return Outcome(receipt.spool_id, row.outcome, row.ticket_id, row.reason), row

    def file_new(self, session: Session, receipt: Receipt, mail: ParsedMail) -> Recorded:
        automatic = automatic_because(mail, receipt.mail_from, self.support_address)
        sender = choose_sender(mail, receipt)
        match = find_ticket(
            session,
            mail,
            self.recipients(receipt, mail),
            self.secret,
            self.support_address,
            self.subject_tag,
        )
        if mail.is_bounce and match.ticket_id is None:
            return record_receipt(
                session,
                receipt,
                ReceiptOutcome.REPORT,
                "delivery status notification about no message of ours",
                mail.dedupe_key,
            )
        if mail.is_bounce:
            ticket = session.get_one(Ticket, match.ticket_id, with_for_update=True)
            applied = record_bounce(
                session,
                ticket,
                mail,
                sender,
                self.blobs,
                receipt.raw_sha256,
                self.rules,
                self.clock(),
                automatic=automatic,
            )
            return record_receipt(
                session,
                receipt,
                ReceiptOutcome.REPORT,
                f"bounce of ticket #{ticket.id}",
                mail.dedupe_key,
                applied=applied,
            )
        applied = self.apply(session, match, mail, sender, receipt, automatic)
        why_not = should_acknowledge(
            mail, sender, receipt.mail_from, self.support_address, automatic=automatic
        )
        self.notifier.announce(session, applied, mail, why_not)
        if why_not and applied.new_ticket:
            log.info("ticket #%s: no acknowledgement: %s", applied.ticket.id, why_not)
        outcome = ReceiptOutcome.NEW_TICKET if applied.new_ticket else ReceiptOutcome.REPLY
        return record_receipt(
            session,
            receipt,
            outcome,
            f"threaded by {match.method}",
            mail.dedupe_key,
            applied=applied,
        )

    def earlier_outcome(
        self, session: Session, receipt: Receipt, mail: ParsedMail, recorded: list[Recorded]
    ) -> Outcome | None:
        """The outcome already recorded for this receipt or this message, if any."""
        found = [
            row
            for row in recorded
            if row.spool_id == receipt.spool_id
            or (row.dedupe_key is not None and row.dedupe_key == mail.dedupe_key)
        ]
        mine = next((row for row in found if row.spool_id == receipt.spool_id), None)
        if mine is not None and mine.outcome is not ReceiptOutcome.QUARANTINED:
            return Outcome(receipt.spool_id, mine.outcome, mine.ticket_id, mine.reason)
        if mine is not None:
            session.execute(delete(ReceiptRow).where(ReceiptRow.id == mine.id))
        same = next(
            (
                row
                for row in found
                if row.dedupe_key == mail.dedupe_key and row.spool_id != receipt.spool_id
            ),
            None,
        )
        if same is None:
            return None
        reason = f"duplicate of {same.spool_id}"
        record_receipt(session, receipt, ReceiptOutcome.DUPLICATE, reason, ticket_id=same.ticket_id)
        return Outcome(receipt.spool_id, ReceiptOutcome.DUPLICATE, same.ticket_id, reason)

    def recipients(self, receipt: Receipt, mail: ParsedMail) -> list[str]:
        return [*receipt.recipients, *mail.to_addresses, *mail.cc_addresses]

    def apply(
        self,
        session: Session,
        match: ThreadMatch,
        mail: ParsedMail,
        sender: str,
        receipt: Receipt,
        automatic: str,
    ) -> Applied:
        now = self.clock()
        if match.ticket_id is None:
            return open_ticket(
                session,
                mail,
                sender,
                self.blobs,
                receipt.raw_sha256,
                self.rules,
                now,
                automatic=automatic,
            )
        # Locked, so a timer or another process cannot change it under this message.
        ticket = session.get_one(Ticket, match.ticket_id, with_for_update=True)
        # Only a reply token proves who wrote; a subject tag or a header match does not.
        through = match.participant_id if match.method == "token" else None
        author = classify_author(session, through, sender, self.rules)
        while wants_follow_up(ticket, author, self.rules, now, automatic=automatic):
            follow_up = latest_follow_up(session, ticket)
            if follow_up is None:
                return open_ticket(
                    session,
                    mail,
                    sender,
                    self.blobs,
                    receipt.raw_sha256,
                    self.rules,
                    now,
                    follow_up_of=ticket,
                    automatic=automatic,
                )
            ticket = follow_up  # Later replies to the old thread join its follow-up.
        return apply_to_ticket(
            session,
            ticket,
            author,
            mail,
            sender,
            through,
            self.blobs,
            receipt.raw_sha256,
            self.rules,
            now,
            automatic=automatic,
        )

    def quarantine(self, receipt: Receipt, reason: str) -> Outcome:
        log.warning("quarantined %s: %s", receipt.spool_id, reason)
        self.spool.quarantine(receipt, reason)
        try:
            with self.sessions.begin() as session:
                session.execute(delete(ReceiptRow).where(ReceiptRow.spool_id == receipt.spool_id))
                record_receipt(session, receipt, ReceiptOutcome.QUARANTINED, reason)
        except Exception:  # The spool's quarantine holds the message and reason regardless.
            log.exception("could not record quarantine of %s", receipt.spool_id)
        return Outcome(receipt.spool_id, ReceiptOutcome.QUARANTINED, None, reason)

    def record_duplicate_after_race(
        self, receipt: Receipt, mail: ParsedMail, error: IntegrityError
    ) -> Outcome:
        """The message another process filed first; else the constraint was ours to break,
        and the message is quarantined with it rather than lost or retried forever."""
        with self.sessions.begin() as session:
            earlier = self.earlier_outcome(
                session, receipt, mail, recorded_receipts(session, [(receipt, mail)])
            )
        if earlier is None:
            log.error("%s broke a database constraint: %s", receipt.spool_id, error.orig)
            return self.quarantine(receipt, f"internal error: {error.orig}")
        return earlier


def automatic_because(mail: ParsedMail, envelope_sender: str | None, support_address: str) -> str:
    """Why `mail` is automatic, or '': what `loops` reads in it; else a null reverse-path
    (RFC 3834), whatever its headers say; our own notification coming back, known by the
    Message-ID we gave it; or a delivery status notification."""
    reason = automatic_reason(mail)
    if reason:
        return reason
    if envelope_sender == "":
        return "null reverse-path"
    if is_our_message_id(mail.message_id, support_address):
        return "our own notification came back"
    if mail.is_bounce:
        return "delivery status notification"
    return ""


def is_our_message_id(message_id: str, support_address: str) -> bool:
    """Message-IDs of our notifications end in `.t<ticket>@<support domain>`."""
    domain = support_address.rpartition("@")[2].lower()
    return re.fullmatch(rf".+\.t\d+@{re.escape(domain)}", message_id.lower()) is not None


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


def recorded_receipts(session: Session, parsed: list[tuple[Receipt, ParsedMail]]) -> list[Recorded]:
    """The receipts already recorded for these spool entries or these messages: one query
    for a batch, not one for each message."""
    if not parsed:
        return []
    rows = session.execute(
        select(*RECORDED_COLUMNS).where(
            or_(
                ReceiptRow.spool_id.in_([receipt.spool_id for receipt, _ in parsed]),
                ReceiptRow.dedupe_key.in_([mail.dedupe_key for _, mail in parsed]),
            )
        )
    )
    return [Recorded(*row) for row in rows]


def latest_follow_up(session: Session, ticket: Ticket) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(Ticket.follow_up_of == ticket.id).order_by(Ticket.id.desc()).limit(1)
    ).first()


def choose_sender(mail: ParsedMail, receipt: Receipt) -> str:
    """The From address; else the envelope sender; else a placeholder that is never mailed."""
    if mail.from_address:
        return mail.from_address
    if receipt.mail_from and is_plain_address(receipt.mail_from):
        return receipt.mail_from.lower()
    return UNKNOWN_SENDER


def set_aside(filing: Filing, receipt: Receipt, mail: ParsedMail, exc: Exception) -> None:
    """Where a message that failed in its savepoint goes once the batch has committed."""
    if isinstance(exc, GatewayError):
        filing.failed.append((receipt, exc.reason))
    elif isinstance(exc, IntegrityError):  # Another process filed the same message first.
        filing.raced.append((receipt, mail, exc))
    else:  # Never lose a message we answered 250 for.
        log.error("processing %s failed", receipt.spool_id, exc_info=exc)
        filing.failed.append((receipt, internal_error(exc)))


def record_receipt(
    session: Session,
    receipt: Receipt,
    outcome: ReceiptOutcome,
    reason: str,
    dedupe_key: str | None = None,
    ticket_id: int | None = None,
    applied: Applied | None = None,
) -> Recorded:
    """Write the receipt row; its `dedupe_key` makes a second delivery of the message a
    no-op. Written as a plain insert: nothing reads it back as an object, and the ORM's
    flush of one row costs ten times the insert."""
    message_pk = None
    if applied is not None:
        session.flush()  # The ticket and message the row points to must exist first.
        ticket_id = applied.ticket.id
        message_pk = applied.message.id if applied.message is not None else None
    row_id = (
        session.connection()
        .execute(
            RECORD_RECEIPT,
            {
                "spool_id": receipt.spool_id,
                "raw_sha256": receipt.raw_sha256,
                "dedupe_key": dedupe_key,
                "source": receipt.source,
                "mail_from": (receipt.mail_from or "")[:320],
                "recipients": ", ".join(receipt.recipients),
                "received_at": receipt.received_at,
                "processed_at": utcnow(),
                "outcome": outcome,
                "reason": reason,
                "ticket_id": ticket_id,
                "message_pk": message_pk,
            },
        )
        .scalar_one()
    )
    return Recorded(row_id, receipt.spool_id, dedupe_key, outcome, ticket_id, reason)
