"""Outbox delivery against a real relay: retries with backoff, permanent failures."""

from __future__ import annotations

from sqlalchemy import select

from gateway.config import Endpoint
from storage.models import OutboxMail, OutboxState
from tests.conftest import RunningGateway, Sink, free_port, load_case, wait_until


def outbox(gateway: RunningGateway) -> list[OutboxMail]:
    with gateway.session() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def test_temporary_relay_refusal_is_retried_until_delivered(
    gateway: RunningGateway, sink: Sink
) -> None:
    sink.handler.refuse_with = "451 4.3.0 try again later"
    gateway.send(load_case("customer_new.eml"))
    wait_until(lambda: outbox(gateway) and outbox(gateway)[0].attempts >= 2, 15,
               "two refused attempts")
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
    wait_until(lambda: outbox(gateway) and outbox(gateway)[0].state is OutboxState.FAILED, 15,
               "failed state")
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
