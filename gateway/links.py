"""Signed links of the web service: what a customer's mail links to, and the engineers' way in.

Every link is its parts and an HMAC-SHA256 over them with the gateway's secret and the
link's purpose (so no kind of link passes for another), in lower-case base32, compared in
constant time. Nothing is stored per link; what a link opens is decided again at each use.

- A status link opens one ticket's page for one participant: `<ticket>-<participant>-
  <version>-<mac>`. The version is the ticket's `links_version`; raising it (`gateway links
  revoke`) revokes every link of the ticket, downloads included.
- A download link adds an attachment and a moment it stops working: links to files are
  minted with each page and live an hour.
- A sign-in link and the session it opens carry an engineer's address and when they end.
- A form's CSRF token is the MAC of a random value the browser holds in a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MAC_BYTES = 16
# ASCII digits without leading zeros, matched whole: every link has exactly one spelling.
NUMBER = r"(0|[1-9][0-9]{0,11})"
MAC = r"([a-z2-7]{26})"
STATUS_LINK = re.compile(rf"{NUMBER}-{NUMBER}-{NUMBER}-{MAC}", re.ASCII)
DOWNLOAD_LINK = re.compile(rf"{NUMBER}-{NUMBER}-{NUMBER}-{NUMBER}-{NUMBER}-{MAC}", re.ASCII)
ADDRESS_LINK = re.compile(rf"([a-z2-7]{{1,1100}})-{NUMBER}-{MAC}", re.ASCII)
DOWNLOAD_LIFETIME = timedelta(hours=1)
SIGN_IN_LIFETIME = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class StatusLink:
    ticket_id: int
    participant_id: int
    version: int


@dataclass(frozen=True, slots=True)
class DownloadLink:
    page: StatusLink
    attachment_id: int
    until: int


def mac(secret: bytes, purpose: str, *parts: object) -> str:
    message = ":".join([purpose, *map(str, parts)]).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def signed(secret: bytes, purpose: str, *parts: object) -> str:
    return "-".join([*map(str, parts), mac(secret, purpose, *parts)])


def genuine(secret: bytes, purpose: str, given: str, *parts: object) -> bool:
    return hmac.compare_digest(given.encode(), mac(secret, purpose, *parts).encode())


def status_token(secret: bytes, ticket_id: int, participant_id: int, version: int) -> str:
    return signed(secret, "status", ticket_id, participant_id, version)


def read_status_token(secret: bytes, token: str) -> StatusLink | None:
    """The link `token` signs, or None for anything changed, cut short or made up."""
    match = STATUS_LINK.fullmatch(token)
    if match is None:
        return None
    ticket_id, participant_id, version = (int(part) for part in match.groups()[:3])
    if not genuine(secret, "status", match.group(4), ticket_id, participant_id, version):
        return None
    return StatusLink(ticket_id, participant_id, version)


def download_token(secret: bytes, page: StatusLink, attachment_id: int, now: datetime) -> str:
    until = int((now + DOWNLOAD_LIFETIME).timestamp())
    parts = (page.ticket_id, page.participant_id, page.version, attachment_id, until)
    return signed(secret, "download", *parts)


def read_download_token(secret: bytes, token: str, now: datetime) -> DownloadLink | None:
    """The file `token` opens while it has not expired, else None."""
    match = DOWNLOAD_LINK.fullmatch(token)
    if match is None:
        return None
    parts = [int(part) for part in match.groups()[:5]]
    if not genuine(secret, "download", match.group(6), *parts) or parts[4] < now.timestamp():
        return None
    return DownloadLink(StatusLink(*parts[:3]), parts[3], parts[4])


def address_token(secret: bytes, purpose: str, address: str, until: datetime) -> str:
    """A sign-in link's or a session's token for `address`, good until `until`."""
    encoded = base64.b32encode(address.lower().encode()).decode().rstrip("=").lower()
    return signed(secret, purpose, encoded, int(until.timestamp()))


def read_address_token(secret: bytes, purpose: str, token: str, now: datetime) -> str | None:
    """The address a genuine, unexpired `token` of `purpose` names, else None."""
    match = ADDRESS_LINK.fullmatch(token)
    if match is None:
        return None
    encoded, until = match.group(1), int(match.group(2))
    if not genuine(secret, purpose, match.group(3), encoded, until) or until < now.timestamp():
        return None
    padded = encoded.upper() + "=" * (-len(encoded) % 8)
    try:
        return base64.b32decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def csrf_token(secret: bytes, nonce: str) -> str:
    return mac(secret, "csrf", nonce)


def csrf_matches(secret: bytes, nonce: str, given: str) -> bool:
    return bool(nonce) and genuine(secret, "csrf", given, nonce)
