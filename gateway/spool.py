"""The spool: where the gateway takes ownership of a message.

`accept()` writes one queue entry, `queue/<spool id>.msg`: a line holding the receipt
(envelope sender, recipients, source, time, the raw message's SHA-256) and then the raw
message, fsynced with its directory. Only then may a receiver say `250`. One file, not a
receipt beside a blob, so that the `250` waits for as few flushes as it can.

The executor takes receipts from the queue, copies each raw message and its files into the
content-addressed blob store (`keep_raw()`, `keep_file()`, while the batch before is filed)
and after its database commit calls `done()`; a message that fails is moved to
`quarantine/` with its reason, and `replay()` puts it back. The raw message stays in the
blob store forever.

The spool is this host's own, on its own disk, as an MTA's queue is: mail it accepted waits
here until this host has filed it. Its worker processes `claim()` a queue entry with an
exclusive `flock` before filing it, so each entry is filed by one worker at a time, and
the kernel releases the lock of a worker that dies.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.clock import Clock
from gateway.database import temporary_database_errors
from gateway.errors import (
    DatabaseUnavailable,
    MalformedMessage,
    MessageTooLarge,
    SpoolFull,
    SpoolUnavailable,
)
from gateway.limits import Limits, check_header
from storage.blobs import (
    BlobStore,
    fsync_directory,
    remove_stale_temporary_files,
    sha256_hex,
    write_durably,
)

# Outlook's binary .msg files are OLE2 compound documents, not RFC 5322 mail.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Temporary files older than this were left by a killed process, not a write in progress.
STALE_TEMPORARY_SECONDS = 3600.0
# A full disk and an exhausted quota both mean "no room now": the sender should try later.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})

# The receipt line and the raw message after it.
ENTRY_SUFFIX = ".msg"
REASON_SUFFIX = ".reason"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class IntakeSource(enum.StrEnum):
    """How a message reached the spool."""

    SMTP = "smtp"
    LMTP = "lmtp"
    IMAP = "imap"
    # `gateway ingest`, for MTA pipes
    INGEST = "ingest"


@dataclass(frozen=True, slots=True)
class Receipt:
    """One accepted message: its spool id, where its bytes are, and its envelope."""

    spool_id: str
    raw_sha256: str
    source: IntakeSource
    # The envelope sender: "" is the null reverse-path (bounces), None means not known
    # (a pipe that did not pass it).
    mail_from: str | None
    recipients: tuple[str, ...]
    received_at: datetime
    size: int

    @property
    def entry_name(self) -> str:
        return f"{self.spool_id}{ENTRY_SUFFIX}"


class Spool:
    """The queue and quarantine directories beside the blob store that holds the bytes."""

    def __init__(self, root: Path, blobs: BlobStore, limits: Limits, clock: Clock) -> None:
        self.root = root
        self.queue_dir = root / "queue"
        self.quarantine_dir = root / "quarantine"
        self.blobs = blobs
        self.limits = limits
        self.clock = clock

    def prepare(self) -> None:
        """Create the spool's directories; an unusable spool is a temporary failure."""
        for directory in (self.queue_dir, self.quarantine_dir):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpoolUnavailable(f"cannot create {directory}: {exc.strerror}") from exc
        try:
            self.blobs.prepare()
        except OSError as exc:
            raise SpoolUnavailable(f"cannot create the blob store: {exc.strerror}") from exc

    def sweep(self) -> int:
        """Remove the temporary files killed processes left; the number removed. It walks
        the whole blob store, so `serve` does it once at start, not every command."""
        cutoff = self.clock.wall_time().timestamp() - STALE_TEMPORARY_SECONDS
        return self.blobs.sweep(cutoff) + sum(
            remove_stale_temporary_files(directory, cutoff)
            for directory in (self.queue_dir, self.quarantine_dir)
        )

    def accept(
        self, raw: bytes, mail_from: str | None, recipients: Sequence[str], source: IntakeSource
    ) -> Receipt:
        """Take ownership of `raw`: when this returns, the message survives a crash."""
        check_acceptable(raw, self.limits.max_message_bytes)
        check_header(raw, self.limits)
        receipt = new_receipt(raw, mail_from, recipients, source, self.clock)
        try:
            write_durably(self.queue_dir / receipt.entry_name, entry_pieces(receipt, raw))
        except OSError as exc:
            raise spool_failure(exc, "cannot write the spool") from exc
        return receipt

    def keep_refused(
        self,
        raw: bytes,
        mail_from: str | None,
        recipients: Sequence[str],
        source: IntakeSource,
        reason: str,
    ) -> Receipt:
        """Quarantine a message `accept()` refuses when there is nobody to refuse it to (a
        mailbox read over IMAP): kept with its reason, never dropped."""
        receipt = new_receipt(raw, mail_from, recipients, source, self.clock)
        try:
            write_durably(self.reason_path(receipt.spool_id), reason.encode())
            write_durably(self.quarantine_dir / receipt.entry_name, entry_pieces(receipt, raw))
        except OSError as exc:
            raise spool_failure(exc, "cannot write the spool") from exc
        return receipt

    def pending(self) -> list[Receipt]:
        """Receipts waiting for the pipeline, oldest first."""
        waiting = []
        for path in entries_in(self.queue_dir):
            try:
                waiting.append(self._load(path))
            except FileNotFoundError:  # Another worker filed it meanwhile.
                continue
        return waiting

    def backlog(self) -> tuple[int, Receipt | None]:
        """How many entries wait, and the oldest of them, without reading them all."""
        names = entries_in(self.queue_dir)
        for path in names:
            try:
                return len(names), self._load(path)
            except FileNotFoundError:  # Filed meanwhile; the next is the oldest now.
                continue
        return 0, None

    def quarantined(self) -> list[tuple[Receipt, str]]:
        """Quarantined receipts with their reasons, oldest first."""
        entries = []
        for path in entries_in(self.quarantine_dir):
            reason_file = path.with_suffix(REASON_SUFFIX)
            reason = reason_file.read_text("utf-8") if reason_file.exists() else ""
            entries.append((self._load(path), reason))
        return entries

    @contextlib.contextmanager
    def claim(self, receipt: Receipt, wait: bool = False) -> Iterator[bool]:
        """Hold `receipt`'s queue entry against every other worker: True while held; False
        when another worker holds it (and `wait` is false) or it has left the queue."""
        path = self.queue_dir / receipt.entry_name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield is_same_file(path, fd)
        finally:
            os.close(fd)

    def raw(self, receipt: Receipt) -> bytes:
        """The raw message: from its queue (or quarantine) entry, else the blob store."""
        for directory in (self.queue_dir, self.quarantine_dir):
            with contextlib.suppress(FileNotFoundError):
                return raw_of_entry(directory / receipt.entry_name)
        return self.blobs.get(receipt.raw_sha256)

    def keep_raw(self, receipt: Receipt, raw: bytes) -> None:
        """Copy the raw message into the blob store, durably: the tickets filed from it
        refer to it there, and `done()` removes the entry that held it."""
        self.keep_file(receipt, raw, receipt.raw_sha256)

    @contextlib.contextmanager
    def keeping(self) -> Iterator[None]:
        """What is kept within the block is kept together (one transaction in the database
        store), durably once the block ends; `SpoolUnavailable` when it cannot be."""
        with blob_store_errors("cannot keep the blobs"), self.blobs.batch():
            yield

    def keep_file(self, receipt: Receipt, data: bytes, sha256: str) -> None:
        """Keep one of `receipt`'s blobs durably; a store that cannot take it now is the
        temporary failure that leaves the message in the queue."""
        with blob_store_errors(f"cannot store {receipt.spool_id} in the blob store"):
            self.blobs.put(data, sha256)

    def done(self, receipt: Receipt) -> None:
        """The pipeline committed what it made of `receipt`; forget the queue entry."""
        (self.queue_dir / receipt.entry_name).unlink(missing_ok=True)

    def quarantine(self, receipt: Receipt, reason: str) -> None:
        """Park `receipt` with its reason until someone replays it."""
        name = receipt.entry_name
        write_durably(self.reason_path(receipt.spool_id), reason.encode())
        if (self.queue_dir / name).exists():
            os.replace(self.queue_dir / name, self.quarantine_dir / name)
            fsync_directory(self.quarantine_dir)
        elif not (self.quarantine_dir / name).exists():
            # Its entry left the queue unfiled (removed by hand, say): park a copy from the
            # blob store, if the bytes are there at all; the reason is kept either way.
            with contextlib.suppress(FileNotFoundError):
                raw = self.raw(receipt)
                write_durably(self.quarantine_dir / name, entry_pieces(receipt, raw))

    def replay(self, spool_id: str) -> Receipt:
        """Move a quarantined receipt back to the queue."""
        source = self.quarantine_dir / f"{spool_id}{ENTRY_SUFFIX}"
        receipt = self._load(source)
        os.replace(source, self.queue_dir / source.name)
        fsync_directory(self.queue_dir)
        self.reason_path(spool_id).unlink(missing_ok=True)
        return receipt

    def reason_path(self, spool_id: str) -> Path:
        return self.quarantine_dir / f"{spool_id}{REASON_SUFFIX}"

    def _load(self, path: Path) -> Receipt:
        with open(path, "rb") as entry:
            return decode_receipt(entry.readline())


