"""Which attachments are logs, and the facts inside them, read within fixed bounds.

A file is a log by its name (`.log`, `.xlog`, `.ips`, `.crash`, `logcat*`, `tombstone*`:
SDK logs may be encrypted, so their bytes need not be text) or by what it holds (lines
that start with timestamps, logcat lines, "[I]"/"[W]"/"[E]" level marks, or a line only a
crash report or a tombstone has: "Incident Identifier:", "Build fingerprint:"). A `.txt`
of notes, a `.json` configuration, pictures and recordings are not logs. A zip or gzip
archive is a log when a file in it is; one that cannot be opened, when its name says so.

Every message on its way to a ticket passes here, so hostile files must cost little:

- a file's text is its first `HEAD_BYTES` (1 MiB) and last `TAIL_BYTES` (256 KiB); whether
  it is a log is told from its first `PROBE_BYTES` (64 KiB);
- text is UTF-8, else UTF-16 with a BOM, else GB18030, else Latin-1: decoding never fails;
- a zip is read for at most `MAX_MEMBERS` (20) files and `MAX_ARCHIVE_BYTES` (2 MiB)
  decompressed in all, in `CHUNK_BYTES` pieces, stopping at the bound, so a zip bomb never
  expands; encrypted members are skipped, archives inside archives are not opened, and a
  zip listing more than `MAX_LISTED` files is not opened at all (its listing alone would
  cost);
- a gzip file likewise gives at most `MAX_ARCHIVE_BYTES`;
- anything unreadable gives no facts, and no exception leaves this module.

The facts a log states (`FACT_LINES`: "sdk version: 4.0.6", Android's "Build
fingerprint", an iOS crash report's "OS Version" and "Hardware Model", "device: …") are
read by patterns that never cross a line break and repeat nothing without a bound, over
the bounded text: linear in it.
"""

from __future__ import annotations

import codecs
import gzip
import io
import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from gateway.intake.facts import Fact, File, Finding, Source
from gateway.intake.mentions import device_value, platform_of_system, system_in
from gateway.intake.page import FLAGS, compiled, excerpt_of, is_placeholder

HEAD_BYTES = 1024 * 1024
TAIL_BYTES = 256 * 1024
PROBE_BYTES = 64 * 1024
MAX_MEMBERS = 20
MAX_LISTED = 1000
MAX_ARCHIVE_BYTES = 2 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# A log is mostly log lines: at least this many, and this share of its first lines.
MIN_LOG_LINES = 3
MIN_LOG_SHARE = 0.3
PROBE_LINES = 400

