"""The gateway's errors, each carrying how it is answered.

Every error knows its SMTP reply (code and enhanced status), its CLI exit code and a reason
that names the problem. `smtp_inbound` turns them into SMTP replies, `cli` into exit codes;
after the spool has a message, `pipeline` turns them into a quarantine reason.

    GatewayError
    ├── ConfigError            a setting is missing or wrong           exit 78
    ├── MessageRefused         permanent refusal of a message (5xx)
    │   ├── MessageTooLarge    552 5.3.4
    │   ├── MalformedMessage   554 5.6.0
    │   ├── MailLoop           554 5.4.6 (too many Received: hops)
    │   ├── OverLimit          554 5.6.0 (a configured limit on headers or MIME)
    │   └── UnknownRecipient   550 5.1.1
    ├── TemporaryFailure       try again later (4xx)                   exit 75
    │   ├── SpoolUnavailable   451 4.3.0
    │   │   └── SpoolFull      452 4.3.1 (the disk or quota is full)
    │   └── DatabaseUnavailable 451 4.3.0
    ├── InvalidTransition      the state machine refused a change
    └── TicketNotFound         no ticket with that number              exit 1
"""

from __future__ import annotations

from typing import ClassVar

from storage.text import showable

# sysexits.h values, so MTAs that pipe into `gateway ingest` know what to do.
EX_DATAERR = 65
EX_TEMPFAIL = 75
EX_CONFIG = 78


class GatewayError(Exception):
    """Base of every error the gateway answers on purpose."""

    smtp_code: ClassVar[int] = 451
    enhanced_status: ClassVar[str] = "4.3.0"
    exit_code: ClassVar[int] = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def smtp_reply(self) -> str:
        """The reply line an SMTP client sees; the reason is kept to one line, and bytes
        that are not UTF-8 in it (what a client sent, which aiosmtpd decodes with
        surrogateescape) are shown as `\\xNN`: a reply holding them cannot be sent."""
        reason = " ".join(self.reason.split())
        return f"{self.smtp_code} {self.enhanced_status} {showable(reason)}"


class ConfigError(GatewayError):
    exit_code = EX_CONFIG


class MessageRefused(GatewayError):
    smtp_code = 554
    enhanced_status = "5.6.0"
    exit_code = EX_DATAERR


class MessageTooLarge(MessageRefused):
    smtp_code = 552
    enhanced_status = "5.3.4"


class MalformedMessage(MessageRefused):
    smtp_code = 554
    enhanced_status = "5.6.0"


class MailLoop(MessageRefused):
    """More `Received:` hops than any sane path has (RFC 5321 6.3)."""

    smtp_code = 554
    enhanced_status = "5.4.6"


class OverLimit(MessageRefused):
    """A configured limit on the message's structure (headers, MIME parts, attachments)."""

    smtp_code = 554
    enhanced_status = "5.6.0"


class UnknownRecipient(MessageRefused):
    smtp_code = 550
    enhanced_status = "5.1.1"


class TemporaryFailure(GatewayError):
    smtp_code = 451
    enhanced_status = "4.3.0"
    exit_code = EX_TEMPFAIL


class SpoolUnavailable(TemporaryFailure):
    pass


class SpoolFull(SpoolUnavailable):
    """No room left to store the message; RFC 3463 calls that "mail system full"."""

    smtp_code = 452
    enhanced_status = "4.3.1"


class DatabaseUnavailable(TemporaryFailure):
    """The database is locked or down; whatever was spooled waits for it."""


class InvalidTransition(GatewayError):
    pass


class TicketNotFound(GatewayError):
    pass


def internal_error(exc: Exception) -> str:
    """The quarantine reason for an exception no stage answered on purpose."""
    return f"internal error: {type(exc).__name__}: {exc}"
