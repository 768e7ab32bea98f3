"""`parse_message` and `extract_reply` on small hand-made messages, one behaviour each."""

from __future__ import annotations

import base64
import email
import logging

import pytest

from gateway import loops
from gateway.errors import MalformedMessage, OverLimit
from gateway.limits import MAX_FIELD_BYTES, check_field_sizes
from gateway.parsing import (
    ELIDED_RUN_BYTES,
    FEED_BYTES,
    ParsedMail,
    decode_base64_leniently,
    elide_long_base64_runs,
    extract_reply,
    long_base64_runs,
    message_tree,
    parse_message,
)


def message(headers: str, body: bytes | str = b"Hello.\r\n", *, raw_headers: bytes = b"") -> bytes:
    """A message from header lines (`\\n`-separated, ASCII) and a body, with CRLF line ends."""
    head = "\r\n".join(headers.strip("\n").splitlines()).encode("ascii") + b"\r\n" + raw_headers
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head + b"\r\n" + data


def parse(
    headers: str, body: bytes | str = b"Hello.\r\n", *, raw_headers: bytes = b""
) -> ParsedMail:
    return parse_message(message(headers, body, raw_headers=raw_headers))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Chinese ------------------------------------------------------------------------------------


def test_gbk_subject_labelled_gb2312_decodes_without_mojibake() -> None:
    # 內 and 產 are traditional characters: in GBK, not in GB2312.
    subject = "內應力產生的关系"
    mail = parse(
        f"""From: wang@customer.cn
Subject: =?GB2312?B?{b64(subject.encode("gbk"))}?=
Content-Type: text/plain; charset="GB2312"
""",
        "你好".encode("gbk"),
    )
    assert mail.subject == subject
    assert mail.text == "你好"
    assert mail.language == "zh"


def test_gb2312_body_written_in_gbk_decodes() -> None:
    mail = parse(
        """From: wang@customer.cn
Subject: log
Content-Type: text/plain; charset=gb2312
Content-Transfer-Encoding: 8bit
""",
        "崩潰日誌：裝置".encode("gbk"),
    )
    assert mail.text == "崩潰日誌：裝置"


def test_gb18030_four_byte_characters_decode() -> None:
    # 𠮷 is outside the BMP and outside GBK: GB18030 writes it in four bytes.
    subject = "测试𠮷"
    encoded = subject.encode("gb18030")
    assert len(encoded) == 8
    mail = parse(
        f"""From: wang@customer.cn
Subject: =?gb18030?B?{b64(encoded)}?=
Content-Type: text/plain; charset="gb18030"
""",
        encoded,
    )
    assert mail.subject == subject
    assert mail.text == subject


def test_raw_big5_header_bytes_decode_with_the_body_charset() -> None:
    subject = "養樂多線上訂購"
    mail = parse(
        """From: shop@yakult.example
Content-Type: text/html; charset=big5
""",
        "<p>訂購</p>".encode("big5"),
        raw_headers=b"Subject: " + subject.encode("big5") + b"\r\n",
    )
    assert mail.subject == subject
    assert mail.text == "訂購"


def test_big5_encoded_word_decodes() -> None:
    subject = "繁體中文測試"
    mail = parse(f"""From: chen@customer.tw
Subject: =?big5?Q?{"".join(f"={byte:02X}" for byte in subject.encode("big5"))}?=
""")
    assert mail.subject == subject


def test_cjk_subject_that_went_through_latin1_and_utf8_is_read_back() -> None:
    # A relay read Big5 bytes as Latin-1 and wrote them out again as UTF-8.
    subject = "大家說英語"
    doubled = subject.encode("big5").decode("latin-1").encode("utf-8")
    mail = parse(
        """From: a@msa.example
Content-Type: text/html; charset="big5"
""",
        b"<p>x</p>",
        raw_headers=b"Subject: " + doubled + b"\r\n",
    )
    assert mail.subject == subject


