"""Hosts that share nothing but the database: the blob stores, the secret, moving an
installation's blobs into the database, and a host killed under load while it read the
mailbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

from gateway import imap_inbound
from gateway.app import build_gateway, make_mailbox_reader
from gateway.blob_moves import count_not_moved
from gateway.hosts import HostLocks
from gateway.setting_values import parse_imap_url
from gateway.settings import Settings
from storage.blob_table import DatabaseBlobs
from storage.blobs import CHUNK_BYTES, BlobDirectory, BlobStore, open_blob, sha256_hex
from storage.models import (
    Attachment,
    BlobChunk,
    ReceiptOutcome,
    SharedSecret,
    StoredBlob,
    Ticket,
)
from storage.models import Receipt as ReceiptRow
from storage.session import make_engine
from tests.conftest import (
    SUPPORT,
    DirectGateway,
    ServeProcess,
    Sink,
    free_port,
    gateway_env,
    run_gateway,
    serving_hosts,
    wait_until,
)
from tests.dovecot import Dovecot
from tests.postgres import PostgresServer
from tests.schema import current_schema
from tests.test_faults import customer_mail

# -- the blob stores --------------------------------------------------------------------------


@pytest.fixture(params=["directory", "database"])
def blob_store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[BlobStore]:
    """Each store, on each database."""
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings.changed(blob_store=request.param), renders_mail=False)
    yield gateway.blobs
    gateway.engine.dispose()


def test_a_blob_comes_back_whole_in_chunks_and_is_kept_once(blob_store: BlobStore) -> None:
    data = os.urandom(2 * CHUNK_BYTES + 12345)
    digest = blob_store.put(data)
    assert digest == sha256_hex(data)
    assert blob_store.put(data) == digest, "the same bytes again are the same blob"
    assert blob_store.get(digest) == data
    pieces = list(blob_store.chunks(digest))
    assert [len(piece) for piece in pieces] == [CHUNK_BYTES, CHUNK_BYTES, 12345]
    assert blob_store.size(digest) == len(data) and blob_store.exists(digest)
    with open_blob(blob_store, digest) as stored:
        assert stored.read(10) == data[:10] and stored.read() == data[10:]
    assert blob_store.starting_with(digest[:6]) == [digest]
    small = blob_store.put(b"tiny log line\n")
    assert blob_store.get(small) == b"tiny log line\n"
    missing = "0" * 64
    assert blob_store.size(missing) is None and not blob_store.exists(missing)
    with pytest.raises(FileNotFoundError):
        open_blob(blob_store, missing)
    with pytest.raises(ValueError):
        blob_store.starting_with("xyz")
    if isinstance(blob_store, DatabaseBlobs):
        with Session(blob_store.engine) as session:
            rows = session.scalar(select(func.count()).select_from(StoredBlob))
            biggest = session.scalar(select(func.max(func.length(BlobChunk.data))))
        assert rows == 2 and biggest == CHUNK_BYTES


def test_two_hosts_keeping_one_blob_at_once_keep_it_once(settings: Settings) -> None:
    current_schema(settings.effective_database_url)
    url = settings.effective_database_url
    stores = [DatabaseBlobs(url), DatabaseBlobs(url)]
    data = os.urandom(3 * CHUNK_BYTES)
    start = threading.Barrier(2)

    def keep(store: DatabaseBlobs) -> str:
        start.wait()
        return store.put(data)

    with ThreadPoolExecutor(2) as pool:
        digests = list(pool.map(keep, stores))
    assert digests == [sha256_hex(data)] * 2
    assert stores[1].get(digests[0]) == data
    with Session(stores[0].engine) as session:
        assert session.scalar(select(func.count()).select_from(BlobChunk)) == 3
    for store in stores:
        store.engine.dispose()


# -- the secret ---------------------------------------------------------------------------------


def test_hosts_started_together_sign_with_one_secret_kept_in_the_database(
    settings: Settings,
) -> None:
    current_schema(settings.effective_database_url)
    url = settings.effective_database_url
    hosts = [
        settings.changed(
            data_dir=settings.data_dir.parent / f"host-{n}", database_url=url, secret=""
        )
        for n in range(4)
    ]
    start = threading.Barrier(len(hosts))

    def start_host(host: Settings) -> bytes:
        start.wait()
        gateway = build_gateway(host, renders_mail=False)
        gateway.engine.dispose()
        return gateway.secret

    with ThreadPoolExecutor(len(hosts)) as pool:
        secrets = set(pool.map(start_host, hosts))
    assert len(secrets) == 1 and len(secrets.pop()) == 64
    assert not any((host.data_dir / "secret.key").exists() for host in hosts)


def test_the_key_file_of_an_earlier_installation_becomes_the_shared_secret(
    settings: Settings,
) -> None:
    settings = settings.changed(secret="")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "secret.key").write_text("a3f0" * 16 + "\n")
    current_schema(settings.effective_database_url)
    first = build_gateway(settings, renders_mail=False)
    assert first.secret == ("a3f0" * 16).encode(), "tokens mailed before still verify"
    other = settings.changed(
        data_dir=settings.data_dir.parent / "new-host",
        database_url=settings.effective_database_url,
    )
    second = build_gateway(other, renders_mail=False)
    assert second.secret == first.secret
    with first.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SharedSecret)) == 1
    configured = build_gateway(settings.changed(secret="from-the-settings"), renders_mail=False)
    assert configured.secret == b"from-the-settings"
    for gateway in (first, second, configured):
        gateway.engine.dispose()


# -- moving blobs into the database ----------------------------------------------------------

MOVED_BLOBS = 24
MOVED_BLOB_BYTES = 4 * 1024 * 1024


def fill_folder(folder: BlobDirectory, count: int) -> list[str]:
    """`count` blobs of a few chunks each, as an installation on the folder store has."""
    return [
        folder.put(hashlib.sha512(str(n).encode()).digest() * (MOVED_BLOB_BYTES // 64))
        for n in range(count)
    ]


def stored_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT count(*) FROM blobs WHERE chunks > 0")) or 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_blobs_migrate_cut_short_resumes_and_verifies_every_digest(
    tmp_path: Path, postgres: PostgresServer, sink: Sink
) -> None:
    url = postgres.new_database()
    env = gateway_env(tmp_path / "var", GATEWAY_DATABASE_URL=url)
    folder = BlobDirectory(tmp_path / "var" / "blobs")
    digests = fill_folder(folder, MOVED_BLOBS)
    damaged = folder.put(b"the bytes this name was made from")
    folder.path_for(damaged).write_bytes(b"changed on disk since")
    # Not moved yet: the database store still reads them from the folder.
    shown = run_gateway(env, "attachment", digests[3][:12], "-o", str(tmp_path / "out"))
    assert shown.returncode == 0 and sha256_hex((tmp_path / "out").read_bytes()) == digests[3]

    moving = subprocess.Popen(
        [sys.executable, "-m", "gateway", "blobs", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_until(lambda: stored_count(url) >= 2, 60, "the move to begin")
    moving.send_signal(signal.SIGKILL)
    moving.wait(10)
    cut_at = stored_count(url)
    assert 2 <= cut_at < MOVED_BLOBS, "killed half-way"

    resumed = run_gateway(env, "blobs", "migrate", check=False)
    assert resumed.returncode == 1
    assert f"moved {MOVED_BLOBS - cut_at} blob(s)" in resumed.stdout
    assert damaged in resumed.stderr and "do not hold the bytes" in resumed.stderr
    assert "can be removed" not in resumed.stdout
    again = run_gateway(env, "blobs", "migrate", check=False)
    assert "moved 0 blob(s)" in again.stdout and "can be removed" not in again.stdout

    store = DatabaseBlobs(url)
    for digest in digests:
        assert sha256_hex(store.get(digest)) == digest
    assert stored_count(url) == MOVED_BLOBS and not store.kept_of([damaged])
    store.engine.dispose()
    folder.path_for(damaged).unlink()
    done = run_gateway(env, "blobs", "migrate")
    assert f"nothing is left to move: {folder.root}" in done.stdout


@pytest.mark.postgres
def test_serve_names_the_blobs_left_to_move_and_the_command(
    tmp_path: Path, postgres: PostgresServer, sink: Sink
) -> None:
    url = postgres.new_database()
    data_dir = tmp_path / "var"
    fill_folder(BlobDirectory(data_dir / "blobs"), 3)
    port = free_port()
    env = gateway_env(data_dir, GATEWAY_DATABASE_URL=url, GATEWAY_SMTP_LISTEN=f"127.0.0.1:{port}")
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = ServeProcess(env, port, log)
        serve.start()
        try:
            wait_until(lambda: b"still read from" in log_path.read_bytes(), 15, "the notice")
        finally:
            serve.stop()
    assert b"3 blob(s) are still read from" in log_path.read_bytes()
    assert b"gateway blobs migrate" in log_path.read_bytes()
    settings = Settings().changed(data_dir=data_dir, database_url=url)
    assert count_not_moved(build_gateway(settings, renders_mail=False).blobs) == 3


# -- a large attachment through the database store ------------------------------------------

LARGE_ATTACHMENT = 35 * 1024 * 1024


def mail_with_log(size: int) -> bytes:
    message = EmailMessage()
    message["From"] = "dev@bigstream.example"
    message["To"] = SUPPORT
    message["Subject"] = "Crash log from the pusher"
    message["Message-ID"] = "<large-log@bigstream.example>"
    message.set_content("The full device log is attached.\n")
    payload = (hashlib.sha256(b"log").hexdigest().encode() + b"\n") * (size // 65)
    message.add_attachment(
        payload + b"x" * (size - len(payload)),
        maintype="application",
        subtype="octet-stream",
        filename="device.log",
    )
    return message.as_bytes()


def peak_memory_of_children(session_id: int) -> dict[str, int]:
    """The peak resident memory (VmHWM, KiB) of each process in `session_id` by name."""
    peaks: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session_id:
                continue
            status = (entry / "status").read_text()
            name = (entry / "comm").read_text().strip()
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[f"{name}[{entry.name}]"] = int(line.split()[1])
    return peaks


@pytest.mark.postgres
def test_a_35_mib_attachment_goes_through_the_database_store_in_chunks(
    tmp_path: Path, postgres: PostgresServer, sink: Sink
) -> None:
    url = postgres.new_database()
    port = free_port()
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_DATABASE_URL=url,
        GATEWAY_SMTP_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
        GATEWAY_MAX_MESSAGE_BYTES=str(60 * 1024 * 1024),
    )
    raw = mail_with_log(LARGE_ATTACHMENT)
    with (tmp_path / "serve.log").open("wb") as log:
        serve = ServeProcess(env, port, log)
        serve.start()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                client.sendmail("dev@bigstream.example", [SUPPORT], raw)
            engine = create_engine(url)
            wait_until(lambda: attachment_rows(engine), 120, "the attachment filed")
            assert serve.process is not None
            peaks = peak_memory_of_children(serve.process.pid)
            print("\npeak resident memory (KiB) with a 35 MiB attachment:", peaks)
        finally:
            serve.stop()
    # The benchmark's target (bench/throughput.py) is three times the message plus 100 MiB,
    # which the worker meets by a few MiB (bench/README.md); the test leaves 50 MiB more for
    # other machines' allocators, and still fails should the whole message be held once more.
    limit_kib = (3 * len(raw) + 150 * 2**20) // 1024
    assert any(name.startswith("gateway-worker[") for name in peaks), peaks
    assert max(peaks.values()) < limit_kib, f"a peak over {limit_kib} KiB: {peaks}"
    [(digest, size)] = attachment_rows(engine)
    with Session(engine) as session:
        longest = session.scalar(select(func.max(func.length(BlobChunk.data))))
        chunks = session.scalar(select(StoredBlob.chunks).filter_by(sha256=digest))
    engine.dispose()
    assert size == LARGE_ATTACHMENT and longest == CHUNK_BYTES and chunks == 35
    shown = run_gateway(env, "attachment", digest[:16], "-o", str(tmp_path / "device.log"))
    assert shown.returncode == 0
    assert sha256_hex((tmp_path / "device.log").read_bytes()) == digest
    assert not (tmp_path / "var" / "blobs").exists()


def attachment_rows(engine: Engine) -> list[tuple[str, int]]:
    with Session(engine) as session:
        return [
            (digest, size)
            for digest, size in session.execute(select(Attachment.sha256, Attachment.size))
        ]


# -- a host killed under load while it reads the mailbox ---------------------------------------

KILL_HOSTS = ("127.0.0.4", "127.0.0.5")
KILL_MESSAGES = 150


@dataclass
class Sent:
    """Which messages a host answered `250` for."""

    accepted: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, host: str, number: int) -> None:
        with self.lock:
            self.accepted.setdefault(host, []).append(number)


def send_as_an_mta(numbers: list[int], hosts: list[tuple[str, int]], sent: Sent) -> None:
    """Each message to the first host that takes it, as an MTA tries the next MX."""
    for number in numbers:
        for host, port in hosts:
            try:
                with smtplib.SMTP(host, port, timeout=10) as client:
                    client.sendmail("client@customer.example", [SUPPORT], customer_mail(number))
            except (OSError, smtplib.SMTPException):
                continue
            sent.record(host, number)
            break


@pytest.mark.postgres
def test_a_host_killed_under_load_loses_nothing_and_its_mailbox_is_read_by_another(
    tmp_path: Path, postgres: PostgresServer, sink: Sink, dovecot: Dovecot
) -> None:
    url = postgres.new_database()
    with serving_hosts(
        tmp_path,
        KILL_HOSTS,
        GATEWAY_DATABASE_URL=url,
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
        GATEWAY_IMAP_URL=dovecot.url(),
        GATEWAY_DELIVERY_BACKOFF_SECONDS="0.2",
    ) as (first, second):
        first.start()
        wait_until(lambda: b"IMAP intake reading" in (tmp_path / "serve-1.log").read_bytes())
        second.start()
        wait_until(
            lambda: b"another gateway reads" in (tmp_path / "serve-2.log").read_bytes(),
            15,
            "the second host to stand by for the mailbox",
        )
        sent = Sent()
        addresses = [(first.host, first.port), (second.host, second.port)]
        numbers = list(range(KILL_MESSAGES))
        clients = [
            threading.Thread(
                target=send_as_an_mta,
                args=(numbers[i::4], addresses if i % 2 else addresses[::-1], sent),
            )
            for i in range(4)
        ]
        for client in clients:
            client.start()
        wait_until(lambda: sum(map(len, sent.accepted.values())) >= KILL_MESSAGES // 3, 60)
        first.kill()
        killed_at = time.monotonic()
        dovecot.append(customer_mail(9000))
        wait_until(
            lambda: all(b"\\Seen" in flags for flags in dovecot.messages().values()),
            10,
            "the other host to read the mailbox",
        )
        took_over = time.monotonic() - killed_at
        for client in clients:
            client.join(120)
        engine = create_engine(url)
        accepted = sorted(sent.accepted[second.host] + [9000])
        wait_until(lambda: filed(engine) >= set(accepted), 60, "the survivor's mail filed")
        # The killed host comes back with its data directory: what it had spooled is filed.
        first.start()
        everything = sorted(accepted + sent.accepted.get(first.host, []))
        wait_until(lambda: filed(engine) >= set(everything), 60, "the killed host's spool")
        time.sleep(1.0)
        with Session(engine) as session:
            subjects = Counter(session.scalars(select(Ticket.subject)))
            outcomes = Counter(session.scalars(select(ReceiptRow.outcome)))
        engine.dispose()
    assert all(subjects[f"Fault case {n:04d}"] == 1 for n in everything), subjects
    assert sum(subjects.values()) == len(subjects), "no ticket twice"
    # Each message filed once: a new ticket each, and one that reached both hosts (its `250`
    # cut off by the kill, so the client sent it to the other) a duplicate the second time.
    assert outcomes[ReceiptOutcome.NEW_TICKET] == len(subjects), outcomes
    assert set(outcomes) <= {ReceiptOutcome.NEW_TICKET, ReceiptOutcome.DUPLICATE}, outcomes
    # (A message the kill cut off before its `250` may leave a temporary file, which
    # `serve` sweeps away once it is an hour old.)
    for n in (1, 2):
        assert not list((tmp_path / f"host-{n}" / "spool" / "queue").glob("*.msg"))
    print(
        f"\nkill -9 under load: {len(sent.accepted.get(first.host, []))} accepted by the "
        f"killed host, {len(sent.accepted[second.host])} by the survivor, all filed once "
        f"({dict(outcomes)}); mailbox read by the survivor {took_over:.1f}s after the kill"
    )


def filed(engine: Engine) -> set[int]:
    """The numbers of the fault cases that have a ticket."""
    with Session(engine) as session:
        subjects = session.scalars(select(Ticket.subject)).all()
    return {int(subject.rsplit(" ", 1)[1]) for subject in subjects if "Fault case" in subject}


# -- the mailbox's lock ---------------------------------------------------------------------


POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@POSTGRES_ONLY
def test_a_reader_whose_lock_connection_breaks_stops_and_the_mailbox_is_read_again(
    make_direct_gateway: Callable[..., DirectGateway],
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    direct = make_direct_gateway(imap=parse_imap_url("GATEWAY_IMAP_URL", dovecot.url()))
    first, second = make_mailbox_reader(direct.gateway), make_mailbox_reader(direct.gateway)
    assert first is not None and second is not None
    stop = threading.Event()
    readers = [
        threading.Thread(target=reader.run_alone, args=(stop, direct.gateway.locks))
        for reader in (first, second)
    ]
    readers[0].start()
    wait_until(lambda: first.state.last_pass_at is not None, 15, "the first reader's pass")
    readers[1].start()
    try:
        wait_until(lambda: second.state.standing_by, 15, "the second reader to stand by")
        [holder] = lock_holders(direct.gateway.engine)
        # The database ends the reader's lock session, as a restart or a failover would.
        with direct.gateway.engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
        wait_until(lambda: "lost the lock of" in caplog.text, 15, "the reader to see its lock lost")
        wait_until(lambda: lock_holders(direct.gateway.engine) not in ([], [holder]), 15)
        dovecot.append(customer_mail(1))
        wait_until(lambda: len(direct.gateway.spool.pending()) == 1, 15, "the mail spooled")
        time.sleep(1.0)
        assert len(direct.gateway.spool.pending()) == 1, "read by one reader only"
        assert len(lock_holders(direct.gateway.engine)) == 1
    finally:
        stop.set()
        for reader in readers:
            reader.join(20)
    assert not any(reader.is_alive() for reader in readers)


def lock_holders(engine: Engine) -> list[int]:
    """The backends that hold an advisory lock."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
            )
        )


