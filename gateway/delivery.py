"""Delivery: sends outbox rows to the SMTP relay, or into a Maildir when none is configured.

Rows are claimed in batches with a lease (their next attempt moved into the future) in a
short transaction, sent outside it, then marked sent together in one more. A crash between
sending and marking sends that batch's rows again once their lease ends: at least once,
never lost (as every MTA does). Failures back off exponentially; permanent
(5xx) refusals and exhausted retries mark the row failed with the relay's answer, and put a
`delivery_failed` event on its ticket in the same transaction, so `gateway show` tells.
A 5xx that finds fault with the mail itself (a line or header too long, a syntax error:
`MailRefusedAsMalformed`) is a bug of ours, not the recipient's: it is logged as an error
saying so, the event says so, and the address is never held or counted as bouncing.
A database that is locked or down ends the round; its rows wait for the next one.
Each mail sent, retried or given up is one line in the log: its ticket, recipient and
subject, and for a failure the relay's answer.
smtplib's errors become `DeliveryDeferred` or `DeliveryRejected` in one place, `SmtpRelay`.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import re
import smtplib
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from itertools import repeat
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.clock import Clock
from gateway.database import Sessions, transaction
from gateway.errors import DatabaseUnavailable, DeliveryDeferred, DeliveryRejected
from gateway.settings import Delivery
from storage.models import SYSTEM_ACTOR, Event, EventKind, OutboxMail, OutboxState

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# Rows of a batch are sent only this long after their claim, well inside the lease.
SEND_WITHIN_LEASE = LEASE / 2
MAX_BACKOFF = timedelta(hours=1)
BATCH_SIZE = 50

DeliveryFailure = DeliveryDeferred | DeliveryRejected
# What a relay says when it finds fault with the mail itself, not with where it goes:
# "500 Line too long", "552 5.6.0 Headers too large", "554 5.6.0 Message syntax error".
MALFORMED = re.compile(
    r"\bline\b.*\btoo long|\btoo long\b.*\bline|\bheaders?\b.*\btoo (?:long|large|big)"
    r"|\bsyntax\b|\bmalformed\b|\b5\.6\.\d+\b",
    re.IGNORECASE,
)

# ...unless it is about an address ("501 5.1.3 Bad recipient address syntax").
ABOUT_ADDRESS = re.compile(r"\baddress|\b5\.1\.\d+\b", re.IGNORECASE)


class MailRefusedAsMalformed(DeliveryRejected):
    """The relay refused the mail for good for what it is (a line too long, bad syntax): a
    bug in the mail we wrote, not a problem with the recipient's address."""


class Transport(Protocol):
    def send(self, mail_from: str, recipient: str, content: bytes) -> None: ...
    def close(self) -> None: ...


