"""Delivery status notifications (bounces): whether a message is one, the addresses it
reports as failing for good, and the Message-IDs of the message it returns.

Reports in RFC 3464's form are known by their content type; classic MAILER-DAEMON bounces by
their sender, and carriers' by a no-reply sender with the returned message attached.
"""

from __future__ import annotations

import email.parser
import logging
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from gateway.parsing.addresses import is_plain_address, message_ids
from gateway.parsing.markers import MACHINE_SENDERS

log = logging.getLogger(__name__)

# Parts that carry a returned message, as bounces without an RFC 3464 report do.
RETURNED_MESSAGE_TYPES = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
# Local parts of addresses that take no replies; some carriers bounce from them.
NO_REPLY_SENDERS = ("no-reply", "noreply", "do-not-reply", "donotreply")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a delivery status notification says: the addresses that failed for good, and the
    Message-IDs of the message it returns (ours, if it bounced one of ours)."""

    failed_recipients: tuple[str, ...]
    returned_message_ids: tuple[str, ...]


def read_report(message: Message, sender: str) -> DeliveryReport | None:
    """The delivery report `message` is, or None when it is none; `sender` is the address of
    its From field."""
    if not is_delivery_report(message, sender):
        return None
    return DeliveryReport(permanent_failures(message), returned_message_ids(message))


def permanent_failures(message: Message) -> tuple[str, ...]:
    """Addresses a bounce reports as failing for good, by flufl.bounce's detectors (RFC 3464
    and the formats of two decades of MTAs)."""
    try:
        _temporary, permanent = all_failures(message)
    except Exception as exc:  # The detectors trip over some broken reports; not fatal.
        log.info("bounce not understood: %s: %s", type(exc).__name__, exc)
        return ()
    found = {
        address.decode("utf-8", "replace").strip().strip("<>").lower() for address in permanent
    }
    return tuple(sorted(address for address in found if is_plain_address(address)))[:20]


def returned_message_ids(message: Message) -> tuple[str, ...]:
    """The Message-IDs of the message a bounce returns (whole, or its headers only)."""
    found: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found += message_ids(str(inner[0].get("message-id") or ""))
        elif content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            returned = email.parser.HeaderParser().parsestr(text)
            found += message_ids(str(returned.get("message-id") or ""))
    return tuple(dict.fromkeys(found))[:10]


def is_delivery_report(message: Message, sender: str) -> bool:
    """A delivery status notification (RFC 3464) or a classic MAILER-DAEMON bounce; `sender`
    is the address of its From field."""
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type") or "").lower()
        return report_type != "disposition-notification"
    local_part = sender.split("@")[0]
    if local_part in MACHINE_SENDERS:
        return True
    types = {part.get_content_type() for part in message.walk()}
    if "message/delivery-status" in types:
        return True
    # Carriers (KDDI, DoCoMo) bounce with plain text and the returned message attached.
    return local_part in NO_REPLY_SENDERS and bool(types.intersection(RETURNED_MESSAGE_TYPES))
