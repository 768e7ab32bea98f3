"""The web service over HTTP, against the real `gateway serve` on loopback: customers' status
pages behind the links in their mail, answers by button, downloads, revocation and expiry,
the engineers' sign-in and queue, and the security every answer carries."""

from __future__ import annotations

import json
import re
import smtplib
import socket
import sqlite3
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from gateway.links import StatusLink, download_token, read_status_token
from storage.models import Direction, Event, EventKind, Message, Ticket, TicketStatus
from tests.conftest import (
    ALICE,
    ENG1,
    ENG2,
    load_case,
    new_mail,
    run_gateway,
    wait_until,
    with_current_schema,
)
from tests.dovecot import Dovecot
from tests.web import (
    Client,
    WebDesk,
    assert_safe_headers,
    fetch,
    port_taken_exit,
    serve_env,
    status_link,
)

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOB = "bob@customer.example"
SECRET = b"test-secret"


def open_with_cc(desk: WebDesk) -> tuple[int, EmailMessage]:
    first = new_mail(
        "Alice Example <alice@customer.example>",
        "Pusher crashes on Pixel 7",
        "Our pusher crashes on start, SDK 5.2.1 on Android 14.",
        cc=f"Bob Builder <{BOB}>",
    )
    desk.customer_writes(first.as_bytes())
    desk.wait_mail(ALICE, "Pusher crashes")
    return desk.only_ticket().id, first


def test_each_recipient_reads_the_public_trail_behind_their_own_link(web_desk: WebDesk) -> None:
    desk = web_desk
    ticket_id, _ = open_with_cc(desk)
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(
        notice, ENG1, "#note\nCustomer is on the trial plan; check quota.", ("quota.txt", b"q")
    )
    desk.engineer_replies(notice, ENG1, "Please try 5.2.2, attached.", ("fix.txt", b"patched"))
    to_alice = desk.wait_mail(ALICE, "Pusher crashes", count=2)
    to_bob = desk.wait_mail(BOB, "Pusher crashes")
    alice_link, bob_link = status_link(to_alice), status_link(to_bob)
    assert alice_link != bob_link
    html = to_alice.message.get_body(("html",))
    assert html is not None and f'href="{alice_link}"' in str(html.get_content())

    for link, reader_is_alice in ((alice_link, True), (bob_link, False)):
        page = fetch(link)
        assert page.status == 200
        assert_safe_headers(page.headers)
        assert "Please try 5.2.2" in page.body and "Our pusher crashes" in page.body
        for hidden in ("trial plan", "quota.txt", ENG1, ENG2, ALICE, BOB, "eng1@", "@customer"):
            assert hidden not in page.body, hidden
        assert ("<strong>You</strong>" in page.body) is reader_is_alice
        assert ("Alice Example" in page.body) is not reader_is_alice

    page = fetch(alice_link)
    [download] = re.findall(r'href="(/f/[^"]+)"', page.body)[-1:]
    got = fetch(desk.url(download))
    assert got.status == 200 and got.body == "patched"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert got.headers["Content-Type"].startswith("text/plain")
    assert "sandbox" in got.headers["Content-Security-Policy"]

    # The internal note's file, asked for with a genuinely signed link, is not public.
    with desk.gateway.session() as session:
        note = session.scalars(
            select(Message).where(
                Message.ticket_id == ticket_id, Message.internal, Message.direction == Direction.IN
            )
        ).one()
        [note_file] = note.attachments
    link = read_status_token(SECRET, alice_link.rpartition("/")[2])
    assert link is not None
    forged = download_token(SECRET, link, note_file.id, desk.gateway.gateway.clock.now())
    assert fetch(desk.url(f"/f/{forged}")).status == 404

    shown = json.loads(run_gateway(desk.gateway.env, "show", str(ticket_id), "--json").stdout)
    assert shown["status_url"] == status_link(desk.wait_mail(ALICE, "Pusher crashes"))


