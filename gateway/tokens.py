"""Reply tokens: `support+<token>@domain` addresses bound to one ticket and one participant.

A token is `<ticket>-<participant>-<mac>`, the MAC an HMAC-SHA256 over both numbers with the
gateway's secret, compared in constant time. Lower-case base32, so MTAs that fold the case
of local parts do not break it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

TOKEN = re.compile(r"^(\d{1,12})-(\d{1,12})-([a-z2-7]{16})$")
MAC_BYTES = 10


@dataclass(frozen=True, slots=True)
class ReplyToken:
    ticket_id: int
    participant_id: int


def make_token(secret: bytes, ticket_id: int, participant_id: int) -> str:
    return f"{ticket_id}-{participant_id}-{_mac(secret, ticket_id, participant_id)}"


def read_token(secret: bytes, text: str) -> ReplyToken | None:
    """The token in `text`, or None when it is malformed or its MAC does not match."""
    match = TOKEN.match(text.strip().lower())
    if match is None:
        return None
    ticket_id, participant_id = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _mac(secret, ticket_id, participant_id)):
        return None
    return ReplyToken(ticket_id, participant_id)


def _mac(secret: bytes, ticket_id: int, participant_id: int) -> str:
    digest = hmac.new(secret, f"{ticket_id}:{participant_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:MAC_BYTES]).decode().lower()


def reply_address(support_address: str, token: str) -> str:
    local, _, domain = support_address.rpartition("@")
    return f"{local}+{token}@{domain}"


def plus_part(address: str, support_address: str) -> str | None:
    """For an address at the support mailbox, what follows its `+` ('' for none);
    None for any other address. Local part and domain compare without case."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    support_local, _, support_domain = support_address.rpartition("@")
    base, _, suffix = local.partition("+")
    if not at or domain.lower() != support_domain.lower() or base.lower() != support_local.lower():
        return None
    return suffix


def is_support_address(address: str, support_address: str) -> bool:
    """The support address or any `local+anything@domain` form of it, in any case."""
    return plus_part(address, support_address) is not None


def is_gateway_side(address: str, support_address: str, engineers: frozenset[str]) -> bool:
    """The support address (any form of it) or an engineer's: never a customer."""
    return address.lower() in engineers or is_support_address(address, support_address)


def token_in_address(address: str, support_address: str) -> str | None:
    """The `+token` part of a recipient at the support address, if it has one."""
    return plus_part(address, support_address) or None
