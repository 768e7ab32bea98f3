"""What the spool promises: accepted mail survives a stop, and a crash re-files nothing twice."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway.app import Gateway, build_gateway
from gateway.notifications import Notifier
from gateway.settings import Settings
from gateway.spool import Receipt, entry_pieces, raw_of_entry
from storage.blobs import BlobDirectory, write_durably
from storage.models import OutboxMail, ReceiptOutcome, Ticket
from storage.models import Receipt as ReceiptRow
from tests.conftest import SUPPORT, RunningGateway, Sink, load_case, wait_until
from tests.schema import current_schema


def test_mail_spooled_while_no_worker_ran_is_filed_on_next_start(
    settings: Settings, sink: Sink
) -> None:
    settings.data_dir.mkdir(parents=True)
    current_schema(settings.effective_database_url)
    # Accepted (as a listener would before a crash) but never processed.
    stopped = build_gateway(settings)
    stopped.spool.accept(load_case("customer_new.eml"), "alice@customer.example", [SUPPORT], "smtp")
    stopped.engine.dispose()

    running = RunningGateway(settings).start()
    try:
        sink.wait_for(1)
        [receipt] = running.receipts()
        assert receipt.outcome is ReceiptOutcome.NEW_TICKET
        assert running.gateway.spool.pending() == []
    finally:
        running.stop()


def test_crash_between_commit_and_spool_cleanup_files_nothing_twice(
    gateway: RunningGateway, sink: Sink
) -> None:
    gateway.send(load_case("customer_new.eml"))
    [row] = gateway.wait_for_receipts(1)
    gateway.wait_idle()
    # The queue entry is back, as if the process died right after its commit.
    left_behind = Receipt(
        row.spool_id, row.raw_sha256, row.source, row.mail_from, (SUPPORT,), row.received_at, 0
    )
    spool = gateway.gateway.spool
    raw = spool.blobs.get(row.raw_sha256)
    write_durably(spool.queue_dir / left_behind.entry_name, entry_pieces(left_behind, raw))
    wait_until(lambda: not spool.pending(), 10, "the worker to pick the entry up")
    gateway.wait_idle()
    assert len(gateway.tickets()) == 1
    assert len(gateway.receipts()) == 1
    assert len(sink.received) == 1


@pytest.fixture
def idle_gateway(settings: Settings) -> Iterator[Gateway]:
    """The stages with a current schema, and no listener or worker running."""
    settings.data_dir.mkdir(parents=True)
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings)
    yield gateway
    gateway.engine.dispose()


def test_the_queue_entry_holds_the_message_until_the_blob_store_does(idle_gateway: Gateway) -> None:
    raw = load_case("customer_new.eml")
    receipt = idle_gateway.spool.accept(raw, "alice@customer.example", [SUPPORT], "smtp")
    entry = idle_gateway.spool.queue_dir / f"{receipt.spool_id}.msg"
    assert raw_of_entry(entry) == raw
    assert not idle_gateway.blobs.exists(receipt.raw_sha256)
    [outcome] = idle_gateway.executor.drain()
    assert outcome.outcome is ReceiptOutcome.NEW_TICKET
    assert idle_gateway.blobs.get(receipt.raw_sha256) == raw
    assert not entry.exists()


def test_a_blob_store_that_cannot_take_the_message_keeps_it_queued_not_quarantined(
    idle_gateway: Gateway,
) -> None:
    raw = load_case("customer_new.eml")
    receipt = idle_gateway.spool.accept(raw, "alice@customer.example", [SUPPORT], "smtp")
    # The round stops; the message is neither filed nor quarantined.
    with store_failing(idle_gateway, receipt):
        assert idle_gateway.executor.drain() == []
        assert [waiting.spool_id for waiting in idle_gateway.spool.pending()] == [receipt.spool_id]
        assert idle_gateway.spool.quarantined() == []
    [outcome] = idle_gateway.executor.drain()
    assert outcome.outcome is ReceiptOutcome.NEW_TICKET
    assert idle_gateway.blobs.get(receipt.raw_sha256) == raw


@contextlib.contextmanager
def store_failing(gateway: Gateway, receipt: Receipt) -> Iterator[None]:
    """The blob store fails to keep `receipt`'s raw message while the block runs, and is put
    right after it, even when the block fails. The folder: a file stands where the blob's
    directory belongs, so writing it is an OS error (as a full or read-only disk's is,
    with another errno). The database: its chunks table is gone from under it, so the
    insert is a database error."""
    if isinstance(gateway.blobs, BlobDirectory):
        blocker = gateway.blobs.path_for(receipt.raw_sha256).parent
        blocker.write_bytes(b"")
        try:
            yield
        finally:
            blocker.unlink()
        return
    with gateway.engine.begin() as connection:
        connection.execute(text("ALTER TABLE blob_chunks RENAME TO blob_chunks_away"))
    try:
        yield
    finally:
        with gateway.engine.begin() as connection:
            connection.execute(text("ALTER TABLE blob_chunks_away RENAME TO blob_chunks"))


def problem_report(number: int, message_id: str = "") -> bytes:
    return (
        f"From: Customer {number} <customer{number}@client.example>\r\nTo: {SUPPORT}\r\n"
        f"Subject: Report {number}\r\n"
        f"Message-ID: <{message_id or f'report-{number}'}@client.example>\r\n"
        "Date: Tue, 24 Nov 2026 10:12:33 +0100\r\n\r\n"
        f"The exporter stops at row {number}.\r\n"
    ).encode()


def test_a_message_that_fails_in_a_batch_sets_aside_only_itself(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch shares one transaction; a message that breaks while it is filed takes that
    transaction back, and the batch is filed again, one savepoint per message."""
    settings.data_dir.mkdir(parents=True)
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings)
    acknowledge = Notifier.acknowledge

    def breaks_on_report_3(notifier: Notifier, session: Any, applied: Any) -> None:
        # After the new ticket's rows are written, so the savepoint has them to take back.
        if applied.inbound.mail.subject == "Report 3":
            raise RuntimeError("disk of blobs gone for report 3")
        acknowledge(notifier, session, applied)

    monkeypatch.setattr(Notifier, "acknowledge", breaks_on_report_3)
    for number in range(6):
        gateway.spool.accept(
            problem_report(number), f"customer{number}@client.example", [SUPPORT], "smtp"
        )
    # The same message again in the same batch: settled by the receipt written just before.
    gateway.spool.accept(problem_report(1), "customer1@client.example", [SUPPORT], "smtp")
    outcomes = gateway.executor.drain()
    assert [o.outcome for o in outcomes] == [
        ReceiptOutcome.NEW_TICKET,
        ReceiptOutcome.NEW_TICKET,
        ReceiptOutcome.NEW_TICKET,
        ReceiptOutcome.QUARANTINED,
        ReceiptOutcome.NEW_TICKET,
        ReceiptOutcome.NEW_TICKET,
        ReceiptOutcome.DUPLICATE,
    ]
    assert "disk of blobs gone for report 3" in outcomes[3].reason
    assert outcomes[6].ticket_id == outcomes[1].ticket_id
    with gateway.sessions() as session:
        subjects = sorted(session.scalars(select(Ticket.subject)))
        acknowledged = sorted(session.scalars(select(OutboxMail.recipient)))
        receipts = session.scalars(select(ReceiptRow)).all()
    assert subjects == [f"Report {n}" for n in (0, 1, 2, 4, 5)]
    assert acknowledged == [f"customer{n}@client.example" for n in (0, 1, 2, 4, 5)]
    assert len({o.ticket_id for o in outcomes if o.ticket_id}) == 5
    assert sorted(r.outcome.value for r in receipts) == sorted(o.outcome.value for o in outcomes)
    [(_, reason)] = gateway.spool.quarantined()
    assert "report 3" in reason and gateway.spool.pending() == []
    gateway.engine.dispose()