def entries_in(directory: Path) -> list[Path]:
    """The entries in a queue or quarantine directory, oldest first (ids start with the
    time)."""
    return sorted(directory.glob(f"*{ENTRY_SUFFIX}"), key=lambda path: path.stem)


def new_receipt(
    raw: bytes,
    mail_from: str | None,
    recipients: Sequence[str],
    source: IntakeSource,
    clock: Clock,
) -> Receipt:
    """The receipt of a message arriving now: received at the clock's time, its spool id
    keeping the order of arrival by the wall clock, whatever the clock is set to."""
    sha256 = sha256_hex(raw)
    nanoseconds = (clock.wall_time() - EPOCH) // timedelta(microseconds=1) * 1000
    return Receipt(
        spool_id=f"{nanoseconds:x}-{sha256[:12]}-{secrets.token_hex(3)}",
        raw_sha256=sha256,
        source=source,
        mail_from=mail_from,
        recipients=tuple(recipients),
        received_at=clock.now(),
        size=len(raw),
    )


def entry_pieces(receipt: Receipt, raw: bytes) -> list[bytes]:
    """A queue entry as written: the receipt on one line (JSON has no raw line breaks),
    then the message, not joined into one copy."""
    return [encode_receipt(receipt) + b"\n", raw]


def raw_of_entry(path: Path) -> bytes:
    with open(path, "rb") as entry:
        entry.readline()
        return entry.read()


