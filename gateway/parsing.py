"""Raw bytes to a typed, frozen `ParsedMail`. Pure: no database, no network.

mail-parser reads the MIME structure, its defects and the attachments. Header and body text
are decoded here from the parsed message tree, because mail-parser trusts declared charsets:
a GBK subject labelled GB2312, Big5 in raw 8-bit headers or an undeclared ISO-2022-JP body
come out of it as mojibake. Charsets go through `CHARSET_ALIASES` (the supersets that real
clients actually send) and, failing that, through detection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import mimetypes
import quopri
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import mailparser
from charset_normalizer import from_bytes as detect_charset
from email_reply_parser import EmailReplyParser
from inscriptis import get_text as html_to_text

from gateway.errors import MalformedMessage

# mail-parser logs a warning for every part type it does not render; those are not errors.
logging.getLogger("mailparser").setLevel(logging.ERROR)

# Labels clients use for charsets whose real content is a superset.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
}

ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
ISO_2022_JP_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J")
HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
KANA = re.compile(r"[\u3040-\u30ff]")

# Lines that open quoted history in replies from Outlook, Foxmail, QQ, NetEase and others,
# which email_reply_parser (written for "On ... wrote:") does not know.
QUOTE_HEADERS = re.compile(
    r"^\s*(?:"
    r"-{2,}\s*(?:Original Message|Forwarded message|原始邮件|原始郵件|转发的邮件)\s*-{2,}"
    r"|_{10,}"
    r"|(?:From|发件人|寄件者|發件人)\s*[:：].*"
    r"|在.{2,80}(?:写道|寫道)\s*[:：]"
    r"|On .{2,200}wrote:"
    r")\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """One attached (or inline `cid:`) file, with a display name safe to show."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None
    inline: bool


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """Everything later stages need from one message, decoded to Unicode."""

    message_id: str
    has_message_id: bool
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_address: str
    from_name: str
    to_addresses: tuple[str, ...]
    cc_addresses: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    reply_text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    language: str
    automatic: str
    is_bounce: bool
    dedupe_key: str


def parse_message(raw: bytes) -> ParsedMail:
    """Parse raw RFC 5322 bytes; raise `MalformedMessage` when there is no message to read."""
    cleaned = strip_leading_junk(raw)
    try:
        mail = mailparser.parse_from_bytes(cleaned)
    except Exception as exc:  # mail-parser raises arbitrary errors on hostile MIME.
        raise MalformedMessage(f"unreadable MIME structure ({type(exc).__name__}: {exc})") from exc
    message: Message = mail.message
    headers = HeaderView(message)
    if not headers.names:
        raise MalformedMessage("no header fields: this is not an RFC 5322 message")
    plain, html = body_parts(message)
    text = plain if plain.strip() else html_to_text(html) if html.strip() else ""
    from_name, from_address = parse_sender(headers.raw("from"), headers.hint)
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    message_id = first_message_id(headers.raw("message-id"))
    subject = " ".join(headers.decoded("subject").split())
    return ParsedMail(
        message_id=message_id or f"{raw_sha256[:40]}@generated.invalid",
        has_message_id=bool(message_id),
        in_reply_to=tuple(message_ids(headers.raw("in-reply-to"))),
        references=tuple(message_ids(headers.raw("references"))),
        from_address=from_address,
        from_name=from_name,
        to_addresses=tuple(parse_recipients(headers.raw("to"))),
        cc_addresses=tuple(parse_recipients(headers.raw("cc"))),
        subject=subject,
        date=parse_date(headers.raw("date")),
        text=text.strip(),
        reply_text=extract_reply(text),
        html=html,
        attachments=tuple(extract_attachments(mail.attachments, headers.hint)),
        language=detect_language(subject, text, headers.raw("content-language")),
        automatic=automatic_marker(headers, message),
        is_bounce=is_delivery_report(headers, message),
        dedupe_key=dedupe_key(message_id, cleaned, raw_sha256),
    )


