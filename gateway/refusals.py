"""What the SMTP and LMTP listeners refused at the door, counted by kind.

Mail refused before the spool leaves no row anywhere, so the listeners count it here, in
shared memory, and `/metrics` reads the tally from the web service's process. The kinds are
a fixed set: a reason's text (an address, a size) never becomes a label. The tally starts
at zero with `serve`.
"""

from __future__ import annotations

import enum
import multiprocessing
import threading
from typing import Any

from gateway.errors import (
    MailLoop,
    MalformedMessage,
    MessageTooLarge,
    OverLimit,
    ServerError,
    SmtpAnswer,
    SpoolFull,
    SpoolUnavailable,
    UnknownRecipient,
)


class Refusal(enum.StrEnum):
    """Why the door was shut."""

    UNKNOWN_RECIPIENT = "unknown_recipient"
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    MAIL_LOOP = "mail_loop"
    OVER_LIMIT = "over_limit"
    SPOOL_FULL = "spool_full"
    SPOOL_UNAVAILABLE = "spool_unavailable"
    # A failure nobody answered on purpose, answered `451`.
    SERVER_ERROR = "server_error"
    OTHER = "other"


# Subclasses before the classes they refine: a full spool is an unavailable one too.
KINDS: tuple[tuple[type[SmtpAnswer], Refusal], ...] = (
    (UnknownRecipient, Refusal.UNKNOWN_RECIPIENT),
    (MessageTooLarge, Refusal.TOO_LARGE),
    (MalformedMessage, Refusal.MALFORMED),
    (MailLoop, Refusal.MAIL_LOOP),
    (OverLimit, Refusal.OVER_LIMIT),
    (SpoolFull, Refusal.SPOOL_FULL),
    (SpoolUnavailable, Refusal.SPOOL_UNAVAILABLE),
    (ServerError, Refusal.SERVER_ERROR),
)


def refusal_of(answer: SmtpAnswer) -> Refusal:
    """The kind of refusal an error answered at the door is."""
    return next((kind for cls, kind in KINDS if isinstance(answer, cls)), Refusal.OTHER)


class Tally:
    """Counts by kind in shared memory: bumped by the listeners' threads (one at a time),
    read by any process `shared` is passed to, each count a whole machine word."""

    def __init__(self, shared: Any = None) -> None:
        self._lock = threading.Lock()
        self.shared = shared if shared is not None else multiprocessing.RawArray("q", len(Refusal))

    def count(self, refusal: Refusal) -> None:
        with self._lock:
            self.shared[ORDER[refusal]] += 1

    def counts(self) -> dict[Refusal, int]:
        """Every kind with its count so far, zeros included."""
        return {kind: int(self.shared[index]) for kind, index in ORDER.items()}

    # Passed to another process (the web service's), the tally keeps its shared memory and
    # takes a lock of its own.
    def __getstate__(self) -> Any:
        return self.shared

    def __setstate__(self, shared: Any) -> None:
        self.__init__(shared)  # type: ignore[misc]


ORDER = {kind: index for index, kind in enumerate(Refusal)}


# This process's listeners share one tally, as they share one spool.
REFUSED = Tally()


def refused(answer: SmtpAnswer) -> SmtpAnswer:
    """Count `answer` as a refusal; the same answer, to send."""
    REFUSED.count(refusal_of(answer))
    return answer
