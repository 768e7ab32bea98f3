"""Hostile and broken mail: loops, spoofed senders, bounces, Outlook's winmail.dat.

Each test here would fail without the rule it names. What is decided after the spool runs
with the gateway's stages in this process (`DirectGateway`); what the listener refuses
before `250` runs against a served gateway."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from gateway.composing import MailFile, compose
from gateway.display import print_ticket, ticket_detail
from gateway.parsing import parse_sender
from gateway.settings import Intake
from storage.models import (
    AddressHold,
    Attachment,
    Event,
    Message,
    Receipt,
    ReceiptOutcome,
    Ticket,
)
from tests.conftest import (
    ALICE,
    ENG1,
    ENGINEERS,
    SUPPORT,
    CapturedMail,
    Desk,
    DirectGateway,
    RunningGateway,
    Sink,
    load_case,
    raw_mail,
    wait_until,
)
from tests.test_corpus import corpus_dir


@pytest.fixture
def gateway(make_direct_gateway: Callable[..., DirectGateway]) -> DirectGateway:
    return make_direct_gateway()


@pytest.fixture
def make_gateway(
    make_direct_gateway: Callable[..., DirectGateway],
) -> Callable[..., DirectGateway]:
    return make_direct_gateway


@pytest.fixture
def desk(direct_desk: Desk) -> Desk:
    return direct_desk


@pytest.mark.parametrize(
    "value",
    [
        "alice@example.org)<bob@example.org>",
        "alice@example.org (Alice)<bob@example.org>",
        "a@b.example (x) <bob@example.org>",
        "alice(@evil.example)@example.org",
        "Alice <bob@example.org",
    ],
)
def test_ambiguous_from_is_never_read_as_the_second_address(value: str) -> None:
    assert parse_sender(value, None)[1] == ""


@pytest.mark.parametrize(
    "value, address",
    [
        ("Alice Smith <alice@example.org>", "alice@example.org"),
        ('"Smith, Alice (Support)" <alice@example.org>', "alice@example.org"),
        ("alice@example.org (Alice Smith)", "alice@example.org"),
        ("jane@example.com <jane@mail.example>", "jane@mail.example"),
        ("=?utf-8?b?5p2O5Zub?= <li@example.cn>", "li@example.cn"),
    ],
)
def test_ordinary_from_fields_still_read(value: str, address: str) -> None:
    assert parse_sender(value, None)[1] == address


def test_cve_2023_27043_from_gets_no_mail_and_grants_nothing(
    gateway: DirectGateway, sink: Sink
) -> None:
    raw = raw_mail("alice@example.org)<bob@example.org>", "Please reset", "cve-1@evil.example")
    gateway.send(raw, sender="eve@evil.example")
    gateway.wait_for_receipts(1)
    gateway.wait_idle()
    [ticket] = gateway.tickets()
    assert ticket.requester == "eve@evil.example", "the envelope sender, never bob"
    assert not sink.to("bob@example.org") and not sink.to("alice@example.org")


@pytest.mark.parametrize(
    "headers, envelope",
    [
        ("Auto-Submitted: auto-generated\r\n", "bot@example.org"),
        ("Precedence: bulk\r\n", "bot@example.org"),
        ("Precedence: junk\r\n", "bot@example.org"),
        ("Precedence: list\r\n", "bot@example.org"),
        ("X-Auto-Response-Suppress: All\r\n", "bot@example.org"),
        ("List-Id: <users.lists.example.org>\r\n", "bot@example.org"),
        ("List-Unsubscribe: <mailto:leave@lists.example.org>\r\n", "bot@example.org"),
        ("", ""),
    ],
)
def test_automatic_mail_is_never_answered(
    gateway: DirectGateway, sink: Sink, headers: str, envelope: str
) -> None:
    gateway.send(
        raw_mail("Bot <bot@example.org>", "Weekly digest", "auto-1@example.org", extra=headers),
        sender=envelope,
    )
    gateway.wait_for_receipts(1)
    gateway.wait_idle()
    assert len(gateway.tickets()) == 1, "kept as a ticket for people to see"
    assert not sink.received, "but nothing automatic is sent back"


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.org", "postmaster@example.org"])
def test_mail_from_mail_systems_is_never_answered(
    gateway: DirectGateway, sink: Sink, sender: str
) -> None:
    gateway.send(raw_mail(sender, "Undelivered mail", "sys-1@example.org"), sender=sender)
    gateway.wait_for_receipts(1)
    gateway.wait_idle()
    assert not sink.received


def returned(mail: CapturedMail, strip_header: bool = False) -> bytes:
    """Our own notification, coming back to the support address (a forwarding loop)."""
    raw = mail.raw.replace(b"Auto-Submitted: auto-replied\r\n", b"")
    raw = raw.replace(b"X-Auto-Response-Suppress: All\r\n", b"")
    if strip_header:
        raw = raw.replace(b"X-Support-Ticket:", b"X-Stripped:")
    return raw.replace(
        b"From: Support <support@example.com>", b"From: Forwarder <fwd@customer.example>"
    )


@pytest.mark.parametrize("strip_header", [False, True])
def test_our_own_notification_coming_back_is_not_answered(
    gateway: DirectGateway, sink: Sink, strip_header: bool
) -> None:
    gateway.send(load_case("customer_new.eml"), sender=ALICE)
    ack = sink.wait_for(1)[0]
    gateway.send(returned(ack, strip_header), sender="fwd@customer.example")
    gateway.wait_for_receipts(2)
    gateway.wait_idle()
    assert len(sink.received) == 1
    assert len(gateway.tickets()) == 1, "the forwarder is not on the ticket: not filed there"
    with gateway.session() as session:
        receipt = session.scalars(select(Receipt).order_by(Receipt.id.desc())).first()
        assert receipt is not None and receipt.outcome is ReceiptOutcome.REPORT
        assert receipt.reason == "our own notification came back"


def test_automatic_mail_per_hour_is_capped_and_the_rest_recorded(
    make_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    # Acknowledgements are also limited per address and period: not what this test is about.
    gateway = make_gateway(auto_mail_per_hour=2, acknowledgement_interval_minutes=1e-9)
    for number in range(4):
        gateway.send(
            raw_mail(ALICE, f"Question {number}", f"q{number}@customer.example"), sender=ALICE
        )
    gateway.wait_for_receipts(4)
    gateway.wait_idle()
    assert len(sink.to(ALICE)) == 2
    with gateway.session() as session:
        suppressed = session.scalars(select(Event).where(Event.type == "mail_suppressed")).all()
        assert len(suppressed) == 2
        assert "limit of 2 automatic mails per hour" in suppressed[0].detail


def test_automatic_mail_per_ticket_is_capped(
    make_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    desk = Desk(make_gateway(engineers=ENGINEERS, auto_mail_per_ticket=3), sink)
    desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    # Status mail is automatic (an engineer's words relayed are not: tests/test_mail_face.py).
    for status in ("waiting", "open", "waiting", "open"):
        desk.engineer_replies(notice, ENG1, f"#status {status}")
    desk.gateway.wait_for_receipts(5)
    desk.gateway.wait_idle()
    assert len(desk.mails_to(ALICE)) == 3, "acknowledgement, two status mails: then the cap"
    with desk.gateway.session() as session:
        details = [
            e.detail for e in session.scalars(select(Event).where(Event.type == "mail_suppressed"))
        ]
    assert details and all("limit of 3 automatic mails per ticket" in d for d in details)
    assert all(ENG1 not in d for d in details), "engineers are never capped"


def delivery_report(failed: str, original_id: str) -> bytes:
    """An RFC 3464 report for our mail to `failed`, carrying the returned headers."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        f"To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Support <{SUPPORT}>\r\nTo: {failed}\r\nMessage-ID: <{original_id}>\r\n"
        "Subject: [Support #1] Live stream crashes\r\n\r\n--b1--\r\n"
    ).encode()


