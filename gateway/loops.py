"""Loops: the one home of "is this automatic mail, and what may we send back".

A responder that answers automatic mail (vacation replies, list mail, bounces, our own
notifications coming back) can start a loop between two machines that never ends. RFC 3834
says never to answer such mail automatically; this module says which mail it is, from the
facts parsing read (`ParsedMail.markers`, the sender and the subject), never from the raw
message again.
"""

from __future__ import annotations

import re

from gateway.parsing import MACHINE_SENDERS, Markers, ParsedMail

# The header every notification of ours carries (set by `notifications`): mail that comes
# back with it is our own, and is never answered.
TICKET_HEADER = "X-Support-Ticket"
# Vacation and auto-responders that set none of the RFC 3834 fields (Apple's, RT's) still
# label their subject; a colon must follow, so "Automatic reply broken" stays a customer's.
AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:\[[^\]]*\]\s*)*(?:auto(?:matic)?[ _-]?(?:reply|response)|autoreply|autoresponse"
    r"|out of (?:the )?office(?: reply)?)\s*:",
    re.IGNORECASE,
)
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


def automatic_reason(mail: ParsedMail) -> str:
    """Why `mail` was written by a machine (RFC 3834 and common practice), or ''."""
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
    final MTA recorded it (RFC 3834 2: never answer those)."""
    return "Return-Path: <>" if "<>" in markers.return_paths else ""


def auto_reply_subject(subject: str) -> str:
    """Why the subject says the mail is an automatic reply, or ''."""
    return "auto-reply subject" if AUTO_REPLY_SUBJECT.match(subject) else ""