def test_latin1_subject_in_a_message_without_cjk_charset_stays_latin1() -> None:
    mail = parse(
        """From: a@example.de
Content-Type: text/plain; charset=iso-8859-1
""",
        "Größe".encode("latin-1"),
        raw_headers="Subject: Größe".encode() + b"\r\n",
    )
    assert mail.subject == "Größe"
    assert mail.text == "Größe"


# Japanese -----------------------------------------------------------------------------------


def test_iso_2022_jp_subject_and_body_decode() -> None:
    subject = "日本語メールテスト"
    mail = parse(
        f"""From: eno@example.jp
Subject: =?ISO-2022-JP?B?{b64(subject.encode("iso-2022-jp"))}?=
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: 7bit
""",
        "こんにちは".encode("iso-2022-jp"),
    )
    assert mail.subject == subject
    assert mail.text == "こんにちは"


def test_outlook_nec_row_13_characters_in_iso_2022_jp_decode() -> None:
    # Outlook writes ① № ㈱ as JIS 0x2D21, 0x2D62, 0x2D6A (NEC row 13), which Python's
    # ISO-2022-JP codecs refuse.
    jis = b"\x1b$B" + b"\x2d\x21\x2d\x62\x2d\x6a" + b"\x1b(B"
    mail = parse(
        f"""From: tanaka@example.jp
Subject: =?ISO-2022-JP?B?{b64(jis + b"41")}?=
Content-Type: text/plain; charset=ISO-2022-JP
""",
        jis + b"\r\n",
    )
    assert mail.subject == "①№㈱41"
    assert mail.text == "①№㈱"


def test_over_padded_base64_encoded_word_decodes() -> None:
    name = b64("事務局".encode("iso-2022-jp")) + "=="
    mail = parse(f"""From: "=?ISO-2022-JP?B?{name}?=" <noreply@example.org>
Subject: x
""")
    assert mail.from_name == "事務局"
    assert mail.from_address == "noreply@example.org"


def test_raw_utf8_header_in_an_iso_2022_jp_message_is_read_as_utf8() -> None:
    mail = parse(
        """From: no-reply@carrier.example.jp
Content-Type: text/plain; charset="ISO-2022-JP"
""",
        "送信できませんでした".encode("iso-2022-jp"),
        raw_headers="Subject: メールエラー通知".encode() + b"\r\n",
    )
    assert mail.subject == "メールエラー通知"


# RFC 2047 and RFC 2231 file names -----------------------------------------------------------


def with_attachment(part_headers: str, data: bytes = b"log line\n") -> ParsedMail:
    return parse(
        """From: alice@customer.example
Subject: files
Content-Type: multipart/mixed; boundary="b1"
""",
        f"""--b1
Content-Type: text/plain; charset=utf-8

See attached.
--b1
{part_headers.strip()}
Content-Transfer-Encoding: base64

{b64(data)}
--b1--
""".replace("\n", "\r\n"),
    )


def test_rfc2047_encoded_file_name_decodes() -> None:
    name = b64("崩溃日志.txt".encode())
    mail = with_attachment(f"""Content-Type: text/plain; name="=?UTF-8?B?{name}?="
Content-Disposition: attachment; filename="=?UTF-8?B?{name}?=\"""")
    [attachment] = mail.attachments
    assert attachment.filename == "崩溃日志.txt"
    assert attachment.data == b"log line\n"


def test_rfc2231_file_name_decodes() -> None:
    mail = with_attachment("""Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf""")
    assert [a.filename for a in mail.attachments] == ["报告.pdf"]


def test_rfc2231_continuations_join_into_one_file_name() -> None:
    mail = with_attachment("""Content-Type: application/octet-stream
Content-Disposition: attachment;
 filename*0*=UTF-8''%E6%96%B0%E3%81%97%E3%81%84;
 filename*1*=%E3%83%86%E3%82%AD%E3%82%B9%E3%83%88;
 filename*2=".txt\"""")
    assert [a.filename for a in mail.attachments] == ["新しいテキスト.txt"]


