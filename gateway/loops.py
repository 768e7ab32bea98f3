"""Automatic mail: the one home of "did a machine write this, and what may we send back".

Mail loops are how a support address drowns: an out-of-office reply answered by an
acknowledgement answered by an out-of-office reply... So, after RFC 3834:

- A message is automatic (`classify`) when its headers say so (Auto-Submitted other than
  "no", Precedence bulk/junk/list, mailing-list and auto-responder fields, a delivery
  report, a machine sender, an auto-reply subject), when it came with a null reverse-path,
  or when it is our own notification coming back (our header, or our Message-ID format).
  Automatic mail is filed, but never acknowledged and never confirms or reopens a ticket.
- What the gateway sends by itself carries `Auto-Submitted: auto-replied` and our header,
  and a Message-ID we know again (`new_message_id`).
- Automatic mail to one address is capped per ticket and per hour, and an address that
  bounced for good is held (`MailGuard`): an autoresponder the checks above miss still
  cannot make the gateway mail it without end. Engineers are exempt: they are configured
  people, and their notifications are their work.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.inbound import Inbound, sender_of
from gateway.parsing import MACHINE_SENDERS, Markers, ParsedMail
from gateway.spool import Receipt
from gateway.tokens import is_support_address
from storage.rows import mail_allowance

# The header every notification of ours carries: mail that comes back with it is our own.
TICKET_HEADER = "X-Support-Ticket"
# Precedence values of bulk, list and auto-reply mail (a field no RFC defines; RFC 2076).
AUTOMATIC_PRECEDENCE = ("bulk", "junk", "list", "auto_reply")
# Fields that only mailing lists (RFC 2369, RFC 2919) and auto-responders (Exchange's
# suppression field, their own loop guards) set.
AUTOMATIC_FIELDS = (
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
    "x-autoreply",
    "x-autorespond",
    "x-loop",
)
# Vacation and auto-responders that set none of the RFC 3834 fields (Apple's, RT's) still
# label their subject; a colon must follow, so "Automatic reply broken" stays a customer's.
AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:\[[^\]]*\]\s*)*(?:auto(?:matic)?[ _-]?(?:reply|response)|autoreply|autoresponse"
    r"|out of (?:the )?office(?: reply)?)\s*:",
    re.IGNORECASE,
)


def classify(receipt: Receipt, mail: ParsedMail, support_address: str, now: datetime) -> Inbound:
    """The message with why a machine wrote it, if one did."""
    reason = (
        automatic_reason(mail)
        # RFC 3834 2: mail with a null reverse-path is never answered automatically.
        or ("null reverse-path" if receipt.mail_from == "" else "")
        or (
            "our own notification came back"
            if is_our_message_id(mail.message_id, support_address)
            else ""
        )
        or ("delivery status notification" if mail.is_bounce else "")
    )
    return Inbound(receipt, mail, sender_of(mail, receipt), reason, now)


def automatic_reason(mail: ParsedMail) -> str:
    """Why the message's own fields say a machine wrote it (RFC 3834 and common practice),
    or ''."""
    return (
        declared_automatic(mail.markers)
        or sent_by_machine(mail.from_address)
        or null_return_path(mail.markers)
        or auto_reply_subject(mail.subject)
    )


def declared_automatic(markers: Markers) -> str:
    """Why the header fields say the mail is automatic, or ''."""
    if TICKET_HEADER.lower() in markers.header_names:
        return "our own notification came back"
    if markers.auto_submitted and not markers.auto_submitted.startswith("no"):
        return f"Auto-Submitted: {markers.auto_submitted}"
    if markers.precedence in AUTOMATIC_PRECEDENCE:
        return f"Precedence: {markers.precedence}"
    for name in AUTOMATIC_FIELDS:
        if name in markers.header_names:
            return f"{name} present"
    if markers.content_type == "multipart/report":
        return "multipart/report"
    return ""


def sent_by_machine(address: str) -> str:
    """Why mail from `address` is automatic (a mailer-daemon's, a postmaster's), or ''."""
    if address.split("@")[0] in MACHINE_SENDERS:
        return f"sent by {address}"
    return ""


def null_return_path(markers: Markers) -> str:
    """Why the Return-Path says the mail is automatic, or '': a null reverse-path, as the
    final MTA recorded it."""
    return "Return-Path: <>" if "<>" in markers.return_paths else ""


def auto_reply_subject(subject: str) -> str:
    """Why the subject says the mail is an automatic reply, or ''."""
    return "auto-reply subject" if AUTO_REPLY_SUBJECT.match(subject) else ""


def why_no_acknowledgement(inbound: Inbound, support_address: str) -> str:
    """Why no acknowledgement may answer this message, or '' to send one."""
    if inbound.automatic:
        return f"automatic mail ({inbound.automatic})"
    if is_support_address(inbound.sender, support_address):
        return "mail from the support address itself"
    if not inbound.mail.from_address:
        return "no usable sender address"
    return ""


def new_message_id(ticket_id: int, domain: str, now: datetime) -> str:
    """A Message-ID for our mail on `ticket_id`, which `is_our_message_id` knows again."""
    return f"{now:%Y%m%d%H%M%S}.{secrets.token_hex(8)}.t{ticket_id}@{domain}"


def is_our_message_id(message_id: str, support_address: str) -> bool:
    """Message-IDs of our notifications end in `.t<ticket>@<support domain>`."""
    domain = support_address.rpartition("@")[2].lower()
    return re.fullmatch(rf".+\.t\d+@{re.escape(domain)}", message_id.lower()) is not None


def automatic_headers(ticket_id: int) -> list[tuple[str, str]]:
    """The fields that mark a mail of ours as automatic, and as ours."""
    return [
        ("Auto-Submitted", "auto-replied"),
        # Asks Exchange and Outlook not to answer with out-of-office replies.
        ("X-Auto-Response-Suppress", "All"),
        (TICKET_HEADER, str(ticket_id)),
    ]


@dataclass(frozen=True, slots=True)
class MailGuard:
    """The caps on automatic mail to one address, and the holds on addresses that bounced."""

    per_ticket: int
    per_hour: int
    # Engineers: never capped or held.
    exempt: frozenset[str]

    def why_not(self, session: Session, ticket_id: int, address: str, now: datetime) -> str:
        """Why no more automatic mail may go to `address` now ('' when it may)."""
        if address in self.exempt:
            return ""
        allowance = mail_allowance(session, address, ticket_id, now)
        if allowance.held_until is not None:
            return f"{allowance.held_because}; held until {allowance.held_until:%Y-%m-%d %H:%M}"
        if allowance.on_ticket >= self.per_ticket:
            return f"limit of {self.per_ticket} automatic mails per ticket"
        if allowance.last_hour >= self.per_hour:
            return f"limit of {self.per_hour} automatic mails per hour"
        return ""
