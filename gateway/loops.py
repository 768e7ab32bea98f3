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
- An engineer's reply relayed to the customer (`RELAYED_REPLY`) is a person's mail, not an
  automatic one: it carries no `Auto-Submitted` or `X-Auto-Response-Suppress` (RFC 3834 is
  about automatic responses; marking a person's answer so would ask the customer's client to
  treat it as a machine's), only our header and Message-ID, by which we still know it when
  it comes back. Nor does it count against the caps, or use them up: a person wrote each
  one, so no loop can drive them, and a customer deep in a long conversation must not stop
  hearing the engineer. A held address is still held.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.inbound import Inbound, sender_of
from gateway.parsing import MACHINE_SENDERS, Markers, ParsedMail
from gateway.spool import Receipt
from gateway.tokens import is_support_address
from storage.rows import last_mail_of_kind, mail_allowance

# The notice kind `MailGuard` limits per address and period.
ACKNOWLEDGEMENT = "acknowledgement"
# The kind of notice that relays an engineer's own words: a person's mail (see above).
RELAYED_REPLY = "reply"

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
# Fields by which auto-responders (vacation, out-of-office) declare a reply of theirs.
AUTO_REPLY_FIELDS = ("x-autoreply", "x-autorespond")
# Words by which auto-responders that set none of the RFC 3834 fields (Apple's, RT's, most
# Chinese webmail) still label their subject, in the languages our customers write: a
# colon or a bracket must close them, so "Automatic reply broken" stays a customer's.
AUTO_REPLY_WORDS = (
    r"auto(?:matic)?[ _-]?(?:reply|response)|autoreply|autoresponse"
    r"|out of (?:the )?office(?: reply)?|vacation (?:reply|response|notice)|away from office"
    r"|自动回复|自动答复|自動回覆|自動回复|自动应答|休假|不在办公室|外出|自動応答|自動返信"
    r"|r[ée]ponse automatique|absence du bureau|automatische antwort|abwesenheitsnotiz"
    r"|respuesta autom[áa]tica|resposta autom[áa]tica|tr[ảa] l[ờo]i t[ựu] đ[ộo]ng"
    r"|balasan (?:otomatis|automatik)|ตอบกลับอัตโนมัติ|자동\s*회신|자동\s*응답"
)
AUTO_REPLY_SUBJECT = re.compile(
    rf"^(?:\[[^\]]*\]\s*)*(?:(?:{AUTO_REPLY_WORDS})\s*[:：]|[\[【(（]\s*(?:{AUTO_REPLY_WORDS})\s*[\]】)）])",
    re.IGNORECASE,
)
# The opening sentences of auto-responders that label neither headers nor subject. Only the
# start of the text is read: a customer who mentions an office later is still a customer.
AUTO_REPLY_GREETING = (
    r"(?:(?:hello|hi|dear [^,\n]{0,40}|您好|你好)[,，!！]?\s*)?"
    r"(?:thank(?:s| you) for your (?:e-?mail|message)[.!]?\s*|感谢您的来信[。，,]?\s*)?"
)
AUTO_REPLY_SENTENCE = (
    r"i\s*(?:am|'m|’m|will be)\s+(?:currently\s+|now\s+)?(?:out of (?:the )?office"
    r"|away from (?:the |my )?(?:office|desk)|on (?:annual |parental )?(?:leave|vacation|holiday))"
    r"|this is an? (?:automatic|automated|auto-?generated) (?:reply|response|message)"
    r"|我(?:目前|现在|正在|这几天)?(?:不在办公室|休假|外出|出差|请假)"
    r"|(?:此|这|本)(?:封)?(?:邮件|信)(?:是|为)(?:系统)?自动(?:回复|答复)"
)
AUTO_REPLY_OPENING = re.compile(
    rf"^\W*{AUTO_REPLY_GREETING}(?:{AUTO_REPLY_SENTENCE})", re.IGNORECASE
)
# How much of the text `AUTO_REPLY_OPENING` reads.
OPENING_CHARACTERS = 400


def classify(receipt: Receipt, mail: ParsedMail, support_address: str, now: datetime) -> Inbound:
    """The message with its sender and why a machine wrote it, if one did."""
    sender, source = sender_of(mail, receipt)
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
    return Inbound(receipt, mail, sender, reason, now, sender_source=source)


def automatic_reason(mail: ParsedMail) -> str:
    """Why the message's own fields say a machine wrote it (RFC 3834 and common practice),
    or ''."""
    return (
        declared_automatic(mail.markers)
        or sent_by_machine(mail.from_address)
        or null_return_path(mail.markers)
        or auto_reply_subject(mail.subject)
        or auto_reply_opening(mail.text)
    )


def declared_automatic(markers: Markers) -> str:
    """Why the header fields say the mail is automatic, or ''. A field given twice counts
    when any copy says so: "Auto-Submitted: no" first hides nothing."""
    if TICKET_HEADER.lower() in markers.header_names:
        return "our own notification came back"
    for value in markers.auto_submitted:
        if value and not value.startswith("no"):
            return f"Auto-Submitted: {value}"
    for value in markers.precedence:
        if value in AUTOMATIC_PRECEDENCE:
            return f"Precedence: {value}"
    for name in AUTOMATIC_FIELDS:
        if name in markers.header_names:
            return f"{name} present"
    if markers.content_type == "multipart/report":
        return "multipart/report"
    return ""


def declared_auto_reply(markers: Markers) -> str:
    """Why the header fields say the mail is an auto-responder's reply (a vacation or
    out-of-office notice), or ''."""
    for value in markers.auto_submitted:
        if value.startswith("auto-replied"):
            return f"Auto-Submitted: {value}"
    if "auto_reply" in markers.precedence:
        return "Precedence: auto_reply"
    for name in AUTO_REPLY_FIELDS:
        if name in markers.header_names:
            return f"{name} present"
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


def auto_reply_opening(text: str) -> str:
    """Why the opening of the text says the mail is an automatic reply, or ''."""
    return "auto-reply wording" if AUTO_REPLY_OPENING.match(text[:OPENING_CHARACTERS]) else ""


def why_no_new_ticket(inbound: Inbound, support_address: str) -> str:
    """Why this message, which belongs to no ticket, may not open one ('' when it may).

    Mail from an address we send from is ours, or a forgery of it; an auto-responder's
    reply to nothing of ours has nothing to say. Either is only recorded. Machine mail
    that reports something (a monitoring alert) still opens a ticket, unanswered.
    """
    if is_support_address(inbound.sender, support_address):
        return f"it claims to come from the support address ({inbound.sender})"
    markers = inbound.mail.markers
    if TICKET_HEADER.lower() in markers.header_names or is_our_message_id(
        inbound.mail.message_id, support_address
    ):
        return "our own notification came back"
    if declared := declared_auto_reply(markers):
        return f"an automatic reply ({declared}) to no ticket of ours"
    return ""


def why_no_acknowledgement(inbound: Inbound, support_address: str) -> str:
    """Why no acknowledgement may answer this message, or '' to send one."""
    if inbound.automatic:
        return f"automatic mail ({inbound.automatic})"
    if is_support_address(inbound.sender, support_address):
        return "mail from the support address itself"
    if not inbound.mail.from_address:
        return f"no From address (filed under the {inbound.sender_source} address)"
    return ""


def new_message_id(ticket_id: int, domain: str, now: datetime) -> str:
    """A Message-ID for our mail on `ticket_id`, which `is_our_message_id` knows again."""
    return f"{now:%Y%m%d%H%M%S}.{secrets.token_hex(8)}.t{ticket_id}@{domain}"


def is_our_message_id(message_id: str, support_address: str) -> bool:
    """Message-IDs of our notifications end in `.t<ticket>@<support domain>`."""
    domain = support_address.rpartition("@")[2].lower()
    return re.fullmatch(rf".+\.t\d+@{re.escape(domain)}", message_id.lower()) is not None


def automatic_headers(ticket_id: int, kind: str = "") -> list[tuple[str, str]]:
    """The fields that mark a mail of ours as ours, and as automatic unless it relays a
    person's words."""
    ours = [(TICKET_HEADER, str(ticket_id))]
    if kind == RELAYED_REPLY:
        return ours
    return [
        ("Auto-Submitted", "auto-replied"),
        # Asks Exchange and Outlook not to answer with out-of-office replies.
        ("X-Auto-Response-Suppress", "All"),
        *ours,
    ]


def generated_headers() -> list[tuple[str, str]]:
    """The fields that mark a mail of ours that answers no message (a digest to the
    operators) as automatic: RFC 3834 calls that auto-generated."""
    return [("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")]


@dataclass(frozen=True, slots=True)
class MailGuard:
    """The caps on automatic mail to one address, and the holds on addresses that bounced."""

    per_ticket: int
    per_hour: int
    # Engineers: never capped or held.
    exempt: frozenset[str]
    # At most one acknowledgement per address in this time (RFC 3834 2).
    acknowledgement_interval: timedelta = timedelta(minutes=10)

    def why_no_acknowledgement(
        self, session: Session, inbound: Inbound, support_address: str
    ) -> str:
        """Why no acknowledgement may answer this message now, or '' to send one."""
        if why := why_no_acknowledgement(inbound, support_address):
            return why
        since = inbound.at - self.acknowledgement_interval
        last = last_mail_of_kind(session, inbound.sender, ACKNOWLEDGEMENT, since)
        if last is not None:
            minutes = self.acknowledgement_interval.total_seconds() / 60
            return (
                f"{inbound.sender} was acknowledged at {last:%H:%M} UTC; "
                f"at most one acknowledgement per {minutes:g} minutes"
            )
        return ""

    def why_not(
        self, session: Session, ticket_id: int, address: str, now: datetime, kind: str = ""
    ) -> str:
        """Why no more mail of `kind` may go to `address` now ('' when it may): a hold, or
        for automatic mail the caps."""
        if address in self.exempt:
            return ""
        allowance = mail_allowance(session, address, ticket_id, now, RELAYED_REPLY)
        if allowance.held_until is not None:
            return f"{allowance.held_because}; held until {allowance.held_until:%Y-%m-%d %H:%M}"
        if kind == RELAYED_REPLY:
            return ""
        if allowance.on_ticket >= self.per_ticket:
            return f"limit of {self.per_ticket} automatic mails per ticket"
        if allowance.last_hour >= self.per_hour:
            return f"limit of {self.per_hour} automatic mails per hour"
        return ""
