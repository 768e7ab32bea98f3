"""Throughput of the gateway over SMTP, against a do-nothing SMTP server as the ceiling.

For each concurrency level: the same client (threads with `smtplib`, one reused connection
per thread) sends the same messages first to a null aiosmtpd server in its own process (the
ceiling), then to a fresh `gateway serve` whose relay is an aiosmtpd sink in this process.
It reports accepted msgs/s, DATA→250 latency, the time until every ticket exists and every
acknowledgement reached the sink, the gateway's peak RSS, and whether SIGTERM stops it
cleanly. Only 127.0.0.1 is used; every wait is bounded. With `--postgres` each gateway gets
a fresh database in a private PostgreSQL cluster instead of a SQLite file.

    .venv/bin/python bench/throughput.py --messages 500 --concurrency 1,4,16
    .venv/bin/python bench/throughput.py --postgres --concurrency 16
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from tests.postgres import PostgresServer

HOST = "127.0.0.1"
REPOSITORY = Path(__file__).resolve().parent.parent
SUPPORT = "support@example.com"
# The console script of the virtualenv this benchmark runs in.
GATEWAY = Path(sys.executable).with_name("gateway")
SMTP_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
POLL_SECONDS = 0.02
# The targets: end to end at least this share of the ceiling, DATA→250 p99 under this, and
# each process's peak RSS under three times the largest message plus this many MiB.
TARGET_SHARE = 0.30
TARGET_P99_SECONDS = 0.050
TARGET_RSS_BASE_MIB = 100
# Largest message the gateway accepts by default; the null server takes the same.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
# A long run's memory is flat when no process grew more than this after the first quarter.
SOAK_FLAT_MIB = 10
# Each page reader's pace: many times what customers and a scraper ask of a support desk.
PAGES_PER_SECOND_PER_READER = 10.0

WORDS = (
    "stream",
    "pusher",
    "crash",
    "android",
    "ios",
    "sdk",
    "version",
    "encoder",
    "bitrate",
    "latency",
    "app",
    "after",
    "update",
    "login",
    "token",
    "expired",
    "customer",
    "invoice",
    "license",
    "renewal",
    "please",
    "help",
    "urgent",
    "since",
    "yesterday",
    "camera",
    "audio",
    "echo",
    "reconnect",
    "network",
    "timeout",
    "error",
    "log",
    "attached",
    "screenshot",
    "device",
    "build",
    "release",
    "production",
    "staging",
    "region",
    "server",
    "player",
    "buffering",
    "frame",
    "drop",
    "the",
    "a",
    "we",
    "our",
    "it",
    "is",
    "when",
    "with",
    "on",
    "to",
    "of",
    "and",
    "not",
    "for",
    "in",
    "this",
    "that",
)


class BenchError(Exception):
    """The benchmark could not run a step; the message says which."""


# --- the messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    """One message to send: envelope sender and the dot-stuffed DATA content."""

    kind: str
    sender: str
    size: int
    payload: bytes


KINDS = ["small"] * 14 + ["large"] * 3 + ["attachment"] * 3


def build_corpus(count: int, seed: int) -> list[Mail]:
    """`count` messages: 70% short text, 15% ~100 KB text, 15% with a binary attachment."""
    rng = random.Random(seed)
    mails = list(iter_corpus(count, rng))
    rng.shuffle(mails)
    return mails


def iter_corpus(count: int, rng: random.Random) -> Iterator[Mail]:
    """The same mix, made one at a time (a long run would not fit in memory at once)."""
    run = uuid.uuid4().hex[:12]
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        yield to_mail(kind, compose(rng, index, run, kind))


def to_mail(kind: str, message: EmailMessage) -> Mail:
    raw = message.as_bytes(policy=SMTP_POLICY)
    return Mail(kind, str(message["Return-Path"]).strip("<>"), len(raw), stuff(raw))


def big_mail(megabytes: float, seed: int) -> Mail:
    """One message with a binary attachment of `megabytes` MiB (a screen recording, say)."""
    rng = random.Random(seed)
    message = compose(rng, 0, uuid.uuid4().hex[:12], "small")
    message.add_attachment(
        rng.randbytes(int(megabytes * 2**20)),
        maintype="video",
        subtype="mp4",
        filename="screen-recording.mp4",
    )
    return to_mail("big", message)


def compose(rng: random.Random, index: int, run: str, kind: str) -> EmailMessage:
    name = f"Customer {index}"
    address = f"customer{index}@client{index % 37}.example"
    message = EmailMessage()
    message["Return-Path"] = f"<{address}>"
    message["Received"] = (
        f"from mx{index % 5}.client.example (mx{index % 5}.client.example "
        f"[192.0.2.{index % 250 + 1}]) by mx.example.com with ESMTPS; "
        f"{format_datetime(sent_at(index))}"
    )
    message["Message-ID"] = f"<{run}.{index}.{uuid.uuid4().hex}@client{index % 37}.example>"
    message["Date"] = format_datetime(sent_at(index))
    message["From"] = f"{name} <{address}>"
    message["To"] = SUPPORT
    message["Subject"] = sentence(rng, 4, 9).rstrip(".").capitalize()
    message["MIME-Version"] = "1.0"
    message["User-Agent"] = "Mozilla/5.0 Thunderbird/128.4.2"
    message["Content-Language"] = "en-US"
    if kind == "large":
        message.set_content(letter(rng, name) + "\n\nLog:\n" + log_lines(rng, 100 * 1024))
    else:
        message.set_content(letter(rng, name))
    if kind == "attachment":
        data = rng.randbytes(rng.randrange(24 * 1024, 256 * 1024))
        message.add_attachment(
            data, maintype="application", subtype="octet-stream", filename=f"capture-{index}.bin"
        )
    return message


def sent_at(index: int) -> datetime:
    return datetime(2026, 11, 24, 9, 0, tzinfo=UTC) + timedelta(seconds=index)


def sentence(rng: random.Random, shortest: int, longest: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(shortest, longest))) + "."


def letter(rng: random.Random, name: str) -> str:
    paragraphs = [
        " ".join(sentence(rng, 6, 16).capitalize() for _ in range(rng.randint(2, 6)))
        for _ in range(rng.randint(1, 4))
    ]
    body = "\n\n".join(textwrap.fill(p, 72) for p in paragraphs)
    return f"Hello,\n\n{body}\n\nRegards,\n{name}"


def log_lines(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        line = (
            f"2026-11-24T09:{rng.randrange(60):02}:{rng.randrange(60):02}."
            f"{rng.randrange(1000):03}Z E/Pusher({rng.randrange(1000, 9999)}): "
            f"{sentence(rng, 5, 12)}"
        )
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def stuff(raw: bytes) -> bytes:
    """DATA content as it goes on the wire: leading dots doubled, ended by CRLF.CRLF."""
    body = re.sub(rb"(?m)^\.", b"..", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


# --- the client -----------------------------------------------------------------------------


@dataclass(slots=True)
class ClientRun:
    """What one pass of the client over the corpus saw."""

    accepted: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0


class MailSource:
    """Hands the client threads one mail at a time, from a list or made on demand."""

    def __init__(self, mails: Iterable[Mail]) -> None:
        self.mails = iter(mails)
        self.lock = threading.Lock()
        self.taken = 0

    def next(self) -> Mail | None:
        with self.lock:
            mail = next(self.mails, None)
            self.taken += mail is not None
            return mail


def send_corpus(port: int, corpus: Iterable[Mail], concurrency: int, timeout: float) -> ClientRun:
    """Send every mail over `concurrency` connections; time from the first send to the last."""
    work = MailSource(corpus)
    run = ClientRun()
    parts = [ClientRun() for _ in range(concurrency)]

    def mark_start() -> None:
        run.started = time.perf_counter()

    barrier = threading.Barrier(concurrency, action=mark_start)
    threads = [
        threading.Thread(target=client_worker, args=(port, work, barrier, part), daemon=True)
        for part in parts
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        raise BenchError(f"sending to port {port} took longer than {timeout:.0f}s")
    run.elapsed = time.perf_counter() - run.started
    for part in parts:
        run.accepted += part.accepted
        run.refused += part.refused
        run.failed += part.failed
        run.latencies += part.latencies
    if run.started == 0.0:
        raise BenchError(f"the client could not connect to {HOST}:{port}")
    return run


def client_worker(
    port: int, work: MailSource, barrier: threading.Barrier, result: ClientRun
) -> None:
    try:
        smtp = connect(port)
    except (OSError, smtplib.SMTPException):
        barrier.abort()
        return
    try:
        barrier.wait(SMTP_TIMEOUT)
    except threading.BrokenBarrierError:
        smtp.close()
        return
    while (mail := work.next()) is not None:
        smtp = send_counted(smtp, port, mail, result)
    with suppress(OSError, smtplib.SMTPException):
        smtp.quit()
    smtp.close()


def connect(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP(HOST, port, local_hostname="bench.localhost", timeout=SMTP_TIMEOUT)
    smtp.ehlo()
    return smtp


def send_counted(smtp: smtplib.SMTP, port: int, mail: Mail, result: ClientRun) -> smtplib.SMTP:
    """Send one mail and count the outcome; a broken connection is replaced."""
    try:
        code, latency = transact(smtp, mail)
    except (OSError, smtplib.SMTPException):
        result.failed += 1
        smtp.close()
        with suppress(OSError, smtplib.SMTPException):
            return connect(port)
        return smtp
    if code == 250:
        result.accepted += 1
        result.latencies.append(latency)
    else:
        result.refused[code] += 1
    return smtp


def transact(smtp: smtplib.SMTP, mail: Mail) -> tuple[int, float]:
    """One SMTP transaction; the final reply code and seconds from DATA content to reply."""
    steps: tuple[tuple[Callable[[], tuple[int, bytes]], tuple[int, ...]], ...] = (
        (lambda: smtp.mail(mail.sender), (250,)),
        (lambda: smtp.rcpt(SUPPORT), (250, 251)),
        (lambda: smtp.docmd("DATA"), (354,)),
    )
    for step, wanted in steps:
        code, _ = step()
        if code not in wanted:
            smtp.rset()
            return code, 0.0
    start = time.perf_counter()
    smtp.send(mail.payload)
    code, _ = smtp.getreply()
    return code, time.perf_counter() - start


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on now (aiosmtpd's Controller cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {HOST}:{port} within {START_TIMEOUT:.0f}s")


class CountingHandler:
    """The relay sink: counts every message it is given."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 2.0.0 OK"