def strip_leading_junk(raw: bytes) -> bytes:
    """Drop an mbox `From ` line and stray lines before the first header field."""
    data = raw.lstrip(b"\r\n")
    for _ in range(3):
        first, sep, rest = data.partition(b"\n")
        if not sep or HEADER_LINE.match(first):
            break
        if first.startswith(b"From ") or HEADER_LINE.match(rest.lstrip(b"\r\n")):
            data = rest.lstrip(b"\r\n")
        else:
            break
    return data


def dedupe_key(message_id: str, raw: bytes, raw_sha256: str) -> str:
    """Same Message-ID and same body: the same message, however many relays stamped it.

    The body counts too because distinct messages do share Message-IDs (clients that
    reuse them, test fixtures, variants of one template); relays only add header fields.
    """
    if not message_id:
        return raw_sha256
    separator = re.search(rb"\r?\n\r?\n", raw)
    body = raw[separator.end():] if separator else b""
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass") + b"\0" + body).hexdigest()


class HeaderView:
    """Header fields as they arrived (8-bit bytes kept), decoded on request."""

    def __init__(self, message: Message) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self.values.setdefault(name.lower(), []).append(str(value))
        self.names = set(self.values)
        self.hint = first_body_charset(message)

    def raw(self, name: str) -> str:
        found = self.values.get(name)
        return found[0] if found else ""

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def decoded(self, name: str) -> str:
        return decode_header_value(self.raw(name), self.hint)


def first_body_charset(message: Message) -> str | None:
    """The charset of the first text part: the best guess for raw 8-bit header bytes."""
    for part in message.walk():
        charset = part.get_content_charset()
        if charset and part.get_content_maintype() == "text":
            return charset
    return None


def decode_header_value(value: str, hint: str | None = None) -> str:
    """RFC 2047 encoded-words and raw 8-bit bytes to Unicode, tolerant of broken encodings."""
    value = re.sub(r"\r?\n[ \t]", " ", value)
    # Whitespace between two adjacent encoded-words is not part of the text (RFC 2047 6.2).
    value = re.sub(r"(\?=)\s+(?==\?)", r"\1", value)
    pieces: list[str] = []
    position = 0
    for match in ENCODED_WORD.finditer(value):
        pieces.append(decode_raw_header_text(value[position:match.start()], hint))
        pieces.append(decode_encoded_word(*match.groups()) or match.group(0))
        position = match.end()
    pieces.append(decode_raw_header_text(value[position:], hint))
    return strip_controls("".join(pieces))


def decode_encoded_word(charset: str, encoding: str, text: str) -> str | None:
    charset = charset.split("*", 1)[0]
    try:
        if encoding.lower() == "b":
            stripped = text.rstrip("=")
            data = base64.b64decode(stripped + "=" * (-len(stripped) % 4))
        else:
            # Raw 8-bit bytes inside an encoded-word are a common client bug: keep them as bytes.
            raw = text.replace("_", " ").encode("ascii", "surrogateescape")
            data = quopri.decodestring(raw, header=True)
    except (binascii.Error, ValueError):
        return None
    return decode_text(data, charset)


def decode_raw_header_text(text: str, hint: str | None) -> str:
    """Header text outside encoded-words; 8-bit bytes arrive surrogate-escaped."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_text(text.encode("ascii", "surrogateescape"), hint)


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes to text: the declared charset (through its alias), UTF-8, detection, Latin-1."""
    candidates = []
    if declared:
        label = declared.strip().strip('"').lower()
        candidates.append(CHARSET_ALIASES.get(label, label))
    if any(escape in data for escape in ISO_2022_JP_ESCAPES):
        candidates.insert(0, "iso2022_jp_ext")
    candidates.append("utf-8")
    for charset in candidates:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            if charset == "iso2022_jp_ext":
                converted = iso2022jp_to_cp932(data)
                if converted is not None:
                    return converted
    best = detect_charset(data).best()
    if best is not None:
        return str(best)
    return data.decode("cp1252", errors="replace")


