"""Who hears of a ticket, and what an answer that says neither "fixed" nor "not fixed"
does: the other L1s stop at the new-ticket notice once someone works on it, `#follow` and
`#unfollow`, and "thanks, will test tomorrow" leaves a resolved ticket resolved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.setting_values import Engineer
from storage.models import Event, TicketStatus
from tests.conftest import (
    ALICE,
    ENG1,
    ENG2,
    ENGINEERS,
    LEAD,
    SUPPORT,
    CapturedMail,
    Desk,
    DirectGateway,
    Sink,
    new_mail,
    wait_until,
)


def mails_since(desk: Desk, address: str, seen: int) -> list[CapturedMail]:
    return desk.mails_to(address)[seen:]


def test_once_an_engineer_works_on_a_ticket_the_other_l1s_hear_no_more(
    direct_desk: Desk, sink: Sink
) -> None:
    desk = direct_desk
    ticket_id, ack = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    assert desk.wait_mail(ENG2, "New (P3)"), "every L1 hears of a new ticket"
    before = len(desk.mails_to(ENG2))
    desk.engineer_replies(notice, ENG1, "We are looking into it.")
    desk.customer_replies(ack, "Here is one more detail: it happens on Wi-Fi only.")
    desk.engineer_replies(notice, ENG1, "#resolve\nFixed in 5.2.2.")
    assert mails_since(desk, ENG2, before) == [], "ENG2 got the new-ticket notice, no more"
    assert desk.wait_mail(ENG1, "Re: [Support"), "the engineer working on it hears the customer"
    assert not desk.mails_to(LEAD), "L2 is never told of L1 work"
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED


def test_follow_and_unfollow(direct_desk: Desk, sink: Sink) -> None:
    desk = direct_desk
    ticket_id, ack = desk.open_ticket()
    notice_1 = desk.wait_mail(ENG1, "New (P3)")
    notice_2 = desk.wait_mail(ENG2, "New (P3)")
    desk.engineer_replies(notice_1, ENG1, "我们正在排查。")
    desk.engineer_replies(notice_2, ENG2, "#follow")
    assert "applied" in desk.text(desk.wait_mail(ENG2, "Your commands"))
    seen_2 = len(desk.mails_to(ENG2))
    desk.customer_replies(ack, "还有一个细节：只在 Wi-Fi 下出现。")
    assert [m for m in mails_since(desk, ENG2, seen_2) if "Re: [Support" in desk.subject(m)]

    desk.engineer_replies(notice_1, ENG1, "#unfollow")
    seen_1, seen_2 = len(desk.mails_to(ENG1)), len(desk.mails_to(ENG2))
    desk.customer_replies(ack, "Any news?")
    assert mails_since(desk, ENG1, seen_1) == [], "unfollowed: nothing more"
    assert mails_since(desk, ENG2, seen_2), "the follower still hears"
    with desk.gateway.session() as session:
        kinds = session.scalars(
            select(Event.type).where(
                Event.ticket_id == ticket_id, Event.type.in_(["followed", "unfollowed"])
            )
        ).all()
    assert sorted(kinds) == ["followed", "unfollowed"]


def test_follow_takes_no_argument(direct_desk: Desk, sink: Sink) -> None:
    desk = direct_desk
    desk.open_ticket()
    desk.engineer_replies(desk.wait_mail(ENG1, "New (P3)"), ENG1, "#follow everyone")
    assert "#follow takes no argument" in desk.text(desk.wait_mail(ENG1, "Your commands"))


def test_assignment_and_escalation_decide_who_hears(direct_desk: Desk, sink: Sink) -> None:
    desk = direct_desk
    ticket_id, ack = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, f"#assign {ENG2}\n#unfollow")
    desk.wait_mail(ENG2, "Assigned")
    seen_1, seen_2 = len(desk.mails_to(ENG1)), len(desk.mails_to(ENG2))
    desk.customer_replies(ack, "It also crashes on the Pixel 8.")
    assert mails_since(desk, ENG2, seen_2), "the assignee hears"
    assert mails_since(desk, ENG1, seen_1) == []
    notice_2 = desk.wait_mail(ENG2, "Re: [Support")
    desk.engineer_replies(notice_2, ENG2, "#escalate")
    desk.wait_mail(LEAD, "")
    seen_lead = len(desk.mails_to(LEAD))
    desk.customer_replies(ack, "And on the Galaxy S23.")
    assert mails_since(desk, LEAD, seen_lead), "an escalation brings L2 in"
    assert desk.ticket(ticket_id).assignee == ENG2


def test_auto_close_and_reopen_are_told_to_the_engineers_on_the_ticket(
    direct_desk: Desk, sink: Sink
) -> None:
    desk = direct_desk
    ticket_id, _ = desk.resolved_ticket()
    assert desk.gateway.due_at(datetime.now(UTC) + timedelta(days=7, minutes=1)) == [ticket_id]
    closed = desk.wait_mail(ALICE, "Closed")
    assert desk.wait_mail(ENG1, "closed"), "the engineer who resolved it"
    assert not [m for m in desk.mails_to(ENG2) if "closed" in desk.subject(m)]
    desk.customer_replies(closed, "Still not fixed: it crashes again on 5.2.2.")
    assert desk.wait_mail(ENG1, "Reopened")
    assert desk.ticket(ticket_id).status is TicketStatus.OPEN


@pytest.mark.parametrize(
    "answer",
    [
        "Thanks, I'll test it tomorrow.",
        "ok, will check",
        "Got it, thanks! We will roll it out next week and let you know.",
        "收到，谢谢",
        "好的，我们明天升级后测试",
        "谢谢，稍后验证",
    ],
)
def test_an_answer_that_says_neither_keeps_the_ticket_resolved(
    direct_desk: Desk, sink: Sink, answer: str
) -> None:
    desk = direct_desk
    ticket_id, _ = desk.resolved_ticket()
    asked = desk.wait_mail(ALICE, "Solved — please confirm")
    seen_alice = len(desk.mails_to(ALICE))
    desk.customer_replies(asked, answer)
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED
    with desk.gateway.session() as session:
        [event] = session.scalars(
            select(Event).where(Event.ticket_id == ticket_id).order_by(Event.id.desc()).limit(1)
        ).all()
        assert event.type == "message_added" and "stays resolved" in event.detail
    told = desk.wait_mail(ENG1, "Re: [Support")
    assert answer.split(",")[0] in desk.text(told), "the engineer who resolved it is told"
    assert len(desk.mails_to(ALICE)) == seen_alice, "no mail back to the customer"
    # Auto-close still counts from the resolve.
    assert desk.gateway.due_at(datetime.now(UTC) + timedelta(days=7, minutes=1)) == [ticket_id]


@pytest.mark.parametrize(
    "answer, status",
    [
        ("Still crashes on 5.2.2.", TicketStatus.OPEN),
        ("还是不行", TicketStatus.OPEN),
        ("Thanks. How do I enable hardware encoding?", TicketStatus.OPEN),
        ("Works now, thank you!", TicketStatus.CLOSED),
        ("已经好了，谢谢", TicketStatus.CLOSED),
    ],
)
def test_answers_that_say_something_still_act(
    direct_desk: Desk, sink: Sink, answer: str, status: TicketStatus
) -> None:
    ticket_id, _ = direct_desk.resolved_ticket()
    asked = direct_desk.wait_mail(ALICE, "Solved — please confirm")
    direct_desk.customer_replies(asked, answer)
    assert direct_desk.ticket(ticket_id).status is status


@pytest.mark.parametrize("engineer", [ENG2, LEAD])
def test_an_engineer_writing_to_the_plain_address_with_the_tag_gets_a_fresh_notice(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink, engineer: str
) -> None:
    """A ticket opened while no engineer was configured is not an orphan: an engineer who
    writes about it to the support address gets its notice with their own reply address."""
    desk = Desk(make_direct_gateway(), sink)
    ticket_id, _ = desk.open_ticket()
    assert not [m for m in sink.received if m.recipients != [ALICE]], "nobody to tell yet"
    desk.gateway = make_direct_gateway(engineers=ENGINEERS)
    mail = new_mail(engineer, f"[Support #{ticket_id}] taking this one", f"#assign {engineer}")
    desk.gateway.send(mail, sender=engineer)
    assert len(desk.gateway.tickets()) == 1, "no ticket opened as if a customer wrote"
    receipt, notice = wait_until(lambda: desk.mails_to(engineer)[1:] and desk.mails_to(engineer))
    assert "#assign" in desk.text(receipt), "the receipt: nothing applied, and why"
    assert "Pixel 7" in desk.text(notice), "the fresh notice carries the customer's words"
    assert desk.reply_to(notice) == desk.reply_to(receipt) != SUPPORT
    desk.engineer_replies(notice, engineer, f"#assign {engineer}")
    assert desk.ticket(ticket_id).assignee == engineer


def test_a_chinese_engineer_reads_auto_close_in_chinese(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    zhang = "zhang@example.com"
    desk = Desk(make_direct_gateway(engineers=(Engineer(zhang, "L1", "zh"),)), sink)
    ticket_id, _ = desk.open_ticket()
    desk.engineer_replies(
        desk.wait_mail(zhang, f"[Support #{ticket_id}]"), zhang, "#resolve\n已修复。"
    )
    assert desk.gateway.due_at(datetime.now(UTC) + timedelta(days=7, minutes=1)) == [ticket_id]
    closed = desk.wait_mail(zhang, "已关闭")
    assert "客户 7 天未回复" in desk.text(closed)
    assert "no answer" not in desk.text(closed)
