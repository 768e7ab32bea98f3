"""Engines, sessions and schema migrations.

SQLite gets WAL, a busy timeout and foreign keys on every connection, so the embedded
default is durable and lets readers run beside the single writer. PostgreSQL connections
are checked before use (a restarted server costs no failed message), wait for a lock no
longer than SQLite does, and notice a server gone silent within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


# How long a statement waits for a lock another connection holds before it gives up (and
# the message waits in the spool for the next round): SQLite's busy timeout, PostgreSQL's
# lock_timeout.
LOCK_WAIT_MS = 30_000
# libpq's client-side TCP settings. A server that vanishes without a word (power lost, a
# failover that moves its address, a network that drops packets) is otherwise noticed
# only when the kernel gives up, after some fifteen minutes: here within about ten
# seconds, by keepalives on an idle connection and by tcp_user_timeout on one waiting for
# the server to acknowledge what it sent. A host's IMAP lock (`gateway.hosts`) depends on
# it: its holder must see the connection gone before the server, whose own keepalives end
# the session within about ten seconds, frees the lock for another host.
POSTGRES_DEAD_PEER: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 4,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}


def make_engine(url: str, reads_only: bool = False) -> Engine:
    """An engine for `url`; SQLite files get their directory created and their pragmas set.
    With `reads_only`, SQLite transactions read a snapshot (WAL) without the write lock, so
    that pages read while the workers file mail; they must not write."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": LOCK_WAIT_MS / 1000})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        event.listen(engine, "begin", _begin_reading if reads_only else _begin_immediately)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, connect_args=postgres_connect_args(url))
    return create_engine(url, pool_pre_ping=True)


def driver_rows(session: Session, sql: str, parameters: Sequence[Any] | None = None) -> list[Any]:
    """The rows of `sql` in the session's transaction, given as written to the database
    driver, in its own placeholder style (`?` for sqlite3, `%s` for psycopg): past
    SQLAlchemy's statement and result handling, a good share of a short query's time, for
    the few asked for every new ticket. Its errors are raised as SQLAlchemy raises every
    other statement's."""
    connection = session.connection()
    dbapi = connection.dialect.loaded_dbapi
    try:
        cursor = connection.connection.cursor()
        try:
            if parameters is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, parameters)
            return list(cursor.fetchall())
        finally:
            cursor.close()
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, parameters, exc, dbapi.Error) from exc


def postgres_connect_args(url: str) -> dict[str, Any]:
    """The lock wait, and `POSTGRES_DEAD_PEER` where the URL does not set its own."""
    given = make_url(url).query
    return {
        "options": f"-c lock_timeout={LOCK_WAIT_MS}",
        **{name: value for name, value in POSTGRES_DEAD_PEER.items() if name not in given},
    }


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts a transaction only at the first write,
    # so what a transaction read before it may be stale by then; `_begin_immediately`
    # starts them instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL keeps the promise made with every 250: a commit survives power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
    cursor.close()


def _begin_immediately(connection: Connection) -> None:
    """Take SQLite's write lock when a transaction begins: then what it reads stays true
    until it commits, as `SELECT ... FOR UPDATE` makes it on PostgreSQL, when `gateway
    ingest`, `gateway due` or a second `serve` writes beside the worker. Reading sessions
    take it too; every transaction here is short, and waits out the busy timeout."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_reading(connection: Connection) -> None:
    """A deferred transaction: a snapshot from its first read on, no lock taken."""
    connection.exec_driver_sql("BEGIN")


@contextmanager
def waiting_at_most(connection: Connection, milliseconds: int) -> Iterator[None]:
    """Within the block, `connection`'s transaction waits at most `milliseconds` for a lock
    another connection holds, not `LOCK_WAIT_MS`: for what must answer in time whatever
    the writers do (a health check, a scrape)."""
    if connection.dialect.name == "sqlite":
        # The transaction takes the write lock as it begins (`_begin_immediately`), so the
        # wait is set on the driver's connection before it does, and set back after.
        driver = connection.connection.driver_connection
        assert driver is not None
        driver.execute(f"PRAGMA busy_timeout={milliseconds}")
        try:
            yield
        finally:
            driver.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
        return
    if connection.dialect.name == "postgresql":
        # Both end with the transaction.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
    yield


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(url: str) -> None:
    """Bring the schema to the newest migration."""
    command.upgrade(alembic_config(url), "head")


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision of the database, newest revision the code knows)."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, migration_scripts().get_current_head()


def is_known_revision(revision: str) -> bool:
    """Whether this code has the migration `revision` (else a newer gateway wrote it)."""
    try:
        return migration_scripts().get_revision(revision) is not None
    except CommandError:
        return False


def migration_scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))
