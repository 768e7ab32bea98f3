"""Mail in over real SMTP and LMTP sockets: tickets, blobs, refusals, acknowledgements."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import hashlib
import importlib.metadata
import logging
import random
import smtplib
import time
import tomllib
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import example, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from sqlalchemy import select

from gateway.errors import UnknownRecipient
from gateway.smtp_data import (
    AIOSMTPD_INTERNALS,
    AIOSMTPD_VERSIONS,
    LONG_LINE_LIMIT,
    TolerantSMTP,
)
from gateway.spool import raw_of_entry
from gateway.tokens import read_token, token_in_address
from storage.blobs import sha256_hex
from storage.models import Attachment, Direction, Message, Receipt, ReceiptOutcome, TicketStatus
from tests.conftest import SUPPORT, RawClient, RunningGateway, Sink, load_case

ROOT = Path(__file__).resolve().parent.parent


def attachments_of(raw: bytes) -> dict[str, bytes]:
    """Attachment bytes as the stdlib reads them: an oracle independent of the gateway."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return {
        str(part.get_filename()): part.get_payload(decode=True)
        for part in message.walk()
        if part.get_filename()
    }


def test_new_mail_becomes_ticket_with_attachments_and_acknowledgement(
    gateway: RunningGateway, sink: Sink
) -> None:
    raw = load_case("customer_new.eml")
    gateway.send(raw, sender="alice@customer.example")
    ack = sink.wait_for(1)[0]
    [ticket] = gateway.tickets()
    assert ticket.status is TicketStatus.NEW
    assert ticket.requester == "alice@customer.example"
    assert ticket.subject == "Live stream crashes on Pixel 7 when starting the pusher"

    with gateway.session() as session:
        stored = {a.filename: a for a in session.scalars(select(Attachment))}
    sent = attachments_of(raw)
    assert set(stored) == set(sent) == {"screen shot.png", "logcat.txt"}
    for name, data in sent.items():
        assert stored[name].sha256 == hashlib.sha256(data).hexdigest()
        assert stored[name].size == len(data)
        blob = gateway.gateway.spool.blobs.get(stored[name].sha256)
        assert blob == data

    assert ack.recipients == ["alice@customer.example"]
    assert ack.mail_from == SUPPORT
    headers = ack.message
    assert headers["Subject"] == f"[Support #{ticket.id}] {ticket.subject}"
    assert headers["In-Reply-To"] == "<5f1c2a9e-1d7b-4c1e-9a51-aa01@customer.example>"
    assert "<5f1c2a9e-1d7b-4c1e-9a51-aa01@customer.example>" in headers["References"]
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in headers.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = headers.get_body(("plain",)).get_content()
    assert f"ticket #{ticket.id}" in text
    assert "Pixel 7 (Android 14)" in text

    reply_to = headers["Reply-To"].addresses[0].addr_spec
    token = read_token(b"test-secret", token_in_address(reply_to, SUPPORT) or "")
    assert token is not None and token.ticket_id == ticket.id

    with gateway.session() as session:
        sent_ids = session.scalars(
            select(Message.message_id).where(Message.direction == Direction.OUT)
        ).all()
    assert headers["Message-ID"].strip("<>") in sent_ids


def test_250_is_given_only_for_a_spooled_message(gateway: RunningGateway) -> None:
    raw = load_case("customer_new.eml")
    assert gateway.settings.listen.smtp is not None
    with smtplib.SMTP(gateway.settings.listen.smtp.host, gateway.settings.listen.smtp.port) as s:
        s.ehlo()
        s.mail("alice@customer.example")
        s.rcpt(SUPPORT)
        code, reply = s.data(raw)
    assert code == 250
    assert reply.startswith(b"2.0.0 Queued as ")
    spool_id = reply.decode().rsplit(" ", 1)[1]
    # smtplib sends CRLF line endings; those are the bytes the gateway owns: in the queue
    # entry until the worker has copied them into the blob store and filed the message.
    spool = gateway.gateway.spool
    entry = spool.queue_dir / f"{spool_id}.msg"
    with contextlib.suppress(FileNotFoundError):
        assert raw_of_entry(entry) == raw
    assert entry.exists() or spool.blobs.get(sha256_hex(raw)) == raw
    [receipt] = gateway.wait_for_receipts(1)
    assert receipt.spool_id == spool_id
    assert receipt.raw_sha256 == sha256_hex(raw)
    assert spool.blobs.get(sha256_hex(raw)) == raw


