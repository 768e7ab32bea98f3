"""Alembic environment: runs migrations against the URL the gateway was configured with."""

from alembic import context
from sqlalchemy import Connection, text

from storage.models import Base
from storage.session import make_engine

# An arbitrary number that only the gateway's migrations lock on.
MIGRATION_LOCK_KEY = 0x5E7E_0001


def run_migrations(connection: Connection) -> None:
    # render_as_batch lets SQLite alter tables by copy-and-move.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas started together upgrade one at a time; the later ones find the
            # schema current. The lock ends with the transaction.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def run_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()


run_online()
