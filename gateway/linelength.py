"""The line limit of outgoing mail: no line over 998 octets (RFC 5322 2.1.1), checked in
one place, `within_limit`, which the outbox calls on every mail before it is queued.

`composing` folds every header it writes and encodes every body part so that no line comes
near the limit; this is the net under it. A mail with no line too long (every mail, while
`composing` does its job) passes as it is, after one scan of its bytes. Otherwise the mail
is read back, each header with a line too long is folded again (a subject, an address or a
file name rewritten as `composing` writes them when folding between words is not enough),
each body part with one is re-encoded (quoted-printable for text, base64 for the rest), and
the mail is written again. A line still too long after that is a bug of ours: `LineTooLong`
says where, and the outbox keeps the mail as failed with that reason rather than hand a
relay a mail it must refuse, or worse, pass on broken.
"""

from __future__ import annotations

import base64
import binascii
import email
import re
from collections.abc import Callable
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import parseaddr

from gateway.composing import (
    CRLF_POLICY,
    Folded,
    address_header,
    disposition,
    fold,
    unstructured,
)

# RFC 5322 2.1.1: each line MUST be no more than 998 characters, excluding the CRLF.
MAX_LINE_OCTETS = 998


class LineTooLong(ValueError):
    """A mail of ours has a line over 998 octets that could not be folded or re-encoded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def within_limit(content: bytes) -> bytes:
    """`content` with no line over 998 octets: as it is when it has none, else repaired;
    raises `LineTooLong` when even the repaired mail has one."""
    if overlong_line(content) is None:
        return content
    message = email.message_from_bytes(content, policy=compat32)
    for part in message.walk():
        refold_headers(part)
        if part.is_multipart():
            part.preamble = keep_short(part.preamble)
            part.epilogue = keep_short(part.epilogue)
        else:
            reencode_body(part)
    repaired = message.as_bytes(policy=CRLF_POLICY)
    found = overlong_line(repaired)
    if found is not None:
        number, line = found
        raise LineTooLong(
            f"line {number} of the mail is {len(line)} octets, over the 998 of RFC 5322 "
            f"even after folding and re-encoding: {line[:60]!r}..."
        )
    return repaired


def overlong_line(content: bytes) -> tuple[int, bytes] | None:
    """The first line (its number from 1, its octets) over 998 octets, if one is."""
    for number, line in enumerate(content.split(b"\r\n"), 1):
        if len(line) > MAX_LINE_OCTETS:
            return number, line
    return None


def fits(name: str, value: str) -> bool:
    """Whether the header `name: value` has no line over 998 octets."""
    lines = f"{name}: {value}".encode("utf-8", "surrogateescape").split(b"\r\n")
    return all(len(line) <= MAX_LINE_OCTETS for line in lines)


def refold_headers(part: Message) -> None:
    """Each of the part's headers folded again if a line of it is too long; the rest as they
    came (written as they stand: compat32's own folding would change them)."""
    items = [(name, re.sub(r"\r?\n", "\r\n", str(value))) for name, value in part.items()]
    kept = [
        (name, Folded(value) if fits(name, value) else refolded(part, name, value))
        for name, value in items
    ]
    for name in {name for name, _ in items}:
        del part[name]
    for name, value in kept:
        part[name] = value


def refolded(part: Message, name: str, value: str) -> Folded:
    """The header folded between its words; else written afresh as `composing` writes it."""
    words = re.sub(r"\r?\n(?=[ \t])", "", value).split()
    folded = fold(name, words)
    if fits(name, folded):
        return folded
    rewrite = REWRITES.get(name.lower())
    return rewrite(part, name, value) if rewrite else folded


def decoded(value: str) -> str:
    """Header text with its encoded words decoded."""
    return str(make_header(decode_header(re.sub(r"\r?\n(?=[ \t])", "", value))))


def rewritten_address(part: Message, name: str, value: str) -> Folded:
    display, address = parseaddr(decoded(value))
    return address_header(name, display, address)


REWRITES: dict[str, Callable[[Message, str, str], Folded]] = {
    "subject": lambda part, name, value: unstructured(name, decoded(value)),
    "content-disposition": lambda part, name, value: disposition(part.get_filename() or ""),
    "from": rewritten_address,
    "to": rewritten_address,
    "reply-to": rewritten_address,
}


def reencode_body(part: Message) -> None:
    """The part's body re-encoded if a line of it is too long: quoted-printable for text,
    base64 for anything else."""
    payload = part.get_payload()
    if not isinstance(payload, str) or keep_short(payload) is not None:
        return
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    del part["Content-Transfer-Encoding"]
    if part.get_content_maintype() == "text":
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(binascii.b2a_qp(data, istext=True).decode("ascii"))
    else:
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(base64.encodebytes(data).decode("ascii"))


def keep_short(text: str | None) -> str | None:
    """`text` when none of its lines is too long, else None."""
    if text is None:
        return None
    lines = text.encode("utf-8", "surrogateescape").splitlines()
    return text if all(len(line) <= MAX_LINE_OCTETS for line in lines) else None