def test_unknown_recipient_is_refused_with_550(gateway: RunningGateway) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        gateway.send(load_case("customer_new.eml"), recipients=["someone@elsewhere.example"])
    code, reason = refused.value.recipients["someone@elsewhere.example"]
    assert code == 550
    assert reason.startswith(b"5.1.1")
    assert gateway.count(Receipt) == 0


def test_only_the_support_domain_is_accepted_never_a_relay(gateway: RunningGateway) -> None:
    refused = gateway.send(
        load_case("customer_new.eml"),
        recipients=[SUPPORT, "support@other.example", "SUPPORT+anything@EXAMPLE.COM"],
    )
    assert list(refused) == ["support@other.example"]
    [receipt] = gateway.wait_for_receipts(1)
    assert receipt.recipients == f"{SUPPORT}, SUPPORT+anything@EXAMPLE.COM"


def test_the_data_reader_fork_runs_only_on_the_aiosmtpd_it_was_checked_against() -> None:
    """The listener replaces aiosmtpd internals; another aiosmtpd must be checked first."""
    installed = Version(importlib.metadata.version("aiosmtpd"))
    assert installed in SpecifierSet(AIOSMTPD_VERSIONS), (
        f"aiosmtpd {installed}: check gateway/smtp_data.py against it, then widen "
        f"AIOSMTPD_VERSIONS and pyproject.toml"
    )
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"aiosmtpd{AIOSMTPD_VERSIONS}" in declared
    missing = [
        name
        for name in AIOSMTPD_INTERNALS
        if not hasattr(SMTP, name) and name not in SMTP.__init__.__code__.co_names
    ]
    assert not missing, f"aiosmtpd no longer has {missing}"


def test_a_message_over_the_limit_is_answered_from_the_error_tree() -> None:
    server = TolerantSMTP.__new__(TolerantSMTP)
    server.data_size_limit = 2000
    assert server.too_large().smtp_reply().startswith("552 5.3.4 ")


ENVELOPE_ARGUMENTS = [
    "",
    "<>",
    "<alice@customer.example>",
    "alice@customer.example",
    "alice smith",
    "<alice@customer.example> SIZE=4500 BODY=8BITMIME",
    " <alice@customer.example>",
    '<"alice smith"@customer.example>',
    "<@relay.example:alice@customer.example>",
    "<alice@[192.0.2.1]>",
    "<alice>",
    "<alice@customer.example",
    "@customer.example",
    "<a\\@b@customer.example>",
    "<" + "a" * 65 + "@customer.example>",
    "<<>>",
    "<  >",
]


@pytest.mark.parametrize("local_part_limit", [0, 64])
def test_envelope_addresses_are_read_as_aiosmtpd_reads_them(local_part_limit: int) -> None:
    ours, theirs = TolerantSMTP.__new__(TolerantSMTP), SMTP.__new__(SMTP)
    for server in (ours, theirs):
        server.local_part_limit = local_part_limit
    for argument in ENVELOPE_ARGUMENTS:
        assert ours._getaddr(argument) == theirs._getaddr(argument), argument
    assert ours._getaddr("<alice@customer.example> SIZE=10") == (
        "alice@customer.example",
        "SIZE=10",
    )
    # Where the stdlib's parser raises more than HeaderParseError, aiosmtpd's reading
    # raises with it; ours calls the address malformed.
    for argument in ("alice@", "<a@[>", "<a@[192.0.2.1>", '"'):
        assert ours._getaddr(argument) == (None, None), argument
        with pytest.raises((IndexError, AttributeError)):
            theirs._getaddr(argument)


ADDRESS_PIECES = st.sampled_from(
    [
        "a",
        "b.c",
        "@",
        "<",
        ">",
        '"',
        "\\",
        "[",
        "]",
        ":",
        ",",
        ";",
        "(",
        ")",
        " ",
        ".",
        "1.2.3.4",
        "ä",
        "=",
        "SIZE=1",
        "\t",
    ]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(ADDRESS_PIECES, max_size=12).map("".join))
