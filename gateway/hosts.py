"""What the gateways on one database agree on through it, so that hosts share nothing else.

- The secret that signs reply tokens and links: `GATEWAY_SECRET`, else the one kept in the
  database, created by the first gateway to start (under an advisory lock on PostgreSQL,
  under SQLite's write lock there). An installation that kept it in `secret.key` in its data
  directory brings that key along, so the tokens it mailed still verify.
- Work only one gateway may do at a time (reading a mailbox): `HostLocks.exclusive`. On
  PostgreSQL it is an advisory lock held on a connection of its own, which the server
  frees when that connection ends, a killed host's too. The holder asks that connection
  every few seconds whether it still lives: a lock lost with it (a database restarted, a
  network cut) is `Hold.lost`, and the work stops, since another host may hold it now. A
  server gone silent fails that question within seconds (the client-side keepalives and
  TCP timeout of every PostgreSQL connection, `storage.session`), before the server's
  keepalives end the session and free the lock. On
  SQLite, whose gateways all run on the one host that has the file, it is an `flock` on a
  file in the data directory.

Each host's spool is its own, on its own disk, so its entries are still claimed with file
locks (`gateway.spool`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, insert, select, text

from gateway.database import database_errors
from gateway.errors import ConfigError
from storage.models import SharedSecret

log = logging.getLogger(__name__)

SECRET_NAME = "tokens"
# The width of `shared_secrets.value`.
SECRET_MAX_CHARACTERS = 256
# How often the holder of an advisory lock checks that its connection still lives.
LOCK_CHECK_SECONDS = 3.0
# A server-side keepalive on the lock's connection: the server frees the lock of a host
# that vanished without closing it (power lost, network gone) within about 10 seconds.
LOCK_KEEPALIVE = (
    "SET tcp_keepalives_idle = 4",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


def lock_key(name: str) -> int:
    """The advisory lock number for `name`: a signed 64-bit integer, as PostgreSQL takes."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def shared_secret(configured: str, engine: Engine, key_file: Path) -> bytes:
    """The configured secret, else the database's, kept there by the first gateway."""
    if configured:
        return configured.encode()
    with database_errors():
        return (kept_secret(engine) or create_secret(engine, key_file)).encode()


def kept_secret(engine: Engine) -> str | None:
    """The secret the database keeps, read without waiting for the lock that creates it:
    every command and every `gateway ingest` asks, and it is created only once."""
    with engine.connect() as connection:
        return connection.scalar(select(SharedSecret.value).filter_by(name=SECRET_NAME))


def create_secret(engine: Engine, key_file: Path) -> str:
    """Keep a secret in the database: `key_file`'s, else a new one. Under an advisory lock
    on PostgreSQL (SQLite's write lock there), read again under it: another gateway
    starting at the same time may have kept one since."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(SECRET_NAME)}
            )
        kept = connection.scalar(select(SharedSecret.value).filter_by(name=SECRET_NAME))
        if kept is None:
            kept = key_file_secret(key_file) or secrets.token_hex(32)
            connection.execute(
                insert(SharedSecret).values(
                    name=SECRET_NAME, value=kept, created_at=func.current_timestamp()
                )
            )
    return kept


def key_file_secret(key_file: Path) -> str | None:
    """The key an installation kept in its data directory before the database held it;
    `ConfigError` for one the database cannot keep as it is, as a new key would break
    every token and link already mailed."""
    try:
        key = key_file.read_bytes().strip()
    except FileNotFoundError:
        return None
    if not key:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        text = ""
    if not text or len(text) > SECRET_MAX_CHARACTERS:
        raise ConfigError(
            f"{key_file} holds no key of up to {SECRET_MAX_CHARACTERS} characters of UTF-8 "
            "text to keep in the database: set GATEWAY_SECRET to the key instead"
        )
    return text


class Hold:
    """A lock this process holds, or not (falsy); `lost` is set if it stops holding it."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.lost = threading.Event()

    def __bool__(self) -> bool:
        return self.held

    def until(self, stop: threading.Event) -> threading.Event:
        """An event set once `stop` is, or the lock is lost: how long to do the work."""
        ending = threading.Event()

        def watch() -> None:
            while not (stop.wait(0.5) or self.lost.is_set()):
                pass
            ending.set()

        threading.Thread(target=watch, name="lock-watch", daemon=True).start()
        return ending


@dataclass(frozen=True, slots=True)
class HostLocks:
    """Locks that let one gateway among all those on the database do a piece of work."""

    engine: Engine
    # Where SQLite's gateways keep their lock files.
    files: Path

    @contextmanager
    def exclusive(self, name: str) -> Iterator[Hold]:
        """Held while this process holds `name`; not when another gateway does."""
        if self.engine.dialect.name == "postgresql":
            with (
                database_errors(),
                self.engine.connect() as connection,
                advisory_lock(connection, name) as held,
            ):
                yield held
            return
        with file_lock(self.files, name) as held:
            yield held


@contextmanager
def advisory_lock(connection: Connection, name: str) -> Iterator[Hold]:
    """A session advisory lock on `connection`, outside any transaction (an idle
    transaction may be ended by the server's timeouts and would hold back its vacuum)."""
    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    for setting in LOCK_KEEPALIVE:
        connection.exec_driver_sql(setting)
    taken = connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)})
    hold, done = Hold(bool(taken)), threading.Event()
    watcher = threading.Thread(target=watch_lock, args=(connection, hold, done), daemon=True)
    if hold:
        watcher.start()
    try:
        yield hold
    finally:
        done.set()
        if hold:
            watcher.join()
        # Closed, not pooled: the server frees the lock with the session, even when the
        # connection broke meanwhile.
        connection.invalidate()


def watch_lock(connection: Connection, hold: Hold, done: threading.Event) -> None:
    """Set `hold.lost` when the lock's connection stops answering."""
    while not done.wait(LOCK_CHECK_SECONDS):
        try:
            connection.exec_driver_sql("SELECT 1")
        except Exception as exc:  # Whatever broke the connection, the lock went with it.
            log.warning("lost a lock with its database connection: %s", type(exc).__name__)
            hold.lost.set()
            return


@contextmanager
def file_lock(directory: Path, name: str) -> Iterator[Hold]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / lock_file_name(name), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Hold(False)
            return
        yield Hold(True)


def lock_file_name(name: str) -> str:
    """The file SQLite's gateways lock for `name`. A mailbox's keeps the name it had before
    these locks were named, `imap-<digest of the mailbox>.lock`: while an older gateway and
    this one share a data directory (an upgrade), they still take turns reading it."""
    kind, _, mailbox = name.partition(" ")
    if kind == "imap":
        return f"imap-{short_digest(mailbox)}.lock"
    return f"{short_digest(name)}.lock"


def short_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
