"""IMAP intake: the support mailbox at a hosted mail service, read into the spool.

Receivers only spool. For each new message: fetch it by UID with `BODY.PEEK[]` (a plain
`RFC822` fetch would mark it read), hand it to `Spool.accept()` (fsynced), commit the UID
to the database, and only then flag it `\\Seen` or move it to the done folder. A crash at
any point re-delivers at most, and the pipeline's dedupe key makes a second copy a no-op.

The folder's UIDVALIDITY and UIDs live in `imap_folders`. The first read of a folder (and a
read after a new UIDVALIDITY, when the folder was recreated) takes what is unread and records
the rest as a baseline, so a mailbox's history is not turned into tickets; from then on
every new UID is taken, read or not. IDLE is used when the server has it, so new mail is
spooled within a second or two; otherwise the folder is polled. Connecting, logging in,
waiting in IDLE and the errors of all three are `imap_client`'s.

Of several gateways on one database, one reads a given mailbox at a time: it holds the
mailbox's lock (`alone()`, `gateway.hosts`); the others wait, and one of them takes over
within `TAKE_OVER_SECONDS` when the lock of a reader that stopped or died is freed.
"""

from __future__ import annotations

import email.parser
import email.utils
import logging
import multiprocessing
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.clock import Clock
from gateway.database import Sessions, reading, transaction
from gateway.errors import (
    ConfigError,
    GatewayError,
    MessageRefused,
)
from gateway.hosts import Hold, HostLocks
from gateway.imap_client import Outage, connected, describe, unavailable, wait_in_idle
from gateway.setting_values import ImapAccount
from gateway.settings import Imap
from gateway.spool import IntakeSource, Spool
from storage.models import ImapFolder

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
# After a refused login, try again this rarely: the password may be fixed meanwhile.
LOGIN_RETRY_SECONDS = 300.0
# How often a gateway waiting for another's mailbox lock tries to take it over.
TAKE_OVER_SECONDS = 5.0


class PassState:
    """For readiness: when a pass over the folder last went through to its end, and whether
    this gateway waits while another reads the mailbox. In shared memory: the web service,
    in a process of its own, reads what the reader's thread writes."""

    def __init__(self) -> None:
        # [end of the last pass as a POSIX time (0: none yet), standing by (0 or 1)]
        self.shared = multiprocessing.RawArray("d", 2)

    @property
    def last_pass_at(self) -> datetime | None:
        seconds = float(self.shared[0])
        return datetime.fromtimestamp(seconds, UTC) if seconds else None

    @last_pass_at.setter
    def last_pass_at(self, moment: datetime | None) -> None:
        self.shared[0] = moment.timestamp() if moment else 0.0

    @property
    def standing_by(self) -> bool:
        return bool(self.shared[1])

    @standing_by.setter
    def standing_by(self, value: bool) -> None:
        self.shared[1] = 1.0 if value else 0.0