@example("alice@")
@example("<a@[>")
@example('"')
@example("<a@[1.2.3.4>")
@example("a@[\t")
def test_any_envelope_argument_is_read_or_called_malformed_never_an_error(
    argument: str,
) -> None:
    ours, theirs = TolerantSMTP.__new__(TolerantSMTP), SMTP.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = 64
    address, rest = ours._getaddr(argument)
    assert (address is None) == (rest is None)
    try:
        expected = theirs._getaddr(argument)
    except (IndexError, AttributeError, UnboundLocalError):
        assert address is None
    else:
        assert (address, rest) == expected


DATA_PIECES = st.sampled_from(
    [
        b"\r\n",
        b".",
        b"..",
        b"\r",
        b"\n",
        b"a",
        b"text",
        b"\r\n.",
        b".\r\n",
        b"\r\n.\r",
        b"\n.\r\n",
        b"x" * 40,
    ]
)


def read_with_our_reader(stream: bytes, limit: int, size_limit: int) -> tuple[bytes | None, bytes]:
    """What `read_content` makes of `stream` through a reader with window `limit`, and what
    it leaves in the reader for the next command."""

    async def read() -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader(limit=limit)
        reader.feed_data(stream)
        reader.feed_eof()
        server = TolerantSMTP.__new__(TolerantSMTP)
        server._reader, server.data_size_limit = reader, size_limit
        content = await server.read_content()
        return content, await reader.read()

    return asyncio.run(read())


def content_as_rfc_5321_reads_it(stream: bytes) -> tuple[bytes, bytes]:
    """The content before the first CRLF.CRLF (DATA's own CRLF counts as the first CRLF),
    unstuffed, and what follows the marker."""
    # Where the marker starts, counting DATA's CRLF, is where its dot line starts in the
    # stream: the CRLF before the dot ends the content's last line.
    end = (b"\r\n" + stream).index(b"\r\n.\r\n")
    lines = stream[:end].split(b"\r\n")[:-1]
    content = b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)
    return content, stream[end + 3 :]


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(DATA_PIECES, max_size=30).map(b"".join),
    st.sampled_from([8, 16, 64, LONG_LINE_LIMIT]),
    st.binary(max_size=8),
)
@example(b"", 8, b"QUIT\r\n")
@example(b"\r\n", 8, b"")
@example(b"a\n.\r\nb", 8, b"")
def test_data_ends_at_the_first_crlf_dot_crlf_and_nothing_after_it_is_read(
    content: bytes, limit: int, after: bytes
) -> None:
    stream = content + b"\r\n.\r\n" + after
    expected, rest = content_as_rfc_5321_reads_it(stream)
    assert read_with_our_reader(stream, limit, 0) == (expected, rest)
    # Over the size limit (as aiosmtpd counts: stuffing dots in, the dot line out): drained
    # to the same end, nothing kept.
    counted = (b"\r\n" + stream).index(b"\r\n.\r\n")
    if counted > 1:
        assert read_with_our_reader(stream, limit, counted - 1) == (None, rest)
        assert read_with_our_reader(stream, limit, counted)[0] == expected


def test_a_malformed_envelope_address_is_refused_and_the_session_goes_on(
    gateway: RunningGateway,
) -> None:
    client = greeted_client(gateway, "smtp")
    try:
        for malformed in ("MAIL FROM:alice@", "MAIL FROM:<<>>", "MAIL FROM:<a@[>", 'MAIL FROM:"'):
            assert client.command(malformed).startswith("553 5.1.3"), malformed
        assert client.command("MAIL FROM:alice@customer.example").startswith("250")
        for malformed in ("RCPT TO:support@", "RCPT TO:<  >", "RCPT TO:<support@[>"):
            assert client.command(malformed).startswith("553 5.1.3"), malformed
        assert client.command(f"RCPT TO:{SUPPORT}").startswith("250")
        assert client.command("DATA").startswith("354")
        client.sock.sendall(load_case("customer_new.eml") + b".\r\n")
        assert client.reply().startswith("250 2.0.0 Queued as")
    finally:
        client.close()
    [receipt] = gateway.wait_for_receipts(1)
    assert (receipt.mail_from, receipt.recipients) == ("alice@customer.example", SUPPORT)


