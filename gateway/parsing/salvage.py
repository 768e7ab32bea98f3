"""Salvage: the words of a message whose MIME structure is broken, read from its raw body.

A multipart whose declared boundary never occurs, or that declares none, leaves the
stdlib's tree without a single text part, and a part with garbled header fields can hide
the text behind it; the customer's words are then only in the raw message. When the tree
yields no text and its defects say the structure is broken, the raw body is read the way a
person would: split at the lines that look like boundaries (`--something` followed by
header fields, whatever the declared boundary), each piece with header fields read as a
part, its transfer encoding undone where that is clear, its charset checked against its
bytes. Plain text wins over HTML, and either over the loose text between the pieces.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.errors
import email.parser
import quopri
import re
from collections.abc import Iterator
from email.message import Message
from email.policy import compat32

from inscriptis import get_text as html_to_text

from gateway.parsing.charsets import decode_text
from gateway.parsing.mime import HEADER_LINE, is_attachment_part, unified_line_ends

# What each structural defect the stdlib notes means, in the words the trail shows.
STRUCTURE_DEFECTS: tuple[tuple[type[email.errors.MessageDefect], str], ...] = (
    (email.errors.StartBoundaryNotFoundDefect, "its declared multipart boundary never occurs"),
    (email.errors.NoBoundaryInMultipartDefect, "a multipart without a boundary parameter"),
    (email.errors.CloseBoundaryNotFoundDefect, "an unterminated multipart"),
)
# Below the top, these mean a part's header fields are garbage (at the top, a header with
# a stray line, which the rest of the parsing already reads leniently).
PART_HEADER_DEFECTS = (
    email.errors.MissingHeaderBodySeparatorDefect,
    email.errors.FirstHeaderLineIsContinuationDefect,
)
# A line that may be a boundary: two dashes, then something printable.
# Greedy, and its trailing blanks stripped apart: a lazy group before `[ \t]*` would take
# time quadratic in a long run of blanks.
DELIMITER = re.compile(rb"^--([!-~][^\r\n]*)\r?$", re.MULTILINE)
BLANK_LINE = re.compile(rb"\r?\n\r?\n")
HEADER_END = re.compile(rb"\r?\n\r?\n|\Z")
# Control bytes (NULs that broken clients leave) are left out of a base64 body before it is
# checked, as are blanks at line ends; a tab or a blank inside a line is not base64.
CONTROL_BYTES = bytes(range(0x09)) + bytes(range(0x0A, 0x20))
BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
# A loose piece of base64 with lines this long is a file without its header, not words.
BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{40,}", re.MULTILINE)
TEXT_TYPES = ("text/plain", "text/html")


def salvage(message: Message, data: bytes) -> tuple[str, str]:
    """The text read from the raw body of `data` and why, when `message` (its tree)
    shows broken MIME structure; ("", "") when the structure is sound."""
    reason = broken_structure(message)
    if not reason:
        return "", ""
    separator = BLANK_LINE.search(data)
    body = data[separator.end() :] if separator else b""
    text = unified_line_ends(raw_body_text(body, message)).strip()
    found = "its text was read from the raw message" if text else "no text in it either"
    return text, f"broken MIME structure, {reason}: {found}"


def broken_structure(message: Message) -> str:
    """What is broken in the message's MIME structure, in words; "" when nothing is.
    Forwarded messages are not looked into: their words are not the sender's."""
    for part in own_parts(message):
        for defect in part.defects:
            for kind, reason in STRUCTURE_DEFECTS:
                if isinstance(defect, kind):
                    return reason
            if part is not message and isinstance(defect, PART_HEADER_DEFECTS):
                return "a part with garbled header fields"
    return ""


def own_parts(part: Message) -> Iterator[Message]:
    """`part` and the parts below it, leaving out forwarded messages."""
    yield part
    if part.get_content_type() != "message/rfc822" and part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from own_parts(child)


