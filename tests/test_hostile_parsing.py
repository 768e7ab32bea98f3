"""Hostile and broken inbound mail, parsed: attachment names no file system refuses,
broken MIME that still yields the sender's words (and says so in the trail), charsets
that lie about their bytes, and CRLF line ends kept out of stored text.

Each rule is checked on `parse_message` alone and end to end through the real pipeline
(`DirectGateway`), on both databases."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable

import pytest
from sqlalchemy import select

from gateway.parsing import ParsedMail, parse_message
from storage.models import Attachment, Direction, Event, EventKind, Message, Ticket
from tests.conftest import ALICE, SUPPORT, Desk, DirectGateway, gateway_env

ZH_WORDS = "你好，我的打印机坏了，请帮忙看看。谢谢！"
EN_WORDS = "Hello, my printer is broken. Please have a look. Thanks!"


@pytest.fixture
def gateway(make_direct_gateway: Callable[..., DirectGateway]) -> DirectGateway:
    return make_direct_gateway()


def mail(
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: str = "",
    subject: bytes = b"Printer",
    message_id: str = "hostile-1@customer.example",
) -> bytes:
    head = (
        f"From: Alice <{ALICE}>\r\nTo: {SUPPORT}\r\nMessage-ID: <{message_id}>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n{extra}"
    ).encode()
    return head + b"Subject: " + subject + b"\r\n\r\n" + body


def with_attachment(filename_field: str, message_id: str = "att-1@customer.example") -> bytes:
    body = (
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
        "--b1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; {filename_field}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b1--\r\n"
    ).encode()
    return mail(body, 'multipart/mixed; boundary="b1"', message_id=message_id)


def only_ticket(gateway: DirectGateway) -> tuple[Ticket, Message, list[Event]]:
    with gateway.session() as session:
        ticket = session.scalars(select(Ticket)).one()
        message = session.scalars(
            select(Message).where(Message.ticket_id == ticket.id, Message.direction == Direction.IN)
        ).one()
        events = list(
            session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id))
        )
        session.expunge_all()
    return ticket, message, events


# -- item 5: attachment names ----------------------------------------------------------------


def name_of(filename_field: str) -> str:
    [attachment] = parse_message(with_attachment(filename_field)).attachments
    return attachment.filename


def rfc2231(name: str) -> str:
    return "filename*=UTF-8''" + "".join(f"%{byte:02X}" for byte in name.encode())


@pytest.mark.parametrize(
    "name, extension",
    [
        ("测试文件名" * 40 + ".pdf", ".pdf"),  # 600 bytes of Chinese
        ("报告" * 100 + ".tar.gz", ".gz"),
        ("日本語のファイル名" * 20 + ".xlsx", ".xlsx"),
        ("a" * 300 + ".txt", ".txt"),
        ("é" * 200 + ".docx", ".docx"),
    ],
)
def test_long_names_are_cut_to_255_bytes_keeping_the_extension(name: str, extension: str) -> None:
    cut = name_of(rfc2231(name))
    assert len(cut.encode("utf-8")) <= 255
    assert cut.endswith(extension)
    stem = cut[: -len(extension)]
    assert name.startswith(stem) and len(stem) > 50, "a prefix of the name, whole characters"


def test_a_long_name_without_extension_is_cut_on_a_character_boundary() -> None:
    name = "没有扩展名的文件" * 30
    cut = name_of(rfc2231(name))
    assert len(cut.encode()) <= 255 and name.startswith(cut)
    assert len(cut.encode()) > 250, "as much as fits"


def test_an_encoded_word_chinese_name_is_cut_by_bytes() -> None:
    name = "客户提交的问题日志" * 15 + ".log"
    encoded = base64.b64encode(name.encode()).decode()
    cut = name_of(f'filename="=?UTF-8?B?{encoded}?="')
    assert len(cut.encode()) <= 255 and cut.endswith(".log")
    assert name.startswith(cut[: -len(".log")]) and len(cut.encode()) > 240, "cut, not replaced"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("CON", "_CON"),
        ("NUL.log", "_NUL.log"),
        ("aux.txt", "_aux.txt"),
        ("COM1", "_COM1"),
        ("lpt9.txt", "_lpt9.txt"),
        ("Prn.tar.gz", "_Prn.tar.gz"),
        ("nul .txt", "_nul .txt"),
        ("report.", "report"),
        ("report.pdf. . ", "report.pdf"),
        ("报告 ", "报告"),
        ("CONSOLE.txt", "CONSOLE.txt"),
        ("com10.txt", "com10.txt"),
        ("my aux file.txt", "my aux file.txt"),
        ("Ärger & Co (1).pdf", "Ärger & Co (1).pdf"),
    ],
)
def test_names_windows_cannot_save_are_renamed_and_others_kept(name: str, expected: str) -> None:
    assert name_of(rfc2231(name)) == expected
    assert name_of(f'filename="{name}"') == expected


def test_a_name_of_only_dots_gets_a_made_up_name() -> None:
    assert name_of('filename=". . ."') == "attachment-1.bin"


def test_stored_attachment_names_fit_255_bytes(gateway: DirectGateway) -> None:
    long_name = "测试文件名" * 40 + ".pdf"
    gateway.send(with_attachment(rfc2231(long_name), "att-long@customer.example"), sender=ALICE)
    gateway.send(with_attachment('filename="CON.txt"', "att-con@customer.example"), sender=ALICE)
    gateway.wait_for_receipts(2)
    with gateway.session() as session:
        names = sorted(session.scalars(select(Attachment.filename)))
    assert names[0] == "_CON.txt"
    assert len(names[1].encode()) <= 255 and names[1].endswith(".pdf")
    assert names[1].startswith("测试文件名测试")


# -- item 7: broken MIME ---------------------------------------------------------------------


def part(body: bytes, headers: str = "Content-Type: text/plain; charset=utf-8") -> bytes:
    return headers.encode() + b"\r\n\r\n" + body + b"\r\n"


@pytest.mark.parametrize("words", [ZH_WORDS, EN_WORDS])
def test_declared_boundary_that_never_occurs(words: str) -> None:
    body = b"--other\r\n" + part(words.encode()) + b"--other--\r\n"
    parsed = parse_message(mail(body, 'multipart/alternative; boundary="declared"'))
    assert parsed.text == words
    assert "boundary never occurs" in parsed.structure_broken


@pytest.mark.parametrize("words", [ZH_WORDS, EN_WORDS])
def test_multipart_without_a_boundary_parameter(words: str) -> None:
    body = b"--b1\r\n" + part(words.encode()) + b"--b1--\r\n"
    parsed = parse_message(mail(body, "multipart/mixed"))
    assert parsed.text == words
    assert "without a boundary" in parsed.structure_broken


def test_multipart_without_a_boundary_and_no_parts_is_its_own_text() -> None:
    parsed = parse_message(mail(ZH_WORDS.encode("gbk"), "multipart/mixed"))
    assert parsed.text == ZH_WORDS, "the charset guessed"
    assert parsed.structure_broken


def test_base64_part_behind_a_wrong_boundary_is_decoded() -> None:
    encoded = base64.encodebytes(ZH_WORDS.encode("gb18030"))
    body = b"preamble junk\r\n--real\r\n" + part(
        encoded, "Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64"
    )
    parsed = parse_message(mail(body, 'multipart/mixed; boundary="declared"'))
    assert parsed.text == ZH_WORDS


def test_html_part_behind_a_wrong_boundary_is_rendered() -> None:
    html = f"<html><body><p>{EN_WORDS}</p></body></html>".encode()
    body = b"--real\r\n" + part(html, "Content-Type: text/html; charset=utf-8") + b"--real--\r\n"
    parsed = parse_message(mail(body, 'multipart/alternative; boundary="declared"'))
    assert parsed.text == EN_WORDS


def test_unterminated_multipart_keeps_its_text() -> None:
    body = b"--b1\r\n" + part(ZH_WORDS.encode())  # no closing --b1--
    parsed = parse_message(mail(body, 'multipart/mixed; boundary="b1"'))
    assert parsed.text == ZH_WORDS


def test_garbage_headers_with_a_wrong_boundary() -> None:
    body = (
        b"----fa**f__fawf\r\nContent-Type: text/html;\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\nHello there\r\n\r\n----faf__fawf--\r\n"
    )
    parsed = parse_message(mail(body, 'multipart/alternative; boundary="--faf__fawf"'))
    assert parsed.text == "Hello there", "not base64 after all: kept as it came"


def test_attachment_only_broken_message_takes_no_base64_as_text() -> None:
    body = b"--x\r\n" + part(
        base64.encodebytes(bytes(range(256)) * 4),
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64",
    )
    parsed = parse_message(mail(body, 'multipart/mixed; boundary="declared"'))
    assert parsed.text == ""
    assert "no text" in parsed.structure_broken


@pytest.mark.parametrize(
    "body, content_type",
    [
        (part(EN_WORDS.encode()), "text/plain"),
        (b"--b1\r\n" + part(EN_WORDS.encode()) + b"--b1--\r\n", 'multipart/mixed; boundary="b1"'),
        (
            b"--b1\r\n" + part(b"", "Content-Type: application/pdf") + b"--b1--\r\n",
            'multipart/mixed; boundary="b1"',
        ),
    ],
)
def test_sound_messages_are_not_marked_broken(body: bytes, content_type: str) -> None:
    assert parse_message(mail(body, content_type)).structure_broken == ""


def broken_mail(words: str, message_id: str, extra: str = "") -> bytes:
    body = b"--actual\r\n" + part(words.encode()) + b"--actual--\r\n"
    return mail(body, 'multipart/mixed; boundary="declared"', extra, message_id=message_id)


@pytest.mark.parametrize("words", [ZH_WORDS, EN_WORDS])
def test_broken_mime_opens_a_ticket_with_its_words_and_says_so(
    gateway: DirectGateway, words: str
) -> None:
    gateway.send(broken_mail(words, "broken-1@customer.example"), sender=ALICE)
    gateway.wait_for_receipts(1)
    _, message, events = only_ticket(gateway)
    assert message.text == words
    kinds = [event.type for event in events]
    assert kinds[:2] == [EventKind.CREATED, EventKind.STRUCTURE_BROKEN]
    assert "boundary never occurs" in events[1].detail
    assert events[1].message_pk == message.id


def test_broken_mime_reply_is_added_with_its_words_and_says_so(desk: Desk) -> None:
    ticket_id, ack = desk.open_ticket()
    reply = broken_mail(
        ZH_WORDS,
        "broken-reply@customer.example",
        f"In-Reply-To: {ack.message['Message-ID']}\r\n",
    )
    desk.customer_writes(reply)
    desk.gateway.wait_for_receipts(2)
    with desk.gateway.session() as session:
        ticket = session.get_one(Ticket, ticket_id)
        inbound = [m for m in ticket.messages if m.direction is Direction.IN]
        broken = [e for e in ticket.events if e.type is EventKind.STRUCTURE_BROKEN]
        assert inbound[-1].text == ZH_WORDS
        assert len(broken) == 1 and broken[0].message is inbound[-1]


@pytest.fixture
def desk(direct_desk: Desk) -> Desk:
    return direct_desk


# -- item 8: charsets that lie ---------------------------------------------------------------


@pytest.mark.parametrize(
    "declared",
    ["gb2312", "gbk", "GB18030", "big5", "iso-8859-1", "latin1", "windows-1252", "us-ascii", None],
)
@pytest.mark.parametrize("words", [ZH_WORDS, "Grüße aus Köln – der Drucker ist kaputt ☹"])
def test_utf8_bodies_read_as_utf8_whatever_their_label(declared: str | None, words: str) -> None:
    content_type = f"text/plain; charset={declared}" if declared else "text/plain"
    extra = "Content-Transfer-Encoding: 8bit\r\n"
    assert parse_message(mail(words.encode(), content_type, extra)).text == words


@pytest.mark.parametrize(
    "words, codec, declared",
    [
        (ZH_WORDS, "gbk", "gb2312"),
        ("請幫忙看看印表機的問題", "big5", "big5"),
        ("Grüße aus Köln, der Drucker ist kaputt", "latin-1", "iso-8859-1"),
        ("Принтер сломался, помогите", "cp1251", "windows-1251"),
        ("プリンターが壊れました", "cp932", "shift_jis"),
        ("打印机", "gbk", "gbk"),
    ],
)
def test_bodies_that_are_what_they_declare_stay_so(words: str, codec: str, declared: str) -> None:
    parsed = parse_message(mail(words.encode(codec), f"text/plain; charset={declared}"))
    assert parsed.text == words


@pytest.mark.parametrize(
    "words, codec",
    [(ZH_WORDS, "gbk"), ("打印机坏了", "gbk"), ("你好，我的印表機壞了。請幫忙", "big5")],
)
def test_undeclared_cjk_bodies_are_guessed_not_read_as_korean(words: str, codec: str) -> None:
    assert parse_message(mail(words.encode(codec), "text/plain")).text == words


def test_bytes_the_declared_charset_refuses_get_a_guess() -> None:
    parsed = parse_message(mail(ZH_WORDS.encode("gbk"), "text/plain; charset=utf-8"))
    assert parsed.text == ZH_WORDS


def test_html_labelled_gb2312_but_utf8_is_read_as_utf8() -> None:
    html = f'<html><head><meta charset="gb2312"></head><body>{ZH_WORDS}</body></html>'
    parsed = parse_message(mail(html.encode(), "text/html; charset=gb2312"))
    assert parsed.text == ZH_WORDS


@pytest.mark.parametrize(
    "charset, words",
    [("gb2312", "打印机坏了"), ("iso-8859-1", "Café crème"), ("big5", "你好世界")],
)
def test_encoded_word_subjects_and_names_with_a_lying_charset(charset: str, words: str) -> None:
    word = f"=?{charset}?B?{base64.b64encode(words.encode()).decode()}?="
    raw = mail(b"x", subject=word.encode()).replace(b"From: Alice", f"From: {word}".encode())
    parsed = parse_message(raw)
    assert (parsed.subject, parsed.from_name) == (words, words)


def test_raw_utf8_subject_in_a_gbk_message() -> None:
    parsed = parse_message(
        mail("你好".encode("gbk"), "text/plain; charset=gbk", subject="打印机坏了".encode())
    )
    assert (parsed.subject, parsed.text) == ("打印机坏了", "你好")


def test_stored_text_of_a_lying_charset_is_clean(gateway: DirectGateway) -> None:
    raw = mail(
        ZH_WORDS.encode(),
        "text/plain; charset=gb2312",
        subject=b"=?gb2312?B?" + base64.b64encode("打印机坏了".encode()) + b"?=",
        message_id="lying-1@customer.example",
    )
    gateway.send(raw, sender=ALICE)
    gateway.wait_for_receipts(1)
    ticket, message, _ = only_ticket(gateway)
    assert (ticket.subject, message.text, ticket.language) == ("打印机坏了", ZH_WORDS, "zh")


# -- CRLF in stored text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"line one\r\nline two\r\n\r\nline four\r\n", "text/plain"),
        (b"line one\rline two\r\rline four", "text/plain"),
        ("第一行\r\n第二行\r\n\r\n第四行".encode(), "text/plain; charset=utf-8"),
        (b"<p>line one</p>\r\n<p>line two</p>\r\n", "text/html"),
    ],
)
def test_text_has_no_carriage_returns(body: bytes, content_type: str) -> None:
    parsed: ParsedMail = parse_message(mail(body, content_type))
    assert "\r" not in parsed.text and "\r" not in parsed.reply_text
    assert "\r" not in parsed.html
    assert len(parsed.text.splitlines()) >= 2


def test_quoted_printable_crlf_is_unified() -> None:
    body = b"first=0D=0Asecond=0Dthird\r\n"
    parsed = parse_message(
        mail(body, "text/plain", "Content-Transfer-Encoding: quoted-printable\r\n")
    )
    assert parsed.text == "first\nsecond\nthird"


def test_show_json_of_a_crlf_mail_has_no_carriage_return(
    gateway: DirectGateway, database_url: str
) -> None:
    body = f"{EN_WORDS}\r\n\r\n{ZH_WORDS}\r\n-- \r\nAlice\r\n".encode()
    gateway.send(mail(body, message_id="crlf-1@customer.example"), sender=ALICE)
    gateway.wait_for_receipts(1)
    _, message, _ = only_ticket(gateway)
    assert "\r" not in message.text and message.text.count("\n") == 4
    env = gateway_env(gateway.settings.data_dir, GATEWAY_DATABASE_URL=database_url)
    output = subprocess.run(
        [sys.executable, "-m", "gateway", "show", "1", "--json"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    shown = json.loads(output)
    texts = [message["text"] for message in shown["messages"]]
    assert texts and all("\r" not in text for text in texts)
    assert "\\r" not in output.decode()
