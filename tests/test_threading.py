"""Replies find their ticket; strangers and duplicates do not create or leak anything.

Threading is decided after the spool, so these run the gateway's stages in this process
(`DirectGateway`), with real databases and a real SMTP sink for what they send."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from storage.models import Direction, Message, ReceiptOutcome
from tests.conftest import DirectGateway, Sink, load_case


@pytest.fixture
def gateway(make_direct_gateway: Callable[..., DirectGateway]) -> DirectGateway:
    return make_direct_gateway()


def open_ticket_with_ack(gateway: DirectGateway, sink: Sink) -> tuple[int, str, str]:
    """Customer mail in, acknowledgement out: (ticket id, ack Message-ID, ack Reply-To)."""
    gateway.send(load_case("customer_new.eml"), sender="alice@customer.example")
    ack = sink.wait_for(1)[0].message
    [ticket] = gateway.tickets()
    reply_to = ack["Reply-To"].addresses[0].addr_spec
    return ticket.id, ack["Message-ID"].strip("<>"), reply_to


def inbound_texts(gateway: DirectGateway, ticket_id: int) -> list[str]:
    with gateway.session() as session:
        return list(
            session.scalars(
                select(Message.text)
                .where(Message.ticket_id == ticket_id, Message.direction == Direction.IN)
                .order_by(Message.id)
            )
        )


def test_reply_to_acknowledgement_joins_ticket_without_quoted_history(
    gateway: DirectGateway, sink: Sink
) -> None:
    ticket_id, ack_id, _ = open_ticket_with_ack(gateway, sink)
    reply = load_case(
        "customer_reply.eml", ack_id=ack_id, subject=f"[Support #{ticket_id}] Live stream crashes"
    )
    gateway.send(reply, sender="alice@customer.example")
    receipts = gateway.wait_for_receipts(2)
    assert receipts[1].outcome is ReceiptOutcome.REPLY
    assert receipts[1].reason == "threaded by in-reply-to"
    assert len(gateway.tickets()) == 1
    texts = inbound_texts(gateway, ticket_id)
    assert texts[1] == "It also happens on a Pixel 8 with the same SDK version.\n\nAlice"
    gateway.wait_idle()
    assert len(sink.received) == 1, "a reply to an open ticket is not acknowledged again"


def test_reply_through_token_address_joins_ticket(gateway: DirectGateway, sink: Sink) -> None:
    ticket_id, _, reply_to = open_ticket_with_ack(gateway, sink)
    bare = (
        b"From: Alice <alice@customer.example>\r\nTo: "
        + reply_to.encode()
        + b"\r\nSubject: logs\r\nMessage-ID: <bare-1@customer.example>\r\n\r\nMore logs.\r\n"
    )
    gateway.send(bare, recipients=[reply_to], sender="alice@customer.example")
    receipts = gateway.wait_for_receipts(2)
    assert receipts[1].ticket_id == ticket_id
    assert receipts[1].reason == "threaded by token"


def test_forged_token_opens_a_new_ticket(gateway: DirectGateway, sink: Sink) -> None:
    ticket_id, _, reply_to = open_ticket_with_ack(gateway, sink)
    forged = reply_to[: -len("@example.com") - 3] + "aaa@example.com"
    bare = (
        b"From: eve@elsewhere.example\r\nSubject: hi\r\n"
        b"Message-ID: <forged-1@elsewhere.example>\r\n\r\nLet me in.\r\n"
    )
    gateway.send(bare, recipients=[forged], sender="eve@elsewhere.example")
    receipts = gateway.wait_for_receipts(2)
    assert receipts[1].outcome is ReceiptOutcome.NEW_TICKET
    assert receipts[1].ticket_id != ticket_id


def test_stranger_using_subject_tag_gets_new_ticket_and_learns_nothing(
    gateway: DirectGateway, sink: Sink
) -> None:
    ticket_id, _, _ = open_ticket_with_ack(gateway, sink)
    gateway.send(
        load_case("stranger_with_tag.eml", ticket=str(ticket_id)),
        sender="mallory@elsewhere.example",
    )
    sink.wait_for(2)
    tickets = gateway.tickets()
    assert len(tickets) == 2
    assert tickets[1].requester == "mallory@elsewhere.example"
    answer = sink.to("mallory@elsewhere.example")[0]
    body = answer.message.get_body(("plain",)).get_content()
    assert "Pixel 7 (Android 14)" not in body
    assert f"#{tickets[1].id}" in answer.message["Subject"]


def test_participant_using_only_subject_tag_joins_ticket(
    gateway: DirectGateway, sink: Sink
) -> None:
    ticket_id, _, _ = open_ticket_with_ack(gateway, sink)
    gateway.send(
        load_case("participant_with_tag.eml", ticket=str(ticket_id)),
        sender="alice@customer.example",
    )
    receipts = gateway.wait_for_receipts(2)
    assert receipts[1].ticket_id == ticket_id
    assert receipts[1].reason == "threaded by subject-tag"


def test_duplicate_delivery_creates_nothing(gateway: DirectGateway, sink: Sink) -> None:
    raw = load_case("customer_new.eml")
    gateway.send(raw)
    gateway.send(raw)
    receipts = gateway.wait_for_receipts(2)
    gateway.wait_idle()
    assert [r.outcome for r in receipts] == [ReceiptOutcome.NEW_TICKET, ReceiptOutcome.DUPLICATE]
    assert len(gateway.tickets()) == 1
    assert len(sink.received) == 1


def test_same_message_through_another_relay_is_still_a_duplicate(
    gateway: DirectGateway, sink: Sink
) -> None:
    raw = load_case("customer_new.eml")
    gateway.send(raw)
    gateway.send(b"Received: from mx2.example.com by mx.example.com; Tue, 24 Nov 2026\r\n" + raw)
    receipts = gateway.wait_for_receipts(2)
    assert receipts[1].outcome is ReceiptOutcome.DUPLICATE
    assert len(gateway.tickets()) == 1


def test_different_messages_sharing_a_message_id_are_both_kept(
    gateway: DirectGateway, sink: Sink
) -> None:
    first = b"From: a@customer.example\r\nSubject: one\r\nMessage-ID: <same@x>\r\n\r\nFirst.\r\n"
    second = b"From: b@customer.example\r\nSubject: two\r\nMessage-ID: <same@x>\r\n\r\nOther.\r\n"
    gateway.send(first)
    gateway.send(second)
    receipts = gateway.wait_for_receipts(2)
    assert ReceiptOutcome.DUPLICATE not in [r.outcome for r in receipts]
    assert {t.requester for t in gateway.tickets()} == {"a@customer.example", "b@customer.example"}
