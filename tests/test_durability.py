"""What the spool promises: accepted mail survives a stop, and a crash re-files nothing twice."""

from __future__ import annotations

from gateway.app import build_gateway
from gateway.config import Settings
from gateway.spool import Receipt, encode_receipt
from storage.models import ReceiptOutcome
from storage.session import upgrade_schema
from tests.conftest import SUPPORT, RunningGateway, Sink, load_case, wait_until


def test_mail_spooled_while_no_worker_ran_is_filed_on_next_start(
    settings: Settings, sink: Sink
) -> None:
    settings.data_dir.mkdir(parents=True)
    upgrade_schema(settings.effective_database_url)
    # Accepted (as a listener would before a crash) but never processed.
    stopped = build_gateway(settings)
    stopped.spool.accept(load_case("customer_new.eml"), "alice@customer.example", [SUPPORT],
                         "smtp")
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
    left_behind = Receipt(row.spool_id, row.raw_sha256, row.source, row.mail_from, (SUPPORT,),
                          row.received_at, 0)
    spool = gateway.gateway.spool
    (spool.queue_dir / f"{row.spool_id}.json").write_bytes(encode_receipt(left_behind))
    wait_until(lambda: not spool.pending(), 10, "the worker to pick the entry up")
    gateway.wait_idle()
    assert len(gateway.tickets()) == 1
    assert len(gateway.receipts()) == 1
    assert len(sink.received) == 1
