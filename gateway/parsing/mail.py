"""The parsed message: `ParsedMail`, and `parse_message`, which reads one from raw bytes.

Pure: no database, no network. Each concern lives in its own module of this package
(`mime`, `charsets`, `addresses`, `quoting`, `attachments`, `markers`, `reports`,
`salvage`); this one puts their answers together, with the two facts that need the whole
message: the key that tells one message from another, and the language it is written in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from gateway.errors import MalformedMessage
from gateway.intake import Fact, File, MailText
from gateway.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_attachments,
    check_field_sizes,
    check_structure,
)
from gateway.parsing.addresses import (
    first_message_id,
    message_ids,
    named_recipients,
    one_line,
    parse_recipients,
    parse_sender,
)
from gateway.parsing.attachments import (
    AttachedPart,
    ParsedAttachment,
    found_parts,
    read_attachments,
)
from gateway.parsing.charsets import decode_header_value
from gateway.parsing.markers import Markers, read_markers
from gateway.parsing.mime import (
    HeaderView,
    body_text,
    drop_stray_header_lines,
    read_mime,
    strip_leading_junk,
)
from gateway.parsing.quoting import extract_reply
from gateway.parsing.reports import DeliveryReport, read_report
from gateway.parsing.salvage import salvage
from gateway.parsing.signature import signed_name
from storage.text import storable

HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
KANA = re.compile(r"[\u3040-\u30ff]")
# The values whose texts are made storable, field by field.
Record = TypeVar("Record", "ParsedMail", Markers, DeliveryReport)


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """Everything later stages need from one message, decoded to Unicode."""

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_address: str
    from_name: str
    to_addresses: tuple[str, ...]
    cc_addresses: tuple[str, ...]
    subject: str
    text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    language: str
    # The header facts by which `gateway.loops` knows automatic mail.
    markers: Markers
    dedupe_key: str
    # None unless the message is a delivery status notification.
    report: DeliveryReport | None = None
    # Who else the header names as the sender, for mail without a usable From.
    sender_address: str = ""
    reply_to_address: str = ""
    # What was broken in the MIME structure of a message whose tree held no text, so that
    # `text` was read from the raw body (parsing/salvage.py); "" for sound messages.
    structure_broken: str = ""
    # (address, display name) of the people in To and Cc who are given a name there.
    recipient_names: tuple[tuple[str, str], ...] = ()
    # The `Date:` field, with the sender's offset; None when missing or unreadable.
    sent_at: datetime | None = None

    @property
    def signed_name(self) -> str:
        """The name the sender signs this message with ('' when they sign none)."""
        return signed_name(self.text, self.from_name)

    @property
    def reply_text(self) -> str:
        """The new part of a reply: `text` without quoted history and signature. Worked
        out when asked, once a message: a new ticket keeps the whole text, and most mail
        opens one."""
        return extract_reply(self.text)

    def intake_text(self, reply: bool = False, asked: frozenset[Fact] = frozenset()) -> MailText:
        """What the intake reads of this message: as a first mail, or as a reply (with its
        new part, and the facts its ticket asked for); files named by their SHA-256, as the
        blob store keeps them."""
        files = tuple(File(a.filename, a.content_type, a.data, a.sha256) for a in self.attachments)
        new_part = self.reply_text if reply else ""
        return MailText(self.subject, self.text, new_part, files, self.sent_at, asked)

    @property
    def is_bounce(self) -> bool:
        """Whether this is a delivery status notification (a bounce)."""
        return self.report is not None


def parse_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedMail:
    """Parse raw RFC 5322 bytes; raise `MalformedMessage` when there is no message to read,
    `OverLimit` when its structure exceeds `limits`."""
    cleaned = drop_stray_header_lines(strip_leading_junk(raw))
    message, parts = read_tree(cleaned, limits)
    headers = HeaderView(message)
    if not headers.names:
        raise MalformedMessage("no header fields: this is not an RFC 5322 message")
    text, html = body_text(message)
    text, structure_broken = (text, "") if text.strip() else salvage(message, cleaned)
    from_name, from_address = parse_sender(headers.raw("from"), headers.hint, headers.raw("sender"))
    attachments = read_attachments(parts, headers.hint, cleaned)
    check_attachments([(a.filename, len(a.data)) for a in attachments], limits)
    message_id, key = identity(headers, raw, cleaned)
    subject = " ".join(headers.decoded("subject").split())
    return without_undecodable(
        ParsedMail(
            message_id=message_id,
            in_reply_to=tuple(message_ids(headers.raw("in-reply-to"))),
            references=tuple(message_ids(headers.raw("references"))),
            from_address=from_address,
            from_name=from_name,
            to_addresses=tuple(parse_recipients(headers.raw("to"))),
            cc_addresses=tuple(parse_recipients(headers.raw("cc"))),
            subject=subject,
            text=text.strip(),
            html=html,
            attachments=attachments,
            language=detect_language(subject, text, headers.raw("content-language")),
            markers=read_markers(headers, message),
            dedupe_key=key,
            report=read_report(message, from_address),
            sender_address=parse_sender(headers.raw("sender"), headers.hint)[1],
            reply_to_address=next(iter(parse_recipients(headers.raw("reply-to"))), ""),
            structure_broken=structure_broken,
            recipient_names=named_recipients(
                f"{headers.raw('to')}, {headers.raw('cc')}", headers.hint
            ),
            sent_at=read_date(headers.raw("date")),
        )
    )


def read_tree(data: bytes, limits: Limits) -> tuple[Message, list[AttachedPart]]:
    """The message tree of `data` and the files in it; `OverLimit` when its size or shape
    exceeds `limits`."""
    check_field_sizes(data)  # every part's parameter fields, not just the top header
    message, listed = read_mime(data)
    parts = found_parts(message, listed)
    check_structure(message, limits)
    return message, parts


def read_date(value: str) -> datetime | None:
    """The moment a `Date:` field names, with its offset (UTC for `-0000`); None when there
    is none to read."""
    try:
        sent_at = parsedate_to_datetime(" ".join(value.split()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)


def identity(headers: HeaderView, raw: bytes, cleaned: bytes) -> tuple[str, str]:
    """The message's Message-ID (one made from its bytes when it has none), and its
    `dedupe_key`."""
    message_id = first_message_id(headers.raw("message-id"))
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    generated = f"{raw_sha256[:40]}@generated.invalid"
    return message_id or generated, dedupe_key(message_id, cleaned, raw_sha256)


def without_undecodable(record: Record) -> Record:
    """`record` with every text in it made `storable` (storage/text.py), its markers' and
    delivery report's too: fit for any database and any encoder."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        cleaned = storable_value(value)
        if cleaned != value:
            changes[field.name] = cleaned
    return dataclasses.replace(record, **changes) if changes else record


