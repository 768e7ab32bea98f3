"""/metrics and /readyz against real parts: mail sent over SMTP to the listener, the spool,
the outbox, an IMAP server and both databases."""

from __future__ import annotations

import json
import smtplib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, make_url, text

from gateway.app import make_mailbox_reader
from gateway.clock import Clock
from gateway.setting_values import parse_imap_url
from gateway.spool import IntakeSource
from gateway.web import metrics, readiness
from gateway.web.metrics import Figures
from gateway.web.readiness import readiness as ready
from tests.conftest import (
    ALICE,
    ENG1,
    ENGINEERS,
    SUPPORT,
    DirectGateway,
    GatewayUnderTest,
    RunningGateway,
    Sink,
    as_sent_over_smtp,
    new_mail,
    raw_mail,
    wait_until,
)
from tests.conftest import Desk as SupportDesk
from tests.dovecot import Dovecot

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Each figure `/metrics` must give: its type and the names of its labels.
REQUIRED = {
    "gateway_messages_received_total": ("counter", {"source"}),
    "gateway_messages_filed_total": ("counter", {"outcome"}),
    "gateway_messages_quarantined_total": ("counter", {"reason"}),
    "gateway_messages_refused_total": ("counter", {"reason"}),
    "gateway_threading_total": ("counter", {"method"}),
    "gateway_tickets_opened_total": ("counter", set()),
    "gateway_tickets": ("gauge", {"status"}),
    "gateway_notifications_total": ("counter", {"result"}),
    "gateway_delivery_attempts_total": ("counter", set()),
    "gateway_spool_depth": ("gauge", set()),
    "gateway_outbox_depth": ("gauge", set()),
    "gateway_oldest_waiting_message_age_seconds": ("gauge", set()),
    "gateway_oldest_pending_outbox_age_seconds": ("gauge", set()),
}
QUARANTINE_KINDS = {
    "internal_error",
    "mail_loop",
    "too_large",
    "over_limit",
    "malformed",
    "no_sender",
    "other",
}


@dataclass(frozen=True)
class Scrape:
    """One scrape, parsed as Prometheus parses it."""

    body: str
    types: dict[str, str]
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def total(self, name: str) -> float:
        """The sum of a figure's samples over all its labels."""
        return sum(value for (sample, _), value in self.samples.items() if sample == name)

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]


