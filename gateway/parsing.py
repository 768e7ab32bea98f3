"""Raw bytes to a typed, frozen `ParsedMail`. Pure: no database, no network.

mail-parser reads the MIME structure, its defects and the attachments; on the few broken
multiparts it cannot read, the stdlib's tree is used alone. Header and body text are decoded
here from the parsed message tree, because mail-parser trusts declared charsets: a GBK
subject labelled GB2312, Big5 in raw 8-bit headers or an undeclared ISO-2022-JP body come
out of it as mojibake. Charsets go through `CHARSET_ALIASES` (the supersets that real
clients actually send) and, failing that, through detection.

Before any of that, the raw bytes are tidied the way lenient readers (mime4j) do: leading
junk and stray non-field lines among the header fields would otherwise end the header early
and leave a message without its From and Subject.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import dataclasses
import email
import email.feedparser
import email.parser
import hashlib
import logging
import mimetypes
import quopri
import re
import secrets
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import mailparser
from charset_normalizer import from_bytes as detect_charset
from email_reply_parser import EmailReplyParser
from flufl.bounce import all_failures
from inscriptis import get_text as html_to_text
from mailparser.exceptions import MailParserRecursionError
from tnefparse import TNEF

from gateway.errors import MalformedMessage
from gateway.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_attachments,
    check_field_sizes,
    check_structure,
)

# mail-parser logs a warning for every part type it does not render; those are not errors.
logging.getLogger("mailparser").setLevel(logging.ERROR)
log = logging.getLogger(__name__)

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
# A header field's name and colon; used with `match`, so it also reads in place at `pos`.
HEADER_LINE = re.compile(rb"[!-9;-~]+:")
MAX_LINE_LENGTH = 998
FEED_BYTES = 64 * 1024
# A run of base64 lines this long (an attachment) is kept out of the stdlib's parser, which
# would read it a line at a time (28% of the parse of a mail with a 24–256 KB attachment)
# and hold it as a list of line strings, four times its size, before joining them.
ELIDED_RUN_BYTES = 16 * 1024
PLACEHOLDER_MARK = "GatewayElidedRun"
# Where such a run may be: found without a repeated group, whose backtracking state would
# itself cost memory in proportion to the run's lines.
BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\r\n]{64,}")
HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
KANA = re.compile(r"[\u3040-\u30ff]")
CJK_TEXT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# Multi-byte charsets whose text a relay can mangle by reading it as Latin-1 (codec names).
CJK_CODECS = frozenset({"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp932", "shift_jis",
                        "euc_jp", "cp949", "euc_kr"})
# `jane@example.com <jane@mail.example>`: one mailbox whose unquoted display name is an address.
LONE_ANGLE_ADDRESS = re.compile(r"([^<>,]*)<([^<>,\s]+)>\s*")
# For reading one mailbox strictly: quoted strings, `name <address>`, a bare address
# (with an old-style trailing comment), and the specials a display name may not hold.
QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
ANGLE_MAILBOX = re.compile(r"\s*([^<>]*?)\s*<([^<>\s]+)>\s*")
ADDRESS_SPECIALS = re.compile(r"[<>@,;:()\[\]\\]")
BARE_ADDRESS = re.compile(r"[^\s<>@,;:()\[\]\\\"]+@[^\s<>@,;:()\[\]\\\"]+")
BARE_MAILBOX = re.compile(r"\s*[^\s<>@,;:()\[\]\\\"]+@[^\s<>@,;:()\[\]\\\"]+\s*(?:\([^()]*\)\s*)?")
# The names mail-parser gives unnamed text and RTF parts: ten random lowercase letters.
INVENTED_NAME = re.compile(r"[a-z]{10}\.(?:txt|rtf)")
# Parts that carry a returned message, as bounces without an RFC 3464 report do.
RETURNED_MESSAGE_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
# The header every notification of ours carries (set by `notifications`): mail that comes
# back with it is our own, and is never answered.
TICKET_HEADER = "X-Support-Ticket"
# Local parts of addresses that send mail nobody wrote and read none.
MACHINE_SENDERS = ("mailer-daemon", "postmaster")
NO_REPLY_SENDERS = ("no-reply", "noreply", "do-not-reply", "donotreply")
# Vacation and auto-responders that set none of the RFC 3834 fields (Apple's, RT's) still
# label their subject; a colon must follow, so "Automatic reply broken" stays a customer's.
AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:\[[^\]]*\]\s*)*(?:auto(?:matic)?[ _-]?(?:reply|response)|autoreply|autoresponse"
    r"|out of (?:the )?office(?: reply)?)\s*:",
    re.IGNORECASE,
)

# Lines that open quoted history in replies from Outlook, Foxmail, QQ, NetEase and others,
# which email_reply_parser (written for "On ... wrote:") does not know.
QUOTE_HEADERS = re.compile(
    r"^\s*(?:"
    # The separator at the top of the gateway's own notifications to engineers.
    r"(?:>\s*)*##-.*-##"
    r"|-{2,}\s*(?:Original Message|Forwarded message|原始邮件|原始郵件|转发的邮件)\s*-{2,}"
    r"|_{10,}"
    r"|(?:From|发件人|寄件者|發件人)\s*[:：].*"
    r"|在.{2,80}(?:写道|寫道)\s*[:：]"
    r"|On .{2,200}wrote:"
    r")\s*$",
    re.IGNORECASE,
)
# "On <date>, <name> wrote:" in the languages clients write it in; phones wrap it over lines
# (Android: `02.04.2012 14:20 пользователь "bob" <` / `bob@example.com> написал:`).
ATTRIBUTION_START = re.compile(
    r"^\s*(?:(?:On|Am|Le|El|Il|Op|Em|W dniu)\s|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b)"
)
ATTRIBUTION_END = re.compile(
    r"(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|napisał|написала?|写道|寫道)"
    r"\s*[:：]\s*$",
    re.IGNORECASE,
)
ATTRIBUTION_LINES = 3


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
    html: str
    attachments: tuple[ParsedAttachment, ...]
    language: str
    automatic: str
    is_bounce: bool
    dedupe_key: str
    # For a delivery status notification: addresses that failed permanently, and the
    # Message-IDs of the returned message it carries (ours, if it bounced one of ours).
    failed_recipients: tuple[str, ...] = ()
    returned_message_ids: tuple[str, ...] = ()
    # Filled on first use: a new ticket keeps the whole text, and most mail opens one.
    _reply_text: list[str] = dataclasses.field(default_factory=list, init=False,
                                               compare=False, repr=False)

    @property
    def reply_text(self) -> str:
        """The new part of a reply: `text` without quoted history and signature."""
        if not self._reply_text:
            self._reply_text.append(extract_reply(self.text))
        return self._reply_text[0]


def parse_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedMail:
    """Parse raw RFC 5322 bytes; raise `MalformedMessage` when there is no message to read,
    `OverLimit` when its structure exceeds `limits`."""
    cleaned = drop_stray_header_lines(strip_leading_junk(raw))
    check_field_sizes(cleaned)  # every part's parameter fields, not just the top header
    message, found_attachments = read_mime(cleaned)
    check_structure(message, limits)
    headers = HeaderView(message)
    if not headers.names:
        raise MalformedMessage("no header fields: this is not an RFC 5322 message")
    plain, html = body_parts(message)
    text = plain if plain.strip() else html_to_text(html) if html.strip() else ""
    from_name, from_address = parse_sender(headers.raw("from"), headers.hint,
                                           headers.raw("sender"))
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    message_id = first_message_id(headers.raw("message-id"))
    subject = " ".join(headers.decoded("subject").split())
    is_bounce = is_delivery_report(headers, message)
    attachments = tuple(unpack_tnef(extract_attachments(found_attachments, headers.hint,
                                                        cleaned)))
    check_attachments([(a.filename, len(a.data)) for a in attachments], limits)
    return without_undecodable(ParsedMail(
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
        html=html,
        attachments=attachments,
        language=detect_language(subject, text, headers.raw("content-language")),
        automatic=automatic_marker(headers, message),
        is_bounce=is_bounce,
        dedupe_key=dedupe_key(message_id, cleaned, raw_sha256),
        failed_recipients=permanent_failures(message) if is_bounce else (),
        returned_message_ids=returned_message_ids(message) if is_bounce else (),
    ))


def without_undecodable(mail: ParsedMail) -> ParsedMail:
    """`mail` with every text fit for any database: bytes that were never decoded (kept as
    lone surrogates) become U+FFFD, and NULs, which PostgreSQL refuses, are dropped."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(mail):
        value = getattr(mail, field.name)
        if isinstance(value, str):
            cleaned: Any = storable(value)
        elif isinstance(value, tuple) and all(isinstance(item, str) for item in value):
            cleaned = tuple(storable(item) for item in value)
        else:
            continue
        if cleaned != value:
            changes[field.name] = cleaned
    return dataclasses.replace(mail, **changes) if changes else mail