def test_rfc2231_file_name_in_gbk_decodes() -> None:
    mail = with_attachment("""Content-Type: text/plain; name*=GBK''%B1%C0%C0%A3.txt
Content-Disposition: attachment; filename*=GBK''%B1%C0%C0%A3.txt""")
    assert [a.filename for a in mail.attachments] == ["崩溃.txt"]


def test_unnamed_attachment_gets_the_same_made_up_name_every_time() -> None:
    raw = message(
        """From: alice@customer.example
Subject: files
Content-Type: multipart/mixed; boundary="b1"
""",
        b"--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\n"
        b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nnotes\r\n--b1--\r\n",
    )
    first, second = parse_message(raw), parse_message(raw)
    assert first == second
    assert [a.filename for a in first.attachments] == ["attachment-1.txt"]


def test_attachment_file_name_never_carries_a_path() -> None:
    mail = with_attachment("""Content-Type: application/octet-stream
Content-Disposition: attachment; filename="..\\\\..\\\\windows\\\\evil.exe\"""")
    assert [a.filename for a in mail.attachments] == ["evil.exe"]


# Bodies -------------------------------------------------------------------------------------


def test_html_only_mail_gets_a_text_body() -> None:
    mail = parse(
        """From: bob@builder.example
Subject: stutter
Content-Type: text/html; charset=utf-8
""",
        "<html><body><p>Playback <b>stutters</b> on iOS.</p>"
        "<ul><li>SDK 5.2.1</li></ul></body></html>",
    )
    assert "Playback stutters on iOS." in mail.text
    assert "SDK 5.2.1" in mail.text
    assert "<" not in mail.text
    assert mail.html.startswith("<html>")


def test_inline_cid_image_is_an_inline_attachment_with_its_content_id() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    mail = parse(
        """From: bob@builder.example
Subject: screenshot
Content-Type: multipart/related; boundary="rel"
""",
        f"""--rel
Content-Type: text/html; charset=utf-8

<p>See <img src="cid:shot@builder.example"></p>
--rel
Content-Type: image/png
Content-ID: <shot@builder.example>
Content-Disposition: inline
Content-Transfer-Encoding: base64

{b64(png)}
--rel
Content-Type: application/pdf; name="spec.pdf"
Content-Disposition: attachment; filename="spec.pdf"
Content-Transfer-Encoding: base64

{b64(b"%PDF-1.4")}
--rel--
""".replace("\n", "\r\n"),
    )
    image, pdf = mail.attachments
    assert (image.content_id, image.inline, image.data) == ("shot@builder.example", True, png)
    assert image.content_type == "image/png"
    assert image.filename == "attachment-1.png"
    assert (pdf.filename, pdf.inline, pdf.content_id) == ("spec.pdf", False, None)
    assert mail.text == "See"


def test_forwarded_message_stays_one_attachment_and_out_of_the_body() -> None:
    mail = parse(
        """From: alice@customer.example
Subject: Fwd: crash
Content-Type: multipart/mixed; boundary="m"
""",
        """--m
Content-Type: text/plain

See the forwarded report.
--m
Content-Type: message/rfc822

From: carol@customer.example
Subject: crash

Original words.
--m--
""".replace("\n", "\r\n"),
    )
    assert mail.text == "See the forwarded report."
    [forwarded] = mail.attachments
    assert forwarded.content_type == "message/rfc822"
    assert b"Original words." in forwarded.data