@SQLITE
def test_a_link_opens_its_own_ticket_and_nothing_else(web_desk: WebDesk) -> None:
    desk = web_desk
    first_id, ack = desk.open_ticket()
    desk.customer_writes(
        new_mail("carol@other.example", "Echo in Web SDK", "We hear echo.").as_bytes(),
        sender="carol@other.example",
    )
    carol_ack = desk.wait_mail("carol@other.example", "Echo in Web SDK")
    link, other = status_link(ack), status_link(carol_ack)
    token = link.rpartition("/")[2]
    ticket, participant, version, mac = token.split("-")
    other_ticket = other.rpartition("/")[2].split("-")[0]
    for broken in (
        token[:-1],
        token[:-1] + ("a" if token[-1] != "a" else "b"),
        f"{other_ticket}-{participant}-{version}-{mac}",
        f"{ticket}-{participant}-{int(version) + 1}-{mac}",
        f"0{token}",
        f"{ticket}-0{participant}-{version}-{mac}",
        "\uff11" + token[1:] if token.startswith("1") else "\u0661" + token,
        f"{token}%0A",
        token.upper(),
        "",
    ):
        reply = fetch(desk.url(f"/t/{quote(broken, safe='%')}"))
        assert reply.status == 404, broken
        assert "Something went wrong" not in reply.body
    assert fetch(link).status == 200 and fetch(other).status == 200
    assert "Echo in Web SDK" not in fetch(link).body

    page = fetch(link)
    downloads = re.findall(r'href="(/f/[^"]+)"', page.body)
    assert downloads, "the first mail's files are offered"
    revoked = run_gateway(desk.gateway.env, "links", "revoke", str(first_id))
    assert "revoked" in revoked.stdout
    assert fetch(link).status == 404
    assert all(fetch(desk.url(path)).status == 404 for path in downloads)
    assert fetch(other).status == 200
    fresh = json.loads(run_gateway(desk.gateway.env, "show", str(first_id), "--json").stdout)
    assert fresh["status_url"] != link and fetch(fresh["status_url"]).status == 200
    trail = [kind for kind, *_ in desk.trail(first_id)]
    assert EventKind.LINKS_REVOKED in trail


@SQLITE
def test_links_stop_working_some_time_after_the_ticket_closes(make_web_desk: object) -> None:
    desk: WebDesk = make_web_desk(GATEWAY_LINKS_DAYS_AFTER_CLOSE="0.00002")  # type: ignore[operator]
    ticket_id, ack = desk.resolved_ticket()
    link = status_link(ack)
    browser = Client()
    page = browser.get(link)
    assert page.status == 200, "resolved is not closed"
    assert browser.post(f"{link}/answer", {"answer": "fixed", "csrf": page.csrf}).status == 303
    assert desk.ticket(ticket_id).status is TicketStatus.CLOSED
    # 0.00002 days is 1.7 s.
    wait_until(lambda: fetch(link).status == 404, 10, "the link to stop working")


def test_fixed_and_not_fixed_are_posts_with_a_csrf_token(web_desk: WebDesk) -> None:
    desk = web_desk
    ticket_id, ack = desk.resolved_ticket()
    link = status_link(ack)
    browser = Client()
    page = browser.get(link)
    assert page.status == 200 and 'value="not_fixed"' in page.body
    answer = f"{link}/answer"

    assert fetch(answer).status == 405, "a GET never answers"
    assert browser.post(answer, {"answer": "not_fixed"}).status == 403
    assert browser.post(answer, {"answer": "not_fixed", "csrf": "x" * 26}).status == 403
    stranger = Client()
    assert stranger.post(answer, {"answer": "not_fixed", "csrf": page.csrf}).status == 403
    assert desk.ticket(ticket_id).status is TicketStatus.RESOLVED

    note = "Still <b>crashes</b> on the Pixel 8"
    done = browser.post(answer, {"answer": "not_fixed", "note": note, "csrf": page.csrf})
    assert done.status == 303 and done.headers["Location"].endswith(link.rpartition("/t")[2])
    assert desk.ticket(ticket_id).status is TicketStatus.OPEN
    with desk.gateway.session() as session:
        event = session.scalars(select(Event).where(Event.type == EventKind.REOPENED)).one()
        assert event.actor == ALICE and "not fixed, on the status page" in event.detail
        assert event.message is not None and event.message.text == note
    told = desk.wait_mail(ENG1, "Reopened")
    assert note in desk.text(told), "the engineers read what the customer wrote"
    after = browser.get(link)
    assert 'value="not_fixed"' not in after.body and "You reopened it." in after.body
    assert "Still &lt;b&gt;crashes&lt;/b&gt; on the Pixel 8" in after.body
    # A second press, from a page opened before, changes nothing more.
    again = browser.post(answer, {"answer": "fixed", "csrf": page.csrf})
    assert again.status == 303 and desk.ticket(ticket_id).status is TicketStatus.OPEN


