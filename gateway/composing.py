"""Outgoing mail as bytes: headers and MIME parts, built for one recipient.

A notification is multipart/alternative (text and HTML, UTF-8 quoted-printable), inside
multipart/mixed when files go with it, with CRLF line ends. Header values come from
single-line text only (`single_line`), so text from a message can never add a header.

Every header we write is folded here, not by the email package (whose folding cannot split
one long word, and leaves a long file name as one line of a thousand octets that a strict
relay refuses): to lines of at most 78 characters wherever a header can be broken (RFC 5322
2.1.1). Text that is not ASCII, or holds a word too long for a line, goes out as RFC 2047
encoded words of a few dozen octets each, one fold between them; file names as RFC 2231
continuations (`filename*0*=`, `filename*1*=`...). Message-IDs too long for a line are left
out of the threading headers. `linelength` checks the result. The headers that mark mail as
automatic are `loops`' to say.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from typing import Any
from urllib.parse import quote

# At most this many Message-IDs in References (RFC 5322 3.6.4 lets the middle go).
REFERENCES_KEPT = 10
# The line a header is folded to where it can be (RFC 5322 2.1.1 "SHOULD").
FOLD_AT = 78
# Octets of text in one encoded word: "=?utf-8?b?" + 56 base64 characters + "?=" is 68
# characters, which fits on the first line after "Reply-To: " and on every later one.
WORD_OCTETS = 42
# Characters of a file name's RFC 2231 value in one continuation section.
SECTION_CHARS = 56
# The longest Message-ID put in In-Reply-To or References: one longer could not share a line
# with the field's name under 998 octets, and cannot be folded. Longer ones are left out.
MAX_MESSAGE_ID = 900
# What may stand unescaped in an RFC 2231 value (attribute-char): urllib's `quote` keeps
# letters, digits and "_.-~" of it by itself.
ATTRIBUTE_SAFE = "!#$&+^`|"
# A plain quoted file name: printable ASCII without the quote and backslash quoted-string
# would need escaped (which clients read differently).
PLAIN_FILENAME = re.compile(r"[ !#-\[\]-~]+")


class Folded(str):
    """A header value folded here already (its lines joined by CRLF and a space): the
    generator writes it as it stands."""


class CrlfPolicy(Compat32):
    """compat32 with CRLF ends, which writes a `Folded` value, or a header that is one short
    line of ASCII, as it stands, where `email.header` would fold it anyway at a cost
    (`bench/README.md`)."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, Folded):
            return f"{name}: {value}{self.linesep}".encode("ascii", "surrogateescape")
        if (
            isinstance(value, str)
            and value.isascii()
            and value == value.strip()
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
            and not any(c in value for c in "\r\n\t")
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


CRLF_POLICY = CrlfPolicy(linesep="\r\n")
Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class MailFile:
    """A file attached to an outgoing mail."""

    filename: str
    content_type: str
    data: bytes
    # What made the file active, when it goes out made safe (`filetypes`); '' otherwise.
    made_safe: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a mail is from and to, and what it answers: its addressing headers."""

    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str
    message_id: str
    # Message-IDs of what the recipient has seen of the conversation, oldest first.
    thread: tuple[str, ...] = ()


def addressing(envelope: Envelope, subject: str, date: datetime) -> Headers:
    """From, To, Reply-To, Subject, Date, Message-ID and the threading headers."""
    headers: Headers = [
        ("From", address_header("From", envelope.from_name, envelope.from_address)),
        ("To", address_header("To", envelope.to_name, envelope.to_address)),
        ("Reply-To", address_header("Reply-To", envelope.from_name, envelope.reply_to)),
        ("Subject", unstructured("Subject", subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", f"<{envelope.message_id}>"),
    ]
    thread = [ref for ref in envelope.thread if fits_a_line(ref)]
    if thread:
        headers.append(("In-Reply-To", f"<{thread[-1]}>"))
        headers.append(("References", fold("References", (f"<{r}>" for r in references(thread)))))
    return headers


def fits_a_line(message_id: str) -> bool:
    """Whether a Message-ID can go in a header as it stands: visible ASCII, not too long."""
    return len(message_id) <= MAX_MESSAGE_ID and re.fullmatch(r"[!-;=?-~]+", message_id) is not None


def references(thread: Sequence[str], keep: int = REFERENCES_KEPT) -> list[str]:
    """The thread's first Message-ID and its latest ones (RFC 5322 3.6.4 trims the middle)."""
    if len(thread) <= keep:
        return list(thread)
    return [thread[0], *thread[-(keep - 1) :]]


def compose(headers: Headers, text: str, html: str, files: Sequence[MailFile] = ()) -> bytes:
    """A multipart/alternative message (inside multipart/mixed with files) with CRLF ends.

    Built with the compat32 classes: the `EmailMessage` API re-parses every header through
    its registry.
    """
    body = MIMEMultipart("alternative", boundary=new_boundary())
    body.attach(text_part(text, "plain"))
    body.attach(text_part(html, "html"))
    mime = body
    if files:
        mime = MIMEMultipart("mixed", boundary=new_boundary())
        mime.attach(body)
        for file in files:
            mime.attach(file_part(file))
    for name, value in headers:
        mime[name] = value
    return mime.as_bytes(policy=CRLF_POLICY)


def new_boundary() -> str:
    """A boundary no part can contain, so the generator need not search the parts for it:
    "=_" never occurs in quoted-printable or base64 text."""
    return f"=_{secrets.token_hex(16)}"


def text_part(text: str, subtype: str) -> MIMENonMultipart:
    """A UTF-8 quoted-printable part, encoded by binascii: the email package's own
    quoted-printable encoder is pure Python."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def file_part(file: MailFile) -> MIMEBase:
    """A base64 attachment; its name goes out RFC 2231-encoded, never as raw header text."""
    maintype, _, subtype = file.content_type.partition("/")
    # message/* and multipart/* parts hold parsed structure, not bytes: the generator cannot
    # write them from a payload string, so such files travel as plain octets.
    if (
        not re.fullmatch(r"[\w.+-]+", maintype)
        or not re.fullmatch(r"[\w.+-]+", subtype)
        or maintype in ("message", "multipart")
    ):
        maintype, subtype = "application", "octet-stream"
    part = MIMEBase(maintype, subtype)
    part.set_payload(base64.encodebytes(file.data).decode("ascii"))
    part["Content-Transfer-Encoding"] = "base64"
    part["Content-Disposition"] = disposition(file.filename)
    return part


def fold(name: str, atoms: Iterable[str]) -> Folded:
    """`atoms` joined by single spaces, a line broken before an atom that would take it past
    78 characters (the field's name counted on the first)."""
    lines, room = [""], FOLD_AT - len(name) - 1
    for atom in atoms:
        piece = f" {atom}"
        if lines[-1].strip() and len(lines[-1]) + len(piece) > room:
            lines.append("")
            room = FOLD_AT
        lines[-1] += piece
    return Folded("\r\n".join(lines)[1:])


def unstructured(name: str, text: str) -> Folded:
    """Subject-like text, folded between its words; as RFC 2047 encoded words when it is
    not ASCII, holds a word too long for a line, or would read as an encoded word."""
    text = single_line(text)
    words = text.split(" ")
    if text.isascii() and "=?" not in text and max(map(len, words)) < FOLD_AT - len(name) - 2:
        return fold(name, words)
    return fold(name, encoded_words(text))


def address_header(name: str, display_name: str, address: str) -> Folded:
    """`Name <address>`, folded between the words of an ASCII name; a name that is not
    ASCII, or holds a word too long for a line, in encoded words before the address."""
    display = single_line(display_name)
    plain = formataddr((display, address))
    words = plain.split(" ")
    if display.isascii() and "=?" not in display and max(map(len, words[:-1]), default=0) < 60:
        return fold(name, words)
    return fold(name, [*encoded_words(display), f"<{address}>"])


def encoded_words(text: str) -> list[str]:
    """`text` as UTF-8 "B" encoded words (RFC 2047) of whole characters, each at most 68
    characters long."""
    chunks, chunk = [], b""
    for char in text:
        octets = char.encode("utf-8", "replace")
        if len(chunk) + len(octets) > WORD_OCTETS:
            chunks.append(chunk)
            chunk = b""
        chunk += octets
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(c).decode('ascii')}?=" for c in chunks if c]


def disposition(filename: str) -> Folded:
    """`attachment` with the file's name: quoted when it is short printable ASCII, else RFC
    2231-encoded in continuation sections short enough to fold between."""
    name = file_name(filename) or "attachment"
    plain = f'attachment; filename="{name}"'
    if PLAIN_FILENAME.fullmatch(name) and len("Content-Disposition: ") + len(plain) <= FOLD_AT:
        return Folded(plain)
    encoded = "utf-8''" + quote(name.encode("utf-8"), safe=ATTRIBUTE_SAFE)
    sections = split_escaped(encoded, SECTION_CHARS)
    if len(sections) == 1:
        return fold("Content-Disposition", ["attachment;", f"filename*={encoded}"])
    last = len(sections) - 1
    atoms = [f"filename*{i}*={s}{';' if i < last else ''}" for i, s in enumerate(sections)]
    return fold("Content-Disposition", ["attachment;", *atoms])


def split_escaped(value: str, size: int) -> list[str]:
    """`value` in pieces of at most `size` characters, none splitting a %XX escape."""
    pieces, piece = [], ""
    for token in re.findall(r"%[0-9A-F]{2}|.", value, re.DOTALL):
        if len(piece) + len(token) > size:
            pieces.append(piece)
            piece = ""
        piece += token
    return [*pieces, piece]


def single_line(text: str, keep: int = 400) -> str:
    """Text safe for a header: no line breaks or control characters, bounded length."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", text).strip()[:keep]


def file_name(filename: str) -> str:
    """A file's name safe for a header: `single_line`, shortened before its extension."""
    name = single_line(filename, keep=len(filename))
    stem, dot, extension = name.rpartition(".")
    if len(name) <= 400 or not dot or len(extension) > 16:
        return name[:400]
    return f"{stem[: 399 - len(extension)]}.{extension}"


def display_address(name: str, address: str) -> str:
    """`Name <address>` for reading in a mail body, or the bare address without a name."""
    name = single_line(name)
    return f"{name} <{address}>" if name and name != address else address
