"""What the gateway sends is fit to send: no line over 998 octets whatever the names, subjects
and words in it, and no file passed on that a click could run.

The relay here is the real aiosmtpd sink, which itself answers `500 Line too long` to a line
over its limit, as the strict relay of the report did. The gateway's stages run in this
process (`DirectGateway`): each message is filed and what it causes delivered before `send`
returns.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
from collections.abc import Callable
from email.message import EmailMessage, Message
from typing import Any

import pytest
from sqlalchemy import select

from gateway import outbox as outbox_module
from gateway.filetypes import forwarded
from gateway.linelength import LineTooLong, overlong_line, within_limit
from gateway.setting_values import Engineer
from storage.models import AddressHold, Attachment, Event, EventKind, OutboxMail, OutboxState
from tests.conftest import (
    ALICE,
    ENG1,
    ENG2,
    LEAD,
    SUPPORT,
    CapturedMail,
    Desk,
    DirectGateway,
    Sink,
)

LONG_URL = "https://logs.example.com/download?" + "&".join(f"k{n}=v{n}" for n in range(600))
BLOB = base64.b64encode(bytes(range(256)) * 16).decode("ascii")  # one 5,464-character line
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def engineers(language: str) -> tuple[Engineer, ...]:
    return (Engineer(ENG1, "L1", language), Engineer(ENG2, "L1", language), Engineer(LEAD, "L2"))


@pytest.fixture
def make_desk(make_direct_gateway: Callable[..., DirectGateway], sink: Sink) -> Callable[..., Desk]:
    def start(language: str = "en", **changes: Any) -> Desk:
        return Desk(make_direct_gateway(engineers=engineers(language), **changes), sink)

    return start


def encoded(text: str) -> str:
    """`text` as a header value a mail client writes: folded UTF-8 encoded words."""
    words, word = [], b""
    for char in text:
        octets = char.encode("utf-8")
        if len(word) + len(octets) > 30:
            words.append(word)
            word = b""
        word += octets
    words.append(word)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def customer_mail(
    name: str,
    subject: str,
    body: str,
    files: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    message_id: str = "hostile-1@customer.example",
) -> bytes:
    """A new message from Alice as her client writes it, with these name, subject and files."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["To"] = SUPPORT
    message["Message-ID"] = f"<{message_id}>"
    message["Date"] = "Tue, 24 Nov 2026 10:12:33 +0100"
    message.set_content(body)
    for filename, content_type, data in files:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    head = f"From: {encoded(name)} <{ALICE}>\r\nSubject: {encoded(subject)}\r\n"
    return head.encode("ascii") + message.as_bytes()


def lines_of(mail: CapturedMail) -> list[bytes]:
    return mail.raw.split(b"\r\n")


def assert_fit_to_send(mail: CapturedMail, fold_at: int = 78) -> None:
    """No line over 998 octets (RFC 5322 2.1.1); none over 78 where folding can help."""
    for number, line in enumerate(lines_of(mail), 1):
        assert len(line) <= 998, f"line {number}: {len(line)} octets: {line[:80]!r}"
        assert len(line) <= fold_at, f"line {number}: {len(line)} characters: {line[:80]!r}"


def parts(mail: CapturedMail) -> list[Message]:
    return list(mail.message.iter_attachments())


# -- item 4: no line over 998 octets -------------------------------------------------------

