"""Limits on what a message may be: header size and count, `Received:` hops, MIME depth and
part count, attachment size. Pure: raw bytes or a parsed tree in, an error or nothing out.

The header limits are cheap and checked before `250`, so the sender hears why. The MIME
limits need the parsed tree; over them a message already accepted is quarantined with the
reason, never dropped and never a crash.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message

from gateway.errors import MailLoop, MessageTooLarge, OverLimit

FIELD_START = re.compile(rb"^[!-9;-~]+:", re.MULTILINE)
RECEIVED = re.compile(rb"^received:", re.IGNORECASE | re.MULTILINE)
HEADER_END = re.compile(rb"\r?\n\r?\n")
# A parameter field (Content-Type, Content-Disposition) larger than this is refused: no real
# one comes near it, and parameter lists of that size (thousands of RFC 2231 continuations)
# take the stdlib parser seconds. Other fields may be long (real mail has 200 KB subjects).
MAX_FIELD_BYTES = 32 * 1024
FIELD = re.compile(
    rb"^content-(?:type|disposition):.*(?:\r?\n[ \t].*)*", re.MULTILINE | re.IGNORECASE
)
# Where a parameter field may start after a line break. The literal line break lets the regex
# engine skip from one to the next; the case-blind FIELD tries every position of a message.
FIELD_AFTER_LINE_BREAK = re.compile(rb"\n[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[TtDd]")


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits on a message (`settings.limits`)."""

    # Largest message accepted over SMTP/LMTP/ingest, in bytes (answered with 552).
    max_message_bytes: int = 40 * 1024 * 1024
    # Header block and field count; larger headers are refused (552 / 554) before `250`.
    max_header_bytes: int = 256 * 1024
    max_headers: int = 1000
    # More `Received:` fields than this means a mail loop: refused with 554 5.4.6.
    max_received_hops: int = 50
    # MIME nesting and part count, and the size of one attachment of an inbound message;
    # over them after `250`, the message is quarantined with the reason.
    max_mime_depth: int = 30
    max_mime_parts: int = 500
    max_inbound_attachment_bytes: int = 35 * 1024 * 1024


DEFAULT_LIMITS = Limits()


def check_header(raw: bytes, limits: Limits) -> None:
    """Refuse a header block that is too large, has too many fields, or too many hops."""
    end = HEADER_END.search(raw, 0, limits.max_header_bytes + 4)
    header = raw[: end.start()] if end else raw[: limits.max_header_bytes + 1]
    if len(header) > limits.max_header_bytes:
        raise MessageTooLarge(f"header larger than the limit of {limits.max_header_bytes} bytes")
    hops = len(RECEIVED.findall(header))
    if hops > limits.max_received_hops:
        raise MailLoop(
            f"{hops} Received: fields exceed the limit of {limits.max_received_hops}: a mail loop"
        )
    fields = len(FIELD_START.findall(header))
    if fields > limits.max_headers:
        raise OverLimit(f"{fields} header fields exceed the limit of {limits.max_headers}")
    check_field_sizes(header)


def check_field_sizes(header: bytes) -> None:
    """Refuse a parameter field (with its folded lines) over `MAX_FIELD_BYTES`, in a header
    block or in a whole message (MIME parts have parameter fields too)."""
    if len(header) <= MAX_FIELD_BYTES:
        return
    for field in parameter_fields(header):
        if len(field.group()) > MAX_FIELD_BYTES:
            name = field.group().split(b":", 1)[0].decode("ascii", "replace")[:60]
            raise OverLimit(
                f"header field {name} of {len(field.group())} bytes exceeds the "
                f"limit of {MAX_FIELD_BYTES} bytes"
            )


def parameter_fields(data: bytes) -> Iterator[re.Match[bytes]]:
    """Every Content-Type and Content-Disposition field of `data` with its folded lines, in
    order; only where a line break lets one start, as FIELD alone would try every byte."""
    candidates = (found.start() + 1 for found in FIELD_AFTER_LINE_BREAK.finditer(data))
    for at in itertools.chain((0,), candidates):
        field = FIELD.match(data, at)
        if field:
            yield field


def check_structure(message: Message, limits: Limits) -> None:
    """Refuse MIME trees nested too deep or with too many parts (walked without recursion)."""
    parts = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if depth > limits.max_mime_depth:
            raise OverLimit(f"MIME parts nested deeper than the limit of {limits.max_mime_depth}")
        if parts > limits.max_mime_parts:
            raise OverLimit(f"more MIME parts than the limit of {limits.max_mime_parts}")
        children = part.get_payload() if part.is_multipart() else None
        if isinstance(children, list):
            stack.extend((child, depth + 1) for child in children if isinstance(child, Message))


def check_attachments(sizes: Sequence[tuple[str, int]], limits: Limits) -> None:
    for filename, size in sizes:
        if size > limits.max_inbound_attachment_bytes:
            raise OverLimit(
                f"attachment {filename!r} of {size} bytes exceeds the limit of "
                f"{limits.max_inbound_attachment_bytes} bytes"
            )
