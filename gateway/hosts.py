"""What the gateways on one database agree on through it, so that hosts share nothing else.

- The secret that signs reply tokens and links: `GATEWAY_SECRET`, else the one kept in the
  database, created by the first gateway to start (under an advisory lock on PostgreSQL,
  under SQLite's write lock there). An installation that kept it in `secret.key` in its data
  directory brings that key along, so the tokens it mailed still verify.
- Work only one gateway may do at a time (reading a mailbox): `HostLocks.exclusive`. On
  PostgreSQL it is an advisory lock held on a connection of its own, which the server
  frees when that connection ends, a killed host's too. On SQLite, whose gateways all run
  on the one host that has the file, it is an `flock` on a file in the data directory.

Each host's spool is its own, on its own disk, so its entries are still claimed with file
locks (`gateway.spool`).
"""

from __future__ import annotations

import fcntl
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, insert, select, text

from gateway.database import database_errors
from storage.models import SharedSecret

SECRET_NAME = "tokens"
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
    with database_errors(), engine.begin() as connection:
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
    return kept.encode()


def key_file_secret(key_file: Path) -> str | None:
    """The key an installation kept in its data directory before the database held it."""
    try:
        return key_file.read_text("ascii").strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class HostLocks:
    """Locks that let one gateway among all those on the database do a piece of work."""

    engine: Engine
    # Where SQLite's gateways keep their lock files.
    files: Path

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """True while this process holds `name`; False when another gateway does."""
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
def advisory_lock(connection: Connection, name: str) -> Iterator[bool]:
    """A session advisory lock on `connection`, outside any transaction (an idle
    transaction may be ended by the server's timeouts and would hold back its vacuum)."""
    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    for setting in LOCK_KEEPALIVE:
        connection.exec_driver_sql(setting)
    try:
        yield bool(
            connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)})
        )
    finally:
        # Closed, not pooled: the server frees the lock with the session, even when the
        # connection broke meanwhile.
        connection.invalidate()


@contextmanager
def file_lock(directory: Path, name: str) -> Iterator[bool]:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    with open(directory / f"{digest}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