LONG_CHINESE_NAME = "张伟" * 150 + "（北京某某科技有限公司技术支持部）"
NAMELESS_ASCII = "x" * 1200
HOSTILE = [
    pytest.param(
        LONG_CHINESE_NAME,
        "直播推流在启动时崩溃" * 60,
        [("崩溃日志与截图说明" * 40 + ".txt", "text/plain", "日志\n".encode())],
        id="long-chinese",
    ),
    pytest.param(
        NAMELESS_ASCII,
        "Crash:" + "A" * 1400,
        [("report_" + "y" * 900 + ".log", "text/plain", b"log line\n")],
        id="long-without-spaces",
    ),
    pytest.param(
        'Eve "the; admin"\r\nBcc: victim@example.net, ' + "Very Long Name " * 40,
        'Quotes "and"; semicolons\r\nBcc: victim@example.net ' + "word " * 300,
        [('a";b\tBcc: x@y.z;c=".txt', "text/plain", b"x\n"), ("plain.pdf", "application/pdf", PDF)],
        id="quotes-semicolons-newlines",
    ),
]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("name, subject, files", HOSTILE)
def test_every_template_sends_no_line_over_998_octets(
    make_desk: Callable[..., Desk],
    sink: Sink,
    language: str,
    name: str,
    subject: str,
    files: list[tuple[str, str, bytes]],
) -> None:
    """Every template, customer's and engineer's, in both languages, with hostile names,
    subjects, file names and an engineer's reply of single-word lines thousands long."""
    desk = make_desk(language, support_name="Support " + "Desk" * 100 + " 客服中心" * 30)
    words = "我们的应用在启动推流时崩溃。" if language == "zh" else "Our app crashes."
    desk.customer_writes(customer_mail(name, subject, f"{words}\n{LONG_URL}\n{BLOB}\n", files))
    notice = desk.mails_to(ENG1)[-1]
    reply = desk.reply(
        notice,
        ENG1,
        f"#assign {ENG2}\n#escalate\n#status waiting\n\nPlease fetch {LONG_URL}\n{BLOB}\n",
    )
    reply.add_attachment(
        PNG, maintype="image", subtype="png", filename="屏幕截图" * 60 + "-" + "z" * 300 + ".png"
    )
    desk.gateway.send(reply, recipients=[desk.reply_to(notice)], sender=ENG1)
    answer = desk.wait_mail(ALICE, "[Support", count=2)  # the relayed reply, after the ack
    desk.customer_replies(answer, f"{words} {LONG_URL} {BLOB}")
    desk.engineer_replies(desk.mails_to(ENG1)[-1], ENG1, "#resolve\nFixed.")

    subjects = {m.message["X-Support-Ticket"] and desk.subject(m) for m in sink.received}
    assert len(sink.received) >= 12, subjects
    for mail in sink.received:
        assert_fit_to_send(mail)
    with desk.gateway.session() as session:
        states = set(session.scalars(select(OutboxMail.state)))
    assert states == {OutboxState.SENT}
    # What the folding keeps: the subject, the names, the file names, read back whole.
    ack = desk.mails_to(ALICE)[0]
    assert " ".join(subject.split())[:200] in desk.subject(ack)
    [to] = ack.message["To"].addresses
    assert to.addr_spec == ALICE
    # (The stdlib's reader puts a space between encoded words in a display name.)
    assert to.display_name.replace(" ", "") == desk.only_ticket().requester_name.replace(" ", "")
    sent_names = [part.get_filename() for part in parts(desk.mails_to(ENG1)[0])]
    assert len(sent_names) == len(files) and all(sent_names)


def test_a_long_non_ascii_file_name_goes_out_in_rfc_2231_continuations(
    make_desk: Callable[..., Desk], sink: Sink
) -> None:
    """The report's case: a file name that became one 1,066-octet parameter, refused whole."""
    filename = "客户现场的直播推流崩溃日志" * 9 + ".txt"
    desk = make_desk()
    desk.customer_writes(
        customer_mail("Alice", "Crash", "See the log.", [(filename, "text/plain", b"x\n")])
    )
    [notice] = desk.mails_to(ENG1)
    assert_fit_to_send(notice)
    [part] = parts(notice)
    with desk.gateway.session() as session:
        assert part.get_filename() == session.scalars(select(Attachment.filename)).one()
    sent_name = part.get_filename()
    assert sent_name.startswith(filename[:80]) and sent_name.endswith(".txt")
    assert len(sent_name.encode()) <= 255, "cut to 255 bytes, the extension kept"
    disposition = [line for line in lines_of(notice) if b"filename*" in line]
    assert disposition[0].startswith(b" filename*0*=utf-8''%E5%AE%A2")
    assert len(disposition) > 5 and disposition[-1].startswith(b" filename*")


