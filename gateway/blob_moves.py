"""Moving an installation's blobs from its folder into the database (`gateway blobs
migrate`), so that hosts share nothing on disk.

Each blob is read from its file a chunk at a time, its SHA-256 checked against its name as
it goes, and written with its chunks in one transaction: a blob is in the database whole or
not at all. What the database holds already is skipped, so a move cut short is resumed by
running the command again. The files are left where they are: the database store reads a
blob from the folder for as long as it is not moved, and the folder can be removed once the
command reports nothing left.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from tqdm import tqdm

from gateway.app import build_gateway
from gateway.errors import ConfigError
from gateway.settings import Settings
from storage.blob_table import DatabaseBlobs, DigestMismatch
from storage.blobs import BlobDirectory, BlobStore

log = logging.getLogger(__name__)

# Digests looked up in the database at once.
LOOKUP_BATCH = 500


@dataclass(slots=True)
class Moved:
    """What one run of the move did."""

    moved: int = 0
    moved_bytes: int = 0
    already: int = 0
    # Files that could not be read, or whose bytes are not what their name says: left in
    # the folder, not moved.
    damaged: list[str] = field(default_factory=list)


def database_store(blobs: BlobStore) -> DatabaseBlobs:
    """The gateway's store, when it is the database; `ConfigError` saying how else."""
    if not isinstance(blobs, DatabaseBlobs):
        raise ConfigError(
            "GATEWAY_BLOB_STORE is directory: set it to database (the default on "
            "PostgreSQL) to move the blobs into the database"
        )
    return blobs


def not_moved(store: DatabaseBlobs) -> Iterator[str]:
    """The folder's blobs the database does not hold yet."""
    if store.legacy is None:
        return
    digests = store.legacy.every_digest()
    while batch := list(itertools.islice(digests, LOOKUP_BATCH)):
        kept = store.kept_of(batch)
        yield from (digest for digest in batch if digest not in kept)


def count_not_moved(store: BlobStore) -> int:
    """How many blobs wait in the folder for `gateway blobs migrate` (0: none, or the
    store is the folder)."""
    if not isinstance(store, DatabaseBlobs):
        return 0
    return sum(1 for _ in not_moved(store))


def move_blobs(store: DatabaseBlobs) -> Moved:
    """Move every blob not moved yet, with a progress bar on a terminal."""
    legacy = store.legacy
    moved = Moved()
    if legacy is None:
        return moved
    waiting = [(digest, legacy.size(digest) or 0) for digest in not_moved(store)]
    with tqdm(
        total=sum(size for _, size in waiting),
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="blobs",
        disable=not sys.stderr.isatty(),
    ) as progress:
        for digest, size in waiting:
            move_one(store, legacy, digest, size, moved)
            progress.update(size)
    return moved


def move_one(
    store: DatabaseBlobs, legacy: BlobDirectory, digest: str, size: int, moved: Moved
) -> None:
    try:
        if store.put_pieces(digest, legacy.chunks(digest), verify=True):
            moved.moved += 1
            moved.moved_bytes += size
        else:
            moved.already += 1
    except (DigestMismatch, OSError) as exc:
        log.error("not moved: %s: %s", digest, exc)
        moved.damaged.append(digest)


def run_blobs(settings: Settings, args: argparse.Namespace) -> int:
    """`gateway blobs migrate`: what it moved, and which files it could not."""
    gateway = build_gateway(settings, renders_mail=False)
    store = database_store(gateway.blobs)
    moved = move_blobs(store)
    print(
        f"moved {moved.moved} blob(s), {moved.moved_bytes / 2**20:.1f} MiB, into the database; "
        f"{moved.already} were there already"
    )
    if moved.damaged:
        print(
            f"{len(moved.damaged)} file(s) in {settings.blob_directory} could not be read or "
            f"do not hold the bytes their names say, and were left there: "
            f"{', '.join(moved.damaged)}",
            file=sys.stderr,
        )
        return 1
    if store.legacy is not None:
        print(f"nothing is left to move: {settings.blob_directory} can be removed")
    return 0