@pytest.mark.parametrize(
    "field",
    [
        b"Subject: \xe4" + b"x" * 50_000,  # raw 8-bit, one line
        b"References: " + b"<a@b.example>\r\n " * 5_000,  # folded, thousands of words
    ],
)
def test_forwarded_message_with_an_overlong_header_is_read_in_linear_time(field: bytes) -> None:
    # mail-parser writes nested parts out as text and the stdlib re-folds long fields in
    # quadratic time (minutes for these); such messages are read from the stdlib's tree.
    mail = parse_message(
        b"From: alice@customer.example\r\nSubject: Fwd\r\n"
        b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
        b"Content-Type: text/plain\r\n\r\nSee below.\r\n--m\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"Content-Disposition: attachment; filename=orig.eml\r\n\r\n"
        + field
        + b"\r\n\r\nOriginal words.\r\n--m--\r\n"
    )
    assert mail.text == "See below."
    [forwarded] = mail.attachments
    assert (forwarded.filename, forwarded.content_type) == ("orig.eml", "message/rfc822")
    assert forwarded.data.rstrip().endswith(b"Original words.")
    assert len(forwarded.data) > 50_000


def test_attachment_found_without_mail_parser_keeps_its_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A nested header field over 998 characters keeps mail-parser out: the stdlib's tree is
    # read alone, and the file comes from it.
    data = bytes(range(256)) * 96
    caplog.set_level(logging.INFO, logger="gateway.parsing.mime")
    mail = parse(
        """From: alice@customer.example
Subject: dump
Content-Type: multipart/mixed; boundary="m"
""",
        f"""--m
Content-Type: text/plain

The dump.
--m
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="dump.bin"
Content-Transfer-Encoding: base64
X-Trace: {"x" * 1200}

{base64.encodebytes(data).decode("ascii")}--m--
""".replace("\n", "\r\n"),
    )
    assert "without mail-parser" in caplog.text
    [attachment] = mail.attachments
    assert (attachment.filename, attachment.data) == ("dump.bin", data)
    assert mail.text == "The dump."


def test_forwarded_message_in_base64_comes_out_as_the_message_itself() -> None:
    # RFC 2046 forbids encoding a message/rfc822 part; some clients base64 it anyway.
    inner = b"From: carol@customer.example\r\nSubject: crash\r\n\r\nOriginal words.\r\n"
    mail = parse(
        """From: alice@customer.example
Subject: Fwd: crash
Content-Type: multipart/mixed; boundary="m"
""",
        f"""--m
Content-Type: text/plain

See the forwarded report.
--m
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

{b64(inner)}
--m--
""".replace("\n", "\r\n"),
    )
    [forwarded] = mail.attachments
    assert (forwarded.content_type, forwarded.data) == ("message/rfc822", inner)


# Quote stripping ----------------------------------------------------------------------------


def test_on_date_wrote_quote_is_stripped() -> None:
    text = (
        "Works on Android too.\n\nOn Tue, 24 Nov 2026 at 15:01, Support <support@example.com>"
        " wrote:\n> Please try SDK 5.2.1.\n> Thanks\n"
    )
    assert extract_reply(text) == "Works on Android too."


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        pytest.param(
            "Still broken.\n\nAlice\n\n-----Original Message-----\nFrom: Support\n"
            "Sent: Tuesday\nSubject: RE: crash\n\nPlease try again.\n",
            "Still broken.\n\nAlice",
            id="outlook-original-message",
        ),
        pytest.param(
            "问题已解决，谢谢。\n\n------------------ 原始邮件 ------------------\n"
            "发件人: 支持\n请重试。\n",
            "问题已解决，谢谢。",
            id="chinese-original-mail",
        ),
        pytest.param(
            "还是崩溃。\n\n发件人: Support <support@example.com>\n"
            "发送时间: 2026年11月24日\n主题: 回复: 推流崩溃\n\n请升级 SDK。\n",
            "还是崩溃。",
            id="chinese-sender-header",
        ),
        # Android's mail client wraps the Russian "... wrote:" line.
        pytest.param(
            'Hello\n02.04.2012 14:20 пользователь "bob@example.com" <\n'
            "bob@example.com> написал:\n\n> Hi\n>\n",
            "Hello",
            id="attribution-wrapped-over-two-lines",
        ),
    ],
)
def test_quoted_history_block_is_stripped(text: str, reply: str) -> None:
    assert extract_reply(text) == reply


