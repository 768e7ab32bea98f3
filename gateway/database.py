"""Sessions as the gateway uses them, with SQLAlchemy's errors mapped into ours.

The one place SQLAlchemy's exceptions become `GatewayError`s: a database that is locked
or down is `DatabaseUnavailable` (a temporary failure: spooled mail waits, `ingest` exits
75), and a broken unique constraint is a `WriteConflict` (another process stored the same
row first). Everything else SQLAlchemy raises is a bug and stays what it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import DatabaseUnavailable, WriteConflict

Sessions = sessionmaker[Session]


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Raise SQLAlchemy's lock, connection and constraint failures as our errors."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc
    except IntegrityError as exc:
        raise WriteConflict(f"{exc.orig}") from exc


@contextlib.contextmanager
def transaction(sessions: Sessions) -> Iterator[Session]:
    """A session in a transaction that commits when the block ends, or rolls back."""
    with database_errors(), sessions.begin() as session:
        yield session


@contextlib.contextmanager
def reading(sessions: Sessions) -> Iterator[Session]:
    """A session for reading; it writes nothing."""
    with database_errors(), sessions() as session:
        yield session


@contextlib.contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A nested transaction: taken back alone when the block raises."""
    with database_errors(), session.begin_nested():
        yield
