"""A ticket's whole life by email, over real sockets: the customer writes, engineers are told,
an engineer answers and gives commands through their reply token, the customer gets the reply
and every status change, says "not fixed" (in Chinese), the ticket reopens, the engineer
resolves again, the customer confirms, the ticket closes.

That life runs through a served gateway; the decisions of its parts, all made after the
spool, are checked with the stages in this process (`DirectGateway`), delivering to a real
SMTP sink and storing in real databases, as they decide alike there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.display import print_ticket, ticket_detail
from gateway.settings import Intake
from storage.models import Direction, Event, Message, OutboxMail, Ticket, TicketStatus
from tests.conftest import (
    ALICE,
    ENG1,
    ENG2,
    ENGINEERS,
    LEAD,
    SUPPORT,
    Desk,
    load_case,
    wait_until,
)


@pytest.fixture
def desk(direct_desk: Desk) -> Desk:
    return direct_desk


def test_whole_life_of_a_ticket_by_email(served_desk: Desk, capsys: object) -> None:
    desk = served_desk
    desk.customer_writes(load_case("customer_new.eml"))
    ack = desk.wait_mail(ALICE, "Live stream crashes")
    notice = desk.wait_mail(ENG1, "New (P3)")
    ticket_id = desk.only_ticket().id

    # The engineer's notice: the customer's words, the files, the number, how to act.
    body = desk.text(notice)
    assert f"New ticket #{ticket_id}" in body and "pusher starts on a Pixel 7" in body
    assert "#resolve" in body and "Priority P3" in body
    assert sorted(desk.attachment_names(notice)) == ["logcat.txt", "screen shot.png"]
    assert desk.reply_to(notice).startswith("support+") and desk.reply_to(notice) != desk.reply_to(
        ack
    )
    assert not desk.mails_to(LEAD), "L2 engineers hear of a ticket only when it is escalated"

    # The engineer answers from a normal mail client: commands on top, quoted history below.
    desk.engineer_replies(
        notice,
        ENG1,
        "#priority P2\n\nHi Alice,\n\nplease try SDK 5.2.2; it "
        "configures the encoder before starting.\n\nBob",
        attachment=("patch-notes.txt", b"5.2.2: encoder fix"),
    )
    relayed = desk.wait_mail(ALICE, "Re: [Support")
    relayed_text = desk.text(relayed)
    assert "please try SDK 5.2.2" in relayed_text
    assert "#priority" not in relayed_text and "wrote:" not in relayed_text
    assert ENG1 not in relayed.raw.decode("ascii", "replace")
    assert desk.sender_of(relayed) == SUPPORT
    assert f"[Support #{ticket_id}]" in str(relayed.message["Subject"])
    assert ack.message["Message-ID"] in relayed.message["References"]
    assert desk.attachment_names(relayed) == ["patch-notes.txt"]
    # One mail for one message: the reply states the status its command set.
    assert "We're working on ticket" in relayed_text
    receipt = desk.wait_mail(ENG1, "Your commands")
    assert "applied" in desk.text(receipt) and "P3 → P2" in desk.text(receipt)

    # Resolved: the customer is asked to confirm, with two one-click answers.
    desk.engineer_replies(
        desk.wait_mail(ENG1, "Your commands"), ENG1, "#resolve\nFixed in SDK 5.2.2, released today."
    )
    confirm = desk.wait_mail(ALICE, "Solved — please confirm")
    links = desk.text(confirm)
    assert "mailto:support+" in links and "subject=%5BSupport%20%23" in links
    assert "Not%20fixed" in links and "Fixed" in links
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED

    # "Not fixed", in Chinese, from the customer's own client: reopened, counted, told.
    desk.customer_replies(confirm, "还是不行，问题依旧。换了 5.2.2 以后还是闪退。")
    desk.wait_mail(ALICE, "Open again")
    reopened_notice = desk.wait_mail(ENG1, "Reopened")
    assert "还是不行" in desk.text(reopened_notice)
    ticket = desk.ticket(ticket_id)
    assert ticket.status is TicketStatus.OPEN and ticket.reopen_count == 1

    # Resolved again; "works now, thanks" closes it.
    desk.engineer_replies(reopened_notice, ENG1, "#resolve\nThe second fix is in 5.2.3.")
    confirm_again = desk.wait_mail(ALICE, "Solved — please confirm", count=2)
    desk.customer_replies(confirm_again, "Works now, thanks!")
    desk.wait_mail(ALICE, "Closed")
    assert desk.ticket(ticket_id).status is TicketStatus.CLOSED

    trail = desk.trail(ticket_id)
    assert [t for t in trail if t[0] in ("status_changed", "reopened", "confirmed")] == [
        ("status_changed", "new", "open"),
        ("status_changed", "open", "resolved"),
        ("reopened", "resolved", "open"),
        ("status_changed", "open", "resolved"),
        ("confirmed", "resolved", "closed"),
    ]
    with desk.gateway.session() as session:
        print_ticket(ticket_detail(session.get_one(Ticket, ticket_id), Intake()))
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "reopened resolved → open" in printed and "confirmed resolved → closed" in printed


def test_spoofed_engineer_from_changes_nothing_and_warns_the_engineer(desk: Desk) -> None:
    ticket_id, ack = desk.open_ticket()
    forged = desk.reply(ack, ENG1, "#status closed\n#priority P1\nClosing this.")
    del forged["To"]
    forged["To"] = SUPPORT
    desk.gateway.send(forged, recipients=[SUPPORT], sender=ENG1)
    warning = desk.wait_mail(ENG1, "Your commands")
    text = desk.text(warning)
    assert "NOT applied" in text and "#status closed" in text
    assert "did not come through your own reply address" in text
    desk.gateway.wait_idle()
    ticket = desk.ticket(ticket_id)
    assert ticket.status is TicketStatus.NEW and ticket.priority.value == "P3"
    assert len(desk.mails_to(ALICE)) == 1, "nothing but the acknowledgement reaches the customer"


def test_customer_writing_status_closed_changes_nothing(desk: Desk) -> None:
    ticket_id, ack = desk.open_ticket()
    desk.customer_replies(ack, "#status closed\n#priority P1\nPlease hurry.")
    forwarded = desk.wait_mail(ENG1, "Re: [Support")
    assert "#status closed" in desk.text(forwarded)
    desk.gateway.wait_idle()
    ticket = desk.ticket(ticket_id)
    assert ticket.status is TicketStatus.NEW and ticket.priority.value == "P3"
    assert len(desk.mails_to(ALICE)) == 1, "customers get no command receipts"


def test_commands_in_quoted_text_or_below_the_reply_are_not_commands(desk: Desk) -> None:
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(
        notice, ENG1, "Looking into it now.\n#status closed\n> #resolve\n> #priority P1"
    )
    desk.wait_mail(ALICE, "Re: [Support")
    desk.gateway.wait_idle()
    ticket = desk.ticket(ticket_id)
    assert ticket.status is TicketStatus.OPEN, "a public reply opens it; nothing more"
    assert ticket.priority.value == "P3"
    assert not [m for m in desk.mails_to(ENG1) if "Your commands" in desk.subject(m)]


def test_forwarded_notification_answered_by_someone_else_changes_nothing(desk: Desk) -> None:
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, "boss@example.com", "#resolve\nJust close it.")
    desk.engineer_replies(notice, ENG2, "#status waiting\nAsking for logs.")
    warning = desk.wait_mail(ENG2, "Your commands")
    assert "another engineer's reply address" in desk.text(warning)
    desk.gateway.wait_idle()
    assert desk.ticket(ticket_id).status is TicketStatus.NEW
    assert not desk.mails_to("boss@example.com")
    assert len(desk.mails_to(ALICE)) == 1


def test_note_assign_and_escalate(desk: Desk) -> None:
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(
        notice,
        ENG1,
        "#assign eng2@example.com\n#escalate\n"
        "#note Encoder bug, probably the Adreno driver.\nSee JIRA-12.",
    )
    assigned = desk.wait_mail(ENG2, "Assigned to you")
    assert "eng1@example.com assigned" in desk.text(assigned)
    escalated = desk.wait_mail(LEAD, "已升级")  # the L2 lead reads Chinese
    assert "pusher starts on a Pixel 7" in desk.text(escalated)
    receipt = desk.wait_mail(ENG1, "Your commands")
    assert "Nothing was sent to the customer" in desk.text(receipt)
    desk.gateway.wait_idle()
    ticket = desk.ticket(ticket_id)
    assert ticket.assignee == ENG2 and ticket.tier == "L2"
    assert all("Adreno" not in desk.text(m) for m in desk.mails_to(ALICE))
    with desk.gateway.session() as session:
        note = session.scalars(select(Message).where(Message.text.contains("Adreno"))).one()
        assert note.internal and note.text.startswith("Encoder bug")


def test_unknown_or_impossible_commands_are_refused_with_reasons(desk: Desk) -> None:
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(
        notice, ENG1, "#status frozen\n#assign stranger@example.org\n#frob\n#priority P1"
    )
    text = desk.text(desk.wait_mail(ENG1, "Your commands"))
    assert "#status needs one of" in text
    assert "stranger@example.org is not one of the configured engineers" in text
    assert "unknown command" in text
    assert "P3 → P1" in text
    assert desk.ticket(ticket_id).priority.value == "P1"


def test_out_of_office_reply_never_confirms_or_reopens(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    confirm = desk.wait_mail(ALICE, "Solved — please confirm")
    auto = desk.reply(confirm, ALICE, "I am out of the office until Monday. Not fixed.")
    auto["Auto-Submitted"] = "auto-replied"
    desk.gateway.send(auto, recipients=[desk.reply_to(confirm)], sender=ALICE)
    desk.gateway.wait_for_receipts(3)
    desk.gateway.wait_idle()
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED
    assert ("automatic_reply", "", "") in desk.trail(ticket_id)


def test_resolved_ticket_closes_after_the_auto_close_days(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    due = desk.gateway.due_at
    assert due(datetime.now(UTC) + timedelta(days=6)) == []
    assert due(datetime.now(UTC) + timedelta(days=7, minutes=1)) == [ticket_id]
    assert due(datetime.now(UTC) + timedelta(days=8)) == [], "closed once only"
    closed = desk.wait_mail(ALICE, "Closed")
    assert "7 days" in desk.text(closed)
    desk.wait_mail(ENG1, "resolved -> closed")
    assert ("auto_closed", "resolved", "closed") in desk.trail(ticket_id)


def test_reply_to_closed_ticket_reopens_within_window_then_starts_a_follow_up(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    confirm = desk.wait_mail(ALICE, "Solved — please confirm")
    desk.customer_replies(confirm, "已经好了，谢谢")
    closed = desk.wait_mail(ALICE, "Closed")
    desk.customer_replies(closed, "It is back since this morning.")
    desk.wait_mail(ALICE, "Open again")
    assert desk.ticket(ticket_id).status is TicketStatus.OPEN
    assert desk.ticket(ticket_id).reopen_count == 1

    desk.engineer_replies(desk.wait_mail(ENG1, "Reopened"), ENG1, "#status closed\nDuplicate.")
    closed_again = desk.wait_mail(ALICE, "Re: [Support")  # the reply says it is closed
    assert "is now closed" in desk.text(closed_again)
    with desk.gateway.gateway.sessions.begin() as session:  # fifteen days pass
        ticket = session.get_one(Ticket, ticket_id)
        ticket.status_changed_at = datetime.now(UTC) - timedelta(days=15)
        for mail in session.scalars(select(OutboxMail)):
            mail.created_at -= timedelta(days=15)
    desk.customer_replies(closed_again, "Same crash again on the new build.")
    follow_up = wait_until(lambda: desk.gateway.tickets()[1:], what="a follow-up ticket")[0]
    assert follow_up.follow_up_of == ticket_id and follow_up.status is TicketStatus.NEW
    assert follow_up.subject == desk.ticket(ticket_id).subject
    follow_up_ack = desk.wait_mail(ALICE, f"[Support #{follow_up.id}]")
    assert f"#{ticket_id}" in desk.text(follow_up_ack)
    assert desk.wait_mail(ENG1, f"[Support #{follow_up.id}] New")
    assert desk.ticket(ticket_id).status is TicketStatus.CLOSED
    assert ("followed_up", "", "") in desk.trail(ticket_id)


def test_status_events_record_actor_time_and_causing_message(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    with desk.gateway.session() as session:
        event = session.scalars(
            select(Event).where(
                Event.ticket_id == ticket_id, Event.to_status == TicketStatus.RESOLVED
            )
        ).one()
        assert event.actor == ENG1 and event.at is not None
        assert event.message is not None and "Fixed in" in event.message.text


def test_html_only_engineer_reply_is_relayed_as_text_with_its_commands(desk: Desk) -> None:
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    reply = desk.reply(notice, ENG1, "unused")
    reply.set_content(
        "<html><body><div>#status waiting</div><div><br></div>"
        "<div>Could you send the <b>full</b> logcat?</div>"
        "<div><br></div><div>On Wed, Support wrote:</div>"
        "<blockquote>#resolve<br>old text</blockquote></body></html>",
        subtype="html",
    )
    desk.gateway.send(reply, recipients=[desk.reply_to(notice)], sender=ENG1)
    relayed = desk.wait_mail(ALICE, "Re: [Support")
    text = desk.text(relayed)
    assert "Could you send the full logcat?" in text
    assert "#status" not in text and "old text" not in text
    html = relayed.message.get_body(("html",))
    assert html is not None and "<b>" not in html.get_content()  # type: ignore[attr-defined]
    assert "is waiting for your reply" in text, "the reply states the status it set"
    assert desk.ticket(ticket_id).status is TicketStatus.WAITING


def test_large_attachments_are_linked_not_attached(make_direct_gateway: Any, sink: Any) -> None:
    desk = Desk(
        make_direct_gateway(
            engineers=ENGINEERS,
            attach_to_notices_up_to_bytes=530,
            attachment_url="https://files.example/blobs",
        ),
        sink,
    )
    desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    assert desk.attachment_names(notice) == ["screen shot.png"]  # 518 bytes; logcat.txt has 546
    text = desk.text(notice)
    assert "screen shot.png (image/png, 518 bytes), attached" in text
    assert "logcat.txt (text/plain, " in text and "https://files.example/blobs/" in text


def test_engineer_address_shown_only_when_configured(make_direct_gateway: Any, sink: Any) -> None:
    desk = Desk(make_direct_gateway(engineers=ENGINEERS, show_engineer_address=True), sink)
    desk.open_ticket()
    desk.engineer_replies(desk.wait_mail(ENG1, "New (P3)"), ENG1, "Looking at it.")
    relayed = desk.wait_mail(ALICE, "Re: [Support")
    assert ENG1 in desk.text(relayed)
    assert desk.sender_of(relayed) == SUPPORT and ENG1 not in desk.reply_to(relayed)


def test_chinese_customer_gets_chinese_status_mail_and_answers(desk: Desk) -> None:
    desk.customer_writes(load_case("customer_zh_gbk.eml"), sender="li@customer.example")
    notice = desk.wait_mail(ENG1, "New (P3)")
    ticket_id = desk.only_ticket().id
    desk.engineer_replies(notice, ENG1, "#resolve\n已在 5.2.2 修复。")
    customer = desk.only_ticket().requester
    confirm = desk.wait_mail(customer, "已解决")
    text = desk.text(confirm)
    assert "mailto:support+" in text and "%E6%9C%AA%E8%A7%A3%E5%86%B3" in text  # 未解决
    desk.customer_replies(confirm, "解决了，谢谢", sender=customer)
    desk.wait_mail(customer, "已关闭")
    assert desk.ticket(ticket_id).status is TicketStatus.CLOSED


def test_engineer_reply_with_only_an_attachment_relays_no_quoted_notice(desk: Desk) -> None:
    desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    reply = desk.reply(notice, ENG1, "", attachment=("fix.patch", b"--- a\n+++ b\n"))
    desk.gateway.send(reply, recipients=[desk.reply_to(notice)], sender=ENG1)
    relayed = desk.wait_mail(ALICE, "Re: [Support")
    assert desk.attachment_names(relayed) == ["fix.patch"]
    text = desk.text(relayed)
    assert "To act" not in text and "#resolve" not in text and "pusher starts" not in text
    assert ENG2 not in text


def test_notification_quoted_without_an_attribution_line_is_cut_at_the_separator(
    desk: Desk,
) -> None:
    desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    body = f"Please update to 5.2.2.\n\n{desk.text(notice)}"  # pasted under, unquoted
    desk.gateway.send(
        desk.reply(notice, ENG1, body), recipients=[desk.reply_to(notice)], sender=ENG1
    )
    text = desk.text(desk.wait_mail(ALICE, "Re: [Support"))
    assert "Please update to 5.2.2." in text and "New ticket #" not in text


def test_stranger_citing_a_message_id_is_heard_but_never_mailed(desk: Desk) -> None:
    ticket_id, ack = desk.open_ticket()
    mallory = desk.reply(ack, "mallory@evil.example", "Please add me. Not fixed!")
    desk.gateway.send(mallory, recipients=[SUPPORT], sender="mallory@evil.example")
    desk.wait_mail(ENG1, "Re: [Support")  # the engineers hear of it
    desk.engineer_replies(desk.wait_mail(ENG1, "New (P3)"), ENG1, "#resolve\nFixed.")
    desk.wait_mail(ALICE, "Solved — please confirm")
    desk.gateway.wait_idle()
    assert not desk.mails_to("mallory@evil.example")
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED


def test_bounce_or_null_sender_mail_never_reopens_or_joins(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    confirm = desk.wait_mail(ALICE, "Solved — please confirm")
    auto = desk.reply(confirm, "bob@other.example", "We have received your message. Not fixed.")
    desk.gateway.send(auto, recipients=[desk.reply_to(confirm)], sender="")
    desk.gateway.wait_for_receipts(3)
    desk.gateway.wait_idle()
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED
    with desk.gateway.session() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert "bob@other.example" not in [p.address for p in ticket.participants]


def test_thanks_after_auto_close_leaves_the_ticket_closed(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    confirm = desk.wait_mail(ALICE, "Solved — please confirm")
    assert desk.gateway.due_at(datetime.now(UTC) + timedelta(days=8)) == [ticket_id]
    desk.customer_replies(confirm, "Works now, thanks!")
    desk.gateway.wait_for_receipts(3)
    desk.gateway.wait_idle()
    ticket = desk.ticket(ticket_id)
    assert ticket.status is TicketStatus.CLOSED and ticket.reopen_count == 0


def test_later_replies_to_an_old_thread_join_its_follow_up(desk: Desk) -> None:
    ticket_id, _ = desk.resolved_ticket()
    confirm = desk.wait_mail(ALICE, "Solved — please confirm")
    desk.customer_replies(confirm, "Fixed, thank you.")
    closed = desk.wait_mail(ALICE, "Closed")
    with desk.gateway.gateway.sessions.begin() as session:
        closed_at = datetime.now(UTC) - timedelta(days=20)
        session.get_one(Ticket, ticket_id).status_changed_at = closed_at
    desk.customer_replies(closed, "The crash is back on 5.3.")
    wait_until(lambda: desk.gateway.tickets()[1:], what="a follow-up ticket")
    desk.customer_replies(closed, "And here is the log.")
    desk.gateway.wait_for_receipts(5)
    tickets = desk.gateway.tickets()
    assert len(tickets) == 2
    with desk.gateway.session() as session:
        texts = session.scalars(
            select(Message.text).where(
                Message.ticket_id == tickets[1].id, Message.direction == Direction.IN
            )
        )
        assert list(texts) == ["The crash is back on 5.3.", "And here is the log."]