def greeted_client(gateway: RunningGateway, listener: str) -> RawClient:
    """A raw client on the gateway's SMTP or LMTP listener, past EHLO or LHLO."""
    endpoint = gateway.settings.listen.smtp if listener == "smtp" else gateway.settings.listen.lmtp
    assert endpoint is not None
    client = RawClient(endpoint.port)
    hello = "LHLO" if listener == "lmtp" else "EHLO"
    assert client.command(f"{hello} client.example").startswith("250")
    return client


@pytest.mark.parametrize("listener", ["smtp", "lmtp"])
def test_a_recipient_that_is_not_utf8_is_refused_with_550_naming_it(
    gateway: RunningGateway, listener: str
) -> None:
    client = greeted_client(gateway, listener)
    try:
        assert client.command("MAIL FROM:<alice@customer.example>").startswith("250")
        client.sock.sendall(b"RCPT TO:<caf\xe9\xff@example.com>\r\n")
        assert client.reply() == "550 5.1.1 no such mailbox here: caf\\xe9\\xff@example.com"
        client.sock.sendall("RCPT TO:<café@example.com>\r\n".encode())
        assert client.reply() == "550 5.1.1 no such mailbox here: café@example.com"
        assert client.command(f"RCPT TO:<{SUPPORT}>").startswith("250")
    finally:
        client.close()


@pytest.mark.parametrize(
    "reason, shown",
    [
        (
            "no such mailbox here: caf\udce9@example.com",
            "no such mailbox here: caf\\xe9@example.com",
        ),
        ("a lone \ud800 surrogate", "a lone \\ud800 surrogate"),
        ("café,\r\n folded", "café, folded"),
    ],
)
def test_a_refusal_reply_is_one_line_that_can_be_sent(reason: str, shown: str) -> None:
    reply = UnknownRecipient(reason).smtp_reply()
    assert reply == f"550 5.1.1 {shown}"
    reply.encode("utf-8")


COMMAND_VERBS = [
    b"HELO",
    b"EHLO",
    b"LHLO",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"MAIL FROM:<",
    b"RCPT TO:<",
    b"VRFY",
    b"EXPN",
    b"NOOP",
    b"HELP",
    b"RSET",
    b"AUTH",
    b"STARTTLS",
    b"DATA",
    b"MAIL FROM:<a@b.example> SIZE=",
    b"RCPT TO:<" + SUPPORT.encode() + b">",
]
COMMAND_ARGUMENTS = [
    b"",
    b" ",
    b" x",
    b" <a@b.example>",
    b"\xff\xfe",
    b" \xc3\xa4",
    b"\x00",
    b" " + b"y" * 2000,
    b" <" + SUPPORT.encode() + b">",
    b"\xe9@example.com>",
    b"a@[>",
    b'"',
    b"alice@",
    b" PLAIN",
    b" =",
    b" 10",
    b":",
    b"<>",
]