@SQLITE
def test_fixed_closes_the_ticket_as_the_customers_confirmation(web_desk: WebDesk) -> None:
    desk = web_desk
    ticket_id, ack = desk.resolved_ticket()
    browser = Client()
    link = status_link(ack)
    page = browser.get(link)
    assert browser.post(f"{link}/answer", {"answer": "fixed", "csrf": page.csrf}).status == 303
    ticket = desk.ticket(ticket_id)
    assert ticket.status is TicketStatus.CLOSED
    assert (EventKind.CONFIRMED, "resolved", "closed") in desk.trail(ticket_id)
    assert "You confirmed it is fixed." in browser.get(link).body


@SQLITE
def test_the_page_shows_a_trail_of_500_messages_whole(web_desk: WebDesk) -> None:
    desk = web_desk
    ticket_id, ack = desk.open_ticket()
    with desk.gateway.session() as session:
        ticket = session.get_one(Ticket, ticket_id)
        start = ticket.created_at
        for number in range(1, 500):
            session.add(
                Message(
                    ticket=ticket,
                    direction=Direction.IN,
                    message_id=f"bulk-{number}@customer.example",
                    from_address=ALICE,
                    text=f"Update number {number}",
                    created_at=start + timedelta(seconds=number),
                )
            )
        session.commit()
    page = fetch(status_link(ack))
    assert page.status == 200
    assert page.body.count('class="message by-you"') == 500
    assert '<div class="text">Update number 1</div>' in page.body
    assert "Update number 499" in page.body


@SQLITE
def test_customer_words_never_become_markup_and_times_are_in_their_zone(
    web_desk: WebDesk,
) -> None:
    desk = web_desk
    hostile = new_mail(
        "Mallory <mallory@customer.example>",
        'Crash <script>alert("s")</script>',
        '<img src=x onerror=alert(1)> "quoted" & <a href="javascript:alert(2)">x</a>',
        headers={"Date": "Tue, 01 Dec 2026 09:00:00 -0800"},
    )
    desk.customer_writes(hostile.as_bytes(), sender="mallory@customer.example")
    ack = desk.wait_mail("mallory@customer.example", "Crash")
    page = fetch(status_link(ack))
    assert "<script>alert" not in page.body and "&lt;script&gt;" in page.body
    assert "<img src=x" not in page.body and "&lt;img src=x onerror" in page.body
    assert 'href="javascript' not in page.body
    assert "UTC-08:00" in page.body, "times in the customer's own offset"


@SQLITE
def test_a_chinese_ticket_reads_in_chinese(web_desk: WebDesk) -> None:
    desk = web_desk
    desk.customer_writes(load_case("customer_zh_gbk.eml"), sender="li@example.cn")
    desk.gateway.wait_for_receipts(1)
    [ticket] = desk.gateway.tickets()
    ack = desk.wait_mail(ticket.requester, "")
    page = fetch(status_link(ack))
    assert page.status == 200 and '<html lang="zh">' in page.body
    assert "全部记录" in page.body and "History" not in page.body


