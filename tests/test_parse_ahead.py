"""The parser process a worker parses its next batch in, and the batches it is given."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.clock import Clock
from gateway.executor import BATCH_BYTES, BATCH_SIZE, batches_of
from gateway.intake import Findings
from gateway.limits import Limits
from gateway.parse_ahead import (
    AHEAD_MAX_BYTES,
    InlineParser,
    ParserProcess,
    Readable,
    Refused,
    Unavailable,
)
from gateway.parsing import ParsedMail
from gateway.spool import Receipt, Spool
from storage.blobs import BlobDirectory

MAIL = (
    b"From: Alice <alice@customer.example>\r\nTo: support@example.com\r\n"
    b"Subject: printer %d\r\nMessage-ID: <m%d@customer.example>\r\n\r\nIt jams.\r\n"
)
NOT_MAIL = b"just some words\r\nand more words\r\n"


def stored(spool: Spool, raw: bytes) -> Receipt:
    return spool.accept(raw, "alice@customer.example", ["support@example.com"], "smtp")


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    spool = Spool(
        tmp_path / "spool",
        BlobDirectory(tmp_path / "blobs"),
        Limits(max_message_bytes=10 * 1024 * 1024),
        Clock(),
    )
    spool.prepare()
    return spool


@pytest.fixture
def parser(spool: Spool) -> Iterator[ParserProcess]:
    process = ParserProcess(spool, spool.limits)
    yield process
    process.close()


def test_the_child_parses_as_the_worker_would_refusals_and_failures_included(
    spool: Spool, parser: ParserProcess
) -> None:
    receipts = [stored(spool, MAIL % (n, n)) for n in range(3)]
    receipts.append(stored(spool, NOT_MAIL))
    # A receipt whose bytes are gone: an internal error, with its traceback for the log.
    receipts.append(Receipt("gone", "0" * 64, "smtp", None, (), datetime.now(UTC), 10))
    ahead = parser.submit(receipts)()
    here = InlineParser(spool, spool.limits).submit(receipts)()
    reading_here = InlineParser(spool, spool.limits, reads_ahead=True).submit(receipts)()
    assert parser.child is not None and parser.child.poll() is None
    # The child reads each message as a first mail too, as the worker would read it.
    assert ahead[:3] == reading_here[:3]
    assert [replace(r, first_mail=None) for r in ahead[:3] if isinstance(r, Readable)] == here[:3]
    assert all(isinstance(r, Readable) and r.first_mail is not None for r in ahead[:3])
    assert [result.mail.subject for result in ahead[:3] if isinstance(result, Readable)] == [
        "printer 0",
        "printer 1",
        "printer 2",
    ]
    refused, failed = ahead[3], ahead[4]
    assert isinstance(refused, Refused) and refused == here[3]
    assert "not an RFC 5322 message" in refused.reason and not refused.trace
    assert isinstance(failed, Refused) and failed.reason.startswith("internal error: FileNotFound")
    assert "Traceback" in failed.trace


def test_the_child_stores_each_raw_message_in_the_blob_store_before_it_answers(
    spool: Spool, parser: ParserProcess
) -> None:
    raws = [MAIL % (n, n) for n in range(3)]
    receipts = [stored(spool, raw) for raw in raws]
    assert not any(spool.blobs.exists(receipt.raw_sha256) for receipt in receipts)
    results = parser.submit(receipts)()
    assert [isinstance(result, Readable) for result in results] == [True, True, True]
    assert [spool.blobs.get(receipt.raw_sha256) for receipt in receipts] == raws


def test_a_blob_store_that_cannot_take_the_message_leaves_it_waiting(
    spool: Spool, parser: ParserProcess
) -> None:
    receipt = stored(spool, MAIL % (1, 1))
    # A file where the blob's directory belongs: as a full disk, writing it fails.
    spool.blobs.path_for(receipt.raw_sha256).parent.write_bytes(b"")
    [ahead] = parser.submit([receipt])()
    [here] = InlineParser(spool, spool.limits).submit([receipt])()
    for result in (ahead, here):
        assert isinstance(result, Unavailable)
        assert result.reason.startswith(f"cannot store {receipt.spool_id} in the blob store")
    assert [waiting.spool_id for waiting in spool.pending()] == [receipt.spool_id]


def test_an_answer_nobody_waited_for_is_skipped(spool: Spool, parser: ParserProcess) -> None:
    parser.submit([stored(spool, MAIL % (1, 1))])  # Given up on, as a drain that stops.
    second = parser.submit([stored(spool, MAIL % (2, 2))])
    [result] = second()
    assert isinstance(result, Readable) and result.mail.subject == "printer 2"


def test_a_child_that_dies_is_replaced_and_its_batch_parsed_in_the_worker(
    spool: Spool, parser: ParserProcess, caplog: pytest.LogCaptureFixture
) -> None:
    parser.submit([stored(spool, MAIL % (0, 0))])()
    assert parser.child is not None
    first = parser.child.pid
    os.kill(first, signal.SIGKILL)  # As the OOM killer would.
    parser.child.wait()
    with caplog.at_level(logging.WARNING, "gateway.parse_ahead"):
        [result] = parser.submit([stored(spool, MAIL % (1, 1))])()
    assert isinstance(result, Readable) and result.mail.subject == "printer 1"
    assert "parser process failed" in caplog.text
    # For a while the worker parses for itself, then starts a new child.
    [meanwhile] = parser.submit([stored(spool, MAIL % (2, 2))])()
    assert isinstance(meanwhile, Readable) and parser.child is None
    parser.restart_at = 0.0
    [again] = parser.submit([stored(spool, MAIL % (3, 3))])()
    assert isinstance(again, Readable) and again.mail.subject == "printer 3"
    assert parser.child is not None and parser.child.pid != first


def test_a_batch_too_large_to_copy_is_parsed_in_the_worker(
    spool: Spool, parser: ParserProcess
) -> None:
    body = b"x" * 76 + b"\r\n"
    raw = MAIL % (9, 9) + body * (AHEAD_MAX_BYTES // len(body) + 1)
    [result] = parser.submit([stored(spool, raw)])()
    assert isinstance(result, Readable) and result.mail.subject == "printer 9"
    assert parser.child is None


def test_the_child_is_started_before_the_first_batch_when_asked(
    spool: Spool, parser: ParserProcess
) -> None:
    parser.start_early()
    assert parser.child is not None and parser.child.poll() is None
    started = parser.child.pid
    parser.start_early()  # Once only.
    [result] = parser.submit([stored(spool, MAIL % (4, 4))])()
    assert isinstance(result, Readable) and result.mail.subject == "printer 4"
    assert parser.child.pid == started


@dataclass(frozen=True)
class Subjects:
    """Works out each mail's subject, upper-cased, as a later stage might; or fails."""

    fails: bool = False
    # Answers one mail fewer than asked, as a stage with a bug might.
    short: bool = False

    def __call__(self, readings: Sequence[tuple[ParsedMail, Findings]]) -> list[str]:
        if self.fails:
            raise RuntimeError("the index is gone")
        return [mail.subject.upper() for mail, _ in readings][: -1 if self.short else None]