class SwitchedRelay:
    """A TCP relay from a free loopback port to `target`, off until `switch_on()`: until then
    a connection there is refused, as by a database server that is down."""

    def __init__(self, target: int) -> None:
        self.port, self.target = free_port(), target
        self.stopping = threading.Event()

    def switch_on(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.2)
        threading.Thread(target=self.accept, args=(listener,), daemon=True).start()

    def accept(self, listener: socket.socket) -> None:
        with listener:
            while not self.stopping.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                server = socket.create_connection(("127.0.0.1", self.target))
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(target=pass_on, args=(source, sink), daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()


def pass_on(source: socket.socket, sink: socket.socket) -> None:
    """Bytes from `source` to `sink` until either end closes; then both are closed."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


@POSTGRES_ONLY
def test_a_reader_waits_out_a_database_it_cannot_reach(
    settings: Settings,
    postgres: PostgresServer,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A standby's lock attempt that finds no database is retried, not the end of it, and
    the mailbox is read only once the lock is taken."""
    # Its attempts every half second, not every 5: the retries, not the period, are tested.
    monkeypatch.setattr(imap_inbound, "TAKE_OVER_SECONDS", 0.5)
    gateway = build_gateway(
        settings.changed(imap=parse_imap_url("GATEWAY_IMAP_URL", dovecot.url())),
        renders_mail=False,
    )
    reader = make_mailbox_reader(gateway)
    assert reader is not None
    relay = SwitchedRelay(postgres.port)
    through_relay = make_url(settings.effective_database_url).set(port=relay.port)
    locks = HostLocks(
        make_engine(through_relay.render_as_string(hide_password=False)),
        settings.data_dir / "locks",
    )
    dovecot.append(customer_mail(1))
    stop = threading.Event()
    thread = threading.Thread(target=reader.run_alone, args=(stop, locks))
    thread.start()
    try:
        wait_until(
            lambda: caplog.text.count("waits for the mailbox's lock") >= 2,
            15,
            "a second attempt at the lock",
        )
        assert thread.is_alive(), "the intake outlives a database it cannot reach"
        assert not gateway.spool.pending(), "nothing is read without the lock"
        assert all(b"\\Seen" not in flags for flags in dovecot.messages().values())
        relay.switch_on()
        wait_until(lambda: gateway.spool.pending(), 15, "the mail read once the database is back")
    finally:
        stop.set()
        thread.join(15)
        relay.stop()
        locks.engine.dispose()
        gateway.engine.dispose()
    assert not thread.is_alive()
    assert len(gateway.spool.pending()) == 1