@SQLITE
def test_engineers_sign_in_by_a_mailed_link_and_read_the_queue(web_desk: WebDesk) -> None:
    desk = web_desk
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, "#note Suspect the Adreno encoder path.")
    desk.gateway.wait_idle()
    engineer = Client()
    assert engineer.get(desk.url("/queue")).status == 303
    form = engineer.get(desk.url("/sign-in"))
    assert form.status == 200
    assert engineer.post(desk.url("/sign-in"), {"address": "stranger@evil.example"}).status == 403
    for address in (ENG1, "stranger@evil.example"):
        sent = engineer.post(desk.url("/sign-in"), {"address": address, "csrf": form.csrf})
        assert sent.status == 200 and "we have mailed it a sign-in link" in sent.body
    mail = desk.wait_mail(ENG1, "sign-in link")
    assert not desk.mails_to("stranger@evil.example")
    [link] = re.findall(r"^(http://\S+/sign-in/[^\s]+?)\r?$", desk.text(mail), re.MULTILINE)

    forged = engineer.get(link[:-1] + ("a" if link[-1] != "a" else "b"))
    assert forged.status == 404 and 'href="/sign-in">Ask for a new one' in forged.body
    confirm = engineer.get(link)
    assert confirm.status == 200 and ENG1 in confirm.body
    assert engineer.get(desk.url("/queue")).status == 303, "a GET signs nobody in"
    assert engineer.post(link, {"csrf": confirm.csrf}).status == 303
    queue = engineer.get(desk.url("/queue"))
    assert queue.status == 200 and f'href="/queue/{ticket_id}"' in queue.body
    assert "Live stream crashes" in queue.body
    assert f"/queue/{ticket_id}" not in engineer.get(desk.url("/queue?show=mine")).body
    assert desk.ticket(ticket_id).assignee is None
    assert f"/queue/{ticket_id}" in engineer.get(desk.url("/queue?show=unassigned")).body
    run_gateway(desk.gateway.env, "assign", str(ticket_id), ENG2)
    assert f"/queue/{ticket_id}" not in engineer.get(desk.url("/queue?show=unassigned")).body
    assert f"/queue/{ticket_id}" not in engineer.get(desk.url("/queue?show=waiting")).body
    view = engineer.get(desk.url(f"/queue/{ticket_id}"))
    assert "Suspect the Adreno encoder path." in view.body and "internal" in view.body

    out = engineer.post(desk.url("/sign-out"), {"csrf": view.csrf})
    assert out.status == 303 and engineer.get(desk.url("/queue")).status == 303
    printed = run_gateway(desk.gateway.env, "login-link", ENG2).stdout.strip()
    other = Client()
    page = other.get(printed)
    assert other.post(printed, {"csrf": page.csrf}).status == 303
    assert f"/queue/{ticket_id}" in other.get(desk.url("/queue?show=mine")).body
    refused = run_gateway(desk.gateway.env, "login-link", ALICE, check=False)
    assert refused.returncode != 0 and "not a configured engineer" in refused.stderr


