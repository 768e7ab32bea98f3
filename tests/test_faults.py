"""Faults done for real: `kill -9` under load, a relay that refuses or is gone, a recipient
refused for good, a locked database, a full disk, and SMTP smuggling.

Every fault is produced, not imitated: a killed process group, a real relay answering 421,
451 or 550, an exclusive SQLite lock held from here, a tmpfs that runs out of room, and
bytes written straight to the listener's socket.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import smtplib
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, event, select, text

from gateway.app import build_gateway
from gateway.setting_values import Endpoint, Engineer
from gateway.settings import Settings
from gateway.spool import entries_in
from storage.blobs import sha256_hex
from storage.models import (
    Direction,
    Event,
    Message,
    OutboxMail,
    OutboxState,
    ReceiptOutcome,
)
from tests.conftest import (
    ENG1,
    ENG2,
    SUPPORT,
    RawClient,
    RunningGateway,
    ServeProcess,
    Sink,
    SinkHandler,
    free_port,
    gateway_env,
    run_gateway,
    wait_until,
    with_current_schema,
)
from tests.postgres import PostgresServer
from tests.schema import current_schema


def customer_mail(number: int, sender: str = "", padding: bytes = b"") -> bytes:
    """A new problem report, unique by Message-ID and subject; by default each from a
    customer of its own, as one acknowledgement per address and period would otherwise
    leave the later ones unanswered."""
    sender = sender or f"customer{number}@customer.example"
    return (
        f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: Fault case {number:04d}\r\n"
        f"Message-ID: <fault-{number}@customer.example>\r\n"
        "Date: Tue, 24 Nov 2026 10:12:33 +0100\r\n\r\n"
        f"The pusher crashes on start, report {number}.\r\n"
    ).encode() + padding


def outbox(gateway: RunningGateway) -> list[OutboxMail]:
    with gateway.session() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


# -- kill -9 under load ----------------------------------------------------------------------

LOAD_MESSAGES = 600
LOAD_CLIENTS = 8


@dataclass
class LoadTally:
    """What the sending clients saw, shared between their threads."""

    accepted: set[int] = field(default_factory=set)
    refused: dict[int, str] = field(default_factory=dict)
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)


def send_share(numbers: list[int], port: int, serving: threading.Event, tally: LoadTally) -> None:
    """Send `numbers` over one reused connection, retrying unanswered ones as an MTA does."""
    waiting = list(numbers)
    smtp: smtplib.SMTP | None = None
    while waiting:
        serving.wait()
        number = waiting[0]
        try:
            smtp = smtp or smtplib.SMTP("127.0.0.1", port, timeout=20)
            smtp.sendmail(f"client{number % 7}@customer.example", [SUPPORT], customer_mail(number))
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                tally.refused[number] = f"{exc.smtp_code} {exc.smtp_error!r}"
                waiting.pop(0)
            close_quietly(smtp)
            smtp = None
            continue
        except (OSError, smtplib.SMTPException):
            with tally.lock:
                tally.unanswered += 1
            close_quietly(smtp)
            smtp = None
            time.sleep(0.05)
            continue
        with tally.lock:
            tally.accepted.add(number)
        waiting.pop(0)
    close_quietly(smtp)


def close_quietly(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


def start_clients(port: int, serving: threading.Event, tally: LoadTally) -> list[threading.Thread]:
    clients = [
        threading.Thread(
            target=send_share,
            args=(list(range(i, LOAD_MESSAGES, LOAD_CLIENTS)), port, serving, tally),
        )
        for i in range(LOAD_CLIENTS)
    ]
    for client in clients:
        client.start()
    return clients


def kill_and_restart(serve: ServeProcess, serving: threading.Event, data_dir: Path) -> int:
    """SIGKILL the whole process group mid-load, start it again; returns the spool backlog
    the kill interrupted."""
    serving.clear()
    backlog = len(queued_entries(data_dir))
    serve.kill()
    serve.start()
    serving.set()
    return backlog


def read_database(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def queued_entries(data_dir: Path) -> list[Path]:
    return entries_in(data_dir / "spool" / "queue")


def filed(database: str) -> int:
    return int(read_database(database, "SELECT count(*) FROM tickets")[0][0])


def test_kill_9_under_load_loses_and_duplicates_nothing_that_got_250(
    tmp_path: Path, sink: Sink, database_url: str
) -> None:
    port, data_dir = free_port(), tmp_path / "var"
    database = database_url or f"sqlite:///{data_dir / 'gateway.sqlite3'}"
    env = gateway_env(
        data_dir,
        GATEWAY_SMTP_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
        GATEWAY_DATABASE_URL=database_url,
    )
    with_current_schema(env)
    # Once while the listener takes mail, once while the worker files the backlog.
    while_receiving = random.randint(LOAD_MESSAGES // 5, LOAD_MESSAGES * 3 // 5)
    while_filing = random.randint(20, LOAD_MESSAGES // 2)
    tally, serving, backlogs = LoadTally(), threading.Event(), []
    with (tmp_path / "serve.log").open("wb") as log:
        serve = ServeProcess(env, port, log)
        serve.start()
        serving.set()
        try:
            clients = start_clients(port, serving, tally)
            wait_until(lambda: tally.count() >= while_receiving, 60, "accepted messages")
            backlogs.append(kill_and_restart(serve, serving, data_dir))
            while_filing += filed(database)
            wait_until(lambda: filed(database) >= while_filing, 60, "filed messages")
            backlogs.append(kill_and_restart(serve, serving, data_dir))
            for client in clients:
                client.join(120)
            wait_until(lambda: not queued_entries(data_dir), 60, "the spool to drain")
        finally:
            serving.set()
            serve.stop()
    tickets = Counter(s for (s,) in read_database(database, "SELECT subject FROM tickets"))
    outcomes = dict(
        read_database(database, "SELECT outcome, count(*) FROM receipts GROUP BY outcome")
    )
    expected = {f"Fault case {number:04d}" for number in tally.accepted}
    ticketed = expected & set(tickets)
    lost = len(expected - ticketed)
    duplicated = sum(count - 1 for count in tickets.values())
    print(
        f"\nkill -9 under load: sent {LOAD_MESSAGES}, accepted {len(tally.accepted)}, "
        f"ticketed {len(ticketed)}, lost {lost}, duplicated {duplicated}; killed at "
        f"{while_receiving} accepted and {while_filing} filed, with {backlogs} queued, "
        f"{tally.unanswered} unanswered attempts retried, receipts {outcomes}, "
        f"refused {len(tally.refused)}, temporary files the kills left "
        f"{len(list(data_dir.rglob('*.tmp')))}"
    )
    assert not tally.refused, tally.refused
    assert len(tally.accepted) == LOAD_MESSAGES
    assert not list((data_dir / "spool" / "quarantine").iterdir())
    assert lost == 0
    assert duplicated == 0
    assert set(tickets) == expected


def parents_of_processes() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rpartition(")")[2].split()[1]
                )
    return parents


def worker_of(serve: ServeProcess) -> int:
    """The pid of `serve`'s worker: the child of its fork server."""
    assert serve.process is not None
    parents = parents_of_processes()
    [fork_server] = [
        pid
        for pid, parent in parents.items()
        if parent == serve.process.pid
        and b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    [worker] = [pid for pid, parent in parents.items() if parent == fork_server]
    return worker


def parser_of(worker: int) -> int:
    """The pid of the worker's parser process."""
    [parser] = [
        pid
        for pid, parent in parents_of_processes().items()
        if parent == worker and b"gateway.parse_ahead" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return parser


def is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_worker_killed_alone_neither_hangs_intake_nor_loses_mail(
    served: ServeProcess, sink: Sink
) -> None:
    with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
        client.sendmail("alice@customer.example", [SUPPORT], customer_mail(0))
    sink.wait_for(1)
    time.sleep(0.5)  # Idle: the worker waits to be woken.
    worker = worker_of(served)
    parser = parser_of(worker)
    os.kill(worker, signal.SIGKILL)  # As the OOM killer would.
    # Its parser process goes with it, rather than linger beside the restarted worker's.
    wait_until(lambda: is_gone(parser), 10, "the dead worker's parser process to exit")
    for number in range(1, 4):
        with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
            client.sendmail(
                "alice@customer.example",
                [SUPPORT],
                customer_mail(number, sender=f"c{number}@customer.example"),
            )
    # The restarted worker files what waited.
    assert len(sink.wait_for(4, timeout=20)) == 4


# -- the relay refuses, or is gone -----------------------------------------------------------


@dataclass(frozen=True)
class RelayAttempt:
    """One try to hand the relay a mail for one recipient, and what the relay said."""

    at: datetime
    recipient: str
    reply: str


@dataclass
class RecordingHandler(SinkHandler):
    """The sink, which also records every attempt and can refuse single recipients."""

    refuse_recipients: dict[str, str] = field(default_factory=dict)
    attempts: list[RelayAttempt] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.refuse_recipients.get(address)
        if reply is not None:
            self.attempts.append(RelayAttempt(datetime.now(UTC), address, reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        for recipient in envelope.rcpt_tos:
            self.attempts.append(RelayAttempt(datetime.now(UTC), recipient, reply))
        return reply

    def tried(self, recipient: str) -> list[RelayAttempt]:
        return [attempt for attempt in self.attempts if attempt.recipient == recipient]


class RecordingRelay(Sink):
    """A sink whose handler records attempts; not started, it is a relay that is down."""

    def __init__(self, port: int | None = None) -> None:
        self.recorder = RecordingHandler()
        self.handler = self.recorder
        self.port = port or free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)


@pytest.fixture
def relay() -> Iterator[RecordingRelay]:
    recording = RecordingRelay()
    recording.controller.start()
    yield recording
    recording.controller.stop()


def send_reports(gateway: RunningGateway, numbers: range) -> None:
    """Send problem reports; each must get its 250 whatever the relay is doing."""
    for number in numbers:
        assert gateway.send(customer_mail(number, f"customer{number}@example.org")) == {}


def all_rows(
    gateway: RunningGateway, count: int, condition: Callable[[OutboxMail], bool]
) -> list[OutboxMail]:
    rows = outbox(gateway)
    return rows if len(rows) == count and all(condition(row) for row in rows) else []


def assert_each_delivered_once(gateway: RunningGateway, relay: Sink, count: int) -> None:
    wait_until(
        lambda: all_rows(gateway, count, lambda r: r.state is OutboxState.SENT),
        20,
        "every acknowledgement to be sent",
    )
    time.sleep(1.5)  # Longer than the worker's idle poll: a second copy would show by now.
    message_ids = Counter(str(mail.message["Message-ID"]) for mail in relay.received)
    assert len(message_ids) == count
    assert set(message_ids.values()) == {1}
    assert sorted(r for mail in relay.received for r in mail.recipients) == sorted(
        row.recipient for row in outbox(gateway)
    )


def assert_backoff_doubles(
    gateway: RunningGateway, relay: RecordingRelay, base_seconds: float
) -> None:
    """Each row's next attempt is `base * 2**(attempts-1)` after the relay's last answer."""

    def settled() -> list[OutboxMail]:
        rows = outbox(gateway)
        return (
            rows if all(len(relay.recorder.tried(r.recipient)) == r.attempts for r in rows) else []
        )

    for row in wait_until(settled, 10, "no attempt in flight"):
        last = relay.recorder.tried(row.recipient)[-1]
        delay = timedelta(seconds=base_seconds * 2 ** (row.attempts - 1))
        assert delay * 0.9 <= row.next_attempt_at - last.at <= delay + timedelta(seconds=0.5)


def test_relay_answering_451_then_421_delays_acknowledgements_until_it_recovers(
    make_gateway: Callable[..., RunningGateway], relay: RecordingRelay
) -> None:
    gateway = make_gateway(relay=relay.endpoint, delivery_backoff_seconds=0.2)
    relay.recorder.refuse_with = "451 4.3.0 Mailbox busy, try again later"
    send_reports(gateway, range(3))
    rows = wait_until(
        lambda: all_rows(gateway, 3, lambda r: r.attempts >= 3),
        15,
        "three refused attempts per acknowledgement",
    )
    assert all(row.state is OutboxState.PENDING for row in rows)
    assert {row.last_error for row in rows} == {"451 4.3.0 Mailbox busy, try again later"}

    relay.recorder.refuse_with = "421 4.4.2 Relay shutting down"
    send_reports(gateway, range(3, 4))
    rows = wait_until(
        lambda: all_rows(gateway, 4, lambda r: r.last_error.startswith("421")),
        15,
        "421 answers recorded",
    )
    assert all(row.state is OutboxState.PENDING for row in rows)
    assert_backoff_doubles(gateway, relay, 0.2)
    assert relay.received == []

    relay.recorder.refuse_with = None
    assert_each_delivered_once(gateway, relay, 4)


def test_relay_not_listening_keeps_acknowledgements_until_it_comes_up(
    make_gateway: Callable[..., RunningGateway],
) -> None:
    later = RecordingRelay()
    gateway = make_gateway(relay=later.endpoint, delivery_backoff_seconds=0.2)
    send_reports(gateway, range(3))
    rows = wait_until(
        lambda: all_rows(gateway, 3, lambda r: r.attempts >= 2),
        15,
        "two failed attempts per acknowledgement",
    )
    assert all(row.state is OutboxState.PENDING for row in rows)
    assert all("unreachable" in row.last_error and "refused" in row.last_error for row in rows)
    send_reports(gateway, range(3, 5))
    later.controller.start()
    try:
        assert_each_delivered_once(gateway, later, 5)
    finally:
        later.controller.stop()


# -- a recipient refused for good ------------------------------------------------------------

REFUSAL = "550 5.1.1 <eng2@example.com>: Recipient address rejected: User unknown"


def test_permanent_550_for_one_recipient_fails_once_and_shows_on_the_ticket(
    make_gateway: Callable[..., RunningGateway], relay: RecordingRelay
) -> None:
    gateway = make_gateway(
        relay=relay.endpoint,
        delivery_backoff_seconds=0.2,
        engineers=(Engineer(ENG1), Engineer(ENG2)),
    )
    relay.recorder.refuse_recipients[ENG2] = REFUSAL
    send_reports(gateway, range(1))

    def settled() -> list[OutboxMail]:
        rows = outbox(gateway)
        return (
            rows if len(rows) == 3 and all(r.state is not OutboxState.PENDING for r in rows) else []
        )

    wait_until(settled, 15, "every row delivered or failed")
    time.sleep(1.5)  # Several backoff periods: a retry storm would show by now.
    by_recipient = {row.recipient: row for row in outbox(gateway)}
    refused = by_recipient.pop(ENG2)
    assert (refused.state, refused.attempts, refused.last_error) == (OutboxState.FAILED, 1, REFUSAL)
    assert len(relay.recorder.tried(ENG2)) == 1
    assert all(row.state is OutboxState.SENT for row in by_recipient.values())
    assert sorted(r for mail in relay.received for r in mail.recipients) == sorted(by_recipient)

    with gateway.session() as session:
        [failure] = session.scalars(select(Event).where(Event.type == "delivery_failed"))
    assert failure.ticket_id == refused.ticket_id and failure.actor == "system"
    assert ENG2 in failure.detail and REFUSAL in failure.detail
    shown = run_gateway(
        gateway_env(gateway.settings.data_dir, GATEWAY_DATABASE_URL=gateway.settings.database_url),
        "show",
        str(refused.ticket_id),
    ).stdout
    assert "delivery_failed" in shown and REFUSAL in shown


def test_retries_running_out_fail_the_row_and_say_so_on_the_ticket(
    make_gateway: Callable[..., RunningGateway], relay: RecordingRelay
) -> None:
    gateway = make_gateway(
        relay=relay.endpoint, delivery_backoff_seconds=0.1, delivery_max_attempts=2
    )
    relay.recorder.refuse_with = "451 4.7.1 Greylisted, try again later"
    send_reports(gateway, range(1))
    [row] = wait_until(
        lambda: all_rows(gateway, 1, lambda r: r.state is OutboxState.FAILED), 15, "the row to fail"
    )
    assert row.attempts == 2 and len(relay.recorder.attempts) == 2
    with gateway.session() as session:
        [failure] = session.scalars(select(Event).where(Event.type == "delivery_failed"))
    assert failure.ticket_id == row.ticket_id
    assert "after 2 attempt(s): 451 4.7.1 Greylisted" in failure.detail


# -- the database locked or down --------------------------------------------------------------


@contextmanager
def database_locked(settings: Settings) -> Iterator[None]:
    """Another connection holds the database's write lock (SQLite) or locks every table the
    worker reads and writes (PostgreSQL), until the block ends."""
    if not settings.database_url:
        holder = sqlite3.connect(settings.sqlite_path, timeout=5, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(
                text("LOCK TABLE receipts, tickets, outbox IN ACCESS EXCLUSIVE MODE")
            )
            yield
            connection.rollback()  # Ends the transaction, and the lock with it.
    finally:
        engine.dispose()


def test_locked_database_never_turns_a_250_into_a_loss(gateway: RunningGateway) -> None:
    with database_locked(gateway.settings):
        for number in range(5):
            started = time.monotonic()
            assert gateway.send(customer_mail(number)) == {}
            assert time.monotonic() - started < 1.0, "intake waited for the database"
        time.sleep(2.0)
        assert len(gateway.gateway.spool.pending()) == 5
    receipts = gateway.wait_for_receipts(5, timeout=40)
    gateway.wait_idle()
    assert [r.outcome for r in receipts] == [ReceiptOutcome.NEW_TICKET] * 5
    assert sorted(t.subject for t in gateway.tickets()) == [f"Fault case {n:04d}" for n in range(5)]
    assert gateway.gateway.spool.quarantined() == []


def test_lock_outlasting_the_lock_timeout_leaves_mail_queued_and_delivery_waiting(
    settings: Settings, sink: Sink
) -> None:
    settings.data_dir.mkdir(parents=True)
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings)

    # Registered after the gateway's own settings, so it wins: a lock this test can outlast.
    @event.listens_for(gateway.engine, "connect")
    def impatient(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if settings.database_url:
            cursor.execute("SET lock_timeout = 100")
            dbapi_connection.commit()
        else:
            cursor.execute("PRAGMA busy_timeout=100")
        cursor.close()

    gateway.engine.dispose()
    spool = gateway.spool
    spool.accept(customer_mail(0), "alice@customer.example", [SUPPORT], "smtp")
    assert len(gateway.executor.drain()) == 1  # Its acknowledgement now waits in the outbox.
    for number in range(1, 4):
        spool.accept(customer_mail(number), "alice@customer.example", [SUPPORT], "smtp")
    with database_locked(settings):
        assert gateway.executor.drain() == []
        assert gateway.dispatcher.deliver_due().sent == 0
        assert len(spool.pending()) == 3 and spool.quarantined() == []
    assert [o.outcome for o in gateway.executor.drain()] == [ReceiptOutcome.NEW_TICKET] * 3
    # The claim under the lock rolled back, so the first acknowledgement is still due.
    assert gateway.dispatcher.deliver_due().sent == 4
    assert len(sink.wait_for(4)) == 4
    gateway.engine.dispose()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_database_server_down_never_turns_a_250_into_a_loss(
    gateway: RunningGateway, sink: Sink, postgres: PostgresServer
) -> None:
    assert gateway.send(customer_mail(0)) == {}
    sink.wait_for(1)
    postgres.stop_server()
    try:
        for number in range(1, 6):
            assert gateway.send(customer_mail(number)) == {}
        time.sleep(2.0)  # The worker tries, fails and keeps the mail queued meanwhile.
        assert len(gateway.gateway.spool.pending()) == 5
    finally:
        postgres.start_server()
    receipts = gateway.wait_for_receipts(6, timeout=40)
    sink.wait_for(6)
    assert [r.outcome for r in receipts] == [ReceiptOutcome.NEW_TICKET] * 6
    assert gateway.gateway.spool.quarantined() == []
    assert len(gateway.tickets()) == 6


# -- the data disk full ----------------------------------------------------------------------

PAGE = 4096


@pytest.fixture
def small_disk(settings: Settings) -> Iterator[Path]:
    """The data dir on a 2 MiB tmpfs, mounted for this test."""
    if os.geteuid() != 0:
        pytest.fail("the disk-full test needs root to mount a tmpfs; run the tests as root")
    settings.data_dir.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(settings.data_dir)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"the disk-full test could not mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield settings.data_dir
    finally:
        subprocess.run(["umount", str(settings.data_dir)], check=True)


def free_pages(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize // PAGE


def fill_leaving(directory: Path, pages: int) -> Path:
    """Fill the disk, then give back exactly `pages` pages."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        size = 0
        while True:
            try:
                size += os.write(fd, b"\0" * PAGE)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        os.ftruncate(fd, size - pages * PAGE)
    finally:
        os.close(fd)
    assert free_pages(directory) == pages
    return filler


def partial_files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.name.endswith(".tmp")]


def assert_no_room_reply(gateway: RunningGateway, raw: bytes) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        gateway.send(raw)
    reply = refused.value.smtp_error
    assert isinstance(reply, bytes)
    assert refused.value.smtp_code == 452
    assert reply.startswith(b"4.3.1 ") and b"No space left on device" in reply


def test_full_disk_answers_452_and_leaves_no_partial_files(
    settings: Settings, small_disk: Path, tmp_path: Path
) -> None:
    # A SQLite file goes beside the small disk: this test fills the spool's disk alone.
    database_url = settings.database_url or f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    gateway = RunningGateway(settings.changed(database_url=database_url)).start()
    try:
        # Ten pages of message for two free pages: the blob itself cannot be written.
        too_big = customer_mail(1, padding=(b"x" * 78 + b"\r\n") * (10 * PAGE // 80))
        filler = fill_leaving(small_disk, 2)
        assert_no_room_reply(gateway, too_big)
        assert partial_files(small_disk) == [] and free_pages(small_disk) == 2

        # Exactly room for the message, none for the receipt line its queue entry starts with.
        fits = pad_to_pages(customer_mail(2), 3)
        filler.unlink()
        filler = fill_leaving(small_disk, 3)
        assert_no_room_reply(gateway, fits)
        assert partial_files(small_disk) == [] and queued_entries(small_disk) == []
        assert free_pages(small_disk) == 3 and not gateway.gateway.blobs.exists(sha256_hex(fits))

        filler.unlink()
        assert gateway.send(too_big) == {} and gateway.send(fits) == {}
        gateway.wait_for_receipts(2)
        gateway.wait_idle()
        assert sorted(t.subject for t in gateway.tickets()) == [
            "Fault case 0001",
            "Fault case 0002",
        ]
    finally:
        gateway.stop()


def pad_to_pages(raw: bytes, pages: int) -> bytes:
    """`raw` with text lines added until it is exactly `pages` pages long."""
    missing = pages * PAGE - len(raw)
    lines = (b"y" * 78 + b"\r\n") * (missing // 80)
    rest = missing - len(lines)
    return raw + lines + (b"z" * (rest - 2) + b"\r\n" if rest else b"")


# -- SMTP smuggling --------------------------------------------------------------------------


SMUGGLED = (
    "MAIL FROM:<finance@example.com>\r\nRCPT TO:<support@example.com>\r\nDATA\r\n"
    "From: finance@example.com\r\nTo: support@example.com\r\nSubject: Smuggled\r\n"
    "Message-ID: <smuggled@example.com>\r\n\r\nWire the money today.\r\n"
)


@pytest.mark.parametrize(
    "fake_end",
    ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n"],
    ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CRLF"],
)
def test_bare_line_ends_around_a_dot_do_not_split_one_message_into_two(
    gateway: RunningGateway, fake_end: str
) -> None:
    assert gateway.settings.listen.smtp is not None
    client = RawClient(gateway.settings.listen.smtp.port)
    try:
        assert client.command("EHLO client.example").startswith("250")
        assert client.command("MAIL FROM:<alice@customer.example>").startswith("250")
        assert client.command(f"RCPT TO:<{SUPPORT}>").startswith("250")
        assert client.command("DATA").startswith("354")
        first = customer_mail(1).decode().rstrip("\r\n")
        client.sock.sendall((first + fake_end + SMUGGLED + ".\r\n").encode())
        assert client.reply().startswith("250 2.0.0 Queued as ")
        # Had the fake end counted, the smuggled commands' replies would come before this.
        assert client.command("QUIT").startswith("221")
    finally:
        client.close()
    [receipt] = gateway.wait_for_receipts(1)
    gateway.wait_idle()
    assert len(gateway.receipts()) == 1 and len(gateway.tickets()) == 1
    raw = gateway.gateway.blobs.get(receipt.raw_sha256)
    assert b"MAIL FROM:<finance@example.com>" in raw and b"Wire the money today." in raw
    with gateway.session() as session:
        [message] = session.scalars(select(Message).where(Message.direction == Direction.IN))
    assert message.subject == "Fault case 0001"
    assert "Wire the money today." in message.text