@pytest.mark.parametrize("listener", ["smtp", "lmtp"])
def test_no_command_line_makes_the_listener_fail_or_say_try_later(
    gateway: RunningGateway, listener: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Seeded random sessions of real and broken commands: every one is answered, none with
    the `451` a failing handler gives, and nothing is logged as a session error."""
    rng = random.Random(20261203)
    caplog.set_level(logging.ERROR, logger="gateway.smtp_inbound")
    answered = 0
    for _ in range(150):
        client = greeted_client(gateway, listener)
        try:
            for _ in range(rng.randint(1, 6)):
                line = rng.choice(COMMAND_VERBS) + rng.choice(COMMAND_ARGUMENTS)
                client.sock.sendall(line + b"\r\n")
                reply = client.reply()
                assert reply[:3].isdigit() and not reply.startswith("451"), (line, reply)
                answered += 1
                if reply.startswith(("221", "421", "502 5.5.1")):  # the server ended it
                    break
        finally:
            client.close()
    assert answered > 300
    assert "SMTP session error" not in caplog.text


def test_oversize_message_is_refused_with_552(make_gateway) -> None:  # type: ignore[no-untyped-def]
    small = make_gateway(max_message_bytes=2000)
    raw = load_case("customer_new.eml")
    # Announced with SIZE=, refused at MAIL FROM.
    with pytest.raises(smtplib.SMTPSenderRefused) as refused_early:
        small.send(raw)
    assert refused_early.value.smtp_code == 552
    # Not announced, refused after DATA.
    endpoint = small.settings.listen.smtp
    with smtplib.SMTP(endpoint.host, endpoint.port) as smtp:
        smtp.ehlo()
        smtp.mail("alice@customer.example")
        smtp.rcpt(SUPPORT)
        code, _reason = smtp.data(raw)
    assert code == 552
    assert small.count(Receipt) == 0
    assert small.gateway.spool.pending() == []


def test_dot_stuffed_lines_are_stored_as_the_client_wrote_them(gateway: RunningGateway) -> None:
    raw = (
        b"From: alice@customer.example\r\nTo: support@example.com\r\nSubject: dots\r\n"
        b"Message-ID: <dots@customer.example>\r\n\r\n.\r\n..two\r\n.hidden\r\nend\r\n"
    )
    gateway.send(raw)  # smtplib doubles each leading dot on the wire
    [receipt] = gateway.wait_for_receipts(1)
    assert gateway.gateway.blobs.get(receipt.raw_sha256) == raw


def test_lines_of_any_length_arrive_whole_and_the_session_goes_on(
    gateway: RunningGateway,
) -> None:
    endpoint = gateway.settings.listen.smtp
    assert endpoint is not None
    good = load_case("customer_new.eml")
    # HTML without line breaks, longer than the reader's window for commands.
    long_line = b"<p>" + b"x" * (3 * LONG_LINE_LIMIT) + b"</p>\r\n"
    with_long_line = good.replace(b"\r\n\r\n", b"\r\n\r\n" + long_line, 1)
    sent = [with_long_line, good]
    with smtplib.SMTP(endpoint.host, endpoint.port) as smtp:
        smtp.ehlo()
        for raw in sent:
            smtp.mail("alice@customer.example")
            smtp.rcpt(SUPPORT)
            assert smtp.data(raw)[0] == 250
    receipts = gateway.wait_for_receipts(2)
    assert [gateway.gateway.blobs.get(receipt.raw_sha256) for receipt in receipts] == sent


@pytest.mark.parametrize("cut", range(1, 8))
def test_the_end_of_data_is_found_however_the_client_cuts_its_writes(
    gateway: RunningGateway, cut: int
) -> None:
    endpoint = gateway.settings.listen.smtp
    assert endpoint is not None
    body = load_case("customer_new.eml") + b".leading dot\r\nlast line\r\n"
    wire = body.replace(b"\r\n.", b"\r\n..") + b".\r\nQUIT\r\n"
    # Cut `cut` bytes before the end of "last line\r\n.\r\nQUIT\r\n"'s dot line.
    split = len(wire) - len(b"QUIT\r\n") - cut
    client = RawClient(endpoint.port)
    try:
        for command, expected in (
            ("EHLO client.example", "250"),
            ("MAIL FROM:<alice@customer.example>", "250"),
            (f"RCPT TO:<{SUPPORT}>", "250"),
            ("DATA", "354"),
        ):
            assert client.command(command).startswith(expected)
        client.sock.sendall(wire[:split])
        time.sleep(0.05)
        client.sock.sendall(wire[split:])
        assert client.reply().startswith("250 2.0.0 Queued as")
        assert client.reply().startswith("221")
    finally:
        client.close()
    [receipt] = gateway.wait_for_receipts(1)
    assert gateway.gateway.blobs.get(receipt.raw_sha256) == body


def test_a_message_of_exactly_the_size_limit_is_taken_one_byte_more_is_not(
    make_gateway,  # type: ignore[no-untyped-def]
) -> None:
    raw = load_case("customer_new.eml")
    exact = make_gateway(max_message_bytes=len(raw))
    endpoint = exact.settings.listen.smtp
    with smtplib.SMTP(endpoint.host, endpoint.port) as smtp:
        smtp.ehlo()
        codes = []
        for message in (raw, raw + b"x"):
            smtp.mail("alice@customer.example")  # no SIZE=: the check after DATA decides
            smtp.rcpt(SUPPORT)
            codes.append(smtp.data(message)[0])
        assert smtp.help("DATA") == b"Syntax: DATA"
    assert codes == [250, 552]
    assert [exact.gateway.blobs.get(r.raw_sha256) for r in exact.wait_for_receipts(1)] == [raw]


def test_outlook_msg_file_is_refused_with_554(gateway: RunningGateway) -> None:
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    with pytest.raises(smtplib.SMTPDataError) as refused:
        gateway.send(ole2)
    assert refused.value.smtp_code == 554
    assert b"Outlook .msg" in refused.value.smtp_error


def test_chinese_customer_gets_ticket_and_chinese_acknowledgement(
    gateway: RunningGateway, sink: Sink
) -> None:
    gateway.send(load_case("customer_zh_gbk.eml"), sender="wangwei@customer.cn")
    ack = sink.wait_for(1)[0].message
    [ticket] = gateway.tickets()
    assert ticket.subject == "直播推流崩溃（华为 Mate 60）"
    assert ticket.requester_name == "王伟"
    assert ticket.language == "zh"
    with gateway.session() as session:
        [message] = session.scalars(select(Message).where(Message.direction == Direction.IN))
        assert "华为 Mate 60 上推流时崩溃" in message.text
        assert [a.filename for a in message.attachments] == ["崩溃日志.txt"]
    assert ack["Subject"] == f"[Support #{ticket.id}] 直播推流崩溃（华为 Mate 60）"
    assert f"工单 #{ticket.id}" in ack.get_body(("plain",)).get_content()


def test_html_only_mail_gets_a_text_rendering(gateway: RunningGateway, sink: Sink) -> None:
    gateway.send(load_case("html_only.eml"), sender="bob@builder.example")
    sink.wait_for(1)
    with gateway.session() as session:
        [message] = session.scalars(select(Message).where(Message.direction == Direction.IN))
        text = message.text
    assert "Playback stutters every 10 seconds with HLS on iOS 18." in text
    assert "<b>" not in text and "SDK 5.2.1" in text


def test_lmtp_delivery_creates_ticket_and_answers_per_recipient(
    gateway: RunningGateway, sink: Sink
) -> None:
    lmtp_endpoint = gateway.settings.listen.lmtp
    assert lmtp_endpoint is not None
    with smtplib.LMTP(lmtp_endpoint.host, lmtp_endpoint.port) as lmtp:
        lmtp.ehlo_or_helo_if_needed()
        refused = lmtp.sendmail(
            "alice@customer.example",
            [SUPPORT, "support+x@example.com"],
            load_case("customer_new.eml"),
        )
        # smtplib reads one DATA reply; LMTP sends one per recipient (RFC 2033 4.2).
        second_code, second_reply = lmtp.getreply()
    assert refused == {}
    assert second_code == 250 and second_reply.startswith(b"2.0.0 Queued as")
    sink.wait_for(1)
    [receipt] = gateway.receipts()
    assert receipt.source == "lmtp"
    assert len(gateway.tickets()) == 1


def test_lmtp_refuses_unknown_recipient_with_550(gateway: RunningGateway) -> None:
    lmtp_endpoint = gateway.settings.listen.lmtp
    assert lmtp_endpoint is not None
    with smtplib.LMTP(lmtp_endpoint.host, lmtp_endpoint.port) as lmtp:
        lmtp.ehlo_or_helo_if_needed()
        lmtp.mail("alice@customer.example")
        code, reason = lmtp.rcpt("root@example.com")
    assert code == 550 and reason.startswith(b"5.1.1")


def test_mail_with_null_reverse_path_gets_no_acknowledgement(
    gateway: RunningGateway, sink: Sink
) -> None:
    gateway.send(load_case("customer_new.eml"), sender="")
    [receipt] = gateway.wait_for_receipts(1)
    gateway.wait_idle()
    assert receipt.outcome is ReceiptOutcome.NEW_TICKET
    assert receipt.mail_from == ""
    assert sink.received == []


def test_auto_replies_open_no_loop(gateway: RunningGateway, sink: Sink) -> None:
    auto = (
        b"From: Bob <bob@customer.example>\r\nTo: support@example.com\r\n"
        b"Subject: Out of office\r\nAuto-Submitted: auto-replied\r\n"
        b"Message-ID: <ooo-1@customer.example>\r\n\r\nI am away until Monday.\r\n"
    )
    gateway.send(auto, sender="bob@customer.example")
    gateway.wait_for_receipts(1)
    gateway.wait_idle()
    assert sink.received == []