def test_message_ids_too_long_for_a_line_never_make_a_threading_line_too_long(
    make_desk: Callable[..., Desk], sink: Sink
) -> None:
    desk = make_desk()
    raw = customer_mail("Alice", "Crash", "Help", message_id="a" * 1200 + "@customer.example")
    raw = raw.replace(b"Subject:", b"References: <" + b"r" * 2000 + b"@x.example>\r\nSubject:", 1)
    desk.customer_writes(raw)
    [ack] = desk.mails_to(ALICE)
    assert_fit_to_send(ack, fold_at=998)  # a Message-ID cannot be folded


def outbox_rows(desk: Desk) -> list[OutboxMail]:
    with desk.gateway.session() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def ticket_events(desk: Desk, kind: EventKind) -> list[str]:
    with desk.gateway.session() as session:
        return list(session.scalars(select(Event.detail).where(Event.type == kind)))


@pytest.mark.parametrize(
    "answer", ["500 5.5.0 Line too long", "552 5.6.0 Headers too large", "554 5.6.0 syntax error"]
)
def test_a_relay_refusing_our_mail_as_malformed_is_our_bug_not_the_recipients(
    make_desk: Callable[..., Desk], sink: Sink, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    # Only the refusal matters here, not the one acknowledgement per address and period.
    desk = make_desk(acknowledgement_interval_minutes=1e-6)
    sink.handler.refuse_with = answer
    with caplog.at_level(logging.ERROR, logger="gateway.delivery"):
        desk.customer_writes(customer_mail("Alice", "Crash", "Help"))
    ack_row = next(row for row in outbox_rows(desk) if row.recipient == ALICE)
    assert ack_row.state is OutboxState.FAILED and ack_row.last_error == answer
    assert any(
        "gateway bug" in record.getMessage() and ALICE in record.getMessage()
        for record in caplog.records
        if record.levelno == logging.ERROR
    )
    [detail, *_] = [d for d in ticket_events(desk, EventKind.DELIVERY_FAILED) if ALICE in d]
    assert "gateway bug, not the recipient's address" in detail
    # Alice is not held, nor treated as bouncing: her next mail goes.
    assert desk.gateway.count(AddressHold) == 0
    sink.handler.refuse_with = None
    desk.customer_writes(
        customer_mail("Alice", "Another", "Hello", message_id="two@customer.example")
    )
    assert [desk.subject(m) for m in desk.mails_to(ALICE)][-1].endswith("Another")


def test_a_refusal_about_the_address_is_still_the_recipients(
    make_desk: Callable[..., Desk], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    desk = make_desk()
    sink.handler.refuse_with = "550 5.1.1 mailbox unavailable"
    with caplog.at_level(logging.WARNING, logger="gateway.delivery"):
        desk.customer_writes(customer_mail("Alice", "Crash", "Help"))
    [detail, *_] = [d for d in ticket_events(desk, EventKind.DELIVERY_FAILED) if ALICE in d]
    assert "gateway bug" not in detail and "550 5.1.1" in detail
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def with_long_body_line(compose: Callable[..., bytes]) -> Callable[..., bytes]:
    """`compose` broken as a regression might break it: its text part 8-bit, one line long."""

    def broken(*args: Any, **kwargs: Any) -> bytes:
        content = compose(*args, **kwargs)
        head, _, rest = content.partition(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        line = ("Très long: " + "é" * 3000).encode("utf-8")
        return head + b"Content-Transfer-Encoding: 8bit\r\n\r\n" + line + b"\r\n" + rest

    return broken


def test_the_outbox_re_encodes_a_part_with_a_line_too_long(
    make_desk: Callable[..., Desk], sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "compose", with_long_body_line(outbox_module.compose))
    desk = make_desk()
    desk.customer_writes(customer_mail("Alice", "Crash", "Help"))
    [ack] = desk.mails_to(ALICE)
    assert_fit_to_send(ack, fold_at=998)
    text = desk.text(ack)
    assert text.startswith("Très long: " + "é" * 3000)


def test_a_line_still_too_long_keeps_the_mail_failed_and_unsent(
    make_desk: Callable[..., Desk],
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    compose = outbox_module.compose

    def unfoldable(*args: Any, **kwargs: Any) -> bytes:
        return b"X-Broken: " + b"x" * 2000 + b"\r\n" + compose(*args, **kwargs)

    monkeypatch.setattr(outbox_module, "compose", unfoldable)
    desk = make_desk()
    with caplog.at_level(logging.ERROR, logger="gateway.outbox"):
        desk.customer_writes(customer_mail("Alice", "Crash", "Help"))
    assert sink.received == []
    rows = outbox_rows(desk)
    assert rows and all(row.state is OutboxState.FAILED and row.attempts == 0 for row in rows)
    assert all("gateway bug" in row.last_error and "2010 octets" in row.last_error for row in rows)
    assert any("gateway bug" in r.getMessage() for r in caplog.records)
    assert any("not sent: gateway bug" in d for d in ticket_events(desk, EventKind.DELIVERY_FAILED))


def test_within_limit_passes_a_mail_with_no_long_line_as_it_is() -> None:
    content = b"Subject: hi\r\nTo: a@b.example\r\n\r\nshort\r\n"
    assert within_limit(content) is content


def test_within_limit_refolds_headers_and_re_encodes_bodies() -> None:
    subject = ("word " * 400).strip()
    content = (
        f"Subject: {subject}\r\nFrom: {'N' * 1200} <a@b.example>\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{'é' * 2000}\r\n--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{'%E6%96%87' * 400}.txt\r\n\r\n"
        f"{'b' * 3000}\r\n--b--\r\n"
    ).encode()
    repaired = within_limit(content)
    assert overlong_line(repaired) is None
    message = email.message_from_bytes(repaired, policy=email.policy.default)
    assert str(message["Subject"]) == subject
    assert message["From"].addresses[0].display_name.replace(" ", "") == "N" * 400
    text, binary = message.iter_parts()
    assert text.get_content().rstrip() == "é" * 2000  # type: ignore[attr-defined]
    assert binary.get_filename() == "文" * 396 + ".txt"  # 400 characters, the extension kept
    assert binary.get_content() == b"b" * 3000  # type: ignore[attr-defined]


def test_within_limit_says_where_a_line_cannot_be_shortened() -> None:
    with pytest.raises(LineTooLong, match=r"line 1 of the mail is 1208 octets"):
        within_limit(b"X-Token: " + b"t" * 1199 + b"\r\n\r\nbody\r\n")


# -- item 6: active content is never passed on as it came --------------------------------

XHTML = b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body>x</body></html>'
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
OCTETS = "application/octet-stream"
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
UTF16_HTML = b"\xff\xfe" + "<html>".encode("utf-16-le")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# (name, declared type, bytes) -> (name sent, type sent, what made it active)
VARIANTS = [
    ("holiday.jpg", "image/jpeg", HTML, "holiday.jpg.bin", OCTETS, "HTML"),
    ("logo.svg", "image/svg+xml", SVG, "logo.svg.bin", OCTETS, "SVG"),
    ("screenshot.txt", "text/plain", PNG, "screenshot.txt", "image/png", ""),
    ("page.xhtml", "application/xhtml+xml", XHTML, "page.xhtml.bin", OCTETS, "XHTML"),
    ("config.dat", OCTETS, b'<?xml version="1.0"?><config/>', "config.dat.bin", OCTETS, "XML"),
    ("helper.js", "text/plain", b"location='//evil.net'", "helper.js.bin", OCTETS, "JavaScript"),
    ("crash.log", "text/plain", b"E/AndroidRuntime: FATAL\n" * 20, "crash.log", "text/plain", ""),
    ("manual.pdf", "application/pdf", PDF, "manual.pdf", "application/pdf", ""),
]  # fmt: skip
MORE_VARIANTS = [
    ("evil.html", "image/png", PNG, "evil.html.bin", OCTETS, "HTML"),
    ("a.docx", OCTETS, b"PK\x03\x04rest", "a.docx", DOCX, ""),
    ("fake.png", "image/png", b"\x00\x01binary", "fake.png", OCTETS, ""),
    ("old.doc", "application/msword", b"\xd0\xcf\x11\xe0\x00", "old.doc", "application/msword", ""),
    ("u16.txt", "text/plain", UTF16_HTML, "u16.txt.bin", OCTETS, "HTML"),
    ("setup.exe.", OCTETS, b"MZ\x90\x00", "setup.exe..bin", OCTETS, "program"),
    ("anim.webp", "image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "anim.webp", "image/webp", ""),
    ("data.gz", "application/x-gzip", b"\x1f\x8b\x08\x00", "data.gz", "application/gzip", ""),
]  # fmt: skip


def sent_parts(mail: CapturedMail) -> dict[str, tuple[str, str]]:
    return {
        str(p.get_filename()): (p.get_content_type(), str(p.get_filename())) for p in parts(mail)
    }


@pytest.mark.parametrize("language", ["en", "zh"])
def test_files_go_to_engineers_typed_by_their_bytes_and_active_ones_made_safe(
    make_desk: Callable[..., Desk], sink: Sink, language: str
) -> None:
    desk = make_desk(language)
    files = [(name, declared, data) for name, declared, data, *_ in VARIANTS]
    desk.customer_writes(customer_mail("Alice", "Files", "See attached.", files))
    [notice] = desk.mails_to(ENG1)
    sent = sent_parts(notice)
    assert len(sent) == len(VARIANTS)
    for name, _, _, sent_name, sent_type, _ in VARIANTS:
        assert sent[sent_name] == (sent_type, sent_name), name
    forwarded_bytes = {p.get_filename(): p.get_content() for p in parts(notice)}  # type: ignore[attr-defined]
    assert forwarded_bytes["screenshot.txt"] == PNG and forwarded_bytes["logo.svg.bin"] == SVG
    text = desk.text(notice)
    if language == "en":
        assert "Made safe: these files could run code" in text
        assert "holiday.jpg: HTML (declared image/jpeg), sent as holiday.jpg.bin" in text
        assert "helper.js: JavaScript (declared text/plain), sent as helper.js.bin" in text
        assert "screenshot.txt: image/png (declared text/plain)" in text
    else:
        assert "已作安全处理" in text
        assert "holiday.jpg：HTML（声明类型 image/jpeg），发送为 holiday.jpg.bin" in text
        assert "screenshot.txt：image/png（声明类型 text/plain）" in text
    for line in ("crash.log", "manual.pdf"):
        assert (
            f"{line}: " not in text.split("Made safe")[-1]
            and f"{line}：" not in text.split("已作安全处理")[-1]
        )
    html = notice.message.get_body(("html",))
    assert html is not None and "holiday.jpg.bin" in html.get_content()  # type: ignore[attr-defined]


def test_an_engineers_active_file_reaches_the_customer_made_safe(
    make_desk: Callable[..., Desk], sink: Sink
) -> None:
    desk = make_desk()
    desk.customer_writes(customer_mail("Alice", "Crash", "Help"))
    notice = desk.mails_to(ENG1)[-1]
    reply = desk.reply(notice, ENG1, "Here is the page.")
    reply.add_attachment(SVG, maintype="image", subtype="png", filename="diagram.png")
    desk.gateway.send(reply, recipients=[desk.reply_to(notice)], sender=ENG1)
    answer = desk.wait_mail(ALICE, "Re: ")
    assert sent_parts(answer) == {
        "diagram.png.bin": ("application/octet-stream", "diagram.png.bin")
    }
    assert "diagram.png, sent as diagram.png.bin" in desk.text(answer)


@pytest.mark.parametrize(
    "name, declared, data, sent_name, sent_type, active", VARIANTS + MORE_VARIANTS
)
def test_file_types_come_from_the_bytes(
    name: str, declared: str, data: bytes, sent_name: str, sent_type: str, active: str
) -> None:
    sent = forwarded(name, declared, data)
    assert (sent.filename, sent.content_type, sent.active) == (sent_name, sent_type, active)