class NullHandler:
    """The ceiling: answers 250 to every message and keeps nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 OK"


@contextmanager
def running_sink() -> Iterator[tuple[int, CountingHandler]]:
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname=HOST, port=port, ready_timeout=START_TIMEOUT)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def serve_null(port: int) -> int:
    """`--null-server PORT`: the ceiling server, run in its own process like the gateway.

    It stops on SIGTERM, or by itself once the benchmark that started it is gone.
    """
    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    controller = Controller(
        NullHandler(),
        hostname=HOST,
        port=port,
        ready_timeout=START_TIMEOUT,
        decode_data=False,
        enable_SMTPUTF8=True,
        data_size_limit=MAX_MESSAGE_BYTES,
    )
    controller.start()
    while not stop.wait(1.0) and os.getppid() == parent:
        pass
    controller.stop()
    return 0


@contextmanager
def running_null_server() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--null-server", str(port)], start_new_session=True
    )
    try:
        wait_for_port(port, process, "the null SMTP server")
        yield port
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM and wait; the exit code, or None when it had to be killed."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)
        return None


# --- the gateway ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    database_url: str


def gateway_environment(
    data_dir: Path, listen_port: int, relay_port: int, settings: dict[str, str]
) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SMTP_LISTEN=f"{HOST}:{listen_port}",
        GATEWAY_RELAY=f"{HOST}:{relay_port}",
        GATEWAY_SUPPORT_ADDRESS=SUPPORT,
        GATEWAY_SECRET="bench",
        GATEWAY_HTTP_LISTEN="off",
    )
    env.update(settings)
    return env


def start_gateway(workdir: Path, relay_port: int, settings: dict[str, str]) -> GatewayProcess:
    """`gateway db upgrade`, then `gateway serve` in the background, listening when
    returned."""
    data_dir = workdir / "var"
    port = free_port()
    env = gateway_environment(data_dir, port, relay_port, settings)
    # The work dir as cwd, so no gateway.toml lying around is read.
    upgrade = subprocess.run(
        [str(GATEWAY), "db", "upgrade"],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if upgrade.returncode != 0:
        raise BenchError(
            f"gateway db upgrade exited {upgrade.returncode}: "
            f"{upgrade.stderr.decode(errors='replace').strip()}"
        )
    log_path = workdir / "gateway.log"
    with open(log_path, "wb") as log:
        # A session of its own: Ctrl-C reaches only this script, which then stops it.
        process = subprocess.Popen(
            [str(GATEWAY), "serve"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    database_url = env.get("GATEWAY_DATABASE_URL") or f"sqlite:///{data_dir / 'gateway.sqlite3'}"
    gateway = GatewayProcess(process, port, data_dir, log_path, database_url)
    try:
        wait_for_port(port, process, "gateway serve")
    except BenchError:
        stop_process(process)
        raise BenchError(f"gateway serve did not start:\n{log_tail(log_path)}") from None
    return gateway


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


READERS: dict[str, Engine] = {}
# The server processes (backends) of the benchmark's own PostgreSQL connections, by database:
# their CPU, its polling, is not the gateway's.
OWN_BACKENDS: dict[str, set[int]] = {}


def reader(url: str) -> Engine:
    """The benchmark's engine on the gateway's database. A SQLite file is opened read-only
    and afresh for each query, so the benchmark never writes to it nor holds it open while
    the gateway checkpoints; PostgreSQL keeps its connections for the level, and each
    connection's backend is noted in `OWN_BACKENDS`."""
    if url not in READERS:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            READERS[url] = create_engine(
                f"sqlite:///file:{parsed.database}?mode=ro&uri=true",
                poolclass=NullPool,
                connect_args={"timeout": 5.0},
            )
        else:
            READERS[url] = create_engine(url, pool_size=2, max_overflow=0)
            backends = OWN_BACKENDS.setdefault(url, set())
            event.listen(READERS[url], "connect", lambda dbapi, _: note_backend(dbapi, backends))
    return READERS[url]


