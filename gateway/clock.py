"""The one clock: every rule that depends on the time of day asks it.

Auto-close, the reopen window, the caps on automatic mail, address holds, delivery backoff,
the times rows record and the dates on mail all take the time from a `Clock` passed in.
This module is the only place that reads the wall clock; a clock set to a moment
(`Clock.at`) makes `gateway due --now T` and the tests run every rule as of that moment.

What keeps processes apart in real time follows the wall clock whatever the clock is set
to (`wall_time`): a delivery lease other workers honour, the age of a temporary file
another process may be writing, the order in which messages reached the spool. Durations
within one process (socket timeouts) are measured with `time.monotonic`, which is not a
time of day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The current time, timezone-aware UTC: the wall clock's, or a moment set by hand."""

    def __init__(self, fixed: datetime | None = None) -> None:
        if fixed is not None and fixed.tzinfo is None:
            raise ValueError("a clock needs an aware datetime")
        self.fixed = fixed

    @classmethod
    def at(cls, moment: datetime) -> Clock:
        """A clock that stands at `moment` until moved on."""
        return cls(moment.astimezone(UTC))

    def now(self) -> datetime:
        return self.fixed if self.fixed is not None else self.wall_time()

    def wall_time(self) -> datetime:
        """The real time, for what other processes must agree on (see the module's
        docstring); never for a rule."""
        return datetime.now(UTC)

    def fast_forward(self, by: timedelta) -> None:
        """Move a set clock on; the wall clock moves by itself."""
        if self.fixed is None:
            raise ValueError("the wall clock cannot be moved")
        self.fixed += by
