"""Automatic mail, second pass: header fields given twice, auto-responders known only by
their words, one acknowledgement per address and period, vacation replies to nothing,
mail from our own address, and mail with no usable sender."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.clock import Clock
from storage.models import Event, Receipt, ReceiptOutcome
from tests.conftest import (
    ALICE,
    ENG1,
    ENGINEERS,
    SUPPORT,
    Desk,
    DirectGateway,
    RunningGateway,
    Sink,
    raw_mail,
)

BOT = "responder@partner.example"
MOMENT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def last_receipt(gateway: DirectGateway | RunningGateway) -> Receipt:
    return gateway.receipts()[-1]


@pytest.fixture
def direct(make_direct_gateway: Callable[..., DirectGateway]) -> DirectGateway:
    return make_direct_gateway(engineers=ENGINEERS)


# -- a field given twice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, opens_ticket",
    [
        ("Precedence: first-class\r\nPrecedence: bulk\r\n", True),
        ("Precedence: bulk\r\nPrecedence: normal\r\n", True),
        ("Auto-Submitted: no\r\nAuto-Submitted: auto-generated\r\n", True),
        ("Auto-Submitted: No\r\nAuto-Submitted: Auto-Generated; owner-email=x@y.example\r\n", True),
        ("Auto-Submitted: no\r\nAuto-Submitted: auto-replied\r\n", False),
        ("Auto-Submitted: no\r\nPrecedence: junk\r\n", True),
    ],
)
def test_any_copy_of_a_field_can_say_the_mail_is_automatic(
    direct: DirectGateway, sink: Sink, fields: str, opens_ticket: bool
) -> None:
    direct.send(raw_mail(f"Robot <{BOT}>", "Disk full", "twice-1@partner.example", extra=fields))
    assert not sink.to(BOT), "never answered"
    assert (len(direct.tickets()) == 1) is opens_ticket
    assert bool(sink.to(ENG1)) is opens_ticket


# -- auto-responders known only by their words -----------------------------------------------


@pytest.mark.parametrize(
    "subject, body",
    [
        ("Automatic reply: Live stream", "Hi, thanks for your message."),
        ("Out of Office: Live stream", "Back on Monday."),
        ("自动回复: 直播卡顿", "您好，您的邮件已收到。"),
        ("自动答复：直播卡顿", "您的来信已收到。"),
        ("【自动回复】直播卡顿", "谢谢。"),
        ("休假：12月5日至12月12日", "有急事请联系同事。"),
        ("自動回覆: 推流失敗", "謝謝。"),
        ("Réponse automatique : stream", "Je suis absent."),
        ("Balasan otomatis: stream", "Terima kasih."),
        ("Trả lời tự động: stream", "Cảm ơn."),
        ("Re: Live stream", "I am currently out of the office until 12 December."),
        ("Re: Live stream", "Thank you for your email. I am on annual leave until Monday."),
        ("回复：直播卡顿", "您好，我目前不在办公室，将于下周一回复。"),
        ("Re: 推流", "我正在休假，12月12日回来。"),
        ("Re: 推流", "此邮件为系统自动回复，请勿直接回复。"),
    ],
)
def test_auto_responders_known_by_subject_or_words_get_no_acknowledgement(
    direct: DirectGateway, sink: Sink, subject: str, body: str
) -> None:
    direct.send(raw_mail(f"Wen <{BOT}>", subject, "words-1@partner.example", body=body))
    assert len(direct.tickets()) == 1, "kept for the engineers: it may be all they hear"
    assert len(sink.to(ENG1)) == 1, "the engineers are told"
    assert not sink.to(BOT)


@pytest.mark.parametrize(
    "subject, body",
    [
        ("Automatic reply broken in the SDK", "The SDK's auto reply feature is broken."),
        ("Out of office status not shown", "Our app shows 'out of office' wrongly."),
        ("自动回复功能失效", "我们的自动回复功能在 4.0.6 上失效了。"),
        ("Stream freezes", "Hi, the stream freezes when I am out of the office network."),
        ("推流问题", "我们在外出直播时推流失败，我目前在用 4.0.6。"),
    ],
)
def test_customers_who_mention_such_words_are_acknowledged(
    direct: DirectGateway, sink: Sink, subject: str, body: str
) -> None:
    direct.send(raw_mail(f"Dev <{ALICE}>", subject, "customer-1@customer.example", body=body))
    assert len(sink.to(ALICE)) == 1


# -- one acknowledgement per address and period ----------------------------------------------


def test_one_acknowledgement_per_address_and_period(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    clock = Clock.at(MOMENT)
    direct = make_direct_gateway(clock=clock, engineers=ENGINEERS)
    for number in range(5):
        direct.send(
            raw_mail(f"Helpdesk <{BOT}>", f"Ticket {number} received", f"r{number}@p.example")
        )
        clock.fast_forward(timedelta(minutes=1))
    assert len(direct.tickets()) == 5, "each still opens its ticket"
    assert len(sink.to(BOT)) == 1, "but only the first is acknowledged"
    assert len(sink.to(ENG1)) == 5, "engineers hear of every one"
    clock.fast_forward(timedelta(minutes=10))
    direct.send(raw_mail(f"Helpdesk <{BOT}>", "Ticket 6 received", "r6@p.example"))
    assert len(sink.to(BOT)) == 2, "a new period, a new acknowledgement"
    direct.send(raw_mail(f"Alice <{ALICE}>", "Another question", "a1@customer.example"))
    assert len(sink.to(ALICE)) == 1, "the limit is per address"


def test_acknowledgement_period_is_a_setting(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    clock = Clock.at(MOMENT)
    direct = make_direct_gateway(clock=clock, acknowledgement_interval_minutes=60)
    direct.send(raw_mail(f"<{BOT}>", "One", "one@p.example"))
    clock.fast_forward(timedelta(minutes=30))
    direct.send(raw_mail(f"<{BOT}>", "Two", "two@p.example"))
    assert len(sink.to(BOT)) == 1


# -- vacation replies to nothing, and machine reports ----------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-replied (vacation)\r\n",
        "X-Autoreply: yes\r\n",
        "X-Autorespond: Out of office\r\n",
        "Precedence: auto_reply\r\n",
    ],
)
def test_a_vacation_reply_to_nothing_opens_no_ticket(
    direct: DirectGateway, sink: Sink, fields: str
) -> None:
    direct.send(
        raw_mail(f"Li Wei <{BOT}>", "我正在休假", "vac-1@partner.example", "12月12日回来。", fields)
    )
    assert direct.tickets() == []
    assert not sink.received, "no engineer is mailed, nobody is answered"
    receipt = last_receipt(direct)
    assert receipt.outcome is ReceiptOutcome.REPORT
    assert "an automatic reply" in receipt.reason and "to no ticket of ours" in receipt.reason


def test_a_vacation_reply_from_someone_on_the_ticket_is_kept_there(
    direct_desk: Desk, sink: Sink
) -> None:
    ticket_id, ack = direct_desk.open_ticket()
    away = direct_desk.reply(ack, ALICE, "I am out of the office until Monday.")
    away["Auto-Submitted"] = "auto-replied"
    direct_desk.gateway.send(away, recipients=[direct_desk.reply_to(ack)], sender=ALICE)
    assert len(direct_desk.gateway.tickets()) == 1
    assert ("automatic_reply", "", "") in direct_desk.trail(ticket_id)
    assert len(direct_desk.mails_to(ALICE)) == 1, "only the acknowledgement of the ticket"


@pytest.mark.parametrize(
    "fields",
    ["Auto-Submitted: auto-generated\r\n", "Auto-Submitted: auto-notified\r\n", ""],
)
def test_a_monitoring_alert_opens_a_ticket_without_acknowledgement(
    direct: DirectGateway, sink: Sink, fields: str
) -> None:
    alerts = "alerts@monitoring.example"
    direct.send(
        raw_mail(
            f"Monitoring <{alerts}>",
            "[ALERT] RTC edge node sg-3 packet loss 12%",
            "alert-1@monitoring.example",
            "Packet loss above 10% for 5 minutes.",
            fields + "Precedence: bulk\r\n",
        )
    )
    assert len(direct.tickets()) == 1
    assert sink.to(ENG1), "engineers are told"
    assert not sink.to(alerts)


# -- mail from our own address ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sender_field, fields",
    [
        (f"Support <{SUPPORT}>", ""),
        (f"Support <{SUPPORT}>", "Auto-Submitted: no\r\n"),
        ("SUPPORT@EXAMPLE.COM", ""),
        ("support+12-3-abcdef@example.com", ""),
        (f"客服 <{SUPPORT}>", "Precedence: first-class\r\n"),
    ],
)
def test_mail_from_the_support_address_is_never_a_new_ticket(
    direct: DirectGateway, sink: Sink, sender_field: str, fields: str
) -> None:
    direct.send(raw_mail(sender_field, "Please help", "self-1@example.com", extra=fields))
    assert direct.tickets() == []
    assert not sink.received
    receipt = last_receipt(direct)
    assert receipt.outcome is ReceiptOutcome.REPORT
    assert "claims to come from the support address" in receipt.reason


# -- no usable sender ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender_field", [None, "", "undisclosed-recipients:;", "Nobody", "<>", "@@@"]
)
def test_mail_with_no_usable_sender_is_quarantined(
    direct: DirectGateway, sink: Sink, sender_field: str | None
) -> None:
    direct.send(raw_mail(sender_field, "Who am I", "anon-1@nowhere.example"), sender="")
    assert direct.tickets() == []
    receipt = last_receipt(direct)
    assert receipt.outcome is ReceiptOutcome.QUARANTINED
    assert "no usable sender" in receipt.reason
    assert not sink.received


@pytest.mark.parametrize(
    "extra, envelope, filed_under, source",
    [
        ("", "script@build.example", "script@build.example", "envelope"),
        ("Sender: Build Bot <bot@build.example>\r\n", "", "bot@build.example", "Sender"),
        ("Reply-To: 王工 <wang@customer.example>\r\n", "", "wang@customer.example", "Reply-To"),
        (
            "Reply-To: wang@customer.example\r\n",
            "bounce@build.example",
            "wang@customer.example",
            "Reply-To",
        ),
    ],
)
def test_mail_without_from_is_filed_under_the_next_known_sender(
    direct: DirectGateway, extra: str, envelope: str, filed_under: str, source: str
) -> None:
    direct.send(raw_mail(None, "构建失败", "nofrom-1@build.example", extra=extra), sender=envelope)
    [ticket] = direct.tickets()
    assert ticket.requester == filed_under
    with direct.session() as session:
        [event] = session.scalars(select(Event).where(Event.type == "sender_not_from")).all()
    assert f"{source} address {filed_under}" in event.detail


def test_no_sender_over_real_smtp_is_quarantined(served_gateway: RunningGateway) -> None:
    served_gateway.send(raw_mail(None, "No sender", "anon-2@nowhere.example"), sender="")
    [receipt] = served_gateway.wait_for_receipts(1)
    assert receipt.outcome is ReceiptOutcome.QUARANTINED
    assert "no usable sender" in receipt.reason


def test_auto_responders_over_real_smtp(served_gateway: RunningGateway, sink: Sink) -> None:
    """The listener and the worker process: a vacation reply to nothing, then an
    undeclared auto-responder writing three times."""
    served_gateway.send(
        raw_mail(f"<{BOT}>", "Out of Office: Re: hi", "v1@p.example", extra="X-Autoreply: yes\r\n"),
        sender=BOT,
    )
    for number in range(3):
        served_gateway.send(raw_mail(f"<{BOT}>", f"Received {number}", f"x{number}@p.example"))
    receipts = served_gateway.wait_for_receipts(4)
    assert [r.outcome for r in receipts].count(ReceiptOutcome.NEW_TICKET) == 3
    assert ReceiptOutcome.REPORT in [r.outcome for r in receipts]
    served_gateway.wait_idle()
    sink.wait_for(1)
    served_gateway.wait_idle()
    assert len(sink.to(BOT)) == 1
