"""The pipeline: one spooled message through parse → thread → apply → notify.

Each message is handled in one database transaction that also records its `Receipt`, so
the ticket change, the outgoing mail and the record that the message was handled commit
together. Only after that commit is the spool's queue entry removed. A message that fails
is quarantined with its reason; nothing after the spool may lose it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import DatabaseUnavailable, GatewayError
from gateway.limits import DEFAULT_LIMITS, Limits
from gateway.notifications import Notifier, should_acknowledge
from gateway.parsing import ParsedMail, is_plain_address, parse_message
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
from storage.models import Receipt as ReceiptRow
from storage.models import ReceiptOutcome, Ticket, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one spooled message."""

    spool_id: str
    outcome: ReceiptOutcome
    ticket_id: int | None
    reason: str = ""


class Pipeline:
    """Takes receipts from the spool and files them on tickets."""

    def __init__(self, spool: Spool, sessions: sessionmaker[Session], blobs: BlobStore,
                 notifier: Notifier, secret: bytes, support_address: str,
                 subject_tag: str, rules: Rules, limits: Limits = DEFAULT_LIMITS,
                 clock: Callable[[], datetime] = utcnow) -> None:
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

    def drain(self) -> list[Outcome]:
        """Process everything waiting in the spool, oldest first.

        Entries another worker on the same spool holds are left to it. When the database is
        unavailable (locked, down), the round stops and the messages wait in the spool for
        the next: that is not the messages' fault.
        """
        outcomes = []
        for receipt in self.spool.pending():
            with self.spool.claim(receipt) as held:
                if not held:
                    continue
                try:
                    outcomes.append(self.process_claimed(receipt))
                except DatabaseUnavailable as exc:
                    log.warning("%s waits in the spool: %s", receipt.spool_id, exc.reason)
                    break
        return outcomes

    def process(self, receipt: Receipt) -> Outcome:
        """Parse, thread, apply and notify one message; quarantine it if that fails. Waits
        while another worker files it; then this finds the outcome that worker recorded."""
        with self.spool.claim(receipt, wait=True):
            return self.process_claimed(receipt)

    def process_claimed(self, receipt: Receipt) -> Outcome:
        try:
            mail = parse_message(self.spool.raw(receipt), self.limits)
            outcome = self.file(receipt, mail)
        except GatewayError as exc:
            return self.quarantine(receipt, exc.reason)
        except IntegrityError as exc:
            # Another process filed the same message between our check and our commit.
            outcome = self.record_duplicate_after_race(receipt, mail, exc)
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc
        except Exception as exc:  # Never lose a message we answered 250 for.
            log.exception("processing %s failed", receipt.spool_id)
            return self.quarantine(receipt, f"internal error: {type(exc).__name__}: {exc}")
        self.spool.done(receipt)
        return outcome

    def file(self, receipt: Receipt, mail: ParsedMail) -> Outcome:
        """One transaction: the ticket change, its mail and the receipt commit together."""
        with self.sessions.begin() as session:
            earlier = self.earlier_outcome(session, receipt, mail)
            if earlier is not None:
                return earlier
            row = self.file_new(session, receipt, mail)
        return Outcome(receipt.spool_id, row.outcome, row.ticket_id, row.reason)

    def file_new(self, session: Session, receipt: Receipt, mail: ParsedMail) -> ReceiptRow:
        mail = mark_automatic(mail, receipt.mail_from, self.support_address)
        sender = choose_sender(mail, receipt)
        match = find_ticket(session, mail, self.recipients(receipt, mail), self.secret,
                            self.support_address, self.subject_tag)
        if mail.is_bounce and match.ticket_id is None:
            row = receipt_row(receipt, ReceiptOutcome.REPORT,
                              "delivery status notification about no message of ours",
                              mail.dedupe_key)
        elif mail.is_bounce:
            ticket = session.get_one(Ticket, match.ticket_id, with_for_update=True)
            applied = record_bounce(session, ticket, mail, sender, self.blobs,
                                    receipt.raw_sha256, self.rules, self.clock())
            row = receipt_row(receipt, ReceiptOutcome.REPORT, f"bounce of ticket #{ticket.id}",
                              mail.dedupe_key, applied=applied)
        else:
            applied = self.apply(session, match, mail, sender, receipt)
            why_not = should_acknowledge(mail, sender, receipt.mail_from, self.support_address)
            self.notifier.announce(session, applied, mail, why_not)
            if why_not and applied.new_ticket:
                log.info("ticket #%s: no acknowledgement: %s", applied.ticket.id, why_not)
            outcome = ReceiptOutcome.NEW_TICKET if applied.new_ticket else ReceiptOutcome.REPLY
            row = receipt_row(receipt, outcome, f"threaded by {match.method}", mail.dedupe_key,
                              applied=applied)
        session.add(row)
        return row

    def earlier_outcome(self, session: Session, receipt: Receipt,
                        mail: ParsedMail) -> Outcome | None:
        """The outcome already recorded for this receipt or this message, if any."""
        mine = session.scalars(
            select(ReceiptRow).where(ReceiptRow.spool_id == receipt.spool_id)).first()
        if mine is not None and mine.outcome is not ReceiptOutcome.QUARANTINED:
            return Outcome(receipt.spool_id, mine.outcome, mine.ticket_id, mine.reason)
        if mine is not None:
            session.execute(delete(ReceiptRow).where(ReceiptRow.id == mine.id))
        same = session.scalars(
            select(ReceiptRow).where(ReceiptRow.dedupe_key == mail.dedupe_key)).first()
        if same is None:
            return None
        reason = f"duplicate of {same.spool_id}"
        session.add(receipt_row(receipt, ReceiptOutcome.DUPLICATE, reason,
                                ticket_id=same.ticket_id))
        return Outcome(receipt.spool_id, ReceiptOutcome.DUPLICATE, same.ticket_id, reason)

    def recipients(self, receipt: Receipt, mail: ParsedMail) -> list[str]:
        return [*receipt.recipients, *mail.to_addresses, *mail.cc_addresses]

    def apply(self, session: Session, match: ThreadMatch, mail: ParsedMail, sender: str,
              receipt: Receipt) -> Applied:
        now = self.clock()
        if match.ticket_id is None:
            return open_ticket(session, mail, sender, self.blobs, receipt.raw_sha256,
                               self.rules, now)
        # Locked, so a timer or another process cannot change it under this message.
        ticket = session.get_one(Ticket, match.ticket_id, with_for_update=True)
        # Only a reply token proves who wrote; a subject tag or a header match does not.
        through = match.participant_id if match.method == "token" else None
        author = classify_author(session, through, sender, self.rules)
        while wants_follow_up(ticket, mail, author, self.rules, now):
            follow_up = latest_follow_up(session, ticket)
            if follow_up is None:
                return open_ticket(session, mail, sender, self.blobs, receipt.raw_sha256,
                                   self.rules, now, follow_up_of=ticket)
            ticket = follow_up  # Later replies to the old thread join its follow-up.
        return apply_to_ticket(session, ticket, author, mail, sender, through, self.blobs,
                               receipt.raw_sha256, self.rules, now)

    def quarantine(self, receipt: Receipt, reason: str) -> Outcome:
        log.warning("quarantined %s: %s", receipt.spool_id, reason)
        self.spool.quarantine(receipt, reason)
        try:
            with self.sessions.begin() as session:
                session.execute(delete(ReceiptRow).where(ReceiptRow.spool_id == receipt.spool_id))
                session.add(receipt_row(receipt, ReceiptOutcome.QUARANTINED, reason))
        except Exception:  # The spool's quarantine holds the message and reason regardless.
            log.exception("could not record quarantine of %s", receipt.spool_id)
        return Outcome(receipt.spool_id, ReceiptOutcome.QUARANTINED, None, reason)

    def record_duplicate_after_race(self, receipt: Receipt, mail: ParsedMail,
                                    error: IntegrityError) -> Outcome:
        """The message another process filed first; else the constraint was ours to break,
        and the message is quarantined with it rather than lost or retried forever."""
        with self.sessions.begin() as session:
            earlier = self.earlier_outcome(session, receipt, mail)
        if earlier is None:
            log.error("%s broke a database constraint: %s", receipt.spool_id, error.orig)
            return self.quarantine(receipt, f"internal error: {error.orig}")
        return earlier