def test_bounce_joins_its_ticket_and_holds_the_address(desk: Desk, capsys: Any) -> None:
    ticket_id, ack = desk.open_ticket()
    ack_id = ack.message["Message-ID"].strip("<>")
    desk.gateway.send(delivery_report(ALICE, ack_id), sender="")
    receipts = desk.gateway.wait_for_receipts(2)
    assert receipts[1].outcome is ReceiptOutcome.REPORT and receipts[1].ticket_id == ticket_id
    assert len(desk.gateway.tickets()) == 1, "a bounce never opens a ticket"
    with desk.gateway.session() as session:
        hold = session.scalars(select(AddressHold)).one()
        assert hold.address == ALICE and hold.ticket_id == ticket_id
    desk.engineer_replies(desk.wait_mail(ENG1, "New (P3)"), ENG1, "Trying to reach you.")
    desk.gateway.wait_for_receipts(3)
    desk.gateway.wait_idle()
    assert len(desk.mails_to(ALICE)) == 1, "only the acknowledgement, before the bounce"
    with desk.gateway.session() as session:
        print_ticket(ticket_detail(session.get_one(Ticket, ticket_id), Intake()))
    shown = capsys.readouterr().out
    assert "bounced" in shown and f"permanent failure for {ALICE}" in shown
    assert "mail_suppressed" in shown and "bounced permanently" in shown


