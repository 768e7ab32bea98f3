"""What operators get: a warning when no engineer is configured, a log a person can follow
(one line per message filed, one per mail sent or given up), and a digest of quarantined
mail at most once an hour, sent once however many processes look."""

from __future__ import annotations

import re
import smtplib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.clock import Clock
from storage.models import QuarantineDigest
from tests.conftest import (
    ALICE,
    SUPPORT,
    CapturedMail,
    DirectGateway,
    ServeProcess,
    Sink,
    gateway_env,
    new_mail,
    run_gateway,
    wait_until,
)

OPERATORS = "ops@example.com,oncall@example.net"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


STOPS = "The stream stops after ten seconds."


def many_parts(count: int, subject: str) -> bytes:
    parts = "".join(f"--p\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(count))
    return (
        f"From: bob@customer.example\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f'Content-Type: multipart/mixed; boundary="p"\r\n\r\n{parts}--p--\r\n'
    ).encode()


def serve_log(served: ServeProcess) -> str:
    return Path(served.log.name).read_text("utf-8", errors="replace")


# -- serve's log -----------------------------------------------------------------------------


def test_serve_warns_at_start_when_no_engineer_is_configured(served: ServeProcess) -> None:
    assert "GATEWAY_ENGINEERS" not in served.env
    log = wait_until(
        lambda: "GATEWAY_ENGINEERS is empty" in serve_log(served) and serve_log(served)
    )
    [line] = [line for line in log.splitlines() if "GATEWAY_ENGINEERS" in line]
    assert "WARNING" in line and "reach no engineer" in line


def test_the_log_has_one_line_per_message_filed_and_per_mail_sent(
    served: ServeProcess, sink: Sink
) -> None:
    with smtplib.SMTP("127.0.0.1", served.port) as smtp:
        smtp.send_message(new_mail(ALICE, "Pixel 7 crash", STOPS))
    [ack] = sink.wait_for(1)
    with smtplib.SMTP("127.0.0.1", served.port) as smtp:
        reply = new_mail(ALICE, f"Re: {ack.message['Subject']}", STOPS)
        reply.replace_header("To", str(ack.message["Reply-To"]))
        smtp.send_message(reply)
    log = wait_until(lambda: serve_log(served).count("filed ") >= 2 and serve_log(served))
    filed = re.findall(r"INFO gateway\.executor: filed (\S+) → (.*)", log)
    assert [how for _, how in filed] == [
        "ticket #1 (new ticket, threaded by new)",
        "ticket #1 (reply, threaded by token)",
    ]
    sent = re.findall(r"INFO gateway\.delivery: sent (.*)", log)
    assert sent == [f"ticket #1 to alice@customer.example: '{ack.message['Subject']}'"]
    assert len({spool_id for spool_id, _ in filed}) == 2


def test_the_log_says_which_mail_the_relay_refused_and_what_it_answered(
    served: ServeProcess, sink: Sink
) -> None:
    sink.handler.refuse_with = "550 5.1.1 <alice@customer.example>: no such user"
    with smtplib.SMTP("127.0.0.1", served.port) as smtp:
        smtp.send_message(new_mail(ALICE, "Black screen on iOS 17", STOPS))
    log = wait_until(lambda: "given up" in serve_log(served) and serve_log(served))
    [line] = [line for line in log.splitlines() if "given up" in line]
    assert "ticket #1 to alice@customer.example: '[Support #1] Black screen on iOS 17'" in line
    assert "550 5.1.1 <alice@customer.example>: no such user" in line
    assert not re.search(r"gateway\.delivery: sent ", log)


# -- the quarantine digest -------------------------------------------------------------------


def digests(sink: Sink, address: str) -> list[CapturedMail]:
    return [mail for mail in sink.to(address) if "Quarantined mail" in mail.message["Subject"]]


def text_of(mail: CapturedMail) -> str:
    body = mail.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


@pytest.fixture
def watched(make_direct_gateway: Callable[..., DirectGateway]) -> tuple[DirectGateway, Clock]:
    clock = Clock.at(T0)
    gateway = make_direct_gateway(clock, operators=tuple(OPERATORS.split(",")), max_mime_parts=5)
    return gateway, clock


def test_quarantined_mail_reaches_the_operators_at_most_once_an_hour(
    watched: tuple[DirectGateway, Clock], sink: Sink
) -> None:
    gateway, clock = watched
    gateway.send(b"\r\nno header fields at all, only these words\r\n", sender="odd@x.example")
    gateway.send(many_parts(9, "Logs in nine parts"))
    first = [r for r in gateway.receipts() if r.outcome.value == "quarantined"]
    assert len(first) == 2
    gateway.due_at(T0 + timedelta(minutes=1))
    [digest] = digests(sink, "ops@example.com")
    assert len(digests(sink, "oncall@example.net")) == 1
    text = text_of(digest)
    for receipt in first:
        assert receipt.spool_id in text and receipt.reason in text
    assert "Logs in nine parts" in text and "bob@customer.example" in text
    assert "odd@x.example" in text  # No From: the envelope sender stands in.
    assert "gateway quarantine" in text and "gateway replay" in text
    # No reply token: the digest is about no ticket.
    assert digest.message["Reply-To"].addresses[0].addr_spec == SUPPORT
    assert digest.message["Auto-Submitted"] == "auto-generated"

    clock.fast_forward(timedelta(minutes=10))
    gateway.send(many_parts(12, "Twelve parts"))
    [later] = [r for r in gateway.receipts() if r.spool_id not in {q.spool_id for q in first}]
    gateway.due_at(T0 + timedelta(minutes=30))
    assert len(digests(sink, "ops@example.com")) == 1  # Within the hour: it waits.
    gateway.due_at(T0 + timedelta(minutes=62))
    gateway.due_at(T0 + timedelta(minutes=62))
    gateway.due_at(T0 + timedelta(minutes=200))  # Nothing new quarantined: no digest.
    one, two = digests(sink, "ops@example.com")
    assert later.spool_id in text_of(two) and "Twelve parts" in text_of(two)
    assert all(receipt.spool_id not in text_of(two) for receipt in first)
    assert len(digests(sink, "oncall@example.net")) == 2
    assert gateway.count(QuarantineDigest) == 2


def test_no_operators_no_digest(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    gateway = make_direct_gateway(Clock.at(T0), max_mime_parts=5)
    gateway.send(many_parts(9, "Nine parts"))
    assert [r.outcome.value for r in gateway.receipts()] == ["quarantined"]
    gateway.due_at(T0 + timedelta(hours=2))
    assert sink.received == [] and gateway.count(QuarantineDigest) == 0


def test_several_due_runs_at_once_send_one_digest(
    watched: tuple[DirectGateway, Clock], sink: Sink, tmp_path: Path
) -> None:
    gateway, _ = watched
    gateway.send(many_parts(7, "Seven parts"))
    settings = gateway.settings
    env = {
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.effective_database_url,
        "GATEWAY_SUPPORT_ADDRESS": SUPPORT,
        "GATEWAY_SECRET": "test-secret",
        "GATEWAY_RELAY": str(settings.delivery.relay),
        "GATEWAY_OPERATORS": OPERATORS,
    }
    env = gateway_env(settings.data_dir) | env
    moment = (T0 + timedelta(minutes=5)).isoformat()
    runs = [
        threading.Thread(target=run_gateway, args=(env, "due", "--now", moment)) for _ in range(3)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(digests(sink, "ops@example.com")) == 1
    assert len(digests(sink, "oncall@example.net")) == 1
    assert gateway.count(QuarantineDigest) == 1