def note_backend(connection: Any, backends: set[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        backends.add(int(cursor.fetchone()[0]))
    connection.rollback()


def forget_reader(url: str) -> None:
    engine = READERS.pop(url, None)
    if engine is not None:
        engine.dispose()
    # Its backends have ended; their numbers may be given to the gateway's next ones.
    OWN_BACKENDS.pop(url, None)


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows from the gateway's database, SQLite or PostgreSQL."""
    with reader(url).connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


@dataclass(frozen=True, slots=True)
class Filed:
    """How far the pipeline got: tickets opened, messages handled in any way."""

    tickets: int = 0
    handled: int = 0


def count_filed(database_url: str) -> Filed:
    """Counts so far; zeros while the database cannot be read (a WAL checkpoint, say)."""
    try:
        [(tickets, handled)] = query(
            database_url, "select (select count(*) from tickets), (select count(*) from receipts)"
        )
    except SQLAlchemyError:
        return Filed()
    return Filed(int(tickets), int(handled))


def quarantine_reasons(database_url: str) -> list[tuple[int, str]]:
    """The commonest reasons for quarantine, with their counts."""
    rows = query(
        database_url,
        "select count(*), reason from receipts where outcome = 'quarantined'"
        " group by reason order by count(*) desc limit 3",
    )
    return [(int(count), str(reason)) for count, reason in rows]


@dataclass(frozen=True, slots=True)
class Blobs:
    """Where the raw messages and files went: rows of the database store, their chunks,
    and files in the folder store."""

    rows: int = 0
    chunks: int = 0
    files: int = 0


def count_blobs(gateway: GatewayProcess) -> Blobs:
    [(rows, chunks)] = query(
        gateway.database_url,
        "select (select count(*) from blobs), (select count(*) from blob_chunks)",
    )
    folder = gateway.data_dir / "blobs"
    files = sum(1 for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0
    return Blobs(int(rows), int(chunks), files)


# --- PostgreSQL -----------------------------------------------------------------------------


def start_postgres() -> PostgresServer:
    """The tests' private cluster, but with PostgreSQL's flushes on: the folder store it is
    compared with fsyncs every file, as a production server flushes every commit."""
    sys.path.insert(0, str(REPOSITORY))
    from tests.postgres import PostgresServer

    server = PostgresServer(durable=True)
    try:
        return server.start()
    except BaseException as exc:
        server.stop()
        if isinstance(exc, RuntimeError):
            raise BenchError(f"PostgreSQL did not start: {exc}") from None
        raise


@contextmanager
def gateway_database(postgres: PostgresServer | None) -> Iterator[dict[str, str]]:
    """The settings of one gateway's database: a fresh, empty one on the cluster, which
    `gateway db upgrade` fills as it does a new SQLite file and which is dropped after;
    with no cluster, none (the SQLite file in the data dir)."""
    if postgres is None:
        yield {}
        return
    url = postgres.empty_database()
    try:
        yield {"GATEWAY_DATABASE_URL": url}
    finally:
        forget_reader(url)
        postgres.drop(url)


def postgres_cpu_seconds(postgres: PostgresServer | None, own: bool = False) -> float:
    """User plus system CPU of the cluster so far: the postmaster, its live children but the
    benchmark's own backends (`OWN_BACKENDS`), and (in the postmaster's children's times)
    every backend that has ended; with `own`, of the benchmark's own backends alone.

    The benchmark's backends answer its polling (two counts every `POLL_SECONDS`) as long
    as a level runs, so a store that files more slowly would be charged more of it."""
    if postgres is None:
        return 0.0
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    benchmarks = set().union(*OWN_BACKENDS.values())
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry.name)
        of_cluster = pid == postmaster or int(fields[1]) == postmaster
        if of_cluster and (pid in benchmarks) == own:
            total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Drained:
    """Seconds from the first send until every ticket exists / every ack reached the sink."""

    tickets_after: float | None
    acks_after: float | None

    @property
    def complete_after(self) -> float | None:
        if self.tickets_after is None or self.acks_after is None:
            return None
        return max(self.tickets_after, self.acks_after)


def wait_until_drained(
    gateway: GatewayProcess, sink: CountingHandler, expected: int, started: float, timeout: float
) -> Drained:
    """Poll until `expected` tickets exist and as many acks reached the sink."""
    tickets_after: float | None = None
    acks_after: float | None = None
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and (tickets_after is None or acks_after is None):
        now = time.perf_counter()
        filed = count_filed(gateway.database_url)
        if tickets_after is None and filed.tickets >= expected:
            tickets_after = now - started
        if acks_after is None and sink.count >= expected:
            acks_after = now - started
        if gateway.process.poll() is not None:
            break
        # Everything handled but some without a ticket: the missing acks will never come.
        if filed.handled >= expected > filed.tickets and sink.count >= filed.tickets:
            break
        time.sleep(POLL_SECONDS)
    return Drained(tickets_after, acks_after)


def status_kib(pid: int, key: str) -> int:
    """A `/proc/PID/status` figure such as VmHWM (peak RSS) or VmRSS, in KiB; 0 when the
    process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    raise BenchError(f"no {key} for process {pid}")


def session_members(session: int) -> list[int]:
    """Every process in the session `gateway serve` leads: it, its worker and the worker's
    parser process, the fork server."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (command) state ppid pgrp session ...": the command may hold spaces.
        if int(stat.rpartition(")")[2].split()[3]) == session:
            members.append(int(entry.name))
    return members


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of the gateway's processes, in KiB: the listener process, the
    largest of the others (the worker, or its parser process), and the proportional share
    of them all (PSS, so pages the fork server shares with the worker count once)."""

    listener: int
    worker: int
    all_pss: int


def gateway_memory(pid: int, key: str = "VmHWM") -> Memory:
    others = [member for member in session_members(pid) if member != pid]
    return Memory(
        status_kib(pid, key),
        max((status_kib(m, key) for m in others), default=0),
        sum(pss_kib(member) for member in (pid, *others)),
    )


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def role_of(pid: int, listener: int) -> str:
    """What a process of the gateway's session does. Workers are forked by the fork server,
    the listener's child, so both show the fork server's command line."""
    if pid == listener:
        return "listener"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return "gone"
    if b"parse_ahead" in command:
        return "parser"
    return "fork server" if parent == listener else "worker"


def cpu_by_role(listener: int) -> Counter[str]:
    """CPU seconds so far of the gateway's processes, summed by what each does."""
    used: Counter[str] = Counter()
    for member in session_members(listener):
        used[role_of(member, listener)] += cpu_seconds(member)
    return used


# --- one level, many levels -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LevelResult:
    concurrency: int
    run: int
    ceiling: ClientRun
    gateway: ClientRun
    drained: Drained
    tickets: int
    acks: int
    quarantined: list[tuple[int, str]]
    memory: Memory
    # CPU seconds each kind of process spent on this level's messages.
    cpu: Counter[str]
    exit_code: int | None
    log_tail: str
    blobs: Blobs
    # Status pages and /metrics scrapes the page readers got while the mail came in.
    pages: int = 0

    def cpu_ms_per_message(self, role: str) -> str:
        if role not in self.cpu:
            return "-"
        return f"{self.cpu[role] * 1000 / max(self.gateway.accepted, 1):.2f}"

    @property
    def quarantined_count(self) -> int:
        return sum(count for count, _ in self.quarantined)

    @property
    def end_to_end_rate(self) -> float | None:
        complete = self.drained.complete_after
        return self.gateway.accepted / complete if complete else None

    @property
    def problems(self) -> list[str]:
        found = []
        if self.gateway.failed or self.ceiling.failed or self.ceiling.refused:
            found.append(
                f"sends failed: {self.gateway.failed} to the gateway, "
                f"{self.ceiling.failed + sum(self.ceiling.refused.values())} to the "
                "null server"
            )
        if self.gateway.refused:
            found.append(f"refused: {dict(self.gateway.refused)}")
        if self.drained.complete_after is None:
            found.append(f"not drained: {self.tickets} tickets, {self.acks} acks")
        for count, reason in self.quarantined:
            found.append(f"{count} quarantined: {reason}")
        if self.exit_code != 0:
            found.append(f"exit on SIGTERM: {self.exit_code}")
        return found


def run_level(
    corpus: Sequence[Mail],
    concurrency: int,
    run: int,
    timeout: float,
    keep: bool,
    settings: dict[str, str],
    page_readers: int = 0,
    postgres: PostgresServer | None = None,
) -> LevelResult:
    progress(f"concurrency {concurrency}, run {run}: ceiling")
    with running_null_server() as null_port:
        ceiling = send_corpus(null_port, corpus, concurrency, timeout)
    progress(f"concurrency {concurrency}: gateway")
    workdir = Path(tempfile.mkdtemp(prefix=f"gateway-bench-c{concurrency}-"))
    try:
        with running_sink() as (sink_port, sink), gateway_database(postgres) as database:
            return measure_gateway(
                corpus,
                concurrency,
                run,
                workdir,
                sink_port,
                sink,
                ceiling,
                timeout,
                settings | database,
                page_readers,
                postgres,
            )
    finally:
        if keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure_gateway(
    corpus: Sequence[Mail],
    concurrency: int,
    run: int,
    workdir: Path,
    sink_port: int,
    sink: CountingHandler,
    ceiling: ClientRun,
    timeout: float,
    settings: dict[str, str],
    page_readers: int = 0,
    postgres: PostgresServer | None = None,
) -> LevelResult:
    web = f"{HOST}:{free_port()}"
    if page_readers:
        settings = settings | {"GATEWAY_HTTP_LISTEN": web, "GATEWAY_PUBLIC_URL": f"http://{web}"}
    gateway = start_gateway(workdir, sink_port, settings)
    try:
        progress(f"  gateway pid {gateway.process.pid}, data in {gateway.data_dir}")
        cpu_before = cpu_by_role(gateway.process.pid)
        postgres_before = postgres_cpu_seconds(postgres)
        polling_before = postgres_cpu_seconds(postgres, own=True)
        with reading_pages(f"http://{web}", page_readers) as pages_read:
            sent = send_corpus(gateway.port, corpus, concurrency, timeout)
            drained = wait_until_drained(gateway, sink, sent.accepted, sent.started, timeout)
        cpu = cpu_by_role(gateway.process.pid)
        cpu.subtract(cpu_before)
        if postgres is not None:
            cpu["postgres"] = postgres_cpu_seconds(postgres) - postgres_before
            cpu["polling"] = postgres_cpu_seconds(postgres, own=True) - polling_before
        tickets = count_filed(gateway.database_url).tickets
        quarantined = quarantine_reasons(gateway.database_url)
        blobs = count_blobs(gateway)
        memory = gateway_memory(gateway.process.pid)
    finally:
        exit_code = stop_process(gateway.process)
    return LevelResult(
        concurrency,
        run,
        ceiling,
        sent,
        drained,
        tickets,
        sink.count,
        quarantined,
        memory,
        cpu,
        exit_code,
        log_tail(gateway.log_path) if exit_code != 0 else "",
        blobs,
        sum(pages_read),
    )


@contextmanager
def reading_pages(base: str, readers: int) -> Iterator[list[int]]:
    """`readers` processes reading the first ticket's status page and /metrics in a loop,
    as customers and a scraper would while mail comes in; yields, once they are stopped,
    how many answers each got."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--read-pages", base],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(readers)
    ]
    counts: list[int] = []
    try:
        yield counts
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=STOP_TIMEOUT)
            counts.append(int(out.strip() or 0))


def read_pages(base: str) -> int:
    """The page reader's loop, until SIGTERM; prints how many answers it got."""
    sys.path.insert(0, str(REPOSITORY))
    import urllib.error
    import urllib.request

    from gateway.links import status_token

    # A reader is a client, not the gateway: it yields the cores to what is measured.
    os.nice(19)
    page = f"{base}/t/{status_token(b'bench', 1, 1, 0)}"
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    answers, every = 0, 1.0 / PAGES_PER_SECOND_PER_READER
    next_at = time.monotonic()
    while not stopping.is_set():
        for url in (page, page, page, f"{base}/metrics"):
            stopping.wait(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + every, time.monotonic() - 1.0)
            try:
                with urllib.request.urlopen(url, timeout=10) as reply:
                    reply.read()
                answers += 1
            except (urllib.error.URLError, OSError):
                pass  # Not listening yet, or the first ticket not filed.
    print(answers)
    return 0


# --- one large message; a long run ---------------------------------------------------------


@contextmanager
def fresh_gateway(
    label: str, keep: bool, settings: dict[str, str], postgres: PostgresServer | None
) -> Iterator[tuple[GatewayProcess, CountingHandler]]:
    """A gateway on a fresh data dir (and database) with a counting sink as its relay,
    stopped after."""
    workdir = Path(tempfile.mkdtemp(prefix=f"gateway-bench-{label}-"))
    try:
        with running_sink() as (sink_port, sink), gateway_database(postgres) as database:
            gateway = start_gateway(workdir, sink_port, settings | database)
            try:
                yield gateway, sink
            finally:
                if stop_process(gateway.process) != 0:
                    progress(
                        f"{label}: gateway did not stop cleanly:\n{log_tail(gateway.log_path)}"
                    )
    finally:
        if keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_big(
    megabytes: float,
    seed: int,
    timeout: float,
    keep: bool,
    settings: dict[str, str],
    postgres: PostgresServer | None,
) -> bool:
    """One message with a large attachment: its latency and every process's peak RSS."""
    mail = big_mail(megabytes, seed)
    progress(f"one message of {mail.size / 2**20:.1f} MiB")
    with fresh_gateway("big", keep, settings, postgres) as (gateway, sink):
        sent = send_corpus(gateway.port, [mail], 1, timeout)
        drained = wait_until_drained(gateway, sink, sent.accepted, sent.started, timeout)
        memory = gateway_memory(gateway.process.pid)
    limit = rss_target_mib(mail.size)
    met = max(memory.listener, memory.worker) / 1024 < limit
    print(
        f"one message of {mail.size / 2**20:.1f} MiB: DATA→250 "
        f"{ms(max(sent.latencies, default=0.0))} ms, ticket after "
        f"{seconds(drained.tickets_after)} s, acknowledgement after "
        f"{seconds(drained.acks_after)} s; peak RSS listener {mib(memory.listener)} MiB, "
        f"worker {mib(memory.worker)} MiB, all processes PSS {mib(memory.all_pss)} MiB "
        f"(target < {limit:.0f} MiB each: {'met' if met else 'MISSED'})"
    )
    return sent.accepted == 1 and drained.complete_after is not None


@dataclass(frozen=True, slots=True)
class Sample:
    handled: int
    listener_kib: int
    worker_kib: int


def sample_memory(gateway: GatewayProcess, stop: threading.Event, samples: list[Sample]) -> None:
    while not stop.wait(1.0):
        now = gateway_memory(gateway.process.pid, "VmRSS")
        samples.append(Sample(count_filed(gateway.database_url).handled, now.listener, now.worker))


def run_soak(
    count: int,
    concurrency: int,
    seed: int,
    timeout: float,
    keep: bool,
    settings: dict[str, str],
    postgres: PostgresServer | None,
) -> bool:
    """`count` messages made on demand: is the memory of each process flat over the run?"""
    progress(f"soak: {count} messages at concurrency {concurrency}")
    samples: list[Sample] = []
    with fresh_gateway("soak", keep, settings, postgres) as (gateway, sink):
        stop = threading.Event()
        sampler = threading.Thread(target=sample_memory, args=(gateway, stop, samples))
        sampler.start()
        try:
            sent = send_corpus(
                gateway.port, iter_corpus(count, random.Random(seed)), concurrency, timeout
            )
            drained = wait_until_drained(gateway, sink, sent.accepted, sent.started, timeout)
        finally:
            stop.set()
            sampler.join()
    print(
        f"soak: {sent.accepted} of {count} accepted, end to end "
        f"{rate(sent.accepted / drained.complete_after if drained.complete_after else None)}"
        f" msg/s, DATA→250 p99 {ms(percentile(sent.latencies, 0.99))} ms"
    )
    marks = [at_share(samples, share, sent.accepted) for share in (0.1, 0.25, 0.5, 0.75, 1.0)]
    print(
        "  RSS MiB after 10% / 25% / 50% / 75% / 100% of the messages: listener "
        + " / ".join(mib(m.listener_kib) for m in marks)
        + "; worker "
        + " / ".join(mib(m.worker_kib) for m in marks)
    )
    growth = (
        max(
            marks[-1].listener_kib - marks[1].listener_kib,
            marks[-1].worker_kib - marks[1].worker_kib,
        )
        / 1024
    )
    flat = growth < SOAK_FLAT_MIB
    print(
        f"  growth from 25% to the end: {growth:.1f} MiB "
        f"(flat means under {SOAK_FLAT_MIB} MiB: {'met' if flat else 'MISSED'})"
    )
    return drained.complete_after is not None


def at_share(samples: Sequence[Sample], share: float, total: int) -> Sample:
    """The first sample taken once `share` of the messages had been handled."""
    wanted = share * total
    return next(
        (s for s in samples if s.handled >= wanted), samples[-1] if samples else Sample(0, 0, 0)
    )


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the report -----------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def ratio(part: float | None, whole: float) -> str:
    return "-" if part is None or not whole else f"{part / whole:.1%}"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def seconds(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.2f}"


Row = tuple[str, Callable[[LevelResult], str]]
ROWS: tuple[Row, ...] = (
    ("ceiling accepted msg/s", lambda r: rate(r.ceiling.rate)),
    ("gateway accepted msg/s", lambda r: rate(r.gateway.rate)),
    ("  / ceiling", lambda r: ratio(r.gateway.rate, r.ceiling.rate)),
    ("gateway end-to-end msg/s", lambda r: rate(r.end_to_end_rate)),
    ("  / ceiling", lambda r: ratio(r.end_to_end_rate, r.ceiling.rate)),
    ("last 250 after s", lambda r: f"{r.gateway.elapsed:.2f}"),
    ("all tickets after s", lambda r: seconds(r.drained.tickets_after)),
    ("all acks at sink after s", lambda r: seconds(r.drained.acks_after)),
    ("DATA→250 p50 ms", lambda r: ms(percentile(r.gateway.latencies, 0.50))),
    ("DATA→250 p90 ms", lambda r: ms(percentile(r.gateway.latencies, 0.90))),
    ("DATA→250 p99 ms", lambda r: ms(percentile(r.gateway.latencies, 0.99))),
    ("DATA→250 max ms", lambda r: ms(max(r.gateway.latencies, default=0.0))),
    ("ceiling DATA→250 p50 ms", lambda r: ms(percentile(r.ceiling.latencies, 0.50))),
    ("ceiling DATA→250 p99 ms", lambda r: ms(percentile(r.ceiling.latencies, 0.99))),
    (
        "accepted / refused / failed",
        lambda r: f"{r.gateway.accepted}/{sum(r.gateway.refused.values())}/{r.gateway.failed}",
    ),
    ("tickets / acks / quarantined", lambda r: f"{r.tickets}/{r.acks}/{r.quarantined_count}"),
    ("pages read meanwhile", lambda r: str(r.pages)),
    ("listener peak RSS MiB", lambda r: mib(r.memory.listener)),
    ("worker peak RSS MiB", lambda r: mib(r.memory.worker)),
    ("all processes PSS MiB", lambda r: mib(r.memory.all_pss)),
    ("CPU ms/msg: listener", lambda r: r.cpu_ms_per_message("listener")),
    ("  worker", lambda r: r.cpu_ms_per_message("worker")),
    ("  parser", lambda r: r.cpu_ms_per_message("parser")),
    ("  postgres (not our polling)", lambda r: r.cpu_ms_per_message("postgres")),
    ("  postgres: our polling", lambda r: r.cpu_ms_per_message("polling")),
    ("blob rows / chunks / files", lambda r: f"{r.blobs.rows}/{r.blobs.chunks}/{r.blobs.files}"),
    ("exit code on SIGTERM", lambda r: "killed" if r.exit_code is None else str(r.exit_code)),
)


def print_report(corpus: Sequence[Mail], results: Sequence[LevelResult], database: str) -> None:
    kinds = Counter(mail.kind for mail in corpus)
    total = sum(mail.size for mail in corpus)
    print(
        f"{len(corpus)} messages ({kinds['small']} small, {kinds['large']} ~100 KB, "
        f"{kinds['attachment']} with an attachment; {total / 2**20:.1f} MiB), "
        f"{os.cpu_count()} CPUs, {database}"
    )
    repeated = any(r.run > 1 for r in results)
    heads = [f"c={r.concurrency}" + (f" #{r.run}" if repeated else "") for r in results]
    cells = [[show(r) for r in results] for _, show in ROWS]
    label_width = max(len(label) for label, _ in ROWS)
    widths = [max(len(head), *(len(row[i]) for row in cells)) for i, head in enumerate(heads)]
    print(" " * label_width + "".join(f"  {h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for (label, _), row in zip(ROWS, cells, strict=True):
        print(
            f"{label:<{label_width}}"
            + "".join(f"  {v:>{w}}" for v, w in zip(row, widths, strict=True))
        )
    rss_limit = rss_target_mib(max(mail.size for mail in corpus))
    print(
        f"targets: end to end >= {TARGET_SHARE:.0%} of the ceiling, DATA→250 p99 < "
        f"{TARGET_P99_SECONDS * 1000:.0f} ms, each process's peak RSS < {rss_limit:.0f} MiB "
        "(3 × the largest message + 100 MiB)"
    )
    for result in results:
        print(
            f"  c={result.concurrency}: "
            + ", ".join(
                f"{name} {'met' if met else 'MISSED'}"
                for name, met in target_checks(result, rss_limit)
            )
        )
    if repeated:
        print_spread(results)
    for result in results:
        for problem in result.problems:
            print(f"c={result.concurrency}: {problem}")
        if result.log_tail:
            print(f"c={result.concurrency}: gateway log ends:\n{result.log_tail}")


def print_spread(results: Sequence[LevelResult]) -> None:
    """The machine's noise: min / median / max over the runs of each level."""
    print("over the runs, min / median / max:")
    for level in sorted({r.concurrency for r in results}):
        runs = [r for r in results if r.concurrency == level]
        figures = {
            "end-to-end msg/s": [r.end_to_end_rate or 0.0 for r in runs],
            "ceiling msg/s": [r.ceiling.rate for r in runs],
            "DATA→250 p99 ms": [percentile(r.gateway.latencies, 0.99) * 1000 for r in runs],
        }
        print(
            f"  c={level}: "
            + "; ".join(
                f"{name} {min(v):.1f} / {statistics.median(v):.1f} / {max(v):.1f}"
                for name, v in figures.items()
            )
        )


def rss_target_mib(largest_message_bytes: int) -> float:
    return 3 * largest_message_bytes / 2**20 + TARGET_RSS_BASE_MIB


def target_checks(result: LevelResult, rss_limit_mib: float) -> list[tuple[str, bool]]:
    end_to_end = result.end_to_end_rate
    peak = max(result.memory.listener, result.memory.worker) / 1024
    return [
        ("end to end", end_to_end is not None and end_to_end >= TARGET_SHARE * result.ceiling.rate),
        ("p99", percentile(result.gateway.latencies, 0.99) < TARGET_P99_SECONDS),
        ("peak RSS", peak < rss_limit_mib),
    ]


# --- the command ----------------------------------------------------------------------------


def concurrency_list(value: str) -> list[int]:
    try:
        levels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,4,16, got {value!r}") from None
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {value!r}")
    return levels


def setting(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name.startswith("GATEWAY_"):
        raise argparse.ArgumentTypeError(f"expected GATEWAY_NAME=VALUE, got {value!r}")
    return name, text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500, help="messages per level")
    parser.add_argument(
        "--concurrency",
        type=concurrency_list,
        default=[1, 4, 16],
        help="client connections, a comma list; each level gets a fresh gateway (default 1,4,16)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds each phase of a level (sending, then waiting for "
        "tickets and acknowledgements) may take (default 300)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for the message corpus")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each level this many times and print min/median/max",
    )
    parser.add_argument(
        "--big",
        type=float,
        default=0.0,
        metavar="MIB",
        help="also send one message with an attachment of MIB MiB (e.g. 25)",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        metavar="N",
        help="also send N messages made on demand at the highest concurrency "
        "and print each process's RSS over the run (e.g. 20000)",
    )
    parser.add_argument(
        "--setting",
        dest="settings",
        action="append",
        type=setting,
        default=[],
        metavar="GATEWAY_NAME=VALUE",
        help="a setting for the gateway under test, e.g. GATEWAY_WORKERS=2",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep each level's data dir and gateway log"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a private PostgreSQL cluster and give each gateway a fresh database on it "
        "(blobs then go to the database unless GATEWAY_BLOB_STORE=directory is set)",
    )
    parser.add_argument(
        "--page-readers",
        type=int,
        default=0,
        metavar="N",
        help="while mail comes in, N processes read a status page and /metrics, "
        f"{PAGES_PER_SECOND_PER_READER:g} a second each (the web service's cost to intake)",
    )
    parser.add_argument("--null-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--read-pages", metavar="URL", help=argparse.SUPPRESS)
    return parser


def describe_database(settings: dict[str, str], postgres: PostgresServer | None) -> str:
    store = settings.get("GATEWAY_BLOB_STORE") or ("database" if postgres else "directory")
    kind = "SQLite" if postgres is None else f"PostgreSQL {postgres.bin.parts[-2]} (durable)"
    return f"{kind}, blob store {store}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.settings = dict(args.settings)
    if args.null_server is not None:
        return serve_null(args.null_server)
    if args.read_pages is not None:
        return read_pages(args.read_pages)
    if args.messages < 1:
        raise SystemExit("throughput: --messages must be positive")
    if not GATEWAY.exists():
        raise SystemExit(f"throughput: no gateway command at {GATEWAY}; run with .venv/bin/python")
    results: list[LevelResult] = []
    extras_ok = True
    postgres: PostgresServer | None = None
    try:
        if args.postgres:
            progress("starting PostgreSQL")
            postgres = start_postgres()
        corpus = build_corpus(args.messages, args.seed)
        for level in args.concurrency:
            for run in range(1, args.repeat + 1):
                results.append(
                    run_level(
                        corpus,
                        level,
                        run,
                        args.timeout,
                        args.keep,
                        args.settings,
                        args.page_readers,
                        postgres,
                    )
                )
        print_report(corpus, results, describe_database(args.settings, postgres))
        if args.big:
            extras_ok &= run_big(
                args.big, args.seed, args.timeout, args.keep, args.settings, postgres
            )
        if args.soak:
            extras_ok &= run_soak(
                args.soak,
                max(args.concurrency),
                args.seed,
                max(args.timeout, args.soak / 10),
                args.keep,
                args.settings,
                postgres,
            )
    except BenchError as exc:
        print(f"throughput: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("throughput: interrupted", file=sys.stderr)
        return 130
    finally:
        if postgres is not None:
            postgres.stop()
    return 1 if any(result.problems for result in results) or not extras_ok else 0


if __name__ == "__main__":
    sys.exit(main())
