"""Addresses: the sender of a From (or Sender) field, recipients, and Message-ID lists.

Address fields are split before any encoded-word in them is decoded, and a field that
parsers could read two ways (CVE-2023-27043) names no sender at all: a forged or ambiguous
`From:` must never be taken for a customer or an engineer.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

from gateway.parsing.charsets import decode_header_value

# `jane@example.com <jane@mail.example>`: one mailbox whose unquoted display name is an address.
LONE_ANGLE_ADDRESS = re.compile(r"([^<>,]*)<([^<>,\s]+)>\s*")
# For reading one mailbox strictly: quoted strings, `name <address>`, a bare address
# (with an old-style trailing comment), and the specials a display name may not hold.
QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
ANGLE_MAILBOX = re.compile(r"\s*([^<>]*?)\s*<([^<>\s]+)>\s*")
ADDRESS_SPECIALS = re.compile(r"[<>@,;:()\[\]\\]")
BARE_ADDRESS = re.compile(r"[^\s<>@,;:()\[\]\\\"]+@[^\s<>@,;:()\[\]\\\"]+")
BARE_MAILBOX = re.compile(r"\s*[^\s<>@,;:()\[\]\\\"]+@[^\s<>@,;:()\[\]\\\"]+\s*(?:\([^()]*\)\s*)?")


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


def named_recipients(value: str, hint: str | None) -> tuple[tuple[str, str], ...]:
    """(address, display name) of each recipient the field gives a name that is not an
    address."""
    named = []
    for name, address in split_addresses(value):
        display = one_line(decode_header_value(name, hint))[:200]
        if display and "@" not in display and is_plain_address(address):
            named.append((address.lower(), display))
    return tuple(named)


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
