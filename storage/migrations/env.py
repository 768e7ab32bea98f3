"""Alembic environment: runs migrations against the URL the gateway was configured with."""

from alembic import context
from sqlalchemy import Connection

from storage.models import Base
from storage.session import make_engine


def run_migrations(connection: Connection) -> None:
    # render_as_batch lets SQLite alter tables by copy-and-move.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()


run_online()
