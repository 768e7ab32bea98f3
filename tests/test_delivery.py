"""Outbox delivery against a real relay: retries with backoff, permanent failures, several
connections at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from gateway.app import build_gateway
from gateway.setting_values import Endpoint
from gateway.settings import Settings
from storage.models import OutboxMail, OutboxState
from tests.conftest import (
    SUPPORT,
    RunningGateway,
    Sink,
    SinkHandler,
    free_port,
    load_case,
    wait_until,
)
from tests.schema import current_schema


def outbox(gateway: RunningGateway) -> list[OutboxMail]:
    with gateway.session() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def test_temporary_relay_refusal_is_retried_until_delivered(
    gateway: RunningGateway, sink: Sink
) -> None:
    sink.handler.refuse_with = "451 4.3.0 try again later"
    gateway.send(load_case("customer_new.eml"))
    wait_until(
        lambda: outbox(gateway) and outbox(gateway)[0].attempts >= 2, 15, "two refused attempts"
    )
    [row] = outbox(gateway)
    assert row.state is OutboxState.PENDING
    assert row.last_error.startswith("451")
    sink.handler.refuse_with = None
    sink.wait_for(1, timeout=20)
    wait_until(lambda: outbox(gateway)[0].state is OutboxState.SENT, 15, "sent state")
    assert outbox(gateway)[0].sent_at is not None


def test_permanent_relay_refusal_marks_the_mail_failed_with_the_reason(
    gateway: RunningGateway, sink: Sink
) -> None:
    sink.handler.refuse_with = "554 5.7.1 relay access denied"
    gateway.send(load_case("customer_new.eml"))
    wait_until(
        lambda: outbox(gateway) and outbox(gateway)[0].state is OutboxState.FAILED,
        15,
        "failed state",
    )
    [row] = outbox(gateway)
    assert row.attempts == 1
    assert row.last_error == "554 5.7.1 relay access denied"
    assert sink.received == []


def test_unreachable_relay_keeps_mail_queued(make_gateway, sink: Sink) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway(relay=Endpoint("127.0.0.1", free_port()))
    gateway.send(load_case("customer_new.eml"))
    wait_until(lambda: outbox(gateway) and outbox(gateway)[0].attempts >= 1, 15, "an attempt")
    [row] = outbox(gateway)
    assert row.state is OutboxState.PENDING
    assert "unreachable" in row.last_error


@dataclass
class OverlapHandler(SinkHandler):
    """The relay, taking a moment over each mail and noting how many it held at once."""

    active: int = 0
    most_at_once: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.active += 1
        self.most_at_once = max(self.most_at_once, self.active)
        await asyncio.sleep(0.05)
        self.active -= 1
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("connections", [1, 4])
def test_a_batch_goes_over_several_relay_connections_each_recipient_in_order(
    settings: Settings, connections: int
) -> None:
    handler = OverlapHandler()
    relay = Controller(handler, hostname="127.0.0.1", port=free_port())
    relay.start()
    try:
        settings = settings.changed(
            relay=Endpoint("127.0.0.1", relay.port), relay_connections=connections
        )
        settings.data_dir.mkdir(parents=True)
        current_schema(settings.effective_database_url)
        gateway = build_gateway(settings)
        recipients = [f"customer{n}@example.org" for n in range(8)]
        now = datetime.now(UTC)
        with gateway.sessions.begin() as session:
            for round_ in range(3):
                session.add_all(
                    OutboxMail(
                        mail_from=SUPPORT,
                        recipient=recipient,
                        created_at=now,
                        next_attempt_at=now,
                        content=f"Subject: {recipient} {round_}\r\n\r\nhi\r\n".encode(),
                    )
                    for recipient in recipients
                )
        assert gateway.dispatcher.deliver_due().sent == 24
        gateway.engine.dispose()
    finally:
        relay.stop()
    assert handler.most_at_once == connections
    for recipient in recipients:
        subjects = [
            mail.message["subject"] for mail in handler.received if mail.recipients == [recipient]
        ]
        assert subjects == [f"{recipient} {round_}" for round_ in range(3)]