class MailboxReader:
    """Reads one IMAP folder into the spool."""

    def __init__(
        self,
        settings: Imap,
        spool: Spool,
        sessions: Sessions,
        support_address: str,
        clock: Clock,
        on_spooled: Callable[[], None] = lambda: None,
    ) -> None:
        assert settings.account is not None
        self.account: ImapAccount = settings.account
        self.settings = settings
        self.spool = spool
        self.sessions = sessions
        self.support_address = support_address
        self.clock = clock
        self.on_spooled = on_spooled
        # The folder's UIDNEXT when it was last selected.
        self.uidnext = 0
        # Set by `run()`'s caller to stop; checked between messages of a long drain.
        self.stopping = threading.Event()
        self.state = PassState()

    # -- one pass --------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Connect, spool every new message, disconnect; the number spooled."""
        with self.connection() as client:
            return self.drain(client)

    def drain(self, client: IMAPClient) -> int:
        """Spool every message not read yet, then flag or move what has been spooled."""
        status = client.select_folder(self.account.folder)
        uidvalidity = int(status[b"UIDVALIDITY"])
        self.uidnext = int(status.get(b"UIDNEXT", 0))
        state = self.folder_state(uidvalidity)
        first_read = state is None
        new = self.new_uids(client, state)
        for uid in new:
            if self.stopping.is_set():
                return 0
            self.take(client, uid)
            self.remember(uidvalidity, uid)
            self.on_spooled()
            self.finish(client, [uid])
        if first_read:
            self.remember_baseline(uidvalidity, self.uidnext - 1)
        elif state is not None and (unfinished := self.left_unfinished(client, state)):
            self.finish(client, unfinished)
        self.state.last_pass_at = self.clock.now()
        return len(new)

    def new_uids(self, client: IMAPClient, state: tuple[int, int] | None) -> list[int]:
        """UIDs to fetch, oldest first. Without a state (first read, or a new UIDVALIDITY)
        the unread messages; otherwise every UID above the last one taken."""
        if state is None:
            return sorted(int(uid) for uid in client.search(["UNSEEN", "NOT", "DELETED"]))
        last_uid = state[1]
        # `UID n:*` always matches the newest message, even below n; hence the filter.
        found = client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(int(uid) for uid in found if int(uid) > last_uid)

    def left_unfinished(self, client: IMAPClient, state: tuple[int, int]) -> list[int]:
        """Messages spooled in an earlier pass that a crash left unflagged or unmoved.

        Only UIDs above the baseline count: every one of those was taken, while at or below
        it lie messages that were already read when the folder was first read.
        """
        baseline, last_uid = state
        if last_uid <= baseline:
            return []
        criteria: list[str] = ["UID", f"{baseline + 1}:{last_uid}", "NOT", "DELETED"]
        if not self.settings.folder_done:
            criteria.append("UNSEEN")
        return sorted(
            int(uid) for uid in client.search(criteria) if baseline < int(uid) <= last_uid
        )

    def take(self, client: IMAPClient, uid: int) -> None:
        """Fetch one message without marking it read, and spool it (or quarantine it)."""
        fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid)
        if fetched is None or b"BODY[]" not in fetched:
            if client.search(["UID", str(uid)]):
                # Still there: never commit a UID whose message we do not have.
                raise unavailable(self.account, f"the server did not hand over UID {uid}")
            return  # Expunged by another client since the search: nothing to own.
        raw = bytes(fetched[b"BODY[]"])
        sender = envelope_sender(raw)
        recipients = [self.support_address]
        try:
            self.spool.accept(raw, sender, recipients, IntakeSource.IMAP)
        except MessageRefused as exc:
            # Over IMAP there is nobody to refuse it to: keep it, with the reason.
            log.warning("IMAP UID %s quarantined: %s", uid, exc.reason)
            self.spool.keep_refused(raw, sender, recipients, IntakeSource.IMAP, exc.reason)

    def finish(self, client: IMAPClient, uids: list[int]) -> None:
        """Mark spooled messages done on the server: moved, or flagged `\\Seen`."""
        if not self.settings.folder_done:
            client.add_flags(uids, [SEEN], silent=True)
            return
        if client.has_capability("MOVE"):
            client.move(uids, self.settings.folder_done)
            return
        client.copy(uids, self.settings.folder_done)
        client.delete_messages(uids, silent=True)
        # A plain EXPUNGE would also remove what other clients marked \Deleted; without
        # UIDPLUS the copies stay marked until someone expunges the folder.
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)

    # -- the folder's state in the database ------------------------------------------------

    def folder_state(self, uidvalidity: int) -> tuple[int, int] | None:
        """(baseline UID, last UID taken) under this UIDVALIDITY; None to read afresh."""
        with reading(self.sessions) as session:
            folder = self.folder_row(session)
            if folder is None:
                return None
            if folder.uidvalidity != uidvalidity:
                log.warning(
                    "%s: UIDVALIDITY changed from %s to %s; reading the folder again",
                    self.account,
                    folder.uidvalidity,
                    uidvalidity,
                )
                return None
            return folder.baseline_uid, folder.last_uid

    def remember(self, uidvalidity: int, uid: int) -> None:
        """Commit that `uid` is spooled; only after this may it be flagged or moved."""
        with transaction(self.sessions) as session:
            folder = self.current_row(session, uidvalidity)
            folder.last_uid = max(folder.last_uid, uid)

    def remember_baseline(self, uidvalidity: int, uid: int) -> None:
        """After a first read: everything up to `uid` has been looked at."""
        with transaction(self.sessions) as session:
            folder = self.current_row(session, uidvalidity)
            folder.baseline_uid = folder.last_uid = max(folder.last_uid, uid, 0)

    def current_row(self, session: Session, uidvalidity: int) -> ImapFolder:
        """The folder's row, started afresh for a new UIDVALIDITY."""
        folder = self.folder_row(session)
        if folder is None:
            folder = ImapFolder(
                mailbox=self.mailbox_key, uidvalidity=uidvalidity, baseline_uid=0, last_uid=0
            )
            session.add(folder)
        elif folder.uidvalidity != uidvalidity:
            folder.uidvalidity, folder.baseline_uid, folder.last_uid = uidvalidity, 0, 0
        folder.updated_at = self.clock.now()
        return folder

    def folder_row(self, session: Session) -> ImapFolder | None:
        return session.scalars(
            select(ImapFolder).where(ImapFolder.mailbox == self.mailbox_key)
        ).first()

    @property
    def mailbox_key(self) -> str:
        return f"{self.account.user}@{self.account.host}:{self.account.port}/{self.account.folder}"

    # -- connecting ------------------------------------------------------------------------

    def connection(self) -> AbstractContextManager[IMAPClient]:
        """A logged-in client on the folder; see `imap_client.connected`."""
        return connected(self.settings)

    # -- one reader among gateways ---------------------------------------------------------

    def alone(self, locks: HostLocks) -> AbstractContextManager[Hold]:
        """Held while this process holds the mailbox's lock; not when another does."""
        return locks.exclusive(f"imap {self.mailbox_key}")

    def run_alone(self, stop: threading.Event, locks: HostLocks) -> None:
        """`run()`, while no other gateway on the database reads this mailbox: until
        `stop`, taking the lock over whenever it is free, and reading only while held."""
        said = False
        while not stop.is_set():
            try:
                if self.read_while_held(stop, locks):
                    said = False
                    continue
            except GatewayError as exc:  # The database is down: try again later.
                log.warning("IMAP intake waits for the mailbox's lock: %s", exc.reason)
            if not said:
                log.info("another gateway reads %s; taking over if it stops", self.account)
                said = True
            stop.wait(TAKE_OVER_SECONDS)

    def read_while_held(self, stop: threading.Event, locks: HostLocks) -> bool:
        """Read the mailbox while this process holds its lock; whether it did."""
        with self.alone(locks) as hold:
            self.state.standing_by = not hold
            if hold:
                self.run(hold.until(stop))
                if hold.lost.is_set():
                    log.warning("lost the lock of %s; reading again once it is free", self.account)
            return bool(hold)

    # -- running until stopped -------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Read the folder until `stop` is set: IDLE or polling, reconnecting with backoff.

        Nothing ends this loop but `stop`: an unexpected error is logged and retried like an
        outage, so the intake never dies silently while the listeners go on.
        """
        self.stopping = stop
        outage = Outage(str(self.account))
        while not stop.is_set():
            try:
                with self.connection() as client:
                    self.follow(client, stop, outage)
            except ConfigError as exc:
                log.error(
                    "IMAP intake: %s (trying again in %.0fs)", exc.reason, LOGIN_RETRY_SECONDS
                )
                stop.wait(LOGIN_RETRY_SECONDS)
            except GatewayError as exc:  # the server, the spool or the database
                stop.wait(outage.began(exc.reason))
            except Exception as exc:  # Keep reading mail whatever went wrong; say what.
                log.exception("IMAP intake failed unexpectedly")
                stop.wait(outage.began(f"IMAP {self.account} failed: {describe(exc)}"))

    def follow(self, client: IMAPClient, stop: threading.Event, outage: Outage) -> None:
        """On one connection: spool what is new, then wait for more."""
        can_idle = client.has_capability("IDLE")
        if not can_idle:
            log.info(
                "%s offers no IDLE; polling every %.0fs", self.account, self.settings.poll_seconds
            )
        while not stop.is_set():
            self.drain(client)
            outage.ended()  # Only a whole pass proves the mailbox usable again.
            if self.arrived_meanwhile(client):
                continue
            if can_idle:
                wait_in_idle(client, stop, self.account)
            else:
                stop.wait(self.settings.poll_seconds)

    def arrived_meanwhile(self, client: IMAPClient) -> bool:
        """Whether mail arrived while the folder was being read: its notification may
        already have been consumed by a command, so IDLE would not report it."""
        status = client.folder_status(self.account.folder, [b"UIDNEXT"])
        return int(status.get(b"UIDNEXT", 0)) > self.uidnext


def envelope_sender(raw: bytes) -> str | None:
    """The `Return-Path` the delivering server recorded: '' for a bounce, None if absent."""
    headers = email.parser.BytesHeaderParser().parsebytes(raw[:65536])
    value = headers.get("Return-Path")
    if value is None:
        return None
    text = str(value).strip()
    if text in ("<>", ""):
        return ""
    return email.utils.parseaddr(text)[1] or None