def storable_value(value: object) -> object:
    """A field's value with its texts made storable; other values as they are."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Markers):
        return without_undecodable(value)
    if isinstance(value, DeliveryReport):
        return without_undecodable(value)
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return tuple(storable(item) for item in value)
    if isinstance(value, tuple) and all(isinstance(item, tuple) for item in value):
        return tuple(tuple(storable(text) for text in item) for item in value)
    if isinstance(value, frozenset) and all(isinstance(item, str) for item in value):
        return frozenset(storable(item) for item in value)
    return value


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
        digest.update(memoryview(raw)[separator.end() :])  # Not a copy of a large body.
    return digest.hexdigest()


def detect_language(subject: str, text: str, content_language: str) -> str:
    """`zh` for Chinese writers (by declared language or by Han script without kana)."""
    if content_language.strip().lower().startswith("zh"):
        return "zh"
    sample = subject + "\n" + text[:2000]
    if HAN.search(sample) and not KANA.search(sample):
        return "zh"
    return "en"


def read_headline(raw: bytes) -> tuple[str, str]:
    """(sender's address, subject) of a raw message, for a listing; "" for what it lacks or
    names ambiguously. Reads the header block alone, with a parser that never refuses, so
    a message that could not be filed still shows what it is."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    _name, sender = parse_sender(str(headers.get("From", "")), None)
    subject = one_line(decode_header_value(str(headers.get("Subject", ""))))
    return sender, subject