def raw_body_text(body: bytes, message: Message) -> str:
    """The words in a broken body: its text parts, else its loose text."""
    pieces = split_at_delimiters(body)
    plain: list[str] = []
    html: list[str] = []
    loose: list[bytes] = []
    for piece in pieces:
        part = piece_headers(piece)
        if part is None:
            loose.append(piece)
        elif part[0].get_content_type() in TEXT_TYPES and not is_attachment_part(part[0]):
            text = part_text(part[0], part[1])
            (html if part[0].get_content_subtype() == "html" else plain).append(text)
    if any(text.strip() for text in plain):
        return "\n".join(plain)
    if any(text.strip() for text in html):
        return str(html_to_text("\n".join(html)))
    if len(pieces) == 1 and loose:
        # No boundary at all: the body is the text, encoded as the top declares.
        return part_text(message, loose[0])
    return "\n".join(decode_text(piece, None) for piece in loose if not is_file(piece))


def split_at_delimiters(body: bytes) -> list[bytes]:
    """`body` split at the lines that look like boundaries: `--token` lines where some
    `--token` line is followed by header fields (folded ones too), and closing `--token--`
    lines; the lines themselves, and folded rests of them, left out."""
    found = list(DELIMITER.finditer(body))
    tokens = {token(match) for match in found if header_follows(body, match.end())}
    pieces: list[bytes] = []
    start = 0
    for match in found:
        if token(match) in tokens or token(match).endswith(b"--"):
            pieces.append(body[start : match.start()])
            start = skip_folded_lines(body, match.end())
    pieces.append(body[start:])
    return [piece.strip(b"\r\n") for piece in pieces if piece.strip()]


def token(delimiter: re.Match[bytes]) -> bytes:
    return delimiter.group(1).rstrip(b" \t")


def header_follows(body: bytes, position: int) -> bool:
    return bool(HEADER_LINE.match(body, skip_folded_lines(body, position)))


def skip_folded_lines(body: bytes, position: int) -> int:
    """Past the line end at `position` and any folded (indented) lines after it."""
    position = body.find(b"\n", position)
    position = len(body) if position < 0 else position + 1
    while body[position : position + 1] in (b" ", b"\t"):
        following = body.find(b"\n", position)
        position = len(body) if following < 0 else following + 1
    return position


def piece_headers(piece: bytes) -> tuple[Message, bytes] | None:
    """A piece's header fields, as a part without its body, and its body; None when it
    does not start with a header field."""
    if not HEADER_LINE.match(piece):
        return None
    end = HEADER_END.search(piece)
    assert end is not None  # `\Z` always matches
    part = email.parser.BytesParser(policy=compat32).parsebytes(
        piece[: end.start()] + b"\n\n", headersonly=True
    )
    return part, piece[end.end() :]


def part_text(part: Message, body: bytes) -> str:
    """A part's body as text: its transfer encoding undone where that is clear, decoded
    by its declared charset where the bytes bear it out."""
    encoding = str(part.get("content-transfer-encoding") or "").strip().lower()
    if encoding == "base64" and is_base64(body):
        compact = compact_base64(body)
        with contextlib.suppress(binascii.Error, ValueError):  # else the text as it came
            body = base64.b64decode(compact + b"=" * (-len(compact) % 4))
    elif encoding == "quoted-printable":
        body = quopri.decodestring(body)
    return decode_text(body, part.get_content_charset())


def is_file(piece: bytes) -> bool:
    return is_base64(piece) and BASE64_LINE.search(piece) is not None


def is_base64(piece: bytes) -> bool:
    """Whether `piece` is base64, damage aside, of a length base64 can have."""
    compact = compact_base64(piece)
    return len(compact) % 4 != 1 and BASE64_TEXT.fullmatch(compact) is not None


def compact_base64(piece: bytes) -> bytes:
    """`piece` without line ends, blanks at line ends, and control bytes."""
    lines = (line.rstrip(b" \t\r") for line in piece.split(b"\n"))
    return b"".join(lines).translate(None, CONTROL_BYTES)
