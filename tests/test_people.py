"""Who a message may bring onto a ticket, and who may join one: the copy limit, `#cc` and
`#uncc`, strangers who quote a ticket's Message-IDs, and `#merge`."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from gateway.workflow.people import MAX_COPIED_KEPT
from storage.models import (
    Direction,
    Event,
    Message,
    Participant,
    ParticipantRole,
    Ticket,
    TicketStatus,
)
from tests.conftest import (
    ALICE,
    ENG1,
    ENGINEERS,
    SUPPORT,
    CapturedMail,
    Desk,
    DirectGateway,
    Sink,
    new_mail,
    wait_until,
)

BOB = "bob@customer.example"
STRANGER = "mallory@elsewhere.example"


def copied(count: int, domain: str = "copy.example") -> list[str]:
    return [f"person{number:03}@{domain}" for number in range(count)]


def roles(desk: Desk, ticket_id: int) -> dict[str, ParticipantRole]:
    with desk.gateway.session() as session:
        rows = session.scalars(select(Participant).where(Participant.ticket_id == ticket_id))
        return {p.address: p.role for p in rows}


def events(desk: Desk, ticket_id: int, kind: str) -> list[Event]:
    with desk.gateway.session() as session:
        return list(
            session.scalars(
                select(Event).where(Event.ticket_id == ticket_id, Event.type == kind)
            ).all()
        )


# -- the copy limit -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "to_count, cc_count, limit",
    [(0, 300, 10), (5, 250, 10), (1, 12, 3), (0, 10, 10)],
)
def test_a_message_adds_at_most_the_limit_of_people(
    make_direct_gateway: Callable[..., DirectGateway],
    sink: Sink,
    to_count: int,
    cc_count: int,
    limit: int,
) -> None:
    desk = Desk(make_direct_gateway(engineers=ENGINEERS, max_people_added_per_message=limit), sink)
    to_people, cc_people = copied(to_count, "to.example"), copied(cc_count)
    everyone = [*to_people, *cc_people]
    desk.customer_writes(
        new_mail(
            ALICE,
            "Pusher crashes",
            "The pusher crashes on start.",
            to=", ".join([SUPPORT, *to_people]),
            cc=", ".join([ENG1, ALICE, *cc_people]),
        ).as_bytes()
    )
    ticket = desk.only_ticket()
    on_ticket = roles(desk, ticket.id)
    added = [a for a in everyone if on_ticket.get(a) is ParticipantRole.CC]
    assert added == everyone[:limit], "the first addresses of To, then Cc"
    assert on_ticket[ALICE] is ParticipantRole.REQUESTER
    assert on_ticket[ENG1] is ParticipantRole.ENGINEER, "an engineer in Cc is never a customer"
    left_out = everyone[limit:]
    kept = left_out[:MAX_COPIED_KEPT]
    assert all(on_ticket[a] is ParticipantRole.COPIED for a in kept)
    assert all(a not in on_ticket for a in left_out[MAX_COPIED_KEPT:]), "only counted"

    notice = desk.wait_mail(ENG1, "New (P3)")
    if left_out:
        text = desk.text(notice)
        assert f"Not added: {len(left_out)} people" in text and left_out[0] in text
        [event] = events(desk, ticket.id, "people_not_added")
        assert f"{len(left_out)} people in copy not added (at most {limit}" in event.detail
    else:
        assert "Not added" not in desk.text(notice)
        assert not events(desk, ticket.id, "people_not_added")

    # A routine resolve mails the requester and the people added, nobody else.
    desk.engineer_replies(notice, ENG1, "#resolve\nFixed in 5.2.2.")
    mailed = {r for mail in sink.received for r in mail.recipients}
    assert mailed & set(left_out) == set()
    assert set(everyone[:limit]) <= mailed
    assert len(sink.received) <= 2 * (limit + 1) + 2 * len(ENGINEERS) + 2


def test_copy_limit_applies_to_a_customer_reply_too(direct_desk: Desk, sink: Sink) -> None:
    ticket_id, ack = direct_desk.open_ticket()
    reply = direct_desk.reply(ack, ALICE, "Adding my whole team.")
    reply["Cc"] = ", ".join(copied(40))
    direct_desk.gateway.send(reply, recipients=[direct_desk.reply_to(ack)], sender=ALICE)
    on_ticket = roles(direct_desk, ticket_id)
    assert sum(role is ParticipantRole.CC for role in on_ticket.values()) == 10
    assert sum(role is ParticipantRole.COPIED for role in on_ticket.values()) == 30
    forwarded = direct_desk.wait_mail(ENG1, "Re: [Support")
    assert "Not added: 30 people" in direct_desk.text(forwarded)


def test_engineers_add_and_drop_people_on_purpose(direct_desk: Desk, sink: Sink) -> None:
    desk = direct_desk
    desk.customer_writes(
        new_mail(
            ALICE,
            "直播卡顿",
            "安卓 14 上推流卡顿。",
            cc=", ".join(copied(12)),
        ).as_bytes()
    )
    ticket = desk.only_ticket()
    left_out = copied(12)[10:]
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(
        notice,
        ENG1,
        f"#cc {left_out[0]}\n#uncc {copied(12)[0]}\n#cc {ALICE}\n#uncc {ALICE}\n"
        f"#cc {ENG1}\n#uncc nobody@nowhere.example\n#cc not-an-address\n\n我们正在排查。",
    )
    on_ticket = roles(desk, ticket.id)
    assert on_ticket[left_out[0]] is ParticipantRole.CC
    assert on_ticket[copied(12)[0]] is ParticipantRole.COPIED
    assert on_ticket[ALICE] is ParticipantRole.REQUESTER
    receipt = desk.text(desk.wait_mail(ENG1, "Your commands"))
    assert f"applied      #cc {left_out[0]}" in receipt
    assert f"applied      #uncc {copied(12)[0]}" in receipt
    assert "is already on the ticket" in receipt
    assert "opened the ticket and cannot be dropped" in receipt
    assert "the support address or an engineer's" in receipt
    assert "is not among the people the ticket mails" in receipt
    assert "#cc needs one person's address" in receipt
    assert [e.detail for e in events(desk, ticket.id, "participant_added")] == [left_out[0]]
    assert [e.detail for e in events(desk, ticket.id, "participant_dropped")] == [copied(12)[0]]
    # The reply went to the one added and not to the one dropped.
    assert desk.mails_to(left_out[0]) and not desk.mails_to(copied(12)[0])


def test_someone_in_copy_but_not_added_joins_the_conversation_without_mail(
    direct_desk: Desk, sink: Sink
) -> None:
    desk = direct_desk
    first = new_mail(ALICE, "Black screen", "Black screen on iOS 17.", cc=", ".join(copied(11)))
    desk.customer_writes(first.as_bytes())
    ticket = desk.only_ticket()
    outsider = copied(11)[10]
    answer = new_mail(outsider, "Re: Black screen", "Same here on iPad, SDK 4.0.6.")
    answer["In-Reply-To"] = first["Message-ID"]
    answer["References"] = first["Message-ID"]
    desk.gateway.send(answer, sender=outsider)
    assert len(desk.gateway.tickets()) == 1, "they were in copy: their words join the ticket"
    [added] = [e for e in events(desk, ticket.id, "message_added") if "in copy" in e.detail]
    assert added.actor == outsider
    notice = desk.wait_mail(ENG1, "Re: [Support")
    assert "Same here on iPad" in desk.text(notice)
    assert desk.ticket(ticket.id).status is TicketStatus.NEW, "they change nothing"
    desk.engineer_replies(desk.wait_mail(ENG1, "New (P3)"), ENG1, "#resolve\nFixed.")
    assert desk.wait_mail(ALICE, "Solved — please confirm"), "the resolve was mailed"
    assert {copied(11)[0], copied(11)[9]} <= {r for m in sink.received for r in m.recipients}
    assert not desk.mails_to(outsider)


# -- strangers ------------------------------------------------------------------------------


def stranger_reply(
    to: CapturedMail | EmailMessage, sender: str, body: str, how: str
) -> EmailMessage:
    """A message from someone not on the ticket that refers to it in one of the ways a
    client or a forger can."""
    original = to.message if isinstance(to, CapturedMail) else to
    subject = str(original["Subject"])
    mail = new_mail(sender, f"Re: {subject}" if how != "tag" else f"Hi {subject}", body)
    if how == "in-reply-to":
        mail["In-Reply-To"] = original["Message-ID"]
    elif how == "references":
        mail["References"] = f"<unknown@x.example> {original['Message-ID']}"
    return mail


@pytest.mark.parametrize("how", ["in-reply-to", "references", "tag"])
@pytest.mark.parametrize(
    "body", ["Please send me the customer's logs.", "请把这个客户的日志发给我，谢谢。"]
)
def test_a_stranger_quoting_a_ticket_gets_a_related_ticket_of_their_own(
    direct_desk: Desk, sink: Sink, how: str, body: str
) -> None:
    desk = direct_desk
    ticket_id, ack = desk.open_ticket()
    desk.gateway.send(stranger_reply(ack, STRANGER, body, how), sender=STRANGER)
    tickets = desk.gateway.tickets()
    assert len(tickets) == 2
    theirs = tickets[1]
    assert theirs.requester == STRANGER
    with desk.gateway.session() as session:
        words = session.scalars(select(Message.text).where(Message.ticket_id == ticket_id))
        assert all(body not in text for text in words), "never on the customer's ticket"
    assert ("related", "", "") in desk.trail(theirs.id)
    assert ("related", "", "") in desk.trail(ticket_id)
    [mine] = events(desk, ticket_id, "related")
    assert f"#{theirs.id}" in mine.detail and STRANGER in mine.detail
    assert desk.wait_mail(STRANGER, f"[Support #{theirs.id}]"), "acknowledged as usual"
    notice = desk.text(desk.wait_mail(ENG1, f"[Support #{theirs.id}] New"))
    assert f"Related to #{ticket_id}" in notice and f"#merge {ticket_id}" in notice
    assert not [m for m in desk.mails_to(ALICE) if body[:10] in desk.text(m)]


def test_people_on_the_ticket_still_thread_without_a_token(direct_desk: Desk, sink: Sink) -> None:
    desk = direct_desk
    first = new_mail(ALICE, "Echo on Web SDK", "Echo in Chrome.", cc=BOB)
    desk.customer_writes(first.as_bytes())
    ticket = desk.only_ticket()
    for sender in (ALICE, BOB):
        follow = stranger_reply(first, sender, f"More from {sender}.", "references")
        desk.gateway.send(follow, sender=sender)
    assert len(desk.gateway.tickets()) == 1
    assert len(events(desk, ticket.id, "message_added")) == 2


# -- #merge --------------------------------------------------------------------------------


def test_merge_joins_a_customers_second_address_into_the_older_ticket(
    direct_desk: Desk, sink: Sink
) -> None:
    desk = direct_desk
    older_id, ack = desk.open_ticket()
    second_address = "alice.private@mail.example"
    desk.gateway.send(
        stranger_reply(ack, second_address, "This is Alice from home: 还是崩溃。", "references"),
        sender=second_address,
    )
    newer = desk.gateway.tickets()[1]
    notice = desk.wait_mail(ENG1, f"[Support #{newer.id}] New")
    desk.engineer_replies(notice, ENG1, f"#merge {older_id}")
    receipt = desk.text(desk.wait_mail(ENG1, "Your commands"))
    assert f"#{newer.id} merged into #{older_id}" in receipt

    merged, survivor = desk.ticket(newer.id), desk.ticket(older_id)
    assert merged.status is TicketStatus.CLOSED and merged.merged_into == older_id
    assert roles(desk, older_id)[second_address] is ParticipantRole.CC
    with desk.gateway.session() as session:
        texts = list(session.scalars(select(Message.text).where(Message.ticket_id == older_id)))
        assert any("还是崩溃" in text for text in texts), "the trail moved"
        moved = select(Message).where(
            Message.ticket_id == newer.id, Message.direction == Direction.IN
        )
        assert not session.scalars(moved).first(), "outgoing mail about it stays"
    assert ("merged", "", "") in desk.trail(older_id)
    assert [t[0] for t in desk.trail(newer.id)][-1] == "merged"
    assert survivor.status is TicketStatus.NEW

    # Mail to the merged ticket, by its token, lands on the survivor.
    their_ack = desk.wait_mail(second_address, f"[Support #{newer.id}]")
    desk.customer_replies(their_ack, "Any news?", sender=second_address)
    assert len(desk.gateway.tickets()) == 2
    assert _words_on(desk, older_id, "Any news?")
    assert not _words_on(desk, newer.id, "Any news?")


def _words_on(desk: Desk, ticket_id: int, words: str) -> bool:
    with desk.gateway.session() as session:
        texts = session.scalars(select(Message.text).where(Message.ticket_id == ticket_id))
        return any(words in text for text in texts)


@pytest.mark.parametrize(
    "argument, reason",
    [("99", "there is no ticket #99"), ("SELF", "name the other ticket"), ("x", "#merge needs")],
)
def test_merge_refusals_are_explained(
    direct_desk: Desk, sink: Sink, argument: str, reason: str
) -> None:
    desk = direct_desk
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    argument = str(ticket_id) if argument == "SELF" else argument
    desk.engineer_replies(notice, ENG1, f"#merge {argument}")
    assert reason in desk.text(desk.wait_mail(ENG1, "Your commands"))
    with desk.gateway.session() as session:
        assert session.get_one(Ticket, ticket_id).merged_into is None


def test_copy_limit_over_real_smtp(desk: Desk, sink: Sink) -> None:
    """The listener, the worker process and the relay: 200 people in Cc, one resolve."""
    desk.customer_writes(
        new_mail(ALICE, "Crash on start", "Crash on start.", cc=", ".join(copied(200))).as_bytes()
    )
    notice = desk.wait_mail(ENG1, "New (P3)")
    assert "Not added: 190 people" in desk.text(notice)
    desk.engineer_replies(notice, ENG1, "#resolve\nFixed in 5.2.2.")
    desk.wait_mail(ALICE, "Solved — please confirm")
    desk.gateway.wait_idle()
    customers = {r for mail in sink.received for r in mail.recipients if "copy.example" in r}
    assert customers == set(copied(200)[:10])


def test_a_stranger_over_real_smtp_gets_a_ticket_of_their_own(desk: Desk, sink: Sink) -> None:
    """The listener and the worker process: a stranger quoting Alice's ticket."""
    ticket_id, ack = desk.open_ticket()
    desk.gateway.send(
        stranger_reply(ack, STRANGER, "我也遇到了同样的问题，请把解决方法发给我。", "references"),
        sender=STRANGER,
    )
    theirs = wait_until(lambda: desk.gateway.tickets()[1:], what="the stranger's ticket")[0]
    assert theirs.requester == STRANGER
    assert desk.wait_mail(STRANGER, f"[Support #{theirs.id}]")
    notice = desk.text(desk.wait_mail(ENG1, f"[Support #{theirs.id}] New"))
    assert f"Related to #{ticket_id}" in notice
    assert not _words_on(desk, ticket_id, "我也遇到了同样的问题")
