"""One clock: every rule that depends on the time of day follows the injected clock, so a
clock set to a moment (`gateway due --now T`, the tests) runs them all as of that moment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.clock import Clock
from gateway.spool import IntakeSource
from storage.models import Event, EventKind, OutboxMail, Receipt, Ticket
from tests.conftest import SUPPORT, DirectGateway, Sink, SinkHandler

MOMENT = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def problem(number: int) -> bytes:
    return (
        f"From: Bot <bot@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: Report {number}\r\nMessage-ID: <report-{number}@customer.example>\r\n"
        "\r\nThe stream stops.\r\n"
    ).encode()


def test_a_set_clock_stands_still_until_moved_on() -> None:
    clock = Clock.at(MOMENT)
    assert clock.now() == clock.now() == MOMENT
    clock.fast_forward(timedelta(hours=2))
    assert clock.now() == MOMENT + timedelta(hours=2)
    with pytest.raises(ValueError):
        Clock().fast_forward(timedelta(hours=1))
    assert abs(Clock().now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_rows_and_mail_carry_the_clocks_time(
    make_direct_gateway: Callable[..., DirectGateway],
    sink: Sink,
) -> None:
    direct = make_direct_gateway(clock=Clock.at(MOMENT))
    direct.send(problem(1), sender="bot@customer.example")
    with direct.session() as session:
        ticket = session.scalars(select(Ticket)).one()
        receipt = session.scalars(select(Receipt)).one()
        mail = session.scalars(select(OutboxMail)).one()
        assert ticket.created_at == ticket.status_changed_at == MOMENT
        assert (receipt.received_at, receipt.processed_at) == (MOMENT, MOMENT)
        assert (mail.created_at, mail.sent_at) == (MOMENT, MOMENT)
    [sent] = sink.received
    assert sent.message["Date"].datetime == MOMENT


def test_the_hourly_cap_on_automatic_mail_counts_by_the_clock(
    make_direct_gateway: Callable[..., DirectGateway],
    sink: Sink,
) -> None:
    clock = Clock.at(MOMENT)
    # One acknowledgement per address and period is another limit: made short here.
    direct = make_direct_gateway(
        clock=clock, auto_mail_per_hour=2, acknowledgement_interval_minutes=0.01
    )
    for number in (1, 2, 3):
        direct.send(problem(number), sender="bot@customer.example")
        clock.fast_forward(timedelta(seconds=1))
    assert len(sink.to("bot@customer.example")) == 2, "the third is over the hourly cap"
    clock.fast_forward(timedelta(minutes=61))
    direct.send(problem(4), sender="bot@customer.example")
    assert len(sink.to("bot@customer.example")) == 3, "an hour later by the clock, one more"
    with direct.session() as session:
        suppressed = session.scalars(
            select(Event.at).where(Event.type == EventKind.MAIL_SUPPRESSED)
        ).all()
    assert suppressed == [MOMENT + timedelta(seconds=2)]


def test_spool_ids_keep_the_order_of_arrival_under_a_clock_that_stands_still(
    make_direct_gateway: Callable[..., DirectGateway],
    sink: Sink,
) -> None:
    direct = make_direct_gateway(clock=Clock.at(MOMENT))
    for number in range(20):
        direct.gateway.spool.accept(
            problem(number), "bot@customer.example", [SUPPORT], IntakeSource.SMTP
        )
    pending = direct.gateway.spool.pending()
    assert {receipt.received_at for receipt in pending} == {MOMENT}
    assert [receipt.size for receipt in pending] == [len(problem(n)) for n in range(20)]
    subjects = [outcome.ticket_id for outcome in direct.gateway.executor.drain()]
    with direct.session() as session:
        assert [session.get_one(Ticket, ticket_id).subject for ticket_id in subjects] == [
            f"Report {number}" for number in range(20)
        ]


def test_a_retry_waits_for_the_clock_to_reach_its_backoff(
    make_direct_gateway: Callable[..., DirectGateway],
    sink: Sink,
) -> None:
    clock = Clock.at(MOMENT)
    direct = make_direct_gateway(clock=clock, delivery_backoff_seconds=600)
    handler: SinkHandler = sink.handler
    handler.refuse_with = "451 4.3.0 try again later"
    direct.send(problem(1), sender="bot@customer.example")
    handler.refuse_with = None
    clock.fast_forward(timedelta(minutes=9))
    assert direct.gateway.dispatcher.deliver_due().sent == 0, "not yet by the clock"
    clock.fast_forward(timedelta(minutes=2))
    assert direct.gateway.dispatcher.deliver_due().sent == 1
    with direct.session() as session:
        row = session.scalars(select(OutboxMail)).one()
        assert (row.attempts, row.sent_at) == (2, MOMENT + timedelta(minutes=11))


def test_a_claimed_mail_is_not_claimed_again_by_a_clock_set_ahead(
    make_direct_gateway: Callable[..., DirectGateway],
    sink: Sink,
) -> None:
    """Two `gateway due --now T` with T days ahead: the lease one takes holds for the other."""
    ahead = datetime.now(UTC) + timedelta(days=2)
    first = make_direct_gateway(clock=Clock.at(ahead))
    first.gateway.spool.accept(problem(1), "bot@customer.example", [SUPPORT], IntakeSource.SMTP)
    first.gateway.executor.drain()
    claimed = first.gateway.dispatcher.claim(ahead)
    assert len(claimed) == 1, "the acknowledgement"
    second = make_direct_gateway(clock=Clock.at(ahead + timedelta(minutes=1)))
    assert second.gateway.dispatcher.claim(ahead + timedelta(minutes=1)) == []
    later = ahead + timedelta(minutes=10)
    assert len(second.gateway.dispatcher.claim(later)) == 1, "a lease ends"