def iso2022jp_to_cp932(data: bytes) -> str | None:
    """ISO-2022-JP with Microsoft's extensions (NEC row 13: ①, №, ㈱), as Outlook writes it.

    Python's iso2022 codecs refuse those characters; re-encoding the JIS X 0208 runs as
    Shift_JIS and decoding with cp932 (Windows' superset) reads them.
    """
    out = bytearray()
    double_byte = False
    index = 0
    while index < len(data):
        if data[index] == 0x1B:
            escape = data[index:index + 3]
            double_byte = escape in (b"\x1b$B", b"\x1b$@")
            index += 3
            continue
        if double_byte and index + 1 < len(data):
            out += jis_to_sjis(data[index], data[index + 1])
            index += 2
        else:
            out.append(data[index])
            index += 1
    try:
        return out.decode("cp932")
    except UnicodeDecodeError:
        return None


def jis_to_sjis(first: int, second: int) -> bytes:
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    trail = second + (0x1F if first % 2 else 0x7D)
    if first % 2 and trail >= 0x7F:
        trail += 1
    return bytes((lead & 0xFF, trail & 0xFF))


def strip_controls(text: str) -> str:
    return "".join(ch if ch in "\t\n" or unicodedata.category(ch)[0] != "C" else " " for ch in text)


def body_parts(message: Message) -> tuple[str, str]:
    """The message's own text and HTML, leaving out attachments and forwarded messages."""
    plain: list[str] = []
    html: list[str] = []
    for part in body_leaves(message):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = decode_text(payload, part.get_content_charset())
        (html if part.get_content_subtype() == "html" else plain).append(text)
    return "\n".join(plain), "\n".join(html)


def body_leaves(part: Message) -> Iterator[Message]:
    if part.get_content_type() == "message/rfc822" or is_attachment_part(part):
        return
    if part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if part.get_content_subtype() == "alternative":
            # Of alternatives, the last text/plain and the last text/html are the best ones.
            children = pick_alternatives(children)
        for child in children:
            yield from body_leaves(child)
    elif part.get_content_type() in ("text/plain", "text/html"):
        yield part


def pick_alternatives(children: list[Message]) -> list[Message]:
    chosen: dict[str, Message] = {}
    for child in children:
        kind = child.get_content_type()
        if child.is_multipart():
            kind = "multipart"
        chosen[kind] = child
    return list(chosen.values())


def is_attachment_part(part: Message) -> bool:
    disposition = str(part.get("content-disposition") or "").split(";", 1)[0].strip().lower()
    return disposition == "attachment" or (
        not part.is_multipart() and part.get_filename() is not None
    )


def parse_sender(value: str, hint: str | None) -> tuple[str, str]:
    """(display name, address) of a From field; empty address when there is not exactly one.

    The field is split into addresses before any encoded-word is decoded, so an address
    hidden in a display name is never taken for the sender.
    """
    pairs = [(name, addr) for name, addr in split_addresses(value) if addr]
    if len(pairs) != 1 or not is_plain_address(pairs[0][1]):
        return decode_header_value(value, hint)[:200], ""
    name, address = pairs[0]
    return decode_header_value(name, hint).strip()[:200], address.lower()


def parse_recipients(value: str) -> list[str]:
    return [addr.lower() for _name, addr in split_addresses(value) if is_plain_address(addr)]


def split_addresses(value: str) -> list[tuple[str, str]]:
    """The stdlib's address-list parser, bounded: it recurses on nested hostile comments."""
    try:
        return getaddresses([value[:8000]])
    except RecursionError:
        return []


def is_plain_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return (
        bool(at and local and domain)
        and "@" not in local.strip('"')
        and all(33 <= ord(ch) < 127 for ch in address)
        and len(address) <= 320
    )