class SmtpRelay:
    """One SMTP connection to the relay, opened on first use and reused for a batch."""

    def __init__(self, host: str, port: int, timeout: float = 30.0, name: str = "relay") -> None:
        self.host, self.port, self.timeout, self.name = host, port, timeout, name
        self.connection: smtplib.SMTP | None = None

    def send(self, mail_from: str, recipient: str, content: bytes) -> None:
        with self.answered("unreachable", recipient):
            self.connected().sendmail(mail_from, [recipient], content)

    def greet(self) -> None:
        """Whether the server answers at all: connect, say NOOP, leave."""
        with self.answered("does not greet"):
            self.connected().noop()
        self.close()

    def connected(self) -> smtplib.SMTP:
        if self.connection is None:
            self.connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        return self.connection

    @contextlib.contextmanager
    def answered(self, failing: str, recipient: str = "") -> Iterator[None]:
        """smtplib's failures as ours: a refusal by its code, anything else as `failing`."""
        try:
            yield
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients[recipient]
            raise refusal(code, reply) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise refusal(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            server = f"{self.name} {self.host}:{self.port}"
            raise DeliveryDeferred(f"{server} {failing}: {exc}") from exc

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None


def refusal(code: int, reply: bytes | str) -> DeliveryFailure:
    """The relay's answer as our error: permanent for 5xx, else to be tried again."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    if code >= 500 and MALFORMED.search(text) and not ABOUT_ADDRESS.search(text):
        return MailRefusedAsMalformed(f"{code} {text}")
    return (DeliveryRejected if code >= 500 else DeliveryDeferred)(f"{code} {text}")


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
        self, sessions: Sessions, transports: Sequence[Transport], settings: Delivery, clock: Clock
    ) -> None:
        self.sessions = sessions
        self.transports = list(transports)
        self.retries = Retries(settings.max_attempts, timedelta(seconds=settings.backoff_seconds))
        self.clock = clock
        self.lanes = (
            ThreadPoolExecutor(len(self.transports), "delivery")
            if len(self.transports) > 1
            else None
        )

    def deliver_due(self) -> DeliveryReport:
        """Send every row due now (in batches); returns the counts."""
        tally: Counter[str] = Counter()
        try:
            while claimed := self.claim(self.clock.now()):
                tally.update(self.send_batch(claimed))
        except DatabaseUnavailable as exc:
            # Locked or down: claimed rows keep their lease and come back when it ends.
            log.warning("delivery waits for the database: %s", exc.reason)
        finally:
            for transport in self.transports:
                transport.close()
        return DeliveryReport(tally["sent"], tally["retry"], tally["failed"])

    def claim(self, now: datetime) -> list[ClaimedMail]:
        # The lease keeps other workers off these rows in real time, and off them for as
        # long when `now` is set ahead (`gateway due --now`): those compare with `now`.
        leased_until = max(now, self.clock.wall_time()) + LEASE
        with transaction(self.sessions) as session:
            rows = session.scalars(
                select(OutboxMail)
                .where(OutboxMail.state == OutboxState.PENDING, OutboxMail.next_attempt_at <= now)
                .order_by(OutboxMail.id)
                .limit(BATCH_SIZE)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.next_attempt_at = leased_until
            return [
                ClaimedMail(row.id, row.mail_from, row.recipient, row.content, row.ticket_id)
                for row in rows
            ]

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
        with transaction(self.sessions) as session:
            now = self.clock.now()
            if sent:
                session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id.in_(sent))
                    .values(state=OutboxState.SENT, sent_at=now, attempts=OutboxMail.attempts + 1)
                )
            for row_id, failure in failures:
                tally[self.retries.record(session, row_id, failure, now)] += 1
        for row in claimed:
            if row.id in sent:
                log.info("sent %s", described(row.ticket_id, row.recipient, row.content))
        return tally


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    """An outbox row claimed for sending."""

    id: int
    mail_from: str
    recipient: str
    content: bytes
    ticket_id: int | None = None


def described(ticket_id: int | None, recipient: str, content: bytes) -> str:
    """`ticket #12 to alice@example.com: "[Support #12] ..."`, for the log."""
    about = f"ticket #{ticket_id}" if ticket_id is not None else "no ticket"
    return f"{about} to {recipient}: {subject_of(content)!r}"


def subject_of(content: bytes) -> str:
    """The Subject of a mail we composed, decoded."""
    header = content.partition(b"\r\n\r\n")[0]
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(header, headersonly=True)
    return " ".join(str(parsed.get("Subject", "")).split())


def send_lane(
    transport: Transport, rows: list[ClaimedMail], lease_ends: float
) -> tuple[list[int], list[tuple[int, DeliveryFailure]]]:
    """Send `rows` in order over `transport`: the ids sent, and the failures."""
    sent: list[int] = []
    failures: list[tuple[int, DeliveryFailure]] = []
    for row in rows:
        if time.monotonic() > lease_ends:
            # A slow relay: the rest of the batch may be claimed by another worker soon,
            # and must not be sent twice. They come back later.
            break
        try:
            transport.send(row.mail_from, row.recipient, row.content)
        except (DeliveryDeferred, DeliveryRejected) as exc:
            failures.append((row.id, exc))
        else:
            sent.append(row.id)
    return sent, failures


@dataclass(frozen=True, slots=True)
class Retries:
    """How often and how soon a mail the relay did not take is tried again."""

    max_attempts: int
    backoff: timedelta

    def record(self, session: Session, row_id: int, failure: DeliveryFailure, now: datetime) -> str:
        """Back the row off for another try, or give it up; "retry" or "failed"."""
        row = session.get_one(OutboxMail, row_id)
        row.attempts += 1
        row.last_error = failure.reason
        if isinstance(failure, DeliveryRejected) or row.attempts >= self.max_attempts:
            give_up(session, row, now, our_bug=isinstance(failure, MailRefusedAsMalformed))
            return "failed"
        delay = min(self.backoff * 2 ** (row.attempts - 1), MAX_BACKOFF)
        row.next_attempt_at = now + delay
        mail = described(row.ticket_id, row.recipient, row.content)
        log.info("not sent yet, retry in %s: %s: %s", delay, mail, failure.reason)
        return "retry"


def give_up(session: Session, row: OutboxMail, now: datetime, our_bug: bool = False) -> None:
    """Mark `row` failed and say so on its ticket, where the engineers will look; when the
    relay refused the mail we wrote (`our_bug`), say that it is a gateway bug."""
    row.state = OutboxState.FAILED
    mail = described(row.ticket_id, row.recipient, row.content)
    if our_bug:
        log.error(
            "not sent: %s: the relay refused the mail itself (%s): a gateway bug in the "
            "mail we wrote, not a problem with the recipient's address",
            mail,
            row.last_error,
        )
        detail = (
            f"mail to {row.recipient} refused by the relay as malformed ({row.last_error}): "
            "a gateway bug, not the recipient's address"
        )
    else:
        log.warning("not sent, given up: %s: %s", mail, row.last_error)
        detail = (
            f"mail to {row.recipient} not delivered after {row.attempts} attempt(s): "
            f"{row.last_error}"
        )
    if row.ticket_id is not None:
        session.add(
            Event(
                ticket_id=row.ticket_id,
                type=EventKind.DELIVERY_FAILED,
                actor=SYSTEM_ACTOR,
                at=now,
                detail=detail,
            )
        )
