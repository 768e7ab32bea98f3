"""The content-addressed blob store: raw messages and attachments, named by SHA-256.

Two stores keep them (`BlobStore`): a folder on this host (`BlobDirectory`, the embedded
default), or the database every host shares (`storage.blob_table`). Either way a blob is
kept once per SHA-256, and once `put()` returns the bytes survive a crash.

In the folder a blob is written to a temporary file, fsynced, renamed into place and its
directory fsynced. The sender's file name is never used on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

# Blobs are read and written in pieces of this size, never as one value of their whole size.
CHUNK_BYTES = 1024 * 1024


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write `data` (or its pieces one after another, with no copy joining them) to `path`
    atomically: tmp, fsync, rename, fsync the directory."""
    # A unique temporary name, so threads writing the same blob never share one.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        try:
            for piece in [data] if isinstance(data, bytes) else data:
                view = memoryview(piece)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # A partial file on a full disk would hold the space the sender's retry needs.
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def remove_stale_temporary_files(directory: Path, cutoff: float) -> int:
    """Delete `write_durably` temporary files a killed process left; the number removed.

    Only those last written before `cutoff` (a POSIX time): a younger one may belong to a
    write in progress in another process.
    """
    removed = 0
    for leftover in directory.rglob(".*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


class BlobStore(Protocol):
    """Where raw messages and files are kept, by SHA-256 (lower-case hex)."""

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Keep `data` durably; its SHA-256 (`digest`, when the caller has it)."""
        ...

    def get(self, sha256: str) -> bytes:
        """The whole blob; `FileNotFoundError` when it is not kept."""
        ...

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob in pieces of at most `CHUNK_BYTES`, for streaming it."""
        ...

    def size(self, sha256: str) -> int | None:
        """Its length in bytes; None when it is not kept."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def starting_with(self, prefix: str) -> list[str]:
        """The digests kept that begin with `prefix` (lower-case hex), sorted."""
        ...

    def prepare(self) -> None:
        """Make ready to take blobs (`OSError` when it cannot)."""
        ...

    def sweep(self, cutoff: float) -> int:
        """Remove what writers killed before `cutoff` (POSIX time) left; how many."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """What this thread puts within the block is kept in one transaction where the store
        has them, durable when the block ends; an error taking them raised as it ends."""
        ...


class BlobDirectory:
    """Blobs under `root/ab/abcdef...`; writing the same bytes twice stores them once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / blob_name(sha256)

    def put(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256_hex(data)
        path = self.path_for(digest)
        if path.exists():
            # Maybe a writer killed between its rename and its directory's fsync.
            fsync_directory(path.parent)
            return digest
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            fsync_directory(path.parent.parent)
        write_durably(path, data)
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def chunks(self, sha256: str) -> Iterator[bytes]:
        with self.path_for(sha256).open("rb") as stored:
            while piece := stored.read(CHUNK_BYTES):
                yield piece

    def size(self, sha256: str) -> int | None:
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def starting_with(self, prefix: str) -> list[str]:
        check_hexadecimal(prefix)
        # Blobs live in folders named by their first two digits; a shorter prefix spans several.
        pattern = f"{prefix[:2]}*/{prefix}*"
        return sorted(path.name for path in self.root.glob(pattern) if len(path.name) == 64)

    def every_digest(self) -> Iterator[str]:
        """Every blob kept here, in the order of their names."""
        for folder in sorted(self.root.glob("??")):
            yield from sorted(path.name for path in folder.iterdir() if len(path.name) == 64)

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def sweep(self, cutoff: float) -> int:
        return remove_stale_temporary_files(self.root, cutoff) if self.root.is_dir() else 0

    def batch(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


class BlobReader(io.RawIOBase):
    """A blob's chunks as a file to read, for what copies or serves files."""

    def __init__(self, first: bytes, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(first)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._chunks, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def open_blob(store: BlobStore, sha256: str) -> io.BufferedReader:
    """The blob as a buffered file; `FileNotFoundError` at once when it is not kept."""
    chunks = store.chunks(sha256)
    first = next(chunks, b"")
    return io.BufferedReader(BlobReader(first, chunks), CHUNK_BYTES)


def blob_name(sha256: str) -> str:
    """A blob's name under the folder: `ab/abcdef...`."""
    if len(sha256) != 64:
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    check_hexadecimal(sha256)
    return f"{sha256[:2]}/{sha256}"


def check_hexadecimal(text: str) -> None:
    if any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not hexadecimal: {text!r}")
