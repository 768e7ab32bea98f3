"""Markers: the header facts by which automatic mail (auto-replies, lists, machines) is
known (RFC 3834 and common practice)."""

from __future__ import annotations

import re
from email.message import Message

from gateway.parsing.mime import HeaderView

# The header every notification of ours carries (set by `notifications`): mail that comes
# back with it is our own, and is never answered.
TICKET_HEADER = "X-Support-Ticket"
# Local parts of addresses that send mail nobody wrote and read none.
MACHINE_SENDERS = ("mailer-daemon", "postmaster")
# Vacation and auto-responders that set none of the RFC 3834 fields (Apple's, RT's) still
# label their subject; a colon must follow, so "Automatic reply broken" stays a customer's.
AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:\[[^\]]*\]\s*)*(?:auto(?:matic)?[ _-]?(?:reply|response)|autoreply|autoresponse"
    r"|out of (?:the )?office(?: reply)?)\s*:",
    re.IGNORECASE,
)


def automatic_marker(headers: HeaderView, message: Message, sender: str) -> str:
    """Why this message was written by a machine (RFC 3834 and common practice), or '';
    `sender` is the address of its From field."""
    if TICKET_HEADER.lower() in headers.names:
        return "our own notification came back"
    auto_submitted = " ".join(headers.decoded("auto-submitted").split()).lower()[:200]
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    precedence = headers.raw("precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in (
        "x-auto-response-suppress",
        "list-id",
        "list-unsubscribe",
        "x-autoreply",
        "x-autorespond",
        "x-loop",
    ):
        if name in headers.names:
            return f"{name} present"
    if message.get_content_type() == "multipart/report":
        return "multipart/report"
    if sender.split("@")[0] in MACHINE_SENDERS:
        return f"sent by {sender}"
    # A null reverse-path, as the final MTA recorded it (RFC 3834 2: never answer those).
    if any(path.strip() == "<>" for path in headers.all("return-path")):
        return "Return-Path: <>"
    if AUTO_REPLY_SUBJECT.match(headers.decoded("subject")):
        return "auto-reply subject"
    return ""