def test_a_line_starting_with_on_is_not_a_quote() -> None:
    text = "Thanks.\nOn my phone the stream still stutters.\nAlice"
    assert extract_reply(text) == text


def test_reply_text_of_a_parsed_mail_has_no_quoted_history() -> None:
    mail = parse(
        """From: alice@customer.example
Subject: Re: crash
""",
        "Fixed, thanks.\r\n\r\nOn Mon, Support wrote:\r\n> Try 5.2.1\r\n",
    )
    assert mail.reply_text == "Fixed, thanks."
    assert "Try 5.2.1" in mail.text


# Senders ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        '"alice@evil.example" <bob@good.example>',
        "=?utf-8?b?" + b64(b"alice@evil.example") + "?= <bob@good.example>",
        "alice@evil.example <bob@good.example>",
    ],
)
def test_display_name_containing_an_address_is_not_the_sender(field: str) -> None:
    mail = parse(f"From: {field}\nSubject: hi\n")
    assert mail.from_address == "bob@good.example"
    assert mail.from_name == "alice@evil.example"


def test_encoded_word_posing_as_an_address_gives_no_sender() -> None:
    mail = parse("From: =?utf-8?Q?attacker?Q?agent?=@victim.example\nSubject: test\n")
    assert mail.from_address == ""


def test_from_with_several_authors_takes_the_sender_field() -> None:
    mail = parse("""From: Ann <ann@example.com>, Ann <ann@example.net>
Sender: Ann <ann@example.com>
Subject: hi
""")
    assert (mail.from_name, mail.from_address) == ("Ann", "ann@example.com")


def test_missing_from_gives_an_empty_sender_not_an_error() -> None:
    mail = parse("Subject: nobody\n")
    assert (mail.from_address, mail.from_name) == ("", "")
    assert mail.subject == "nobody"


# Identity -----------------------------------------------------------------------------------

CUSTOMER_MAIL = """Message-ID: <abc-1@customer.example>
From: alice@customer.example
Subject: crash
"""


def test_dedupe_key_ignores_header_fields_that_relays_add() -> None:
    relayed = "Received: from mx.example.com by mx2.example.com; Tue, 24 Nov 2026\n"
    first = parse(CUSTOMER_MAIL, "Same words.\r\n")
    again = parse(relayed + CUSTOMER_MAIL, "Same words.\r\n")
    assert first.dedupe_key == again.dedupe_key


def test_dedupe_key_differs_for_different_bodies_under_one_message_id() -> None:
    first = parse(CUSTOMER_MAIL, "First words.\r\n")
    other = parse(CUSTOMER_MAIL, "Other words.\r\n")
    assert first.message_id == other.message_id == "abc-1@customer.example"
    assert first.dedupe_key != other.dedupe_key


def test_message_without_message_id_gets_a_stable_generated_one() -> None:
    raw = message("From: alice@customer.example\nSubject: no id\n")
    first, second = parse_message(raw), parse_message(raw)
    assert first.message_id == second.message_id
    assert first.message_id.endswith("@generated.invalid")


# Machine mail -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\nSubject: Away\n",
        "Precedence: bulk\nSubject: list\n",
        "Subject: Auto reply: Nyaan\n",
        "Subject: [support.example #33575] AutoReply: FYI\n",
        "Return-Path: <>\nSubject: away\n",
    ],
)
def test_automatic_mail_is_marked(headers: str) -> None:
    assert loops.automatic_reason(parse("From: kijitora@example.net\n" + headers))


def test_subject_about_an_automatic_reply_is_not_automatic() -> None:
    mail = parse("From: a@example.net\nSubject: Automatic reply not working\n")
    assert loops.automatic_reason(mail) == ""