def is_same_file(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd`: a worker that filed the entry
    removes it (or moves it to quarantine) before it lets go of its lock."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def blob_store_errors(what: str) -> Iterator[None]:
    """The blob store's failures as the temporary failure that leaves a message queued:
    the file system's (`what` says doing what) and the database's, whatever they are."""
    try:
        with temporary_database_errors():
            yield
    except OSError as exc:
        raise spool_failure(exc, what) from exc
    except DatabaseUnavailable as exc:
        raise SpoolUnavailable(exc.reason) from exc


def spool_failure(exc: OSError, what: str) -> SpoolUnavailable:
    """What the file system said, as the temporary failure a receiver answers: the spool
    cannot take the message now."""
    reason = f"{what}: {exc.strerror or exc}"
    return SpoolFull(reason) if exc.errno in NO_ROOM else SpoolUnavailable(reason)


def check_acceptable(raw: bytes, max_message_bytes: int) -> None:
    """Refuse what must never be owned: too large, empty, or not mail at all."""
    if len(raw) > max_message_bytes:
        raise MessageTooLarge(
            f"message of {len(raw)} bytes exceeds the limit of {max_message_bytes} bytes"
        )
    if not raw.strip():
        raise MalformedMessage("message is empty")
    if raw.startswith(OLE2_MAGIC):
        raise MalformedMessage("an Outlook .msg file is not an RFC 5322 message")


def encode_receipt(receipt: Receipt) -> bytes:
    return json.dumps(
        {
            "spool_id": receipt.spool_id,
            "raw_sha256": receipt.raw_sha256,
            "source": receipt.source,
            "mail_from": receipt.mail_from,
            "recipients": list(receipt.recipients),
            "received_at": receipt.received_at.isoformat(),
            "size": receipt.size,
        }
    ).encode()


def decode_receipt(data: bytes) -> Receipt:
    fields = json.loads(data)
    return Receipt(
        spool_id=fields["spool_id"],
        raw_sha256=fields["raw_sha256"],
        source=IntakeSource(fields["source"]),
        mail_from=fields["mail_from"],
        recipients=tuple(fields["recipients"]),
        received_at=datetime.fromisoformat(fields["received_at"]),
        size=fields["size"],
    )
