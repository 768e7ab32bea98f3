"""Markers: the header facts by which automatic mail is known, read but not judged.

Whether they make a message automatic (RFC 3834 and common practice) is for
`gateway.loops` to say; they are read here, once, while the message tree is at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from gateway.parsing.charsets import decode_header_value
from gateway.parsing.mime import HeaderView

# Local parts of addresses that send mail nobody wrote and read none.
MACHINE_SENDERS = ("mailer-daemon", "postmaster")


@dataclass(frozen=True, slots=True)
class Markers:
    """A message's header facts that mark automatic mail, as found.

    `auto_submitted`: every Auto-Submitted value, decoded, on one line, lower-case, at most
    200 characters; `precedence`: every Precedence value, lower-case (a field given twice
    counts twice: any copy may say the mail is automatic);
    `header_names`: every top-level header field's name, lower-case; `content_type`: the
    top-level content type; `return_paths`: every Return-Path value.
    """

    auto_submitted: tuple[str, ...]
    precedence: tuple[str, ...]
    header_names: frozenset[str]
    content_type: str
    return_paths: tuple[str, ...]


def read_markers(headers: HeaderView, message: Message) -> Markers:
    """The facts of `message` (whose `headers` these are) that mark automatic mail."""
    return Markers(
        auto_submitted=tuple(
            " ".join(decode_header_value(value, headers.hint).split()).lower()[:200]
            for value in headers.all("auto-submitted")
        ),
        precedence=tuple(value.strip().lower() for value in headers.all("precedence")),
        header_names=frozenset(headers.names),
        content_type=message.get_content_type(),
        return_paths=tuple(path.strip() for path in headers.all("return-path")),
    )
