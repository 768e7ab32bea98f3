"""What the hosts' shared database costs the rest of the gateway: the parse stage, the
secret, the lock files and the commands that read blobs."""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, text

import gateway.parse_ahead
from gateway.app import Gateway, build_gateway, make_mailbox_reader
from gateway.config import load_settings
from gateway.database import briefly
from gateway.errors import GatewayError
from gateway.hosts import lock_key, shared_secret
from gateway.parse_ahead import InlineParser, Readable, Refused
from gateway.parsing import ParsedMail, parse_message
from gateway.settings import Settings
from gateway.spool import IntakeSource
from storage.blobs import CHUNK_BYTES, sha256_hex
from storage.models import BlobChunk
from storage.session import POSTGRES_DEAD_PEER, make_engine
from tests.conftest import (
    SUPPORT,
    gateway_env,
    load_case,
    run_gateway,
    with_current_schema,
)
from tests.postgres import PostgresServer
from tests.schema import current_schema

NOT_MAIL = b"just some words\r\nand more words\r\n"
CLAIM_BLOB = text(
    "INSERT INTO blobs (sha256, size, chunks, stored_at) "
    "VALUES (:sha256, 0, 0, CURRENT_TIMESTAMP) ON CONFLICT DO NOTHING"
)


@pytest.fixture
def database_blobs(settings: Settings) -> Iterator[Gateway]:
    """The stages, keeping blobs in the database (SQLite's too), with no worker running."""
    settings = settings.changed(blob_store="database")
    settings.data_dir.mkdir(parents=True)
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings)
    yield gateway
    gateway.engine.dispose()


def test_a_batch_is_parsed_before_its_blobs_are_kept_holding_no_database_meanwhile(
    database_blobs: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = database_blobs.spool
    other_writer = make_engine(database_blobs.settings.effective_database_url)
    while_parsing: list[str] = []

    def parse_beside_a_writer(raw: bytes, *args: Any) -> ParsedMail:
        # Another writer (the worker filing the batch before, another host keeping the same
        # message) gets its locks at once; what it writes is taken back.
        try:
            with briefly(other_writer, 500) as connection:
                connection.execute(CLAIM_BLOB, {"sha256": sha256_hex(raw)})
            while_parsing.append("written")
        except GatewayError as exc:
            while_parsing.append(exc.reason)
        return parse_message(raw, *args)

    monkeypatch.setattr(gateway.parse_ahead, "parse_message", parse_beside_a_writer)
    raws = [load_case("customer_new.eml"), NOT_MAIL]
    receipts = [
        spool.accept(raw, "alice@customer.example", [SUPPORT], IntakeSource.SMTP) for raw in raws
    ]
    try:
        readable, refused = InlineParser(spool, spool.limits).parse(receipts)
    finally:
        other_writer.dispose()
    assert while_parsing == ["written", "written"]
    assert isinstance(readable, Readable) and isinstance(refused, Refused)
    # Each raw message is kept, the one that cannot be parsed too, and the files.
    assert [spool.blobs.get(receipt.raw_sha256) for receipt in receipts] == raws
    assert readable.mail.attachments
    for attachment in readable.mail.attachments:
        assert spool.blobs.get(attachment.sha256) == attachment.data


def test_attachment_with_a_chunk_missing_says_so_and_leaves_the_output_as_it_was(
    database_blobs: Gateway, tmp_path: Path
) -> None:
    settings = database_blobs.settings
    env = gateway_env(
        settings.data_dir,
        GATEWAY_DATABASE_URL=settings.effective_database_url,
        GATEWAY_BLOB_STORE="database",
    )
    whole = database_blobs.blobs.put(bytes(range(256)) * (3 * CHUNK_BYTES // 256))
    broken = database_blobs.blobs.put(b"x" * (3 * CHUNK_BYTES))
    with database_blobs.engine.begin() as connection:
        connection.execute(delete(BlobChunk).filter_by(sha256=broken, number=2))
    out = tmp_path / "out.bin"
    out.write_bytes(b"an earlier copy")

    failed = run_gateway(env, "attachment", broken, "-o", str(out), check=False)
    assert failed.returncode == 1
    assert (
        failed.stderr == f"gateway: cannot read the stored file: blob {broken} lacks its chunk 2\n"
    )
    assert out.read_bytes() == b"an earlier copy"
    assert not list(tmp_path.glob(".out.bin*"))

    run_gateway(env, "attachment", whole, "-o", str(out))
    assert sha256_hex(out.read_bytes()) == whole


def test_an_older_gateway_reading_the_mailbox_keeps_a_newer_one_on_its_data_dir_waiting(
    tmp_path: Path,
) -> None:
    """SQLite's gateways share a data directory; one not upgraded yet locks the file it
    always locked."""
    env = gateway_env(tmp_path / "var", GATEWAY_IMAP_URL="imap://support:pw@127.0.0.1:1/INBOX")
    with_current_schema(env)
    gateway = build_gateway(load_settings(env))
    reader = make_mailbox_reader(gateway)
    assert reader is not None
    locks = gateway.settings.data_dir / "locks"
    locks.mkdir()
    older = hashlib.sha256(reader.mailbox_key.encode()).hexdigest()[:16]
    try:
        with open(locks / f"imap-{older}.lock", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with reader.alone(gateway.locks) as hold:
                assert not hold
        with reader.alone(gateway.locks) as hold:
            assert hold
    finally:
        gateway.engine.dispose()


@pytest.mark.postgres
def test_a_gateway_reads_the_kept_secret_without_waiting_for_the_lock_that_creates_it(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.new_database()
    engine, creating = make_engine(url), make_engine(url)
    try:
        kept = shared_secret("", engine, tmp_path / "secret.key")
        with creating.connect() as connection:
            # A gateway creating the secret holds this lock until it commits.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key("tokens")})
            started = time.monotonic()
            assert shared_secret("", engine, tmp_path / "secret.key") == kept
            assert time.monotonic() - started < 5
    finally:
        engine.dispose()
        creating.dispose()
        postgres.drop(url)


@pytest.mark.postgres
def test_postgresql_connections_carry_the_dead_peer_settings(
    postgres: PostgresServer,
) -> None:
    """Keepalives and tcp_user_timeout are set on every connection, as libpq reports them,
    so a lock's holder sees its connection gone before the server frees the lock for
    another host (measured by dropping packets with iptables: 7.4-7.6 s)."""
    url = postgres.new_database()
    engines = [make_engine(url), make_engine(f"{url}?tcp_user_timeout=20000")]
    try:
        parameters = []
        for engine in engines:
            with engine.connect() as connection:
                parameters.append(connection.connection.driver_connection.info.get_parameters())
        assert {k: parameters[0].get(k) for k in POSTGRES_DEAD_PEER} == {
            "keepalives": "1",
            "keepalives_idle": "4",
            "keepalives_interval": "2",
            "keepalives_count": "3",
            "tcp_user_timeout": "5000",
        }
        # A URL that sets its own keeps it.
        assert parameters[1]["tcp_user_timeout"] == "20000"
    finally:
        for engine in engines:
            engine.dispose()
        postgres.drop(url)