def test_carrier_bounce_with_returned_message_is_a_bounce() -> None:
    mail = parse(
        """From: no-reply@carrier.example.jp
Subject: Mail error
Content-Type: multipart/mixed; boundary="x"
""",
        """--x
Content-Type: text/plain

Could not be delivered.
--x
Content-Type: message/rfc822

From: shironeko@example.com
Subject: hi

Nyaan
--x--
""".replace("\n", "\r\n"),
    )
    assert mail.is_bounce


def test_person_forwarding_a_message_is_not_a_bounce() -> None:
    mail = parse(
        """From: alice@customer.example
Subject: Fwd: my mail could not be delivered
Content-Type: multipart/mixed; boundary="x"
""",
        """--x
Content-Type: text/plain

Why did this bounce?
--x
Content-Type: message/rfc822

From: alice@customer.example
Subject: hi

Hello
--x--
""".replace("\n", "\r\n"),
    )
    assert not mail.is_bounce


# Malformed input ----------------------------------------------------------------------------


def test_stray_line_among_header_fields_does_not_end_the_header() -> None:
    raw = (
        b"---- Original email message ----\r\n"
        b"Received: from mail.example.cz\r\n"
        b"by mx.example.cz with ESMTP\r\n"
        b"for helpdesk@example.cz;\r\n"
        b"Subject: Contact from Server\r\n"
        b"From: peter@example.cz\r\n"
        b'Content-Type: text/plain; charset="Windows-1250"\r\n'
        b"\r\n" + "Čtvrtek".encode("cp1250") + b"\r\n"
    )
    mail = parse_message(raw)
    assert mail.subject == "Contact from Server"
    assert mail.from_address == "peter@example.cz"
    assert mail.text == "Čtvrtek"


def test_leading_space_before_the_first_header_is_tolerated() -> None:
    mail = parse_message(b" From: James <james@example.org>\nSubject: plain text\n\nbody\n")
    assert (mail.from_address, mail.subject, mail.text) == (
        "james@example.org",
        "plain text",
        "body",
    )


def test_mbox_from_line_and_bare_lf_line_ends_are_tolerated() -> None:
    raw = (
        b"From alice@customer.example Tue Nov 24 15:01:02 2026\n"
        b"From: alice@customer.example\nSubject: lf only\n\nline one\nline two\n"
    )
    mail = parse_message(raw)
    assert (mail.from_address, mail.subject) == ("alice@customer.example", "lf only")
    assert mail.text == "line one\nline two"


def test_nested_parts_reusing_their_parents_boundary_still_parse() -> None:
    # mail-parser cannot read this structure; the message is still read, attachment and all.
    raw = message(
        """From: Ann <ann@example.org>
Subject: nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="1"
""",
        b"--1\r\nContent-Type: text/plain\r\n\r\nhello, world\r\n"
        b'--1\r\nContent-Type: multipart/mixed; boundary="1"\r\n\r\n'
        b'--1\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
        b'Content-Disposition: attachment; filename="report.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"%PDF-1.4").encode() + b"\r\n--1\r\n",
    )
    mail = parse_message(raw)
    assert (mail.subject, mail.from_address, mail.text) == (
        "nested",
        "ann@example.org",
        "hello, world",
    )
    assert [(a.filename, a.data) for a in mail.attachments] == [("report.pdf", b"%PDF-1.4")]


def test_deeply_nested_multiparts_are_malformed_not_a_crash() -> None:
    raw = b"From: a@example.org\r\nSubject: deep\r\n"
    for depth in range(3000):
        raw += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (depth, depth)
    with pytest.raises(MalformedMessage):
        parse_message(raw + b"Content-Type: text/plain\r\n\r\nhi\r\n")


def test_text_without_header_fields_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        parse_message(b"just some words\r\nand more words\r\n")


