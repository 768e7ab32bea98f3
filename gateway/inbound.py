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

# Stands for a sender no address could be read for; never mailed.
UNKNOWN_SENDER = "unknown-sender@invalid"


@dataclass(frozen=True, slots=True)
class Inbound:
    """A parsed message with its envelope, on its way to a ticket."""

    receipt: Receipt
    mail: ParsedMail
    # The From address; else the envelope sender; else `UNKNOWN_SENDER`.
    sender: str
    # Why a machine wrote it (RFC 3834 and common practice), or "" for a person.
    automatic: str
    at: datetime

    @property
    def recipients(self) -> tuple[str, ...]:
        """Everyone it was addressed to: the envelope's recipients, then To and Cc."""
        mail = self.mail
        return (*self.receipt.recipients, *mail.to_addresses, *mail.cc_addresses)


def sender_of(mail: ParsedMail, receipt: Receipt) -> str:
    """The From address; else the envelope sender; else a placeholder never mailed."""
    if mail.from_address:
        return mail.from_address
    if receipt.mail_from and is_plain_address(receipt.mail_from):
        return receipt.mail_from.lower()
    return UNKNOWN_SENDER