def mark_automatic(mail: ParsedMail, envelope_sender: str | None,
                   support_address: str) -> ParsedMail:
    """Mail with a null reverse-path is automatic (RFC 3834), whatever its headers say; so
    is our own notification coming back, known by the Message-ID we gave it."""
    if mail.automatic:
        return mail
    if envelope_sender == "":
        return replace(mail, automatic="null reverse-path")
    if is_our_message_id(mail.message_id, support_address):
        return replace(mail, automatic="our own notification came back")
    if mail.is_bounce:
        return replace(mail, automatic="delivery status notification")
    return mail


def is_our_message_id(message_id: str, support_address: str) -> bool:
    """Message-IDs of our notifications end in `.t<ticket>@<support domain>`."""
    domain = support_address.rpartition("@")[2].lower()
    return re.fullmatch(rf".+\.t\d+@{re.escape(domain)}", message_id.lower()) is not None


def latest_follow_up(session: Session, ticket: Ticket) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.follow_up_of == ticket.id)
                           .order_by(Ticket.id.desc()).limit(1)).first()


def choose_sender(mail: ParsedMail, receipt: Receipt) -> str:
    """The From address; else the envelope sender; else a placeholder that is never mailed."""
    if mail.from_address:
        return mail.from_address
    if receipt.mail_from and is_plain_address(receipt.mail_from):
        return receipt.mail_from.lower()
    return UNKNOWN_SENDER


def receipt_row(receipt: Receipt, outcome: ReceiptOutcome, reason: str,
                dedupe_key: str | None = None, ticket_id: int | None = None,
                applied: Applied | None = None) -> ReceiptRow:
    """The receipt row; its `dedupe_key` makes a second delivery of the message a no-op."""
    row = ReceiptRow(
        spool_id=receipt.spool_id, raw_sha256=receipt.raw_sha256, dedupe_key=dedupe_key,
        source=receipt.source, mail_from=(receipt.mail_from or "")[:320],
        recipients=", ".join(receipt.recipients), received_at=receipt.received_at,
        outcome=outcome, reason=reason, ticket_id=ticket_id,
    )
    if applied is not None:
        row.ticket, row.message = applied.ticket, applied.message
    return row
