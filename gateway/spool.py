"""The spool: where the gateway takes ownership of a message.

`accept()` writes one queue entry, `queue/<spool id>.msg`: a line holding the receipt
(envelope sender, recipients, source, time, the raw message's SHA-256) and then the raw
message, fsynced with its directory. Only then may a receiver say `250`. One file costs two
fsyncs; a receipt beside a blob, each with its directory, cost four, and on a busy disk
those flushes were most of the spool's share of the time before the reply.

The pipeline takes receipts from the queue, copies each raw message into the
content-addressed blob store (`keep_raw()`, while the batch before is filed) and after its
database commit calls `done()`; a message that fails is moved to `quarantine/` with its
reason, and `replay()` puts it back. The raw message stays in the blob store forever.
Entries spooled by earlier versions, `<spool id>.json` with the raw message already in the
blob store, are read as well.

Several gateway processes may share one spool (one data directory on a shared volume): a
worker `claim()`s a queue entry with an exclusive `flock` before filing it, so each entry is
filed by one worker at a time, and the kernel releases the lock of a worker that dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import MalformedMessage, MessageTooLarge, SpoolFull, SpoolUnavailable
from gateway.limits import DEFAULT_LIMITS, Limits, check_header
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
# Only the receipt, the raw message already in the blob store: what earlier versions wrote.
RECEIPT_ONLY_SUFFIX = ".json"
ENTRY_SUFFIXES = (ENTRY_SUFFIX, RECEIPT_ONLY_SUFFIX)


@dataclass(frozen=True, slots=True)
class Receipt:
    """One accepted message: its spool id, where its bytes are, and its envelope."""

    spool_id: str
    raw_sha256: str
    source: str
    # The envelope sender: "" is the null reverse-path (bounces), None means not known
    # (a pipe that did not pass it).
    mail_from: str | None
    recipients: tuple[str, ...]
    received_at: datetime
    size: int
    # Whether the queue entry holds the raw message (else it is only in the blob store).
    raw_in_entry: bool = True

    @property
    def entry_name(self) -> str:
        suffix = ENTRY_SUFFIX if self.raw_in_entry else RECEIPT_ONLY_SUFFIX
        return f"{self.spool_id}{suffix}"


class Spool:
    """The queue and quarantine directories beside the blob store that holds the bytes."""

    def __init__(
        self, root: Path, blobs: BlobStore, max_message_bytes: int, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.root = root
        self.queue_dir = root / "queue"
        self.quarantine_dir = root / "quarantine"
        self.blobs = blobs
        self.max_message_bytes = max_message_bytes
        self.limits = limits

    def prepare(self) -> None:
        """Create the spool's directories; an unusable spool is a temporary failure."""
        for directory in (self.queue_dir, self.quarantine_dir, self.blobs.root):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpoolUnavailable(f"cannot create {directory}: {exc.strerror}") from exc

    def sweep(self) -> int:
        """Remove the temporary files killed processes left; the number removed. It walks
        the whole blob store, so `serve` does it once at start, not every command."""
        return sum(
            remove_stale_temporary_files(directory, STALE_TEMPORARY_SECONDS)
            for directory in (self.queue_dir, self.quarantine_dir, self.blobs.root)
        )

    def accept(
        self, raw: bytes, mail_from: str | None, recipients: Sequence[str], source: str
    ) -> Receipt:
        """Take ownership of `raw`: when this returns, the message survives a crash."""
        check_acceptable(raw, self.max_message_bytes)
        check_header(raw, self.limits)
        receipt = new_receipt(raw, mail_from, recipients, source)
        try:
            write_durably(self.queue_dir / receipt.entry_name, entry_pieces(receipt, raw))
        except OSError as exc:
            raise spool_failure(exc) from exc
        return receipt

    def keep_refused(
        self, raw: bytes, mail_from: str | None, recipients: Sequence[str], source: str, reason: str
    ) -> Receipt:
        """Quarantine a message `accept()` refuses when there is nobody to refuse it to (a
        mailbox read over IMAP): kept with its reason, never dropped."""
        receipt = new_receipt(raw, mail_from, recipients, source)
        try:
            write_durably(self.quarantine_dir / f"{receipt.spool_id}.reason", reason.encode())
            write_durably(self.quarantine_dir / receipt.entry_name, entry_pieces(receipt, raw))
        except OSError as exc:
            raise spool_failure(exc) from exc
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
            reason_file = path.with_suffix(".reason")
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
        if receipt.raw_in_entry:
            for directory in (self.queue_dir, self.quarantine_dir):
                with contextlib.suppress(FileNotFoundError):
                    return raw_of_entry(directory / receipt.entry_name)
        return self.blobs.get(receipt.raw_sha256)

    def keep_raw(self, receipt: Receipt, raw: bytes) -> None:
        """Copy the raw message into the blob store, durably: the tickets filed from it
        refer to it there, and `done()` removes the entry that held it."""
        if receipt.raw_in_entry:
            blob = self.blobs.path_for(receipt.raw_sha256)
            if blob.exists():
                # Maybe a writer killed between its rename and its directory's fsync.
                fsync_directory(blob.parent)
            else:
                self.blobs.put(raw, receipt.raw_sha256)

    def done(self, receipt: Receipt) -> None:
        """The pipeline committed what it made of `receipt`; forget the queue entry."""
        (self.queue_dir / receipt.entry_name).unlink(missing_ok=True)

    def quarantine(self, receipt: Receipt, reason: str) -> None:
        """Park `receipt` with its reason until someone replays it."""
        name = receipt.entry_name
        write_durably(self.quarantine_dir / f"{receipt.spool_id}.reason", reason.encode())
        if (self.queue_dir / name).exists():
            os.replace(self.queue_dir / name, self.quarantine_dir / name)
            fsync_directory(self.quarantine_dir)
        elif not (self.quarantine_dir / name).exists():
            # Not in the queue: only the blob store holds the message, so the receipt
            # alone is what there is to park.
            write_durably(
                self.quarantine_dir / f"{receipt.spool_id}{RECEIPT_ONLY_SUFFIX}",
                encode_receipt(receipt),
            )

    def replay(self, spool_id: str) -> Receipt:
        """Move a quarantined receipt back to the queue."""
        entries = [self.quarantine_dir / f"{spool_id}{suffix}" for suffix in ENTRY_SUFFIXES]
        source = next((entry for entry in entries if entry.exists()), entries[0])
        receipt = self._load(source)
        os.replace(source, self.queue_dir / source.name)
        fsync_directory(self.queue_dir)
        (self.quarantine_dir / f"{spool_id}.reason").unlink(missing_ok=True)
        return receipt

    def _load(self, path: Path) -> Receipt:
        if path.suffix == RECEIPT_ONLY_SUFFIX:
            return decode_receipt(path.read_bytes(), raw_in_entry=False)
        with open(path, "rb") as entry:
            return decode_receipt(entry.readline(), raw_in_entry=True)


