"""`GET /readyz`: whether this gateway can take mail and move it on, now.

Four checks, each answering for itself: the database takes a write (one that only answers
reads, or whose write lock another holds longer than `LOCK_WAIT_MS`, is not ready),
mail moves through this host's spool, the outbox is not stuck, and the IMAP intake, when a
mailbox is configured, has read its folder lately or stands by for another gateway's lock.
A check that fails says why in its `detail`, in a line: never a traceback. Time is the
gateway's clock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, text

from gateway.app import Gateway
from gateway.database import briefly
from gateway.errors import GatewayError
from gateway.imap_inbound import PassState
from gateway.spool import Spool
from storage.models import OutboxMail, OutboxState

log = logging.getLogger(__name__)

# The longest a check waits for a lock another connection holds: a database whose writer
# holds it longer is not ready, and the answer comes in time.
LOCK_WAIT_MS = 2000
# Mail waiting in the spool longer than this is not moving: no worker is filing it.
SPOOL_STUCK_AFTER = timedelta(minutes=5)
# Mail due this long ago and still pending is stuck: no dispatcher is sending it.
OUTBOX_STUCK_AFTER = timedelta(minutes=15)
# The IMAP intake ends a pass at least every poll (or IDLE renewal); it is behind when the
# last one ended longer ago than three polls, and never less than this.
IMAP_QUIET_AT_MOST = timedelta(minutes=5)
# A write that changes nothing, taken back: the schema's revision set to itself.
TOUCH_SCHEMA_REVISION = text("UPDATE alembic_version SET version_num = version_num")
# A detail is one short line; a driver's message may run on (SQLAlchemy adds the statement
# and a link on lines of their own).
DETAIL_CHARACTERS = 300


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """Every check's result; ready only when all of them are."""

    ok: bool
    checks: dict[str, dict[str, object]]

    def as_json(self) -> bytes:
        return json.dumps({"ok": self.ok, "checks": self.checks}).encode()


def readiness(gateway: Gateway, mailbox: PassState | None) -> Readiness:
    """Run every check now."""
    now = gateway.clock.now()
    checks = {
        "database": checked(lambda: database_writable(gateway.engine)),
        "spool": checked(lambda: spool_moving(gateway.spool, now)),
        "outbox": checked(lambda: outbox_moving(gateway.engine, now)),
        "imap": checked(lambda: imap_reading(mailbox, gateway.settings.imap.poll_seconds, now)),
    }
    return Readiness(
        all(check.ok for check in checks.values()),
        {name: {"ok": check.ok, "detail": check.detail} for name, check in checks.items()},
    )


def checked(check: Callable[[], Check]) -> Check:
    """The check's result, or its failure as a failed check."""
    try:
        return check()
    except GatewayError as exc:
        log.warning("not ready: %s", exc.reason)
        return Check(False, one_line(exc.reason))
    except Exception as exc:  # A check that breaks says so; it never breaks the answer.
        log.exception("readiness check failed")
        return Check(False, one_line(f"{type(exc).__name__}: {exc}"))


# -- the checks ------------------------------------------------------------------------------


def database_writable(engine: Engine) -> Check:
    """A write transaction, taken back."""
    with briefly(engine, LOCK_WAIT_MS) as connection:
        connection.execute(TOUCH_SCHEMA_REVISION)
        connection.rollback()
    return Check(True, "a write went through (and was taken back)")


def spool_moving(spool: Spool, now: datetime) -> Check:
    """Nothing has waited in this host's spool longer than `SPOOL_STUCK_AFTER`."""
    waiting, oldest = spool.backlog()
    if oldest is None:
        return Check(True, "nothing waiting")
    waited = now - oldest.received_at
    said = f"{waiting} waiting, the oldest for {whole_seconds(waited)}s"
    return Check(waited <= SPOOL_STUCK_AFTER, said)


def outbox_moving(engine: Engine, now: datetime) -> Check:
    """No pending mail was due longer than `OUTBOX_STUCK_AFTER` ago."""
    with briefly(engine, LOCK_WAIT_MS) as connection:
        pending, first_due = connection.execute(
            select(func.count(), func.min(OutboxMail.next_attempt_at)).where(
                OutboxMail.state == OutboxState.PENDING
            )
        ).one()
    if first_due is None:
        return Check(True, "nothing pending")
    late = now - first_due
    if late <= OUTBOX_STUCK_AFTER:
        return Check(True, f"{pending} pending")
    return Check(False, f"{pending} pending, the first due {whole_seconds(late)}s ago")


def imap_reading(mailbox: PassState | None, poll_seconds: float, now: datetime) -> Check:
    """The IMAP intake ended a pass lately, or stands by; "off" without a mailbox."""
    if mailbox is None:
        return Check(True, "off")
    if mailbox.standing_by:
        return Check(True, "standing by: another gateway reads the mailbox")
    if mailbox.last_pass_at is None:
        return Check(False, "no pass over the folder has ended yet")
    allowed = max(3 * timedelta(seconds=poll_seconds), IMAP_QUIET_AT_MOST)
    ago = now - mailbox.last_pass_at
    return Check(ago <= allowed, f"the last pass ended {whole_seconds(ago)}s ago")


def whole_seconds(span: timedelta) -> int:
    return max(0, int(span.total_seconds()))


def one_line(detail: str) -> str:
    """The first line of `detail` that says anything, cut short."""
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return (lines[0] if lines else "")[:DETAIL_CHARACTERS]
