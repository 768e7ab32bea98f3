"""Outgoing mail as bytes: headers and MIME parts, built for one recipient.

A notification is multipart/alternative (text and HTML, UTF-8 quoted-printable), inside
multipart/mixed when files go with it, with CRLF line ends and no line over 998 octets.
Header values come from single-line text only (`single_line`), so text from a message can
never add a header; non-ASCII values go out as RFC 2047 encoded words, file names RFC
2231-encoded. The headers that mark mail as automatic are `loops`' to say.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from typing import Any

# At most this many Message-IDs in References (RFC 5322 3.6.4 lets the middle go).
REFERENCES_KEPT = 10


class CrlfPolicy(Compat32):
    """compat32 with CRLF ends, which writes a header that is one short line of ASCII as it
    stands, where `email.header` would fold it anyway at a cost (`bench/README.md`)."""

    def fold_binary(self, name: str, value: Any) -> bytes:
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
Headers = list[tuple[str, "str | Header"]]


@dataclass(frozen=True, slots=True)
class MailFile:
    """A file attached to an outgoing mail."""

    filename: str
    content_type: str
    data: bytes


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
    sender = single_line(envelope.from_name)
    headers: Headers = [
        ("From", formataddr((sender, envelope.from_address), "utf-8")),
        ("To", formataddr((single_line(envelope.to_name), envelope.to_address), "utf-8")),
        ("Reply-To", formataddr((sender, envelope.reply_to), "utf-8")),
        ("Subject", encode_header_text(subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", f"<{envelope.message_id}>"),
    ]
    if envelope.thread:
        headers.append(("In-Reply-To", f"<{envelope.thread[-1]}>"))
        headers.append(("References", " ".join(f"<{ref}>" for ref in references(envelope.thread))))
    return headers


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
        mime[name] = value  # type: ignore[assignment]  # compat32 folds Header values itself
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
    part.add_header(
        "Content-Disposition",
        "attachment",
        filename=("utf-8", "", single_line(file.filename) or "attachment"),
    )
    return part


def encode_header_text(text: str) -> str | Header:
    """Non-ASCII header text as RFC 2047 words, folded by the generator with CRLF."""
    return text if text.isascii() else Header(text, "utf-8")


def single_line(text: str) -> str:
    """Text safe for a header: no line breaks or control characters, bounded length."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", text).strip()[:400]


def display_address(name: str, address: str) -> str:
    """`Name <address>` for reading in a mail body, or the bare address without a name."""
    name = single_line(name)
    return f"{name} <{address}>" if name and name != address else address