def test_what_a_later_stage_asks_is_worked_out_for_each_readable_mail_of_the_batch(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    receipts = [stored(spool, MAIL % (0, 0)), stored(spool, NOT_MAIL), stored(spool, MAIL % (2, 2))]
    results = InlineParser(spool, spool.limits, reads_ahead=True, also=Subjects()).parse(receipts)
    assert [getattr(result, "ahead", "refused") for result in results] == [
        "PRINTER 0",
        "refused",
        "PRINTER 2",
    ]
    failing = InlineParser(spool, spool.limits, reads_ahead=True, also=Subjects(fails=True))
    with caplog.at_level(logging.WARNING, "gateway.parse_ahead"):
        results = failing.parse(receipts)
    assert "reading ahead failed (RuntimeError: the index is gone)" in caplog.text
    readable = [result for result in results if isinstance(result, Readable)]
    assert len(readable) == 2 and all(result.ahead is None for result in readable)
    short = InlineParser(spool, spool.limits, reads_ahead=True, also=Subjects(short=True))
    caplog.clear()
    with caplog.at_level(logging.WARNING, "gateway.parse_ahead"):
        results = short.parse(receipts)
    assert "reading ahead failed (ValueError" in caplog.text
    assert [getattr(result, "ahead", "refused") for result in results] == [None, "refused", None]


def test_a_child_that_cannot_start_early_leaves_the_worker_to_parse(
    spool: Spool,
    parser: ParserProcess,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("gateway.parse_ahead.sys.executable", "/nonexistent/python3")
    with caplog.at_level(logging.WARNING, "gateway.parse_ahead"):
        parser.start_early()
    assert "parser process failed (FileNotFoundError" in caplog.text
    assert parser.child is None
    [result] = parser.submit([stored(spool, MAIL % (5, 5))])()
    assert isinstance(result, Readable) and result.mail.subject == "printer 5"
    assert parser.child is None


def test_the_child_exits_when_the_worker_lets_go(spool: Spool, parser: ParserProcess) -> None:
    parser.submit([stored(spool, MAIL % (0, 0))])()
    assert parser.child is not None
    child = parser.child
    parser.close()
    assert child.returncode == 0


def test_batches_are_capped_by_count_and_by_bytes() -> None:
    def receipt(size: int) -> Receipt:
        return Receipt(f"r{size}", "0" * 64, "smtp", None, (), datetime.now(UTC), size)

    small = [receipt(1000) for _ in range(BATCH_SIZE * 2 + 3)]
    assert [len(batch) for batch in batches_of(small)] == [BATCH_SIZE, BATCH_SIZE, 3]
    big = receipt(BATCH_BYTES + 1)
    half = receipt(BATCH_BYTES // 2)
    sizes = [[r.size for r in batch] for batch in batches_of([half, half, half, big, half])]
    assert sizes == [[half.size, half.size], [half.size], [big.size], [half.size]]
    assert list(batches_of([])) == []