def entries_in(directory: Path) -> list[Path]:
    """The entries in a queue or quarantine directory, oldest first (ids start with the
    time), whichever version wrote them."""
    return sorted(
        (path for suffix in ENTRY_SUFFIXES for path in directory.glob(f"*{suffix}")),
        key=lambda path: path.stem,
    )


def new_receipt(
    raw: bytes, mail_from: str | None, recipients: Sequence[str], source: str
) -> Receipt:
    sha256 = sha256_hex(raw)
    return Receipt(
        spool_id=f"{time.time_ns():x}-{sha256[:12]}-{secrets.token_hex(3)}",
        raw_sha256=sha256,
        source=source,
        mail_from=mail_from,
        recipients=tuple(recipients),
        received_at=datetime.now(UTC),
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


def spool_failure(exc: OSError) -> SpoolUnavailable:
    """The temporary failure a receiver answers when the spool cannot take a message."""
    reason = f"cannot write the spool: {exc.strerror or exc}"
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


def decode_receipt(data: bytes, raw_in_entry: bool) -> Receipt:
    fields = json.loads(data)
    return Receipt(
        spool_id=fields["spool_id"],
        raw_sha256=fields["raw_sha256"],
        source=fields["source"],
        mail_from=fields["mail_from"],
        recipients=tuple(fields["recipients"]),
        received_at=datetime.fromisoformat(fields["received_at"]),
        size=fields["size"],
        raw_in_entry=raw_in_entry,
    )