# Names of files that are logs whatever they hold (SDK logs may be encrypted).
LOG_NAME = re.compile(
    r"\.(?:log|xlog|ips|crash|dmp|mdmp|tombstone|trace|anr)$|\.log\.\d{1,3}$|\.log\.txt$"
    r"|^(?:logcat|tombstone|crash|anr|bugreport)[\w.\-]*$",
    FLAGS,
)
# Files that are never logs: pictures, recordings, documents, configuration.
NOT_LOG_NAME = re.compile(
    r"\.(?:png|jpe?g|gif|bmp|webp|heic|tiff?|svg|mp4|mov|avi|mkv|webm|flv|m4v|3gp|mp3|wav"
    r"|m4a|aac|ogg|opus|pcm|json|xml|plist|ya?ml|ini|cfg|conf|toml|properties|gradle|pdf"
    r"|docx?|xlsx?|pptx?|csv|html?|apk|ipa|aab|exe|dll|so|dylib|jar)$",
    FLAGS,
)
ARCHIVE_NAME = re.compile(r"\.(?:zip|gz|tgz|7z|rar)$", FLAGS)
# An archive that cannot be opened still counts as logs when its name says so.
LOG_HINT = re.compile(r"log|日志|logcat|tombstone|crash|anr|trace", FLAGS)
# A line of a log: a timestamp first, a logcat line, an SDK's "[I][...]" level mark.
LOG_LINE = compiled(
    r"^\s{0,4}[\[(]?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}[ T_]\d{1,2}:\d\d:\d\d",
    r"^\s{0,4}\d\d-\d\d\s{1,4}\d\d:\d\d:\d\d\.\d{3}",
    r"^\s{0,4}[\[(]?\d{1,2}:\d\d:\d\d(?:[.,:]\d{1,6})?[\])]?\s",
    r"^\s{0,4}\[?[VDIWEF]\]?\s?[\[/(][\w\[]",
    r"^\s{0,4}\[(?:info|warn|warning|error|debug|verbose|fatal|trace)\]",
    r"^\s{0,4}\d{10,13}[\s,|]",
)
# Lines only a log, a crash report or a tombstone has.
LOG_SIGNATURE = re.compile(
    r"^Incident Identifier:|^Build fingerprint:|^\*\*\* \*\*\* \*\*\*|^-{9} beginning of"
    r"|^Exception Type:|^Hardware Model:|^pid: \d+, tid: \d+|^FATAL EXCEPTION|^Thread \d+ Crashed"
    r"|\"bug_type\"[ \t]?:|^Crashed Thread:|^Exception Codes:",
    FLAGS | re.MULTILINE,
)
# Facts a log states: each pattern's "value" group, read as the fact's own reader would.
FACT_LINES: dict[Fact, tuple[str, ...]] = {
    Fact.SDK_VERSION: (
        r"\b(?:[a-z]{0,12}sdk|agora\w{0,20}|zego\w{0,20}|trtc|liteav|rtc ?engine)[ _-]?"
        r"(?:version|ver|v)\b[ \t]?(?:[:=][ \t]?)?[\"'\[]?v?(?P<value>\d{1,3}(?:\.\d{1,6}){1,3})",
        r"\b(?:sdk|agora|zego|trtc|liteav)\w{0,20}[ \t]?v?(?P<value>\d{1,3}(?:\.\d{1,6}){2,3})\b",
    ),
    Fact.OS_VERSION: (
        r"^Build fingerprint:[ \t]?'?[^/\s']{1,40}/[^/\s']{1,40}/[^:\s']{1,40}"
        r":(?P<android>\d{1,2}(?:\.\d)?)/",
        r"ro\.build\.version\.release\]?[ \t]?[:=][ \t]?\[?(?P<android>\d{1,2}(?:\.\d)?)\b",
        r"(?:^OS Version|\"os_version\"):?[ \t]{0,20}\"?"
        r"(?P<system>(?:iPhone OS|iOS|iPadOS|macOS|Mac OS X) \d{1,2}(?:\.\d{1,2}){0,2})",
        r"\b(?:os|os ?version|osversion|os_version|system ?version|system|platform)"
        r"[ \t]?[:=][ \t]?[\"'\[]?(?P<system>[A-Za-z][^,;\]\"'\n]{2,40})",
    ),
    Fact.DEVICE: (
        r"^Hardware Model:[ \t]{0,20}(?P<value>[\w,]{2,40})",
        r"\"(?:modelCode|product)\"[ \t]?:[ \t]?\"(?P<value>[\w, ]{2,40})\"",
        r"ro\.product\.model\]?[ \t]?[:=][ \t]?\[?(?P<value>[^\]\n]{2,40})",
        r"\b(?:device ?model|phone ?model|devicemodel|device_model|model|device)"
        r"[ \t]?[:=][ \t]?[\"'\[]?(?P<value>[^,;\]\"'\n]{2,40})",
    ),
    Fact.APP_ID: (
        r"\b(?:app ?id|appid|app_id)[ \t]?[:=][ \t]?[\"'\[]?(?P<value>[A-Za-z0-9]{6,64})\b",
    ),
    Fact.CHANNEL: (
        r"\b(?:channel ?(?:name|id)?|channelname|channelid|channel_name|channel_id|roomid|room_id)"
        r"[ \t]?[:=][ \t]?[\"'\[]?(?P<value>[A-Za-z0-9][A-Za-z0-9_\-.@#$%^&*+=~!]{0,63})",
    ),
    Fact.UID: (
        r"\b(?:uid|user_?id|userid|user ?account)[ \t]?[:=][ \t]?[\"'\[]?"
        r"(?P<value>[A-Za-z0-9_\-@.]{1,64})",
    ),
}
# A framework's own lines in a log: Flutter's "I/flutter", React Native's "ReactNativeJS".
FRAMEWORK_LINES: dict[str, str] = {
    "Flutter": r"\b[VDIWEF]/flutter\b|\bflutter\b",
    "React Native": r"\bReactNativeJS\b|\breact-native\b",
    "Unity": r"\b[VDIWEF]/Unity\b|\bUnityPlayer\b",
    "Electron": r"\belectron\b",
}

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
LOG_FACTS = {
    fact: [re.compile(pattern, FLAGS | re.MULTILINE) for pattern in rows]
    for fact, rows in FACT_LINES.items()
}
LOG_PLATFORMS = {name: re.compile(pattern, re.ASCII) for name, pattern in FRAMEWORK_LINES.items()}
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
NOT_READ = ("", False)


@dataclass(frozen=True, slots=True)
class LogFile:
    """An attachment that is a log: the text read from it, and whether its content told."""

    file: File
    text: str
    by_content: bool


@dataclass(frozen=True, slots=True)
class LogReading:
    """The attachments that are logs, and the facts they state (the first log's first)."""

    logs: tuple[LogFile, ...]
    facts: tuple[Finding, ...]

    def finding(self) -> Finding | None:
        """The logs as one finding: their SHA-256s, named by their file names."""
        if not self.logs:
            return None
        value = " ".join(log.file.sha256 for log in self.logs)
        names = excerpt_of(", ".join(log.file.name for log in self.logs))
        by_content = any(log.by_content for log in self.logs)
        return Finding(
            Fact.LOGS, value, Source.LOG if by_content else Source.ATTACHMENT_NAME, names
        )


def read_logs(files: tuple[File, ...]) -> LogReading:
    """Which of `files` are logs, and what they say."""
    logs = tuple(log for file in files if (log := log_of(file)) is not None)
    return LogReading(logs, facts_in_logs(logs))


