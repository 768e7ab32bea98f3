"""A real PostgreSQL server for the tests: Debian's `postgresql`, a private cluster made with
`initdb` in a temporary directory, listening on a free loopback port.

One cluster serves a whole test run. Each test gets a database of its own, cloned from a
template that already has the gateway's schema, so a test starts in milliseconds and sees
nothing of another's rows.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import create_engine, text

from storage.session import upgrade_schema
from tests.ports import free_port

TEMPLATE = "gateway_template"
USER = "gateway"
SERVER_OPTIONS = (
    "-c",
    "max_connections=300",
    "-c",
    "unix_socket_directories=",
    "-c",
    "listen_addresses=127.0.0.1",
)
# The cluster is thrown away after the run: durability would only slow the tests down.
NOT_DURABLE = (
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
)


def find_server_binaries() -> Path:
    """The newest installed PostgreSQL's bin directory; a clear failure, never a skip."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda path: int(Path(path).parts[-3])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path is None:
        raise RuntimeError(
            "PostgreSQL is not installed: `apt-get install postgresql` "
            "(./dev test installs it when run as root)"
        )
    return Path(on_path).parent


class PostgresServer:
    """A private cluster; as root it runs as the `postgres` user, which PostgreSQL insists on.
    `durable` keeps PostgreSQL's flushes, for a benchmark that compares it with files on disk."""

    def __init__(self, durable: bool = False) -> None:
        self.options = SERVER_OPTIONS + (() if durable else NOT_DURABLE)
        self.bin = find_server_binaries()
        self.port = free_port()
        # Outside pytest's tmp_path, whose parents only root may enter.
        self.root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        self.data = self.root / "data"
        self.owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.databases = 0

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.run_as_owner(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        self.start_server()
        self.make_template()
        return self

    def start_server(self) -> None:
        options = " ".join(self.options + ("-p", str(self.port)))
        self.run_as_owner(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.root / "server.log"),
                "-o",
                options,
                "start",
            ]
        )

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, cutting every client off. "fast" keeps what was committed:
        without fsync and synchronous commit, an "immediate" stop may lose the last
        commits, which only a thrown-away cluster can afford."""
        self.run_as_owner(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
        )

    def run_as_owner(self, command: Sequence[str]) -> None:
        if self.owner is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{self.server_log()}"
            )

    def server_log(self) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def execute(self, statement: str) -> None:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def make_template(self) -> None:
        self.execute(f"CREATE DATABASE {TEMPLATE}")
        upgrade_schema(self.url(TEMPLATE))

    def new_database(self) -> str:
        """The URL of a fresh database with the current schema."""
        self.databases += 1
        name = f"test_{os.getpid()}_{self.databases}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def empty_database(self) -> str:
        """The URL of a fresh database with no schema at all."""
        self.databases += 1
        name = f"bare_{os.getpid()}_{self.databases}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, url: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {url.rpartition('/')[2]} WITH (FORCE)")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop_server("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
