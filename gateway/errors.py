"""The gateway's errors, each carrying how it is answered.

Every error has a reason that names the problem and a CLI exit code; the ones a receiver
answers over SMTP also carry their reply (`SmtpAnswer`). `smtp_inbound` turns those into
replies, `cli` turns every error into an exit code, and after the spool has a message the
executor turns them into a quarantine reason. Foreign errors are mapped into this tree in
one place per library: SQLAlchemy's in `database`, smtplib's in `delivery`
(`SmtpRelay.answered`), imapclient's and the IMAP connection's in `imap_inbound`
(`mailbox_errors`), and the file system's where the spool takes or keeps a message in
`spool` (`spool_failure`).

    GatewayError                                                          exit 1
    ├── ConfigError             a setting is missing or wrong             exit 78
    │   ├── MailboxLoginRefused the IMAP server refused the login
    │   └── CannotCreate        a directory a setting names cannot be made exit 73
    ├── UsageError              a command asks for what cannot be done
    │   └── InputMissing        a file to read is missing or unreadable  exit 66
    ├── NotFound                no such ticket, stored file or quarantined message
    ├── ChangeRefused           the workflow will not make a change
    │   ├── InvalidTransition   the state machine does not allow it
    │   └── CommandRefused      a well-formed command that does not apply now
    ├── MessageRefused          refused for good; SMTP 554 5.6.0          exit 65
    │   ├── MessageTooLarge     552 5.3.4
    │   ├── MalformedMessage    554 5.6.0
    │   ├── MailLoop            554 5.4.6 (too many Received: hops)
    │   ├── OverLimit           554 5.6.0 (a configured limit on headers or MIME)
    │   └── UnknownRecipient    550 5.1.1
    ├── TemporaryFailure        try again later                           exit 75
    │   ├── SpoolUnavailable    451 4.3.0
    │   │   └── SpoolFull       452 4.3.1 (the disk or quota is full)
    │   ├── ServerError         451 4.3.0 (a failure nobody answered on purpose)
    │   ├── DatabaseUnavailable the database is locked or down
    │   ├── MailboxUnavailable  the IMAP server is down or went away
    │   └── DeliveryDeferred    the relay said "later", or cannot be reached
    ├── WriteConflict           another writer stored the same row first
    └── DeliveryRejected        the relay refused a recipient for good
"""

from __future__ import annotations

from typing import ClassVar

from gateway.phrases import Phrase
from storage.text import showable

# sysexits.h values, so MTAs that pipe into `gateway ingest` know what to do.
EX_DATAERR = 65
EX_NOINPUT = 66
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78


class GatewayError(Exception):
    """Base of every error the gateway answers on purpose."""

    exit_code: ClassVar[int] = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SmtpAnswer:
    """What an error a receiver answers says to the SMTP client."""

    smtp_code: ClassVar[int]
    enhanced_status: ClassVar[str]
    reason: str

    def smtp_reply(self) -> str:
        """The reply line an SMTP client sees; the reason is kept to one line, and bytes
        that are not UTF-8 in it (what a client sent, which aiosmtpd decodes with
        surrogateescape) are shown as `\\xNN`: a reply holding them cannot be sent."""
        reason = " ".join(self.reason.split())
        return f"{self.smtp_code} {self.enhanced_status} {showable(reason)}"


class ConfigError(GatewayError):
    exit_code = EX_CONFIG


class MailboxLoginRefused(ConfigError):
    pass


class CannotCreate(ConfigError):
    """A directory a setting names cannot be created or written to."""

    exit_code = EX_CANTCREAT


class UsageError(GatewayError):
    pass


class InputMissing(UsageError):
    exit_code = EX_NOINPUT


class NotFound(GatewayError):
    pass


class ChangeRefused(GatewayError):
    """Carries its reason in both languages engineers read (`phrase`)."""

    def __init__(self, reason: str | Phrase) -> None:
        super().__init__(str(reason))
        self.phrase = reason if isinstance(reason, Phrase) else Phrase(reason, reason)


class InvalidTransition(ChangeRefused):
    pass


class CommandRefused(ChangeRefused):
    pass


class MessageRefused(SmtpAnswer, GatewayError):
    smtp_code = 554
    enhanced_status = "5.6.0"
    exit_code = EX_DATAERR


class MessageTooLarge(MessageRefused):
    smtp_code = 552
    enhanced_status = "5.3.4"


class MalformedMessage(MessageRefused):
    pass


class MailLoop(MessageRefused):
    """More `Received:` hops than any sane path has (RFC 5321 6.3)."""

    enhanced_status = "5.4.6"


class OverLimit(MessageRefused):
    """A configured limit on the message's structure (headers, MIME parts, attachments)."""


class UnknownRecipient(MessageRefused):
    smtp_code = 550
    enhanced_status = "5.1.1"


class TemporaryFailure(GatewayError):
    exit_code = EX_TEMPFAIL


class SpoolUnavailable(SmtpAnswer, TemporaryFailure):
    smtp_code = 451
    enhanced_status = "4.3.0"


class SpoolFull(SpoolUnavailable):
    """No room left to store the message; RFC 3463 calls that "mail system full"."""

    smtp_code = 452
    enhanced_status = "4.3.1"


class ServerError(SmtpAnswer, TemporaryFailure):
    smtp_code = 451
    enhanced_status = "4.3.0"


class DatabaseUnavailable(TemporaryFailure):
    """The database is locked or down; whatever was spooled waits for it."""


class MailboxUnavailable(TemporaryFailure):
    """The IMAP server cannot be reached, said BYE, or would not hand over a message."""


class DeliveryDeferred(TemporaryFailure):
    """The relay answered 4xx, or could not be reached: the mail is tried again later."""


class WriteConflict(GatewayError):
    """A unique constraint broke: another process stored the same row first."""


class DeliveryRejected(GatewayError):
    """The relay refused the recipient for good (5xx): retrying cannot help."""


# What a receiver answers on purpose; anything else is a `ServerError`.
SMTP_ANSWERED = (MessageRefused, SpoolUnavailable)


def internal_error(exc: Exception) -> str:
    """The quarantine reason for an exception no stage answered on purpose."""
    return f"internal error: {type(exc).__name__}: {exc}"