@SQLITE
def test_health_readiness_and_figures(make_web_desk: Any, dovecot: Dovecot) -> None:
    desk: WebDesk = make_web_desk(GATEWAY_IMAP_URL=dovecot.url())
    desk.open_ticket()
    desk.gateway.wait_idle()
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        desk.gateway.send(new_mail(ALICE, "Hi", "x"), recipients=["nobody@example.com"])
    health = fetch(desk.url("/healthz"))
    assert health.status == 200
    ready = fetch(desk.url("/readyz"))
    assert ready.status == 200 and ready.headers["Content-Type"].startswith("application/json")
    verdict = json.loads(ready.body)
    assert verdict["ok"] is True
    assert {"database", "spool", "outbox", "imap"} <= set(verdict["checks"])
    figures = fetch(desk.url("/metrics")).body
    for name in (
        "gateway_messages_received_total",
        "gateway_tickets_opened_total",
        'gateway_notifications_total{result="sent"}',
        "gateway_spool_depth",
        "gateway_outbox_depth",
    ):
        assert name in figures, name
    assert ALICE not in figures and not re.search(r'ticket="?\d', figures)
    # Counted by the listeners, read by the web service's process.
    assert 'gateway_messages_refused_total{reason="unknown_recipient"} 1.0' in figures
    imap = wait_until(
        lambda: json.loads(fetch(desk.url("/readyz")).body)["checks"]["imap"]["ok"],
        20,
        "the IMAP reader's pass to show in /readyz",
    )
    assert imap is True
    # A database that answers no writes: not ready, said with 503, and ready again after.
    holder = sqlite3.connect(str(desk.gateway.settings.sqlite_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        busy = fetch(desk.url("/readyz"))
    finally:
        holder.rollback()
        holder.close()
    assert busy.status == 503
    assert json.loads(busy.body)["checks"]["database"]["ok"] is False
    assert fetch(desk.url("/readyz")).status == 200


@SQLITE
def test_serve_stops_naming_the_setting_when_the_port_is_taken(tmp_path, sink, database_url):  # type: ignore[no-untyped-def]
    env = serve_env(tmp_path / "var", sink.port, database_url)
    with_current_schema(env)
    host, port = env["GATEWAY_HTTP_LISTEN"].split(":")
    with socket.socket() as holder:
        holder.bind((host, int(port)))
        holder.listen()
        result = port_taken_exit(env)
    assert result.returncode == 78
    assert "GATEWAY_HTTP_LISTEN" in result.stderr and "Traceback" not in result.stderr


def test_status_link_tokens_are_bound_to_their_parts() -> None:
    from gateway.links import status_token

    token = status_token(SECRET, 12, 34, 0)
    assert read_status_token(SECRET, token) == StatusLink(12, 34, 0)
    assert read_status_token(b"other-secret", token) is None
    assert read_status_token(SECRET, token.replace("12-", "13-", 1)) is None


@SQLITE
def test_people_taken_off_a_ticket_and_merged_tickets(web_desk: WebDesk) -> None:
    desk = web_desk
    first_id, _ = open_with_cc(desk)
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, "Looking into it.")
    bob_link = status_link(desk.wait_mail(BOB, "Pusher crashes"))
    assert fetch(bob_link).status == 200
    desk.engineer_replies(notice, ENG1, f"#uncc {BOB}")
    desk.gateway.wait_idle()
    assert fetch(bob_link).status == 404, "taken off the ticket, out of its page"

    carol = "carol@other.example"
    desk.customer_writes(new_mail(carol, "Echo in Web SDK", "We hear echo.").as_bytes(), carol)
    second_link = status_link(desk.wait_mail(carol, "Echo in Web SDK"))
    second_id = max(ticket.id for ticket in desk.gateway.tickets())
    second_notice = desk.wait_mail(ENG1, f"[Support #{second_id}] New")
    desk.engineer_replies(second_notice, ENG1, f"#merge {first_id}")
    desk.gateway.wait_idle()
    moved = fetch(second_link)
    assert moved.status == 303, "an old link leads on to the ticket it went into"
    onward = fetch(desk.url(moved.headers["Location"]))
    assert onward.status == 200 and "Pusher crashes" in onward.body
    run_gateway(desk.gateway.env, "links", "revoke", str(second_id))
    assert fetch(second_link).status == 404, "the merged ticket's own links are revoked"
    assert fetch(desk.url(moved.headers["Location"])).status == 200


@SQLITE
def test_what_the_service_refuses_and_how_files_leave_it(web_desk: WebDesk) -> None:
    desk = web_desk
    page = new_mail(
        "Alice Example <alice@customer.example>", "Player page broken", "See attached page."
    )
    page.add_attachment(
        b"<html><script>alert(1)</script></html>",
        maintype="text",
        subtype="html",
        filename="player.html",
    )
    desk.customer_writes(page.as_bytes())
    link = status_link(desk.wait_mail(ALICE, "Player page broken"))
    [download] = re.findall(r'href="(/f/[^"]+)"', fetch(link).body)
    got = fetch(desk.url(download))
    assert got.status == 200
    assert got.headers["Content-Type"].startswith("application/octet-stream")
    # Made safe as mail passes it on: renamed, so no click opens it as a page.
    assert got.headers["Content-Disposition"] == "attachment; filename=player.html.bin"

    browser = Client()
    form = browser.get(desk.url("/sign-in"))
    huge = browser.post(desk.url("/sign-in"), {"csrf": form.csrf, "address": "x" * 200_000})
    assert huge.status == 413
    engineer = Client()
    sign_in = run_gateway(desk.gateway.env, "login-link", ENG1).stdout.strip()
    assert engineer.post(sign_in, {"csrf": engineer.get(sign_in).csrf}).status == 303
    assert engineer.get(desk.url("/queue/99999999999999")).status == 404, "no 500 past int32"
    assert fetch(desk.url("/t/" + "9" * 5000)).status == 404