def scrape(under_test: GatewayUnderTest) -> Scrape:
    body, content_type = Figures(under_test.gateway).exposition()
    assert content_type.startswith("text/plain; version=")
    types, samples = {}, {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            types[sample.name] = family.type
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(body.decode(), types, samples)


def spool_new_mail(direct: DirectGateway, subject: str) -> None:
    """Into the spool as the listener puts it, and no further."""
    raw = as_sent_over_smtp(new_mail(ALICE, subject, "The stream freezes."))
    direct.gateway.spool.accept(raw, ALICE, [SUPPORT], IntakeSource.SMTP)


# -- /metrics --------------------------------------------------------------------------------


def test_every_figure_is_exposed_with_its_type_and_labels(
    make_direct_gateway: Callable[..., DirectGateway],
) -> None:
    figures = scrape(make_direct_gateway())
    for name, (kind, label_names) in REQUIRED.items():
        assert figures.types[name] == kind, name
        assert figures.labels_of(name), f"{name} has no sample"
        assert all(set(labels) == label_names for labels in figures.labels_of(name)), name
    assert figures.value("gateway_database_up") == 1
    assert figures.value("gateway_tickets_opened_total") == 0
    assert figures.value("gateway_messages_received_total", source="smtp") == 0
    assert {
        labels["reason"] for labels in figures.labels_of("gateway_messages_quarantined_total")
    } == QUARANTINE_KINDS


def test_figures_move_as_real_mail_flows(served_gateway: RunningGateway, sink: Sink) -> None:
    desk = SupportDesk(served_gateway, sink)
    _, acknowledgement = desk.open_ticket()
    desk.customer_replies(acknowledgement, "It crashes on Android 14 too.")
    served_gateway.wait_for_receipts(2)
    served_gateway.wait_idle()
    figures = scrape(served_gateway)
    assert figures.value("gateway_messages_received_total", source="smtp") == 2
    assert figures.value("gateway_messages_filed_total", outcome="new_ticket") == 1
    assert figures.value("gateway_messages_filed_total", outcome="reply") == 1
    assert figures.value("gateway_threading_total", method="new") == 1
    assert figures.value("gateway_threading_total", method="token") == 1
    assert figures.value("gateway_tickets_opened_total") == 1
    assert figures.total("gateway_tickets") == 1
    sent = figures.value("gateway_notifications_total", result="sent")
    assert sent == len(sink.received) >= 1
    assert figures.value("gateway_delivery_attempts_total") >= sent
    assert figures.value("gateway_outbox_depth") == 0
    assert figures.value("gateway_spool_depth") == 0


def test_a_refused_recipient_counts_at_the_door(served_gateway: RunningGateway) -> None:
    before = scrape(served_gateway)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        served_gateway.send(new_mail(ALICE, "Hi", "Hello"), recipients=["bob@elsewhere.example"])
    after = scrape(served_gateway)
    refused = "gateway_messages_refused_total"
    assert after.value(refused, reason="unknown_recipient") == (
        before.value(refused, reason="unknown_recipient") + 1
    )
    # Refused at the door: nothing reached the spool or the database.
    assert after.value("gateway_messages_received_total", source="smtp") == 0
    assert "bob@elsewhere.example" not in after.body


def test_quarantined_mail_counts_under_a_kind_never_its_text(
    make_direct_gateway: Callable[..., DirectGateway],
) -> None:
    direct = make_direct_gateway(max_inbound_attachment_bytes=100)
    direct.send(raw_mail(None, "Who am I", "anon-1@nowhere.example"), sender="")
    direct.send(b"\r\nno header fields at all, only these words\r\n", sender="odd@x.example")
    logs = new_mail(ALICE, "Logs", "Attached.")
    logs.add_attachment(b"x" * 500, maintype="text", subtype="plain", filename=f"{ALICE}-7.log")
    direct.send(logs, sender=ALICE)
    assert any(ALICE in receipt.reason for receipt in direct.receipts())
    figures = scrape(direct)
    quarantined = "gateway_messages_quarantined_total"
    assert figures.value(quarantined, reason="no_sender") == 1
    assert figures.value(quarantined, reason="malformed") == 1
    assert figures.value(quarantined, reason="over_limit") == 1
    assert figures.value(quarantined, reason="other") == 0
    assert figures.value("gateway_messages_filed_total", outcome="quarantined") == 3
    assert {labels["reason"] for labels in figures.labels_of(quarantined)} == QUARANTINE_KINDS
    assert ALICE not in figures.body


def test_no_label_names_a_ticket_or_an_address(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    desk = SupportDesk(make_direct_gateway(engineers=ENGINEERS), sink)
    desk.resolved_ticket()
    figures = scrape(desk.gateway)
    assert figures.value("gateway_tickets_opened_total") == 1
    assert figures.value("gateway_notifications_total", result="sent") >= 3
    values = {value for name, labels in figures.samples for _, value in labels}
    assert values and not {value for value in values if "@" in value}
    # Ticket numbers are digits; no label value holds one.
    assert not {value for value in values if any(c.isdigit() for c in value)}
    assert ENG1 not in figures.body and ALICE not in figures.body


def test_spool_depth_and_the_oldest_waiting_message_follow_the_spool(
    make_direct_gateway: Callable[..., DirectGateway],
) -> None:
    clock = Clock.at(T0)
    direct = make_direct_gateway(clock=clock)
    spool_new_mail(direct, "First")
    clock.fast_forward(timedelta(seconds=30))
    spool_new_mail(direct, "Second")
    clock.fast_forward(timedelta(seconds=60))
    figures = scrape(direct)
    assert figures.value("gateway_spool_depth") == 2
    assert figures.value("gateway_oldest_waiting_message_age_seconds") == 90
    assert ready(direct.gateway, None).checks["spool"] == {
        "ok": True,
        "detail": "2 waiting, the oldest for 90s",
    }
    clock.fast_forward(timedelta(minutes=10))
    stuck = ready(direct.gateway, None)
    assert not stuck.ok and stuck.checks["spool"]["ok"] is False
    direct.gateway.executor.drain()
    figures = scrape(direct)
    assert figures.value("gateway_spool_depth") == 0
    assert figures.value("gateway_oldest_waiting_message_age_seconds") == 0
    assert figures.value("gateway_tickets_opened_total") == 2
    assert ready(direct.gateway, None).checks["spool"] == {"ok": True, "detail": "nothing waiting"}


# -- /readyz ---------------------------------------------------------------------------------


def test_ready_when_healthy_with_imap_off(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    direct = make_direct_gateway()
    direct.send(new_mail(ALICE, "Stream freezes", "After ten minutes."), sender=ALICE)
    assert sink.wait_for(1)
    answer = ready(direct.gateway, None)
    assert answer.ok, answer.checks
    assert set(answer.checks) == {"database", "spool", "outbox", "imap"}
    assert answer.checks["imap"] == {"ok": True, "detail": "off"}
    assert answer.checks["outbox"] == {"ok": True, "detail": "nothing pending"}
    assert json.loads(answer.as_json()) == {"ok": True, "checks": answer.checks}


@contextmanager
def answering_reads_only(direct: DirectGateway) -> Iterator[str]:
    """The database answers reads and refuses writes while the block runs: on SQLite,
    another connection holds the write lock (root ignores a read-only file); on
    PostgreSQL, every new transaction is read-only. What the refusal says."""
    url = make_url(direct.settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield "database is locked"
        finally:
            holder.rollback()
            holder.close()
        return
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(f"ALTER DATABASE {url.database} SET default_transaction_read_only = on")
        )
        direct.gateway.engine.dispose()  # New connections, which take the setting.
        try:
            yield "read-only transaction"
        finally:
            connection.execute(
                text(f"ALTER DATABASE {url.database} RESET default_transaction_read_only")
            )
            direct.gateway.engine.dispose()
    admin.dispose()


def test_not_ready_while_the_database_takes_no_writes(
    make_direct_gateway: Callable[..., DirectGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short waits for the held lock, to keep the test quick; the bound is what is tested.
    monkeypatch.setattr(readiness, "LOCK_WAIT_MS", 300)
    monkeypatch.setattr(metrics, "LOCK_WAIT_MS", 300)
    direct = make_direct_gateway()
    assert ready(direct.gateway, None).ok
    with answering_reads_only(direct) as refusal:
        started = time.monotonic()
        answer = ready(direct.gateway, None)
        assert time.monotonic() - started < 5
        assert not answer.ok
        assert answer.checks["database"]["ok"] is False
        assert refusal in str(answer.checks["database"]["detail"])
        assert "Traceback" not in answer.as_json().decode()
        assert answer.checks["spool"]["ok"] is True
        # A scrape still answers, with this host's figures whatever the database does.
        figures = scrape(direct)
        assert figures.value("gateway_spool_depth") == 0
        assert figures.value("gateway_database_up") == (0 if "locked" in refusal else 1)
    assert ready(direct.gateway, None).ok


def test_not_ready_while_mail_due_long_ago_waits_in_the_outbox(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    clock = Clock.at(T0)
    direct = make_direct_gateway(clock=clock)
    spool_new_mail(direct, "Stream freezes")
    direct.gateway.executor.drain()  # The acknowledgement is queued; nobody sends it.
    assert ready(direct.gateway, None).checks["outbox"] == {"ok": True, "detail": "1 pending"}
    clock.fast_forward(timedelta(minutes=20))
    stuck = ready(direct.gateway, None)
    assert not stuck.ok
    assert stuck.checks["outbox"] == {"ok": False, "detail": "1 pending, the first due 1200s ago"}
    figures = scrape(direct)
    assert figures.value("gateway_outbox_depth") == 1
    assert figures.value("gateway_oldest_pending_outbox_age_seconds") == 1200
    direct.gateway.dispatcher.deliver_due()
    assert sink.wait_for(1)
    assert ready(direct.gateway, None).ok
    figures = scrape(direct)
    assert figures.value("gateway_outbox_depth") == 0
    assert figures.value("gateway_oldest_pending_outbox_age_seconds") == 0
    assert figures.value("gateway_notifications_total", result="sent") == 1


def test_imap_ready_after_a_pass_and_while_standing_by(
    make_direct_gateway: Callable[..., DirectGateway], dovecot: Dovecot
) -> None:
    clock = Clock.at(T0)
    direct = make_direct_gateway(
        clock=clock, imap=parse_imap_url("GATEWAY_IMAP_URL", dovecot.url()), imap_poll_seconds=120
    )
    reader = make_mailbox_reader(direct.gateway)
    assert reader is not None
    assert ready(direct.gateway, reader.state).checks["imap"] == {
        "ok": False,
        "detail": "no pass over the folder has ended yet",
    }
    reader.poll_once()
    assert ready(direct.gateway, reader.state).ok
    clock.fast_forward(timedelta(minutes=5))
    # Three polls of two minutes: still within the window.
    assert ready(direct.gateway, reader.state).checks["imap"]["ok"] is True
    clock.fast_forward(timedelta(minutes=2))
    assert ready(direct.gateway, reader.state).checks["imap"] == {
        "ok": False,
        "detail": "the last pass ended 420s ago",
    }
    other = make_mailbox_reader(direct.gateway)
    assert other is not None
    stop = threading.Event()
    with reader.alone(direct.gateway.locks) as held:
        assert held
        waiting = threading.Thread(target=other.run_alone, args=(stop, direct.gateway.locks))
        waiting.start()
        try:
            wait_until(lambda: other.state.standing_by, 5, "the second reader to stand by")
            assert ready(direct.gateway, other.state).checks["imap"] == {
                "ok": True,
                "detail": "standing by: another gateway reads the mailbox",
            }
        finally:
            stop.set()
            waiting.join(10)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_mail_waits_in_the_spool_while_postgresql_only_answers_reads(
    make_direct_gateway: Callable[..., DirectGateway],
) -> None:
    direct = make_direct_gateway()
    with answering_reads_only(direct):
        spool_new_mail(direct, "Stream freezes on a standby")
        assert direct.gateway.executor.drain() == []
        assert len(direct.gateway.spool.pending()) == 1
        assert direct.receipts() == [], "nothing quarantined as a bug of ours"
    direct.gateway.executor.drain()
    assert [ticket.subject for ticket in direct.tickets()] == ["Stream freezes on a standby"]