def storable(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # Surrogates no decoder escaped: one U+FFFD each.
            return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def read_mime(data: bytes) -> tuple[Message, list[dict[str, Any]]]:
    """The message tree, and its attachments as mail-parser lists them.

    mail-parser gives up on some broken multiparts that the stdlib reads (nested parts that
    reuse their parent's boundary leave it no epilogue to search); the attachments of those
    are collected from the stdlib's tree, so the message still becomes a ticket. So are those
    of a message with an over-long header field below the top: mail-parser writes nested
    parts out as text, and the stdlib re-folds such a field in quadratic time.
    """
    try:
        message = message_tree(data)
    except RecursionError as exc:
        raise MalformedMessage("MIME parts nested too deeply to read") from exc
    slow_part = first_slow_nested_header(message)
    if slow_part:
        log.info("reading the MIME tree without mail-parser: %s", slow_part)
    else:
        try:
            mail = mailparser.MailParser(message)
        except (RecursionError, MailParserRecursionError) as exc:
            raise MalformedMessage("MIME parts nested too deeply to read") from exc
        except Exception as exc:  # mail-parser raises arbitrary errors on hostile MIME.
            log.warning("mail-parser failed (%s: %s); reading the MIME tree without it",
                        type(exc).__name__, exc)
        else:
            # mail-parser lists a forwarded message only when it is marked as an attachment.
            forwarded = [part for part in outermost_messages(mail.message)
                         if content_disposition(part) != "attachment"]
            return mail.message, [*mail.attachments, *map(forwarded_message, forwarded)]
        message = message_tree(data)  # mail-parser may have left it half-read
    return message, [*attachments_in_tree(message),
                     *map(forwarded_message, outermost_messages(message))]


def message_tree(data: bytes) -> Message:
    """What `email.message_from_bytes` makes of `data`, in a third of its memory.

    That function decodes the whole message into one string and reads it through a
    `StringIO`, four bytes a character: 7.7 times the message at its peak. Fed in slices,
    the parser holds little more than the lines of the part it is reading. Decoding ASCII
    with surrogateescape maps each byte alone, so slicing anywhere gives the same tree.

    Runs of base64 lines over `ELIDED_RUN_BYTES` reach the parser as one placeholder line
    each and are put back into their part's payload afterwards, so a 25 MB attachment
    costs its text once rather than five times over.
    """
    fed, elided = elide_long_base64_runs(data)
    parser = email.feedparser.BytesFeedParser()
    for start in range(0, len(fed), FEED_BYTES):
        parser.feed(fed[start:start + FEED_BYTES])
    message = parser.close()
    if elided:
        restore_elided_runs(message, data, elided)
    return message


def elide_long_base64_runs(data: bytes) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """`data` with each long run of base64 lines replaced by a placeholder line, and where
    each run was. A placeholder is made of base64 letters, so the parser reads it as it
    would have read the run: body lines that are neither headers, boundaries nor blank."""
    if len(data) < ELIDED_RUN_BYTES:
        return data, {}
    pieces: list[bytes] = []
    elided: dict[str, tuple[int, int]] = {}
    position = 0
    nonce = secrets.token_hex(8)
    for start, end in long_base64_runs(data):
        placeholder = f"{PLACEHOLDER_MARK}{len(elided)}x{nonce}"
        line_end = b"\r\n" if data.endswith(b"\r\n", start, end) else b"\n"
        pieces += [data[position:start], placeholder.encode("ascii"), line_end]
        elided[placeholder] = (start, end)
        position = end
    if not elided:
        return data, {}
    pieces.append(data[position:])
    return b"".join(pieces), elided


def long_base64_runs(data: bytes) -> Iterator[tuple[int, int]]:
    """Spans of at least `ELIDED_RUN_BYTES` of whole, non-empty lines of base64 letters,
    each line ending in LF or CRLF; none in a message that never names base64.

    The scan costs 3–4 ms for 100 KB of prose, more than the parse it would save: the
    runs worth eliding are attachments under a `Content-Transfer-Encoding` that names it."""
    if b"ase64" not in data and b"ASE64" not in data:
        return
    for text in BASE64_TEXT.finditer(data):
        start, end = text.span()
        if end - start < ELIDED_RUN_BYTES:
            continue
        if start > 0 and data[start - 1] != ord("\n"):  # Begins mid-line: from the next.
            start = data.find(b"\n", start, end) + 1
        end = data.rfind(b"\n", start, end) + 1  # Ends with its last whole line.
        if start == 0 or end == 0:  # No whole line (or the message itself starts here).
            continue
        while start < end:  # A blank line ends a run: it separates headers from a body.
            if data.startswith(b"\n", start) or data.startswith(b"\r\n", start):
                start = data.find(b"\n", start, end) + 1
                continue
            blank = [found for found in (data.find(b"\n\n", start, end),
                                         data.find(b"\n\r\n", start, end)) if found >= 0]
            stop = min(blank) + 1 if blank else end
            # A lone CR ends a line too, and "\r\r" holds a blank one: left to the parser.
            if (stop - start >= ELIDED_RUN_BYTES
                    and data.count(b"\r", start, stop) == data.count(b"\r\n", start, stop)):
                yield start, stop
            start = stop


def restore_elided_runs(message: Message, data: bytes,
                        elided: dict[str, tuple[int, int]]) -> None:
    """Put each run back where its placeholder is: in a part's payload, or in a multipart's
    preamble or epilogue, where the attachments of some malformed messages end up (and
    mail-parser finds them)."""
    for part in message.walk():
        # As parsed: get_payload() would hand back 8-bit bytes already decoded ("replace").
        payload = vars(part).get("_payload")
        if isinstance(payload, str) and PLACEHOLDER_MARK in payload:
            part.set_payload(with_runs(payload, data, elided))
        for outside in ("preamble", "epilogue"):
            text = getattr(part, outside)
            if text and PLACEHOLDER_MARK in text:
                setattr(part, outside, with_runs(text, data, elided))


def with_runs(text: str, data: bytes, elided: dict[str, tuple[int, int]]) -> str:
    """`text` with each placeholder replaced by its run. The line end before a boundary
    belongs to the boundary, so a run that ended its part comes back without its last one."""
    for placeholder, (start, end) in elided.items():
        at = text.find(placeholder)
        if at < 0:
            continue
        after = at + len(placeholder)
        if text.startswith("\r\n", after):
            after += 2
        elif text.startswith("\n", after):
            after += 1
        else:
            end -= 2 if data.endswith(b"\r\n", start, end) else 1
        # Decoded straight from the message's bytes: a 25 MB run is copied once.
        run = str(memoryview(data)[start:end], "ascii")
        text = run if at == 0 and after == len(text) else text[:at] + run + text[after:]
    return text


def first_slow_nested_header(message: Message) -> str:
    """The first header field below the top level whose value is longer than a line may be
    (RFC 5322: 998), named for the log; "" when there is none."""
    for part in message.walk():
        if part is message:
            continue
        for name, value in part.raw_items():
            if len(str(value)) > MAX_LINE_LENGTH:
                return f"{name[:40]} field of {len(str(value))} characters in a nested part"
    return ""


def attachments_in_tree(message: Message) -> list[dict[str, Any]]:
    """Attachment records in mail-parser's shape, read from the stdlib's tree."""
    found: list[dict[str, Any]] = []
    for part in message.walk():
        named_or_linked = is_attachment_part(part) or (
            part.get("content-id") is not None and part.get_content_maintype() != "text"
        )
        if part.is_multipart() or not named_or_linked:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        found.append({
            "filename": filename_of(part) or "",
            "payload": base64.b64encode(data).decode("ascii"),
            "binary": True,
            "mail_content_type": part.get_content_type(),
            "content-id": str(part.get("content-id") or ""),
            "content-disposition": str(part.get("content-disposition") or ""),
        })
    return found


def outermost_messages(part: Message) -> Iterator[Message]:
    """`message/rfc822` parts, not counting messages forwarded inside them."""
    if part.get_content_type() == "message/rfc822":
        yield part
    elif part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from outermost_messages(child)


def forwarded_message(part: Message) -> dict[str, Any]:
    """A forwarded message as one attachment record, as the stdlib writes the message out."""
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        data = message_bytes(inner[0])
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    # RFC 2046 forbids encoding a message/rfc822 part; some clients base64 it anyway, and the
    # stdlib then reads the encoded text as the message.
    encoding = str(part.get("content-transfer-encoding") or "").strip().lower()
    if encoding == "base64":
        data = decode_base64_leniently(data.decode("ascii", "ignore"))
    elif encoding == "quoted-printable":
        data = quopri.decodestring(data)
    return {
        "filename": filename_of(part) or "",
        "payload": base64.b64encode(data).decode("ascii"),
        "binary": True,
        "mail_content_type": "message/rfc822",
        "content-id": "",
        "content-disposition": str(part.get("content-disposition") or ""),
    }


class KeepUndecodedHeaders(Compat32):
    """compat32, except that a header value holding bytes that were never decoded is
    written as it came, as compat32's own binary output does: its text output folds such a
    value through `email.header` in quadratic time (22 KB of headers took 35 s)."""

    def fold(self, name: str, value: Any) -> str:
        if isinstance(value, str) and UNDECODED_BYTE.search(value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)


UNDECODED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape made of a byte
KEEP_UNDECODED_HEADERS = KeepUndecodedHeaders()


def message_bytes(message: Message) -> bytes:
    """A message written out by the stdlib; raw 8-bit header bytes it cannot re-encode are
    kept as they came."""
    try:
        return message.as_bytes()
    except (UnicodeError, LookupError, ValueError):
        return message.as_string(policy=KEEP_UNDECODED_HEADERS).encode("utf-8",
                                                                      "surrogateescape")


def content_disposition(part: Message) -> str:
    return str(part.get("content-disposition") or "").split(";", 1)[0].strip().lower()


def strip_leading_junk(raw: bytes) -> bytes:
    """Drop leading blank space, an mbox `From ` line and stray lines before the headers."""
    data = raw.lstrip()
    for _ in range(3):
        line_end = data.find(b"\n")
        if line_end < 0 or HEADER_LINE.match(data, 0, line_end):
            break
        following = line_end + 1
        while data[following:following + 1] in (b"\r", b"\n"):
            following += 1
        # Matched in place: `data` may be a large message, and slicing it copies.
        if data.startswith(b"From ") or HEADER_LINE.match(data, following):
            data = data[following:]
        else:
            break
    return data


def drop_stray_header_lines(data: bytes) -> bytes:
    """Drop lines among the header fields that are neither fields nor folded continuations.

    The stdlib ends the header at the first such line, so everything after it (From and
    Subject too, in a message whose relay unfolded a Received field) would become body text.
    mime4j skips them the same way. Lines after the last field are left to be the body.
    """
    end = re.search(rb"\r?\n\r?\n", data)
    head = data[: end.start()] if end else data
    lines = head.splitlines(keepends=True)
    if not lines or not HEADER_LINE.match(lines[0]):
        return data
    fields = [index for index, line in enumerate(lines) if HEADER_LINE.match(line)]
    kept = [
        line for index, line in enumerate(lines)
        if index > fields[-1] or line[:1] in (b" ", b"\t") or HEADER_LINE.match(line)
    ]
    if len(kept) == len(lines):
        return data
    return b"".join(kept) + data[len(head):]


def dedupe_key(message_id: str, raw: bytes, raw_sha256: str) -> str:
    """Same Message-ID and same body: the same message, however many relays stamped it.

    The body counts too because distinct messages do share Message-IDs (clients that
    reuse them, test fixtures, variants of one template); relays only add header fields.
    """
    if not message_id:
        return raw_sha256
    separator = re.search(rb"\r?\n\r?\n", raw)
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass") + b"\0")
    if separator:
        digest.update(memoryview(raw)[separator.end():])  # Not a copy of a large body.
    return digest.hexdigest()


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
    """Header text outside encoded-words; 8-bit bytes arrive surrogate-escaped.

    Raw 8-bit fields are UTF-8 (RFC 6532); older clients write the body's charset instead.
    A single-byte charset reads any bytes, so valid UTF-8 goes first; a CJK one goes first
    because one or two CJK characters are often valid UTF-8 by accident.
    """
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    data = text.encode("ascii", "surrogateescape")
    if codec_name(hint) not in CJK_CODECS:
        try:
            return data.decode("utf-8")
        except UnicodeError:
            pass
    return decode_text(data, hint)


def codec_name(label: str | None) -> str | None:
    """Python's name for the codec a charset label (through its alias) stands for."""
    if not label:
        return None
    label = label.strip().strip('"').lower()
    try:
        return codecs.lookup(CHARSET_ALIASES.get(label, label)).name
    except (LookupError, ValueError, UnicodeError):  # NULs and 8-bit bytes in a label
        return None


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes to text: the declared charset (through its alias), UTF-8, detection, Latin-1."""
    candidates = []
    if declared:
        label = declared.strip().strip('"').lower()
        candidates.append(CHARSET_ALIASES.get(label, label))
        repaired = undo_latin1_detour(data, declared)
        if repaired is not None:
            return repaired
    if any(escape in data for escape in ISO_2022_JP_ESCAPES):
        candidates.insert(0, "iso2022_jp_ext")
    candidates.append("utf-8")
    for charset in candidates:
        try:
            text = data.decode(charset)
        except (LookupError, UnicodeError, ValueError):  # ValueError: a NUL in the label
            if charset == "iso2022_jp_ext":
                converted = iso2022jp_to_cp932(data)
                if converted is not None:
                    return converted
            continue
        return text
    best = detect_charset(data).best()
    if best is not None:
        return str(best)
    return data.decode("cp1252", errors="replace")


def undo_latin1_detour(data: bytes, declared: str) -> str | None:
    """CJK text that a relay read as Latin-1 and wrote out as UTF-8, read back; else None.

    Its bytes are UTF-8 for Latin-1 letters only (`¤j¸É` for 大補), and those letters'
    Latin-1 bytes are valid text in the declared CJK charset. Real CJK text almost never
    has that shape, but the declared charset may still "decode" it, into other characters.
    """
    codec = codec_name(declared)
    if codec not in CJK_CODECS or data.isascii():
        return None
    try:
        repaired = data.decode("utf-8").encode("latin-1").decode(codec)
    except UnicodeError:
        return None
    return repaired if CJK_TEXT.search(repaired) else None


def iso2022jp_to_cp932(data: bytes) -> str | None:
    """ISO-2022-JP with Microsoft's extensions (NEC row 13: ①, №, ㈱), as Outlook writes it.

    Python's iso2022 codecs refuse those characters; re-encoding the JIS X 0208 runs as
    Shift_JIS and decoding with cp932 (Windows' superset) reads them. ISO-2022-JP is 7-bit:
    8-bit bytes mean the text is in some other charset, so this gives up on them.
    """
    if not data.isascii():
        return None
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
    except UnicodeError:
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
    return content_disposition(part) == "attachment" or (
        not part.is_multipart() and filename_of(part) is not None
    )


def filename_of(part: Message) -> str | None:
    """The part's file name, None without one; '' when its RFC 2231 charset cannot decode
    it (`filename*=idna''...` makes the stdlib raise, and a NUL in the charset's name
    makes it raise ValueError), so it gets a made-up safe name."""
    try:
        return part.get_filename()
    except (UnicodeError, LookupError, ValueError):
        return ""


def parse_sender(value: str, hint: str | None, sender_field: str = "") -> tuple[str, str]:
    """(display name, address) of a From field; empty address when there is not exactly one.

    The field is split into addresses before any encoded-word is decoded, so an address
    hidden in a display name is never taken for the sender. When From names several
    authors, the Sender field says which of them sent the message (RFC 5322 3.6.2).
    """
    pairs, field = read_mailboxes(value), value
    if len(pairs) > 1 and sender_field:
        sender = read_mailboxes(sender_field)
        authors = {address.lower() for _name, address in pairs}
        if len(sender) == 1 and sender[0][1].lower() in authors:
            pairs, field = sender, sender_field
    if len(pairs) != 1 or not is_plain_address(pairs[0][1]):
        name = pairs[0][0] if len(pairs) == 1 else value
        return one_line(decode_header_value(name, hint))[:200], ""
    if not is_unambiguous_mailbox(field):
        return one_line(decode_header_value(value, hint))[:200], ""
    name, address = pairs[0]
    return one_line(decode_header_value(name, hint))[:200], address.lower()


def one_line(text: str) -> str:
    """A display name as one line: an encoded CR or LF in it becomes a space."""
    return " ".join(text.split())


def is_unambiguous_mailbox(value: str) -> bool:
    """Whether a one-mailbox field reads the same to every parser (CVE-2023-27043).

    Python's own parser has changed its answer for `alice@example.org)<bob@example.org>`
    between patch releases, and mail clients disagree too; so, whatever `getaddresses`
    said, a display name with unquoted specials (other than one bare address, which
    Outlook writes) or an address with trailing junk makes the sender unknown.
    """
    text = QUOTED_STRING.sub('""', " ".join(value.split()))
    angle = ANGLE_MAILBOX.fullmatch(text)
    if angle is not None:
        name = angle.group(1).strip()
        return not ADDRESS_SPECIALS.search(name) or BARE_ADDRESS.fullmatch(name) is not None
    return BARE_MAILBOX.fullmatch(text) is not None


def read_mailboxes(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs of an address field, reading `a@b <c@d>` as the mailbox c@d."""
    pairs = [(name, addr) for name, addr in split_addresses(value) if addr]
    if len(pairs) > 1:
        lone = LONE_ANGLE_ADDRESS.fullmatch(re.sub(r"\r?\n[ \t]", " ", value).strip())
        if lone:
            return [(lone.group(1).strip().strip('"').strip(), lone.group(2))]
    return pairs


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
        # An encoded-word is never part of an address (RFC 2047 5); clients that decode one
        # there would show a different sender.
        and "=?" not in address
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
    except (TypeError, ValueError, IndexError, OverflowError):  # 2147483648 is no year.
        return None


def extract_reply(text: str) -> str:
    """The new part of a reply: quoted history and signature removed."""
    lines = text.splitlines()
    start = quoted_history_start(lines)
    if start is not None:
        lines = lines[:start]
    visible = EmailReplyParser.parse_reply("\n".join(lines))
    return str(visible).strip()


def quoted_history_start(lines: list[str]) -> int | None:
    """The index of the line that introduces quoted history, if one does."""
    for index, line in enumerate(lines):
        if index == 0:
            continue
        if QUOTE_HEADERS.match(line):
            return index
        if ATTRIBUTION_START.match(line):
            attribution = lines[index:index + ATTRIBUTION_LINES]
            for end, following in enumerate(attribution):
                if not following.strip():
                    break
                if ATTRIBUTION_END.search(following):
                    if len(" ".join(attribution[:end + 1])) <= 300:
                        return index
                    break
    return None


def extract_attachments(
    found: list[dict[str, Any]], hint: str | None, raw: bytes
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
        filename = str(item.get("filename") or "")
        if is_invented_name(filename, content_id, raw):
            filename = ""
        yield ParsedAttachment(
            filename=safe_display_name(filename, content_type, index, hint),
            content_type=content_type[:255],
            data=data,
            content_id=content_id,
            inline=bool(content_id) and not disposition.startswith("attachment"),
        )


def unpack_tnef(attachments: Iterator[ParsedAttachment]) -> Iterator[ParsedAttachment]:
    """Outlook's `winmail.dat` (TNEF) replaced by the files it carries; kept as it is when
    it carries none or cannot be read, so nothing the customer sent goes missing."""
    for attachment in attachments:
        if not is_tnef(attachment):
            yield attachment
            continue
        try:
            carried = TNEF(attachment.data, do_checksum=False).attachments
            files = [(str(item.long_filename() or ""), bytes(item.data)) for item in carried]
        except Exception as exc:  # tnefparse raises bare errors on damaged containers.
            log.info("winmail.dat kept as it is: %s: %s", type(exc).__name__, exc)
            yield attachment
            continue
        if not files:
            yield attachment
        for index, (name, data) in enumerate(files, start=1):
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            yield ParsedAttachment(safe_display_name(name, content_type, index, None),
                                   content_type, data, None, False)


def is_tnef(attachment: ParsedAttachment) -> bool:
    return (attachment.content_type in ("application/ms-tnef", "application/vnd.ms-tnef")
            or attachment.filename.lower() == "winmail.dat")


def is_invented_name(filename: str, content_id: str | None, raw: bytes) -> bool:
    """Whether mail-parser made `filename` up for an unnamed part.

    It names such parts after their Content-ID, or `<ten random letters>.txt` / `.rtf`, which
    would make the same message parse differently each time; a real name is in the message.
    """
    if content_id and normalize_message_id(filename) == content_id:
        return True
    return bool(INVENTED_NAME.fullmatch(filename)) and filename.encode() not in raw


def decode_base64_leniently(text: str) -> bytes:
    """Base64 as broken clients write it: stray characters, missing or extra padding."""
    first_pad = text.find("=")
    if text.isascii() and (first_pad < 0 or not text[first_pad:].strip("=\r\n\t ")):
        # The common case without copies of the text: binascii skips line breaks and
        # stray characters as the slow path below does.
        with contextlib.suppress(binascii.Error):
            return binascii.a2b_base64(text)
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
    if TICKET_HEADER.lower() in headers.names:
        return "our own notification came back"
    auto_submitted = " ".join(headers.decoded("auto-submitted").split()).lower()[:200]
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
    if sender.split("@")[0] in MACHINE_SENDERS:
        return f"sent by {sender}"
    # A null reverse-path, as the final MTA recorded it (RFC 3834 2: never answer those).
    if any(path.strip() == "<>" for path in headers.all("return-path")):
        return "Return-Path: <>"
    if AUTO_REPLY_SUBJECT.match(headers.decoded("subject")):
        return "auto-reply subject"
    return ""


def permanent_failures(message: Message) -> tuple[str, ...]:
    """Addresses a bounce reports as failing for good, by flufl.bounce's detectors (RFC 3464
    and the formats of two decades of MTAs)."""
    try:
        _temporary, permanent = all_failures(message)
    except Exception as exc:  # The detectors trip over some broken reports; not fatal.
        log.info("bounce not understood: %s: %s", type(exc).__name__, exc)
        return ()
    found = {address.decode("utf-8", "replace").strip().strip("<>").lower()
             for address in permanent}
    return tuple(sorted(address for address in found if is_plain_address(address)))[:20]


def returned_message_ids(message: Message) -> tuple[str, ...]:
    """The Message-IDs of the message a bounce returns (whole, or its headers only)."""
    found: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found += message_ids(str(inner[0].get("message-id") or ""))
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            returned = email.parser.HeaderParser().parsestr(text)
            found += message_ids(str(returned.get("message-id") or ""))
    return tuple(dict.fromkeys(found))[:10]


def is_delivery_report(headers: HeaderView, message: Message) -> bool:
    """A delivery status notification (RFC 3464) or a classic MAILER-DAEMON bounce."""
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type") or "").lower()
        return report_type != "disposition-notification"
    local_part = parse_sender(headers.raw("from"), None)[1].split("@")[0]
    if local_part in MACHINE_SENDERS:
        return True
    types = {part.get_content_type() for part in message.walk()}
    if "message/delivery-status" in types:
        return True
    # Carriers (KDDI, DoCoMo) bounce with plain text and the returned message attached.
    return local_part in NO_REPLY_SENDERS and bool(types.intersection(RETURNED_MESSAGE_TYPES))
