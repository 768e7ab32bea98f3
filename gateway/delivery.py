"""Delivery: sends outbox rows to the SMTP relay, or into a Maildir when none is configured.

Rows are claimed in batches with a lease (their next attempt moved into the future) in a
short transaction, sent outside it, then marked sent together in one more. A crash between
sending and marking sends that batch's rows again once their lease ends: at least once,
never lost (as every MTA does). Failures back off exponentially; permanent
(5xx) refusals and exhausted retries mark the row failed with the relay's answer, and put a
`delivery_failed` event on its ticket in the same transaction, so `gateway show` tells.
A database that is locked or down ends the round; its rows wait for the next one.
"""

from __future__ import annotations

import logging
import mailbox
import smtplib
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Event, OutboxMail, OutboxState, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# Rows of a batch are sent only this long after their claim, well inside the lease.
SEND_WITHIN_LEASE = LEASE / 2
MAX_BACKOFF = timedelta(hours=1)
BATCH_SIZE = 50
# The actor `workflow` records for changes nobody made by hand; the import table keeps
# delivery from importing it.
SYSTEM_ACTOR = "system"


class DeliveryFailed(Exception):
    """A send failed; `permanent` when retrying cannot help."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Transport(Protocol):
    def send(self, mail_from: str, recipient: str, content: bytes) -> None: ...
    def close(self) -> None: ...


class SmtpRelay:
    """One SMTP connection to the relay, opened on first use and reused for a batch."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.connection: smtplib.SMTP | None = None

    def send(self, mail_from: str, recipient: str, content: bytes) -> None:
        try:
            if self.connection is None:
                self.connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            self.connection.sendmail(mail_from, [recipient], content)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients[recipient]
            raise DeliveryFailed(f"{code} {as_text(reply)}", code >= 500) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            reason = f"{exc.smtp_code} {as_text(exc.smtp_error)}"
            raise DeliveryFailed(reason, exc.smtp_code >= 500) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            reason = f"relay {self.host}:{self.port} unreachable: {exc}"
            raise DeliveryFailed(reason, False) from exc

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None


def as_text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


class MaildirDrop:
    """The embedded default: outgoing mail lands in a Maildir anyone can read."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(path, create=True)

    def send(self, mail_from: str, recipient: str, content: bytes) -> None:
        envelope = f"Return-Path: <{mail_from}>\r\nDelivered-To: {recipient}\r\n".encode()
        self.maildir.add(envelope + content)

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int
    retried: int
    failed: int


class Dispatcher:
    """Claims due outbox rows, sends them, and records what happened.

    With several transports (connections to the relay), a batch is sent over all of them
    at once, as an MTA keeps several connections open to a busy destination: each send
    waits a few round trips for the relay, and those waits overlap. A recipient's mail all
    goes over one connection, so it arrives in the order it was queued.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        transports: Sequence[Transport],
        max_attempts: int,
        backoff_seconds: float,
    ) -> None:
        self.sessions = sessions
        self.transports = list(transports)
        self.max_attempts = max_attempts
        self.backoff = timedelta(seconds=backoff_seconds)
        self.lanes = (
            ThreadPoolExecutor(len(self.transports), "delivery")
            if len(self.transports) > 1
            else None
        )

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Send every row due at `now` (in batches); returns the counts."""
        tally: Counter[str] = Counter()
        try:
            while claimed := self.claim(now or utcnow()):
                tally.update(self.send_batch(claimed))
        except OperationalError as exc:
            # Locked or down: claimed rows keep their lease and come back when it ends.
            log.warning("delivery waits for the database: %s", exc.orig)
        finally:
            for transport in self.transports:
                transport.close()
        return DeliveryReport(tally["sent"], tally["retry"], tally["failed"])

    def claim(self, now: datetime) -> list[ClaimedMail]:
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(OutboxMail)
                .where(OutboxMail.state == OutboxState.PENDING, OutboxMail.next_attempt_at <= now)
                .order_by(OutboxMail.id)
                .limit(BATCH_SIZE)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.next_attempt_at = now + LEASE
            return [ClaimedMail(row.id, row.mail_from, row.recipient, row.content) for row in rows]

    def send_batch(self, claimed: list[ClaimedMail]) -> Counter[str]:
        """Send the claimed rows, then record what became of them in one transaction."""
        lease_ends = time.monotonic() + SEND_WITHIN_LEASE.total_seconds()
        lanes: list[list[ClaimedMail]] = [[] for _ in self.transports]
        for row in claimed:
            lanes[zlib.crc32(row.recipient.lower().encode()) % len(lanes)].append(row)
        over = self.lanes.map if self.lanes is not None else map
        results = list(over(send_lane, self.transports, lanes, repeat(lease_ends)))
        sent = [row_id for lane_sent, _ in results for row_id in lane_sent]
        failures = [failure for _, lane_failures in results for failure in lane_failures]
        tally: Counter[str] = Counter(sent=len(sent))
        with self.sessions.begin() as session:
            if sent:
                session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id.in_(sent))
                    .values(
                        state=OutboxState.SENT, sent_at=utcnow(), attempts=OutboxMail.attempts + 1
                    )
                )
            for row_id, failure in failures:
                tally[
                    record_failure(session, row_id, failure, self.max_attempts, self.backoff)
                ] += 1
        return tally


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    """An outbox row claimed for sending."""

    id: int
    mail_from: str
    recipient: str
    content: bytes


def send_lane(
    transport: Transport, rows: list[ClaimedMail], lease_ends: float
) -> tuple[list[int], list[tuple[int, DeliveryFailed]]]:
    """Send `rows` in order over `transport`: the ids sent, and the failures."""
    sent: list[int] = []
    failures: list[tuple[int, DeliveryFailed]] = []
    for row in rows:
        if time.monotonic() > lease_ends:
            # A slow relay: the rest of the batch may be claimed by another worker soon,
            # and must not be sent twice. They come back later.
            break
        try:
            transport.send(row.mail_from, row.recipient, row.content)
        except DeliveryFailed as exc:
            failures.append((row.id, exc))
        else:
            sent.append(row.id)
    return sent, failures


def record_failure(
    session: Session, row_id: int, failure: DeliveryFailed, max_attempts: int, backoff: timedelta
) -> str:
    """Back the row off for another try, or give it up; "retry" or "failed"."""
    row = session.get_one(OutboxMail, row_id)
    row.attempts += 1
    row.last_error = failure.reason
    if failure.permanent or row.attempts >= max_attempts:
        give_up(session, row)
        return "failed"
    delay = min(backoff * 2 ** (row.attempts - 1), MAX_BACKOFF)
    row.next_attempt_at = utcnow() + delay
    log.info("outbox %s to %s: retry in %s (%s)", row.id, row.recipient, delay, failure.reason)
    return "retry"


def give_up(session: Session, row: OutboxMail) -> None:
    """Mark `row` failed and say so on its ticket, where the engineers will look."""
    row.state = OutboxState.FAILED
    log.warning("outbox %s to %s failed: %s", row.id, row.recipient, row.last_error)
    if row.ticket_id is not None:
        session.add(
            Event(
                ticket_id=row.ticket_id,
                type="delivery_failed",
                actor=SYSTEM_ACTOR,
                detail=f"mail to {row.recipient} not delivered after {row.attempts} "
                f"attempt(s): {row.last_error}",
            )
        )
