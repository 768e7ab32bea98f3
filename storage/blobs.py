"""The content-addressed blob store: raw messages and attachments, named by SHA-256.

A blob is written to a temporary file, fsynced, renamed into place and its directory
fsynced, so once `put()` returns the bytes survive a crash. The sender's file name is never
used on disk.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes | Sequence[bytes]) -> None:
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


class BlobStore:
    """Blobs under `root/ab/abcdef...`; writing the same bytes twice stores them once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` durably and return its SHA-256 (`digest`, when the caller has it)."""
        digest = digest or sha256_hex(data)
        path = self.path_for(digest)
        if path.exists():
            return digest
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            fsync_directory(path.parent.parent)
        write_durably(path, data)
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def starting_with(self, prefix: str) -> list[str]:
        """The digests of stored blobs that begin with `prefix` (lower-case hex), sorted."""
        if any(c not in "0123456789abcdef" for c in prefix):
            raise ValueError(f"not hexadecimal: {prefix!r}")
        # Blobs live in folders named by their first two digits; a shorter prefix spans several.
        pattern = f"{prefix[:2]}*/{prefix}*"
        return sorted(path.name for path in self.root.glob(pattern) if len(path.name) == 64)