def test_forged_bounce_cannot_silence_someone_off_the_ticket(desk: Desk) -> None:
    _, ack = desk.open_ticket()
    desk.gateway.send(
        delivery_report("finance@customer.example", ack.message["Message-ID"].strip("<>")),
        sender="",
    )
    desk.gateway.wait_for_receipts(2)
    with desk.gateway.session() as session:
        assert not session.scalars(select(AddressHold)).all()


def test_bounce_about_mail_we_never_sent_is_only_recorded(
    gateway: DirectGateway, sink: Sink
) -> None:
    gateway.send(delivery_report(ALICE, "never-ours@elsewhere.example"), sender="")
    [receipt] = gateway.wait_for_receipts(1)
    assert receipt.outcome is ReceiptOutcome.REPORT and receipt.ticket_id is None
    assert not gateway.tickets() and not sink.received


def test_winmail_dat_is_unpacked_into_its_files(gateway: DirectGateway) -> None:
    raw = (corpus_dir() / "mimekit" / "tnef" / "rich-text.eml").read_bytes()
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as an MTA passes it on
    gateway.send(raw, sender="outlook@customer.example")
    gateway.wait_for_receipts(1)
    wait_until(gateway.tickets, what="the ticket")
    with gateway.session() as session:
        names = list(session.scalars(select(Attachment.filename).order_by(Attachment.id)))
    assert names[0] == "kitten-playing-with-a-christmas-tree.jpg"
    assert "winmail.dat" not in names


def nested(depth: int) -> bytes:
    """A message whose multiparts nest `depth` levels deep."""
    head = f"From: {ALICE}\r\nTo: {SUPPORT}\r\nSubject: Deep\r\nMessage-ID: <deep@x.example>\r\n"
    body = "Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'
            f"{body}\r\n--b{level}--\r\n"
        )
    return (head + body).encode()


