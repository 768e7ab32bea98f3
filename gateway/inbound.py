"""One message as the stages after parsing see it.

`Inbound` joins the parsed mail to its envelope (the spool's `Receipt`) and adds what every
later stage asks: who sent it, whether a machine wrote it (decided by `loops`), and the
moment it is filed (from the injected clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.parsing import ParsedMail, is_plain_address
from gateway.spool import Receipt

# Stood for a sender no address could be read for, in tickets filed before such mail was
# quarantined; never mailed.
UNKNOWN_SENDER = "unknown-sender@invalid"
# Where the sender's address came from, when not from `From:`.
SENDER_SOURCES = ("Sender", "Reply-To", "envelope")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A parsed message with its envelope, on its way to a ticket."""

    receipt: Receipt
    mail: ParsedMail
    # The From address; else the Sender, Reply-To or envelope sender (see `sender_of`).
    sender: str
    # Why a machine wrote it (RFC 3834 and common practice), or "" for a person.
    automatic: str
    at: datetime
    # Where `sender` came from when `From:` had no usable address ("envelope", ...).
    sender_source: str = ""

    @property
    def recipients(self) -> tuple[str, ...]:
        """Everyone it was addressed to: the envelope's recipients, then To and Cc."""
        mail = self.mail
        return (*self.receipt.recipients, *mail.to_addresses, *mail.cc_addresses)


def sender_of(mail: ParsedMail, receipt: Receipt) -> tuple[str, str]:
    """(address, where it came from): the From address ("" for where); else the Sender,
    then the Reply-To address, then the envelope sender; ("", "") when there is none."""
    if mail.from_address:
        return mail.from_address, ""
    envelope = receipt.mail_from or ""
    envelope = envelope.lower() if is_plain_address(envelope) else ""
    found = (mail.sender_address, mail.reply_to_address, envelope)
    for address, source in zip(found, SENDER_SOURCES, strict=True):
        if address:
            return address, source
    return "", ""
