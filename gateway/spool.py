"""The spool: where the gateway takes ownership of a message.

`accept()` stores the raw bytes in the content-addressed blob store and a small receipt
(envelope sender, recipients, source, time) in `queue/`, both fsynced with their directories.
Only then may a receiver say `250`. The pipeline takes receipts from the queue, and after
its database commit calls `done()`; a message that fails is moved to `quarantine/` with its
reason, and `replay()` puts it back. The raw message stays in the blob store forever.

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
    write_durably,
)

# Outlook's binary .msg files are OLE2 compound documents, not RFC 5322 mail.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Temporary files older than this were left by a killed process, not a write in progress.
STALE_TEMPORARY_SECONDS = 3600.0
# A full disk and an exhausted quota both mean "no room now": the sender should try later.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


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


class Spool:
    """The queue and quarantine directories beside the blob store that holds the bytes."""

    def __init__(self, root: Path, blobs: BlobStore, max_message_bytes: int,
                 limits: Limits = DEFAULT_LIMITS) -> None:
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
        return sum(remove_stale_temporary_files(directory, STALE_TEMPORARY_SECONDS)
                   for directory in (self.queue_dir, self.quarantine_dir, self.blobs.root))

    def accept(
        self, raw: bytes, mail_from: str | None, recipients: Sequence[str], source: str
    ) -> Receipt:
        """Take ownership of `raw`: when this returns, the message survives a crash."""
        check_acceptable(raw, self.max_message_bytes)
        check_header(raw, self.limits)
        receipt = self._new_receipt(raw, mail_from, recipients, source)
        self._write(self.queue_dir / f"{receipt.spool_id}.json", encode_receipt(receipt))
        return receipt

    def keep_refused(self, raw: bytes, mail_from: str | None, recipients: Sequence[str],
                     source: str, reason: str) -> Receipt:
        """Quarantine a message `accept()` refuses when there is nobody to refuse it to (a
        mailbox read over IMAP): kept with its reason, never dropped."""
        receipt = self._new_receipt(raw, mail_from, recipients, source)
        try:
            self.quarantine(receipt, reason)
        except OSError as exc:
            raise spool_failure(exc) from exc
        return receipt

    def _new_receipt(self, raw: bytes, mail_from: str | None, recipients: Sequence[str],
                     source: str) -> Receipt:
        try:
            sha256 = self.blobs.put(raw)
        except OSError as exc:
            raise spool_failure(exc) from exc
        return Receipt(
            spool_id=f"{time.time_ns():x}-{sha256[:12]}-{secrets.token_hex(3)}",
            raw_sha256=sha256,
            source=source,
            mail_from=mail_from,
            recipients=tuple(recipients),
            received_at=datetime.now(UTC),
            size=len(raw),
        )

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_durably(path, data)
        except OSError as exc:
            raise spool_failure(exc) from exc

    def pending(self) -> list[Receipt]:
        """Receipts waiting for the pipeline, oldest first."""
        waiting = []
        for path in sorted(self.queue_dir.glob("*.json")):
            try:
                waiting.append(self._load(path))
            except FileNotFoundError:  # Another worker filed it meanwhile.
                continue
        return waiting

    def backlog(self) -> tuple[int, Receipt | None]:
        """How many entries wait, and the oldest of them, without reading them all."""
        names = sorted(self.queue_dir.glob("*.json"))
        for path in names:
            try:
                return len(names), self._load(path)
            except FileNotFoundError:  # Filed meanwhile; the next is the oldest now.
                continue
        return 0, None

    def quarantined(self) -> list[tuple[Receipt, str]]:
        """Quarantined receipts with their reasons, oldest first."""
        entries = []
        for path in sorted(self.quarantine_dir.glob("*.json")):
            reason_file = path.with_suffix(".reason")
            reason = reason_file.read_text("utf-8") if reason_file.exists() else ""
            entries.append((self._load(path), reason))
        return entries

    @contextlib.contextmanager
    def claim(self, receipt: Receipt, wait: bool = False) -> Iterator[bool]:
        """Hold `receipt`'s queue entry against every other worker: True while held; False
        when another worker holds it (and `wait` is false) or it has left the queue."""
        path = self.queue_dir / f"{receipt.spool_id}.json"
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
        return self.blobs.get(receipt.raw_sha256)

    def done(self, receipt: Receipt) -> None:
        """The pipeline committed what it made of `receipt`; forget the queue entry."""
        (self.queue_dir / f"{receipt.spool_id}.json").unlink(missing_ok=True)

    def quarantine(self, receipt: Receipt, reason: str) -> None:
        """Park `receipt` with its reason until someone replays it."""
        name = f"{receipt.spool_id}.json"
        write_durably(self.quarantine_dir / f"{receipt.spool_id}.reason", reason.encode())
        if (self.queue_dir / name).exists():
            os.replace(self.queue_dir / name, self.quarantine_dir / name)
            fsync_directory(self.quarantine_dir)
        else:
            write_durably(self.quarantine_dir / name, encode_receipt(receipt))

    def replay(self, spool_id: str) -> Receipt:
        """Move a quarantined receipt back to the queue."""
        source = self.quarantine_dir / f"{spool_id}.json"
        receipt = self._load(source)
        os.replace(source, self.queue_dir / source.name)
        fsync_directory(self.queue_dir)
        (self.quarantine_dir / f"{spool_id}.reason").unlink(missing_ok=True)
        return receipt

    def _load(self, path: Path) -> Receipt:
        return decode_receipt(path.read_bytes())


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


def decode_receipt(data: bytes) -> Receipt:
    fields = json.loads(data)
    return Receipt(
        spool_id=fields["spool_id"],
        raw_sha256=fields["raw_sha256"],
        source=fields["source"],
        mail_from=fields["mail_from"],
        recipients=tuple(fields["recipients"]),
        received_at=datetime.fromisoformat(fields["received_at"]),
        size=fields["size"],
    )
