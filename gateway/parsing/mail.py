"""The parsed message: `ParsedMail`, and `parse_message`, which reads one from raw bytes.

Pure: no database, no network. Each concern lives in its own module of this package
(`mime`, `charsets`, `addresses`, `quoting`, `attachments`, `markers`, `reports`); this one
puts their answers together, with the two facts that need the whole message: the key that
tells one message from another, and the language it is written in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.errors import MalformedMessage
from gateway.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_attachments,
    check_field_sizes,
    check_structure,
)
from gateway.parsing.addresses import first_message_id, message_ids, parse_recipients, parse_sender
from gateway.parsing.attachments import ParsedAttachment, found_parts, read_attachments
from gateway.parsing.markers import automatic_marker
from gateway.parsing.mime import (
    HeaderView,
    body_text,
    drop_stray_header_lines,
    read_mime,
    strip_leading_junk,
)
from gateway.parsing.quoting import extract_reply
from gateway.parsing.reports import is_delivery_report, permanent_failures, returned_message_ids
from storage.text import storable

HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
KANA = re.compile(r"[\u3040-\u30ff]")


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
    _reply_text: list[str] = dataclasses.field(
        default_factory=list, init=False, compare=False, repr=False
    )

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
    message, listed = read_mime(cleaned)
    parts = found_parts(message, listed)
    check_structure(message, limits)
    headers = HeaderView(message)
    if not headers.names:
        raise MalformedMessage("no header fields: this is not an RFC 5322 message")
    text, html = body_text(message)
    from_name, from_address = parse_sender(headers.raw("from"), headers.hint, headers.raw("sender"))
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    message_id = first_message_id(headers.raw("message-id"))
    subject = " ".join(headers.decoded("subject").split())
    is_bounce = is_delivery_report(message, from_address)
    attachments = read_attachments(parts, headers.hint, cleaned)
    check_attachments([(a.filename, len(a.data)) for a in attachments], limits)
    return without_undecodable(
        ParsedMail(
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
            automatic=automatic_marker(headers, message, from_address),
            is_bounce=is_bounce,
            dedupe_key=dedupe_key(message_id, cleaned, raw_sha256),
            failed_recipients=permanent_failures(message) if is_bounce else (),
            returned_message_ids=returned_message_ids(message) if is_bounce else (),
        )
    )


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


def parse_date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):  # 2147483648 is no year.
        return None