def many_parts(count: int) -> bytes:
    parts = "".join(f"--p\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(count))
    return (
        f"From: {ALICE}\r\nTo: {SUPPORT}\r\nSubject: Parts\r\nMessage-ID: <parts@x.example>"
        f'\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n{parts}--p--\r\n'
    ).encode()


@pytest.mark.parametrize(
    "changes, raw, reason",
    [
        ({}, nested(40), "MIME parts nested deeper than the limit of 30"),
        ({"max_mime_parts": 10}, many_parts(20), "more MIME parts than the limit of 10"),
        (
            {"max_inbound_attachment_bytes": 530},
            load_case("customer_new.eml"),
            "attachment 'logcat.txt' of 546 bytes exceeds the limit of 530 bytes",
        ),
    ],
)
def test_mail_over_a_structure_limit_is_quarantined_with_the_reason(
    make_gateway: Callable[..., DirectGateway],
    sink: Sink,
    changes: dict[str, int],
    raw: bytes,
    reason: str,
) -> None:
    gateway = make_gateway(**changes)
    gateway.send(raw, sender=ALICE)
    [receipt] = gateway.wait_for_receipts(1)
    assert receipt.outcome is ReceiptOutcome.QUARANTINED and receipt.reason == reason
    [(_, kept_reason)] = gateway.gateway.spool.quarantined()
    assert kept_reason == reason
    assert not gateway.tickets()


def test_header_values_from_mail_cannot_inject_headers_into_our_mail(
    gateway: DirectGateway, sink: Sink
) -> None:
    raw = (
        "From: =?utf-8?b?RXZlDQpCY2M6IHZpY3RpbUBleGFtcGxlLm5ldA==?= <eve@customer.example>\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: =?utf-8?q?Help=0D=0ABcc:_victim@example.net=0D=0A=0D=0Abody?=\r\n"
        "Message-ID: <inject-1@customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        "--m\r\nContent-Type: text/html\r\n\r\n"
        "<p>Hi <script>alert(1)</script><img src=x onerror=alert(2)></p>\r\n"
        "--m\r\nContent-Type: text/plain\r\n"
        "Content-Disposition: attachment; filename*=utf-8''a%0D%0ABcc%3A%20x%40y.z%0D%0A.txt\r\n"
        "\r\nlog\r\n--m--\r\n"
    ).encode()
    gateway.send(raw, sender="eve@customer.example")
    [ack] = sink.wait_for(1)
    assert ack.recipients == ["eve@customer.example"]
    message = ack.message
    assert message["Bcc"] is None
    assert [a.addr_spec for a in message["To"].addresses] == ["eve@customer.example"]
    assert "\n" not in str(message["Subject"]) and "Bcc" in str(message["Subject"])
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()  # type: ignore[attr-defined]
    assert "<script>" not in content and "<img" not in content
    assert "&lt;script&gt;" in content or "alert(1)" not in content


def test_text_shaped_like_a_boundary_cannot_split_our_mail() -> None:
    text = "Before\n--=_\n--=_0123456789abcdef0123456789abcdef--\n=_ after ü\n"
    first = compose([("Subject", "x")], text, f"<pre>{text}</pre>")
    second = compose([("Subject", "x")], text, "<p>x</p>", [MailFile("a.bin", "x/y", b"=_")])
    for raw in (first, second):
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        plain = message.get_body(("plain",))
        assert plain is not None
        content = plain.get_content()  # type: ignore[attr-defined]
        assert content.replace("\r\n", "\n") == text
    parsed = email.message_from_bytes(second, policy=email.policy.default)
    assert [part.get_content_type() for part in parsed.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "x/y",
    ]
    assert email.message_from_bytes(first).get_boundary() != parsed.get_boundary()


def with_headers(lines: str) -> bytes:
    return (
        f"{lines}From: {ALICE}\r\nTo: {SUPPORT}\r\nSubject: Hops\r\n"
        "Message-ID: <hops@customer.example>\r\n\r\nHello\r\n"
    ).encode()


@pytest.mark.parametrize(
    "changes, raw, code, status, reason",
    [
        (
            {},
            with_headers("Received: from a by b\r\n" * 51),
            554,
            b"5.4.6",
            b"51 Received: fields exceed the limit of 50: a mail loop",
        ),
        (
            {"max_headers": 20},
            with_headers("X-Filler: yes\r\n" * 30),
            554,
            b"5.6.0",
            b"header fields exceed the limit of 20",
        ),
        (
            {"max_header_bytes": 2048},
            with_headers(f"X-Big: {'x' * 4000}\r\n"),
            552,
            b"5.3.4",
            b"header larger than the limit of 2048 bytes",
        ),
    ],
)
def test_header_limits_are_refused_before_250_with_a_reason(
    make_served_gateway: Callable[..., RunningGateway],
    changes: dict[str, int],
    raw: bytes,
    code: int,
    status: bytes,
    reason: bytes,
) -> None:
    gateway = make_served_gateway(**changes)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        gateway.send(raw, sender=ALICE)
    assert refused.value.smtp_code == code
    assert refused.value.smtp_error.startswith(status) and reason in refused.value.smtp_error
    assert not gateway.gateway.spool.pending() and not gateway.receipts()


def test_header_within_the_limits_is_accepted(served_gateway: RunningGateway) -> None:
    gateway = served_gateway
    gateway.send(with_headers("Received: from a by b\r\n" * 50), sender=ALICE)
    assert gateway.wait_for_receipts(1)[0].outcome is ReceiptOutcome.NEW_TICKET


def oversized_mail(message_id: bytes, extra: bytes = b"") -> bytes:
    """Values no column holds: a 5,000-character subject with a NUL and undecodable bytes,
    a 3,000-character display name, a 2,400-byte 8-bit Message-ID, a 700-character file
    name. SQLite stores any of them; PostgreSQL refuses every one."""
    return (
        b"From: "
        + b"N" * 3000
        + b" <alice@customer.example>\r\nTo: "
        + SUPPORT.encode()
        + b"\r\nSubject: crash \x00 \xff\xfe "
        + b"s" * 5000
        + b"\r\nMessage-ID: "
        + message_id
        + b"\r\n"
        + extra
        + b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nIt crashes.\r\n--b\r\n"
        b'Content-Type: text/plain\r\nContent-Disposition: attachment; filename="'
        + b"f" * 700
        + b'.txt"\r\n\r\nlog\r\n--b--\r\n'
    )


def test_values_postgresql_refuses_are_made_storable_and_still_thread(
    gateway: DirectGateway,
) -> None:
    long_id = "<" + "é" * 1200 + "@customer.example>"
    gateway.send(oversized_mail(long_id.encode()))
    reply_id = b"<reply-1@customer.example>"
    gateway.send(oversized_mail(reply_id, b"In-Reply-To: " + long_id.encode() + b"\r\n"))
    receipts = gateway.wait_for_receipts(2)
    assert [r.outcome for r in receipts] == [ReceiptOutcome.NEW_TICKET, ReceiptOutcome.REPLY]
    assert gateway.gateway.spool.quarantined() == []
    [ticket] = gateway.tickets()
    assert len(ticket.subject) == 998 and "\x00" not in ticket.subject
    with gateway.session() as session:
        stored_ids = session.scalars(select(Message.message_id).order_by(Message.id)).all()
        names = session.scalars(select(Attachment.filename)).all()
    assert len(stored_ids[0].encode()) <= 2000 and stored_ids[0].startswith("éé")
    assert all(len(name) <= 255 for name in names) and len(names) == 2
