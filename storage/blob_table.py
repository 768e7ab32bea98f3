"""The blob store in the database: what several hosts on one PostgreSQL share.

A blob is a `blobs` row and its `blob_chunks` of at most `CHUNK_BYTES` each, written in one
transaction: readers never see part of one, and neither writing nor reading ever needs the
whole blob as one value (a 35 MiB attachment goes to the server, and comes back, a
chunk at a time). Two hosts keeping the same bytes at once store them once: the second's
insert waits for the first's and then does nothing.

Blobs written to the folder store before the database held them are still read from
there (`legacy`) until `gateway blobs migrate` has moved them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.blobs import CHUNK_BYTES, BlobDirectory, check_hexadecimal, sha256_hex
from storage.models import BlobChunk, StoredBlob
from storage.session import make_engine


class DigestMismatch(ValueError):
    """The bytes given are not those the digest names: nothing was stored."""


class DatabaseBlobs:
    """Blobs in the database at `url` (through `engine`, when the process has one), with a
    folder read for those not moved yet.

    It is passed to the parser process as its URL: the engine is made where it is used.
    """

    def __init__(
        self, url: str, legacy: BlobDirectory | None = None, engine: Engine | None = None
    ) -> None:
        self.url = url
        self.legacy = legacy
        self._engine = engine
        # Each thread's open `batch()`, if any.
        self._batches = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "legacy": self.legacy}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url, self.legacy, self._engine = state["url"], state["legacy"], None
        self._batches = threading.local()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def put(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256_hex(data)
        view = memoryview(data)
        pieces = (view[start : start + CHUNK_BYTES] for start in range(0, len(data), CHUNK_BYTES))
        self.put_pieces(digest, pieces, verify=False)
        return digest

    def put_pieces(self, digest: str, pieces: Iterable[bytes | memoryview], verify: bool) -> bool:
        """Keep the blob `digest` from its pieces in order; False when it was kept already.
        With `verify` (bytes read from a file), `DigestMismatch` when the pieces are not what
        `digest` names; without, the caller's digest is of the bytes themselves."""
        with self._writing() as connection:
            if not self._claim(connection, digest):
                return False
            hashing, size, count = hashlib.sha256() if verify else None, 0, 0
            for count, piece in enumerate(pieces, start=1):
                if hashing is not None:
                    hashing.update(piece)
                size += len(piece)
                connection.execute(
                    insert(BlobChunk), {"sha256": digest, "number": count, "data": bytes(piece)}
                )
            if hashing is not None and hashing.hexdigest() != digest:
                raise DigestMismatch(f"{digest} holds bytes whose SHA-256 is {hashing.hexdigest()}")
            connection.execute(
                update(StoredBlob).filter_by(sha256=digest).values(size=size, chunks=count)
            )
        return True

    @contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._batches, "connection", None) is not None:
            yield
            return
        with self.engine.begin() as connection:
            self._batches.connection = connection
            try:
                yield
            finally:
                self._batches.connection = None

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """The thread's batch, or a transaction of the put's own."""
        batch = getattr(self._batches, "connection", None)
        if batch is not None:
            with batch.begin_nested():
                yield batch
            return
        with self.engine.begin() as connection:
            yield connection

    def _claim(self, connection: Connection, digest: str) -> bool:
        """The blob's row, first: a writer racing this one to the same digest waits here
        until the first commits, then finds it kept."""
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        row = {"sha256": digest, "size": 0, "chunks": 0, "stored_at": func.current_timestamp()}
        claim = dialect.insert(StoredBlob).values(row).on_conflict_do_nothing()
        return connection.scalar(claim.returning(StoredBlob.sha256)) is not None

    def get(self, sha256: str) -> bytes:
        return b"".join(self.chunks(sha256))

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The chunks, each read in a short transaction of its own: a download that takes
        minutes holds no connection (nor SQLite's lock) between them, and blobs never
        change, so nothing is lost by not reading them from one snapshot."""
        with self.engine.connect() as connection:
            count = connection.scalar(select(StoredBlob.chunks).filter_by(sha256=sha256))
        if count is None:
            if self.legacy is None:
                raise FileNotFoundError(f"no blob {sha256}")
            yield from self.legacy.chunks(sha256)
            return
        for number in range(1, count + 1):
            with self.engine.connect() as connection:
                piece = connection.scalar(
                    select(BlobChunk.data).filter_by(sha256=sha256, number=number)
                )
            if piece is None:
                raise FileNotFoundError(f"blob {sha256} lacks its chunk {number}")
            yield piece

    def size(self, sha256: str) -> int | None:
        with self.engine.connect() as connection:
            size = connection.scalar(select(StoredBlob.size).filter_by(sha256=sha256))
        if size is None and self.legacy is not None:
            return self.legacy.size(sha256)
        return size

    def exists(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def starting_with(self, prefix: str) -> list[str]:
        check_hexadecimal(prefix)
        with self.engine.connect() as connection:
            found = set(
                connection.scalars(
                    select(StoredBlob.sha256).where(StoredBlob.sha256.startswith(prefix))
                )
            )
        if self.legacy is not None:
            found.update(self.legacy.starting_with(prefix))
        return sorted(found)

    def kept_of(self, digests: list[str]) -> set[str]:
        """Which of `digests` the database holds."""
        with self.engine.connect() as connection:
            return set(
                connection.scalars(select(StoredBlob.sha256).where(StoredBlob.sha256.in_(digests)))
            )

    def prepare(self) -> None:
        """Nothing to make: the schema holds the tables."""

    def sweep(self, cutoff: float) -> int:
        return self.legacy.sweep(cutoff) if self.legacy is not None else 0
