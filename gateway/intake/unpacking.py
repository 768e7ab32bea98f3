"""Bytes read within fixed bounds: a file's text, and the files inside zip, tar and gzip
archives. Every message on its way to a ticket passes here, so hostile files must cost
little:

- a file's text is its first `HEAD_BYTES` (1 MiB) and last `TAIL_BYTES` (256 KiB);
- text is UTF-8, else UTF-16 with a BOM, else GB18030, else Latin-1: decoding never fails;
- a zip is read for at most `MAX_MEMBERS` (20) files and `MAX_ARCHIVE_BYTES` (2 MiB)
  decompressed in all, in `CHUNK_BYTES` pieces, stopping at the bound, so a zip bomb never
  expands; encrypted members are skipped, archives inside archives are not opened, and a
  zip listing more than `MAX_LISTED` files is not opened at all (its listing alone would
  cost);
- a gzip file likewise gives at most `MAX_ARCHIVE_BYTES`, and a tar (plain or gzipped) at
  most `MAX_MEMBERS` files of those bytes;
- an archive that cannot be read gives nothing (or what came before a break), and no
  exception leaves this module.
"""

from __future__ import annotations

import codecs
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

HEAD_BYTES = 1024 * 1024
TAIL_BYTES = 256 * 1024
MAX_MEMBERS = 20
MAX_LISTED = 1000
MAX_ARCHIVE_BYTES = 2 * 1024 * 1024
CHUNK_BYTES = 64 * 1024

ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    UnicodeError,
)
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# -- reading text within bounds -------------------------------------------------------------


def text_of(data: bytes) -> str:
    """The first `HEAD_BYTES` and last `TAIL_BYTES` of `data` as text; never fails."""
    head = data[:HEAD_BYTES]
    codec = codec_of(head)
    text = head.decode(codec, errors="replace")
    if len(data) > HEAD_BYTES:
        tail = data[max(HEAD_BYTES, len(data) - TAIL_BYTES) :]
        text += "\n" + aligned(tail, codec).decode(codec.replace("-sig", ""), errors="replace")
    return text


def codec_of(head: bytes) -> str:
    """UTF-8 (or a BOM's), else GB18030, else Latin-1, judged on `head`, which may end
    inside a character."""
    for bom, codec in BOMS:
        if head.startswith(bom):
            return codec
    for codec in ("utf-8", "gb18030"):
        try:
            head.decode(codec)
            return codec
        except UnicodeDecodeError as error:
            if error.start >= len(head) - 4 and "end of data" in error.reason:
                return codec
    return "latin-1"


def aligned(tail: bytes, codec: str) -> bytes:
    """`tail` starting on a character: UTF-8 continuation bytes and an odd UTF-16 byte off."""
    if codec.startswith("utf-16"):
        return tail[len(tail) % 2 :]
    if codec.startswith("utf-8"):
        skip = next((n for n, byte in enumerate(tail[:4]) if byte & 0xC0 != 0x80), 0)
        return tail[skip:]
    return tail


# -- archives -------------------------------------------------------------------------------


def zip_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the first `MAX_MEMBERS` unencrypted files, `MAX_ARCHIVE_BYTES` in
    all; nothing when the archive cannot be read."""
    if listed_files(data) > MAX_LISTED:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            budget = MAX_ARCHIVE_BYTES
            for info in archive.infolist()[:MAX_MEMBERS]:
                if info.is_dir() or info.flag_bits & 0x1 or budget <= 0:
                    continue
                content = zip_member(archive, info, budget)
                budget -= len(content)
                yield info.filename, content
    except ARCHIVE_ERRORS:
        return


def zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """A member's first `budget` bytes; b"" when it cannot be read (an unknown method)."""
    try:
        with archive.open(info) as member:
            return read_bounded(member, budget)
    except ARCHIVE_ERRORS:
        return b""


def tar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of a tar's first `MAX_MEMBERS` files, `MAX_ARCHIVE_BYTES` in all;
    those before the break when it is cut short."""
    budget = MAX_ARCHIVE_BYTES
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for _, info in zip(range(MAX_MEMBERS), archive, strict=False):
                stream = archive.extractfile(info) if info.isfile() and budget > 0 else None
                content = read_bounded(stream, budget) if stream else b""
                budget -= len(content)
                yield info.name, content
    except (*ARCHIVE_ERRORS, tarfile.TarError):
        return


def listed_files(data: bytes) -> int:
    """How many files a zip's end record lists (0 when there is none to read)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 12 > len(data):
        return 0
    return int(struct.unpack_from("<H", data, end + 10)[0])


def gunzip(data: bytes) -> bytes:
    """At most `MAX_ARCHIVE_BYTES` of a gzip file's content; b"" when unreadable."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            return read_bounded(stream, MAX_ARCHIVE_BYTES)
    except ARCHIVE_ERRORS:
        return b""


def read_bounded(stream: IO[bytes] | gzip.GzipFile, budget: int) -> bytes:
    """Up to `budget` bytes in chunks; what was read before a truncation, if one comes."""
    parts: list[bytes] = []
    size = 0
    try:
        while size < budget:
            chunk = stream.read(min(CHUNK_BYTES, budget - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except (EOFError, zlib.error, zipfile.BadZipFile, OSError):
        pass  # A truncated archive: keep what came before the break.
    return b"".join(parts)
