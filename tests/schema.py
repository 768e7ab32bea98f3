"""The current schema for a test's database, quickly.

Running every migration on a new SQLite file takes a few hundred milliseconds, paid again by
each test that serves a gateway. The migrations run once per test process into a template
file; a test's new SQLite file starts as a copy of it, and `upgrade_schema` then finds it
current. Other databases (PostgreSQL clones its own template) and existing files are
upgraded as they are.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from functools import cache
from pathlib import Path

from storage.session import upgrade_schema

SQLITE_FILE = "sqlite:///"


@cache
def sqlite_template() -> Path:
    """A SQLite file with every migration applied, its write-ahead log folded in."""
    directory = tempfile.mkdtemp(prefix="gateway-schema-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "template.sqlite3"
    upgrade_schema(SQLITE_FILE + str(path))
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return path


def current_schema(url: str) -> None:
    """Bring the database at `url` to the newest migration, as `gateway db upgrade` does."""
    if url.startswith(SQLITE_FILE):
        target = Path(url.removeprefix(SQLITE_FILE))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sqlite_template(), target)
    upgrade_schema(url)