@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_the_tree_read_in_slices_is_the_stdlibs_whatever_a_slice_boundary_cuts(
    shift: int,
) -> None:
    # A CRLF, an 8-bit character and a boundary line each straddle a slice boundary.
    head = (
        b"From: a@example.org\r\nSubject: slices\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    filler = b"x" * (FEED_BYTES - len(head) - shift) + "\u00e9\r\n--b".encode()
    body = head + filler + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
    body += b"abc\r\n" * (FEED_BYTES // 5) + b"--b--\r\n"
    ours, stdlib = message_tree(body), email.message_from_bytes(body)
    assert ours.as_bytes() == stdlib.as_bytes()
    assert [part.get_content_type() for part in ours.walk()] == [
        "multipart/mixed",
        "text/plain",
        "application/octet-stream",
    ]
    assert ours.get_payload()[0].get_payload(decode=True).endswith("x\u00e9".encode())


DATA_BYTES = bytes(range(256)) * 3 + b"tail"


@pytest.mark.parametrize(
    "encoded",
    [
        base64.encodebytes(DATA_BYTES).decode(),
        base64.encodebytes(DATA_BYTES).decode().replace("\n", "\r\n"),
        base64.b64encode(DATA_BYTES).decode().rstrip("="),  # padding left off
        base64.b64encode(DATA_BYTES).decode() + "==\r\n",  # too much padding
        "*" + base64.encodebytes(DATA_BYTES).decode().replace("\n", " !\n"),  # stray characters
        base64.encodebytes(DATA_BYTES).decode() + "\u00e9",  # not ASCII
    ],
    ids=["lf", "crlf", "unpadded", "overpadded", "stray", "non-ascii"],
)
def test_broken_base64_still_gives_the_bytes(encoded: str) -> None:
    assert decode_base64_leniently(encoded) == DATA_BYTES


BIG_DATA = bytes(range(256)) * (ELIDED_RUN_BYTES // 256 + 1)
BIG_BASE64 = base64.encodebytes(BIG_DATA)
LONE_CR = BIG_BASE64.index(b"\n", len(BIG_BASE64) // 2) + 10  # in the middle of a line


def big_part(encoded: bytes, content_type: bytes = b"application/octet-stream") -> bytes:
    return (
        b"--b\r\nContent-Type: " + content_type + b"\r\n"
        b'Content-Disposition: attachment; filename="recording.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded
    )


LAYOUTS = {
    # The attachment ends its part: the CRLF before the boundary belongs to the boundary.
    "last in its part": big_part(BIG_BASE64.replace(b"\n", b"\r\n")) + b"--b--\r\n",
    "lf line ends": big_part(BIG_BASE64) + b"--b--\n",
    "lines after it": big_part(BIG_BASE64 + b"\r\nnot base64 at all\r\n") + b"--b--\r\n",
    "blank line inside": big_part(BIG_BASE64 + b"\n" + BIG_BASE64) + b"--b--\r\n",
    "lone cr inside": big_part(BIG_BASE64[:LONE_CR] + b"\r" + BIG_BASE64[LONE_CR:]) + b"--b--\r\n",
    "as text": big_part(BIG_BASE64, b"text/plain") + b"--b--\r\n",
    "with 8-bit text": big_part(b"caf\xe9\r\n" + BIG_BASE64, b"text/plain") + b"--b--\r\n",
    "no closing boundary": big_part(BIG_BASE64),
    "in a forwarded message": (
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b'Subject: inner\r\nContent-Type: multipart/mixed; boundary="c"\r\n\r\n'
        + big_part(BIG_BASE64).replace(b"--b", b"--c")
        + b"--c--\r\n\r\n--b--\r\n"
    ),
    # After the closing boundary: where a nested part that reuses its parent's boundary
    # leaves the attachment that follows it.
    "in the epilogue": b"--b--\r\n\r\n" + big_part(BIG_BASE64) + b"--b--\r\n",
    "in a preamble": (
        b'--b\r\nContent-Type: multipart/mixed; boundary="c"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + BIG_BASE64
        + b"--c\r\nContent-Type: text/plain\r\n\r\nnote\r\n--c--\r\n--b--\r\n"
    ),
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_a_large_base64_run_gives_the_stdlibs_tree_without_its_parser_holding_it(
    layout: str,
) -> None:
    data = (
        b"From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nThe recording.\r\n" + LAYOUTS[layout]
    )
    fed, elided = elide_long_base64_runs(data)
    if layout == "lone cr inside":  # a line end the stdlib reads its own way: left to it
        assert (fed, elided) == (data, {})
    else:
        assert len(fed) < len(data) // 2 and elided  # the run did not reach the parser
    ours, stdlib = message_tree(data), email.message_from_bytes(data)
    assert ours.as_bytes() == stdlib.as_bytes()
    ours_parts, stdlib_parts = list(ours.walk()), list(stdlib.walk())
    assert [p.get_content_type() for p in ours_parts] == [
        p.get_content_type() for p in stdlib_parts
    ]
    for mine, theirs in zip(ours_parts, stdlib_parts, strict=True):
        if not mine.is_multipart():
            assert mine.get_payload() == theirs.get_payload()
    if layout in ("last in its part", "lf line ends", "no closing boundary"):
        assert parse_message(data).attachments[0].data == BIG_DATA


def test_a_message_that_never_names_base64_is_not_searched_for_runs() -> None:
    hex_dump = BIG_DATA.hex().encode()
    lines = b"\r\n".join(hex_dump[i : i + 76] for i in range(0, len(hex_dump), 76))
    data = b"From: a@example.org\r\nSubject: dump\r\n\r\n" + lines + b"\r\n"
    assert list(long_base64_runs(data.replace(b"dump", b"Base64 dump")))
    assert not list(long_base64_runs(data))
    assert elide_long_base64_runs(data) == (data, {})


def test_base64_letters_before_the_header_break_are_never_elided() -> None:
    data = b"Base64" + BIG_BASE64 + b"\r\nbody\r\n"  # no header fields: not a message
    assert elide_long_base64_runs(data) == (data, {})


def long_parameter_field(name: bytes) -> bytes:
    """A parameter field of about 40 KiB: thousands of RFC 2231 continuations."""
    continuations = b"".join(b";\r\n filename*%d=part%d" % (i, i) for i in range(2500))
    return name + b": attachment" + continuations + b"\r\n"


@pytest.mark.parametrize("where", ["top", "first line", "nested part", "upper case"])
def test_a_parameter_field_over_the_limit_is_refused_wherever_it_is(where: str) -> None:
    field = long_parameter_field(
        b"CONTENT-DISPOSITION" if where == "upper case" else b"Content-Disposition"
    )
    top = b"From: a@example.org\r\nSubject: s\r\n"
    part = b"--b\r\nContent-Type: text/plain\r\n"
    body = b"\r\nhello\r\n--b--\r\n"
    data = {
        "top": top + field + b"\r\nhello\r\n",
        "first line": field + top + b"\r\nhello\r\n",
        "nested part": (
            top + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + part + field + body
        ),
        "upper case": top + field + b"\r\nhello\r\n",
    }[where]
    with pytest.raises(
        OverLimit,
        match=r"header field Content-Disposition of \d+ bytes"
        if where != "upper case"
        else r"header field CONTENT-DISPOSITION",
    ):
        check_field_sizes(data)


def test_long_fields_and_short_parameter_fields_pass() -> None:
    subject = b"Subject: " + b"word " * 10_000 + b"\r\n"
    body = b"Content-Type: is only text here\r\n" * 2000
    check_field_sizes(b"From: a@example.org\r\n" + subject + b"\r\n" + body)
    assert len(subject) > MAX_FIELD_BYTES and len(body) > MAX_FIELD_BYTES