def log_of(file: File) -> LogFile | None:
    name = file.name.replace("\\", "/").rsplit("/", 1)[-1]
    if NOT_LOG_NAME.search(name) or file.content_type.startswith(("image/", "video/", "audio/")):
        return None
    if ARCHIVE_NAME.search(name):
        text, by_content = archived_log(file.data, name)
        return LogFile(file, text, by_content) if text or LOG_HINT.search(name) else None
    if looks_like_log(file.data):
        return LogFile(file, text_of(file.data), True)
    if LOG_NAME.search(name):
        return LogFile(file, "" if is_binary(file.data) else text_of(file.data), False)
    return None


# -- telling a log by its lines -------------------------------------------------------------


def looks_like_log(data: bytes) -> bool:
    """Whether the start of `data` reads as a log, a crash report or a tombstone."""
    if is_binary(data):
        return False
    probe = text_of(data[:PROBE_BYTES])
    if LOG_SIGNATURE.search(probe):
        return True
    lines = [line for line in probe.splitlines()[:PROBE_LINES] if line.strip()]
    logged = sum(1 for line in lines if LOG_LINE.match(line))
    return logged >= MIN_LOG_LINES and logged >= MIN_LOG_SHARE * len(lines)


def is_binary(data: bytes) -> bool:
    """NUL bytes in text that is no UTF-16: compressed, encrypted or garbage."""
    start = data[:8192]
    return b"\x00" in start and not start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


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


def archived_log(data: bytes, name: str) -> tuple[str, bool]:
    """The text of the logs in an archive, and whether one was told by its content."""
    if name.lower().endswith(".zip"):
        members = list(zip_members(data))
    elif name.lower().endswith((".gz", ".tgz")):
        inner = gunzip(data)
        members = [(name.rsplit(".", 1)[0], inner)] if inner else []
    else:
        return NOT_READ
    return logs_among(members)


def logs_among(members: list[tuple[str, bytes]]) -> tuple[str, bool]:
    texts, by_content = [], False
    for name, data in members:
        if NOT_LOG_NAME.search(name) or ARCHIVE_NAME.search(name):
            continue
        content = looks_like_log(data)
        if content or LOG_NAME.search(name.rsplit("/", 1)[-1]):
            texts.append("" if is_binary(data) else text_of(data))
            by_content = by_content or content
    return ("\n".join(texts) or " ", by_content) if texts else NOT_READ


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
                with archive.open(info) as member:
                    content = read_bounded(member, budget)
                budget -= len(content)
                yield info.filename, content
    except ARCHIVE_ERRORS:
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


# -- facts in logs --------------------------------------------------------------------------


def facts_in_logs(logs: tuple[LogFile, ...]) -> tuple[Finding, ...]:
    """Each fact from the first log that states it."""
    found: dict[Fact, Finding] = {}
    for log in logs:
        for finding in facts_in(log.text):
            found.setdefault(finding.fact, finding)
    return tuple(found.values())


def facts_in(text: str) -> Iterator[Finding]:
    found = [finding for fact, rows in LOG_FACTS.items() if (finding := first_of(fact, rows, text))]
    yield from found
    platform = platform_in(text) or system_platform(found)
    if platform:
        yield platform


def first_of(fact: Fact, rows: list[re.Pattern[str]], text: str) -> Finding | None:
    return next((finding for row in rows if (finding := first_fact(fact, row, text))), None)


def system_platform(found: list[Finding]) -> Finding | None:
    """The platform of the system a log names: a fingerprint's Android, a report's iOS."""
    system = next((finding for finding in found if finding.fact is Fact.OS_VERSION), None)
    platform = platform_of_system(system.value) if system else None
    return (
        Finding(Fact.PLATFORM, platform, Source.LOG, system.excerpt)
        if system and platform
        else None
    )


def first_fact(fact: Fact, pattern: re.Pattern[str], text: str) -> Finding | None:
    for found in pattern.finditer(text):
        value = fact_value(fact, found)
        if value:
            return Finding(fact, value, Source.LOG, excerpt_of(line_around(text, found)))
    return None


def fact_value(fact: Fact, found: re.Match[str]) -> str | None:
    groups = found.groupdict()
    if fact is Fact.OS_VERSION:
        if groups.get("android"):
            return f"Android {groups['android']}"
        return system_in(groups.get("system") or "")
    value = (groups.get("value") or "").strip()
    if fact is Fact.DEVICE:
        return device_value(value)
    return None if is_placeholder(value) or (fact is Fact.UID and value == "0") else value


def line_around(text: str, found: re.Match[str]) -> str:
    start = text.rfind("\n", 0, found.start()) + 1
    end = text.find("\n", found.end())
    return text[start : end if end >= 0 else len(text)]


def platform_in(text: str) -> Finding | None:
    """A framework's own log lines, else the platform of the system the log names."""
    for name, pattern in LOG_PLATFORMS.items():
        found = pattern.search(text)
        if found:
            return Finding(Fact.PLATFORM, name, Source.LOG, excerpt_of(line_around(text, found)))
    return None