def message_ids(value: str) -> list[str]:
    """Message-IDs in an In-Reply-To or References field, without angle brackets."""
    found = re.findall(r"<([^<>\s]+)>", value)
    if not found and value.strip():
        found = [token for token in value.split() if "@" in token]
    return [normalize_message_id(token) for token in found][:100]


def first_message_id(value: str) -> str:
    ids = message_ids(value) or [value.strip()]
    return ids[0][:900]


def normalize_message_id(token: str) -> str:
    return token.strip().strip("<>").strip()[:900]


def parse_date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def extract_reply(text: str) -> str:
    """The new part of a reply: quoted history and signature removed."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if index > 0 and QUOTE_HEADERS.match(line):
            lines = lines[:index]
            break
    visible = EmailReplyParser.parse_reply("\n".join(lines))
    return str(visible).strip()


def extract_attachments(
    found: list[dict[str, Any]], hint: str | None
) -> Iterator[ParsedAttachment]:
    for index, item in enumerate(found, start=1):
        content_type = str(item.get("mail_content_type") or "application/octet-stream").lower()
        payload = item.get("payload") or ""
        if item.get("binary"):
            data = decode_base64_leniently(str(payload))
        else:
            data = str(payload).encode("utf-8", "surrogateescape")
        content_id = normalize_message_id(str(item.get("content-id") or "")) or None
        disposition = str(item.get("content-disposition") or "").lower()
        yield ParsedAttachment(
            filename=safe_display_name(str(item.get("filename") or ""), content_type, index, hint),
            content_type=content_type[:255],
            data=data,
            content_id=content_id,
            inline=bool(content_id) and not disposition.startswith("attachment"),
        )


def decode_base64_leniently(text: str) -> bytes:
    """Base64 as broken clients write it: stray characters, missing or extra padding."""
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def safe_display_name(name: str, content_type: str, index: int, hint: str | None) -> str:
    """A name fit to show: decoded, no path, no control characters, at most 120 characters."""
    name = decode_header_value(name, hint)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if "@" in name and name.count(".") >= 1 and " " not in name and "." not in name[-6:]:
        name = ""  # a bare content-id is not a file name
    if not name:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{extension}"
    if len(name) > 120:
        stem, dot, extension = name.rpartition(".")
        keep = extension if dot and len(extension) <= 10 else ""
        name = name[: 120 - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name


def detect_language(subject: str, text: str, content_language: str) -> str:
    """`zh` for Chinese writers (by declared language or by Han script without kana)."""
    if content_language.strip().lower().startswith("zh"):
        return "zh"
    sample = subject + "\n" + text[:2000]
    if HAN.search(sample) and not KANA.search(sample):
        return "zh"
    return "en"


def automatic_marker(headers: HeaderView, message: Message) -> str:
    """Why this message was written by a machine (RFC 3834 and common practice), or ''."""
    auto_submitted = headers.raw("auto-submitted").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    precedence = headers.raw("precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in ("x-auto-response-suppress", "list-id", "list-unsubscribe", "x-autoreply",
                 "x-autorespond", "x-loop"):
        if name in headers.names:
            return f"{name} present"
    if message.get_content_type() == "multipart/report":
        return "multipart/report"
    sender = parse_sender(headers.raw("from"), None)[1]
    if sender.split("@")[0] in ("mailer-daemon", "postmaster"):
        return f"sent by {sender}"
    return ""


def is_delivery_report(headers: HeaderView, message: Message) -> bool:
    """A delivery status notification (RFC 3464) or a classic MAILER-DAEMON bounce."""
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type") or "").lower()
        return report_type != "disposition-notification"
    sender = parse_sender(headers.raw("from"), None)[1]
    if sender.split("@")[0] in ("mailer-daemon", "postmaster"):
        return True
    return any(part.get_content_type() == "message/delivery-status" for part in message.walk())
