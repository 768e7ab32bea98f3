"""Sessions as the gateway uses them, with SQLAlchemy's errors mapped into ours.

The one place SQLAlchemy's exceptions become `GatewayError`s: a database that is locked,
down or only answers reads is `DatabaseUnavailable` (a temporary failure: spooled mail
waits, `ingest` exits 75), and a broken unique constraint is a `WriteConflict` (another
process stored the same row first). Everything else SQLAlchemy raises is a bug and stays
what it is, except where a message's blobs are kept (`temporary_database_errors`).
`check_database_url` turns a URL SQLAlchemy cannot use into a `ConfigError` before any
engine is made, never showing the password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InternalError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import ConfigError, DatabaseUnavailable, WriteConflict
from storage.session import waiting_at_most

Sessions = sessionmaker[Session]

URL_SETTING = "GATEWAY_DATABASE_URL"
# PostgreSQL's SQLSTATE for a write in a read-only transaction.
READ_ONLY_TRANSACTION = "25006"
EXAMPLE_URL = "postgresql+psycopg://user:password@host:5432/gateway"


def check_database_url(url: str) -> None:
    """`ConfigError` naming what is wrong with `url`: its form, its port, its driver."""
    try:
        parsed = make_url(url)
    # The text may hold a password: it is not repeated.
    except ArgumentError:
        raise ConfigError(
            f"{URL_SETTING}: not a database URL; expected one like {EXAMPLE_URL}"
        ) from None
    except ValueError:
        raise ConfigError(f"{URL_SETTING}: the port is not a number from 1 to 65535") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(f"{URL_SETTING}: port {parsed.port} out of range in {shown}")
    check_driver(parsed, shown)


def check_driver(url: URL, shown: str) -> None:
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"{URL_SETTING}: no database kind {url.drivername!r} in {shown}; "
            "use sqlite:///PATH or postgresql+psycopg://..."
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigError(
            f"{URL_SETTING}: the driver of {url.drivername} is not installed ({exc.name}); "
            "for postgresql+psycopg: pip install '.[postgres]'"
        ) from None


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Raise SQLAlchemy's lock, connection and constraint failures as our errors."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc
    except InternalError as exc:
        # A server that only answers reads (a standby, or one set read-only) is down for
        # writing: mail waits in the spool rather than being quarantined as our bug.
        if getattr(exc.orig, "sqlstate", "") != READ_ONLY_TRANSACTION:
            raise
        raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc
    except IntegrityError as exc:
        raise WriteConflict(f"{exc.orig}") from exc


@contextlib.contextmanager
def temporary_database_errors() -> Iterator[None]:
    """`database_errors`, with every failure of the database taken as `DatabaseUnavailable`:
    for keeping a message's blobs, which are bytes the message brought and cannot conflict
    with or break anything, so whatever stops the database keeping them (its tables changed
    under a running gateway, say) is not the message's fault, and it waits in the spool."""
    try:
        with database_errors():
            yield
    except WriteConflict as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc.reason}") from exc
    except SQLAlchemyError as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        raise DatabaseUnavailable(f"database unavailable: {cause}") from exc


@contextlib.contextmanager
def transaction(sessions: Sessions, wait_ms: int | None = None) -> Iterator[Session]:
    """A session in a transaction that commits when the block ends, or rolls back. With
    `wait_ms`, another writer's lock is waited for that long at most, not `LOCK_WAIT_MS`:
    for what a person waits on (a page's button)."""
    if wait_ms is None:
        with database_errors(), sessions.begin() as session:
            yield session
        return
    engine: Engine = sessions.kw["bind"]
    with briefly(engine, wait_ms) as connection, sessions(bind=connection) as session:
        yield session
        session.commit()
        # On PostgreSQL `briefly` has begun the transaction, which the session joined
        # without committing it; on SQLite the session began it (a no-op then).
        connection.commit()


@contextlib.contextmanager
def reading(sessions: Sessions) -> Iterator[Session]:
    """A session for reading; it writes nothing."""
    with database_errors(), sessions() as session:
        yield session


@contextlib.contextmanager
def briefly(engine: Engine, milliseconds: int) -> Iterator[Connection]:
    """A connection in a transaction that waits at most `milliseconds` for another's lock
    (`storage.session.waiting_at_most`), and is taken back when the block ends."""
    with (
        database_errors(),
        engine.connect() as connection,
        waiting_at_most(connection, milliseconds),
    ):
        yield connection


@contextlib.contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A nested transaction: taken back alone when the block raises."""
    with database_errors(), session.begin_nested():
        yield
