"""Which attachments are logs, and the facts inside them.

A file is a log by its name (`.log`, `.xlog`, `.ips`, `.crash`, `logcat*`, `tombstone*`:
SDK logs may be encrypted, so their bytes need not be text) or by what it holds (lines
that start with timestamps, logcat lines, "[I]"/"[W]"/"[E]" level marks, or a line only a
crash report or a tombstone has: "Incident Identifier:", "Build fingerprint:"). A `.txt`
of notes, a `.json` configuration, pictures and recordings are not logs. A zip or gzip
archive is a log when a file in it is; one that cannot be opened, when its name says so.

Every message on its way to a ticket passes here, so hostile files must cost little. Text
and the files inside archives are read within the bounds of `unpacking`; besides those:

- whether a file is a log is told from its first `PROBE_BYTES` (64 KiB);
- facts are read from the first `MAX_LOGS_READ` (8) logs of a message; the others are only
  told to be logs (from their first 64 KiB);
- anything unreadable gives no facts, and no exception leaves this module.

The facts a log states (`FACT_LINES`: "sdk version: 4.0.6", Android's "Build
fingerprint", an iOS crash report's "OS Version" and "Hardware Model", "device: …") are
read by patterns that never cross a line break and repeat nothing without a bound, over
the bounded text: linear in it.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gateway.intake.facts import Fact, File, Finding, Source
from gateway.intake.mentions import device_value, platform_of_system, system_in
from gateway.intake.page import FLAGS, compiled, excerpt_of, is_placeholder, lower
from gateway.intake.patterns import LOG_JOIN_WORDS, LOG_JOINED_CHANNEL, LOG_JOINED_UID, LOG_OWN_UID
from gateway.intake.unpacking import gunzip, tar_members, text_of, zip_members

PROBE_BYTES = 64 * 1024
# Facts are read from the first logs only; the others are told apart, and no more.
MAX_LOGS_READ = 8
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
ARCHIVE_NAME = re.compile(r"\.(?:zip|gz|tgz|tar|7z|rar)$", FLAGS)
# An archive that cannot be opened still counts as logs when its name says so.
LOG_HINT = re.compile(r"log|日志|logcat|tombstone|crash|anr|trace", FLAGS)
# A line of a log: a timestamp first, a logcat line, an SDK's "[I][...]" level mark.
LOG_LINE = compiled(
    r"^\s{0,4}[\[(]?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}[ T_]\d{1,2}:\d\d:\d\d",
    r"^\s{0,4}\d\d-\d\d\s{1,4}\d\d:\d\d:\d\d\.\d{3}",
    r"^\s{0,4}[\[(]?\d{1,2}:\d\d:\d\d(?:[.,:]\d{1,6})?[\])]?\s",
    r"^\s{0,4}\[?[VDIWEF]\]?\s?[\[/(][\w\[]",
    r"^\s{0,4}\[(?i:info|warn|warning|error|debug|verbose|fatal|trace)\]",
    r"^\s{0,4}\d{10,13}[\s,|]",
)
# Words only a log, a crash report or a tombstone has, as they write them.
LOG_SIGNATURES = (
    "Incident Identifier:",
    "Build fingerprint:",
    "*** *** ***",
    "--------- beginning of",
    "Exception Type:",
    "Hardware Model:",
    "FATAL EXCEPTION",
    '"bug_type"',
    "Crashed Thread:",
    "Exception Codes:",
)


@dataclass(frozen=True, slots=True)
class LogRow:
    """A way a log states a fact: the words its lines hold (so only those lines are read)
    and the pattern whose "value" (or "android", "system") group is the fact."""

    words: tuple[str, ...]
    pattern: str


# Facts a log states, read as the fact's own reader would. Matched on the log in lower
# case, line by line; values are cut from the log as written.
FACT_LINES: dict[Fact, tuple[LogRow, ...]] = {
    Fact.SDK_VERSION: (
        LogRow(
            ("sdk", "agora", "zego", "trtc", "liteav", "rtc engine", "rtcengine"),
            r"\b(?:[a-z]{0,12}sdk|agora\w{0,20}|zego\w{0,20}|trtc|liteav|rtc ?engine)[ _-]?"
            r"(?:version\b|ver\b|v\b|版本号?)[ \t]?(?:[:=：][ \t]?)?[\"'\[]?v?"
            r"(?P<value>\d{1,3}(?:\.\d{1,6}){1,3})(?![0-9])(?!\.[0-9x*])",
        ),
        LogRow(
            ("sdk", "agora", "zego", "trtc", "liteav"),
            r"\b(?:sdk|agora|zego|trtc|liteav)\w{0,20}[ \t]?v?"
            r"(?P<value>\d{1,3}(?:\.\d{1,6}){2,3})(?![0-9])(?!\.[0-9x*])",
        ),
    ),
    Fact.OS_VERSION: (
        LogRow(
            ("build fingerprint",),
            r"^build fingerprint:[ \t]?'?[^/\s']{1,40}/[^/\s']{1,40}/[^:\s']{1,40}"
            r":(?P<android>\d{1,2}(?:\.\d)?)/",
        ),
        LogRow(
            ("ro.build.version.release",),
            r"ro\.build\.version\.release\]?[ \t]?[:=][ \t]?\[?(?P<android>\d{1,2}(?:\.\d)?)\b",
        ),
        LogRow(
            ("os version", '"os_version"'),
            r"(?:^os version|\"os_version\"):?[ \t]{0,20}\"?"
            r"(?P<system>(?:iphone os|ios|ipados|macos|mac os x) \d{1,2}(?:\.\d{1,2}){0,2})",
        ),
        LogRow(
            ("os:", "os=", "os :", "version:", "version=", "system:", "system=", "platform:"),
            r"\b(?:os|os ?version|osversion|os_version|system ?version|system|platform)"
            r"[ \t]?[:=][ \t]?[\"'\[]?(?P<system>[a-z][^,;\]\"'\n]{2,40})",
        ),
        LogRow(("系统",), r"系统(?:版本)?[ \t]?[:=：][ \t]?(?P<system>[^,;，；\]\"'\n]{2,40})"),
    ),
    Fact.DEVICE: (
        LogRow(("hardware model:",), r"^hardware model:[ \t]{0,20}(?P<value>[\w,]{2,40})"),
        LogRow(
            ('"modelcode"', '"product"'),
            r"\"(?:modelcode|product)\"[ \t]?:[ \t]?\"(?P<value>[\w, ]{2,40})\"",
        ),
        LogRow(
            ("ro.product.model",),
            r"ro\.product\.model\]?[ \t]?[:=][ \t]?\[?(?P<value>[^\]\n]{2,40})",
        ),
        LogRow(
            ("model", "device", "machine"),
            r"(?<!recording )(?<!playout )(?<!playback )(?<!audio )(?<!video )(?<!capture )"
            r"\b(?:device ?model|phone ?model|devicemodel|device_model|model|device|machine)"
            r"[ \t]?[:=][ \t]?[\"'\[]?(?P<value>(?:[^,;\]\"'\n]|,(?=\d)){2,40})",
        ),
        LogRow(
            ("设备", "机型", "型号"),
            r"(?:设备(?:型号)?|机型|(?:手机|电脑|计算机)型号)[ \t]?[:=：][ \t]?"
            r"(?P<value>[^,;，；\]\"'\n]{2,40})",
        ),
    ),
    Fact.APP_ID: (
        LogRow(
            ("appid", "app id", "app_id"),
            r"\b(?:app ?id|appid|app_id)[ \t]?[:=][ \t]?[\"'\[]?(?P<value>[a-z0-9]{6,64})\b",
        ),
    ),
    Fact.CHANNEL: (
        # The channel the app joins: "joinChannel: meet_88", "start join channel tutor_9".
        LogRow(LOG_JOIN_WORDS, LOG_JOINED_CHANNEL),
        LogRow(
            ("channel", "roomid", "room_id"),
            r"(?<!audio )(?<!audio_)\b(?:channel ?(?:name|id)?|channelname|channelid|channel_name"
            r"|channel_id|roomid"
            r"|room_id)[ \t]?[:=][ \t]?[\"'\[]?(?P<value>[a-z0-9][a-z0-9_\-.@#$%^&*+=~!]{0,63})",
        ),
    ),
    Fact.UID: (
        # The local user is who joins: "joinChannel channel=x uid=901266".
        LogRow(LOG_JOIN_WORDS, LOG_JOINED_UID),
        # Else a uid on a line about no other user and no process: not "onUserJoined: uid=7",
        # logcat's "chatty: uid=10253", a tombstone's "uid: 10242" line.
        LogRow(
            ("uid", "userid", "user_id", "user id", "user account", "useraccount"),
            LOG_OWN_UID,
        ),
    ),
}
# A framework's own lines in a log, as written: Flutter's "I/flutter", React Native's
# "ReactNativeJS".
FRAMEWORK_LINES: dict[str, LogRow] = {
    "Flutter": LogRow(("flutter",), r"\b[VDIWEF]/flutter\b|\bflutter\b"),
    "React Native": LogRow(
        ("ReactNativeJS", "react-native"), r"\bReactNativeJS\b|\breact-native\b"
    ),
    "Unity": LogRow(("Unity",), r"\b[VDIWEF]/Unity\b|\bUnityPlayer\b"),
    "Electron": LogRow(("electron",), r"\belectron\b"),
}
# A fact row is not read past this many lines holding its words: a log that never states
# it would otherwise be read line by line to its end.
MAX_ROW_LINES = 2000

LOG_FACTS = {
    fact: [(row.words, re.compile(row.pattern, FLAGS)) for row in rows]
    for fact, rows in FACT_LINES.items()
}
LOG_PLATFORMS = {
    name: (row.words, re.compile(row.pattern, re.ASCII)) for name, row in FRAMEWORK_LINES.items()
}
NOT_READ = ("", False)


@dataclass(frozen=True, slots=True)
class LogFile:
    """An attachment that is a log, whether its content told, and the text of the logs in
    it when it is an archive (None: the file's own text, read when asked for)."""

    file: File
    by_content: bool
    inner: str | None = None

    def text(self) -> str:
        if self.inner is not None:
            return self.inner
        return "" if is_binary(self.file.data) else text_of(self.file.data)


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
    return LogReading(logs, facts_in_logs(logs[:MAX_LOGS_READ]))


def log_of(file: File) -> LogFile | None:
    name = lower(file.name.replace("\\", "/").rsplit("/", 1)[-1])
    if NOT_LOG_NAME.search(name) or file.content_type.startswith(("image/", "video/", "audio/")):
        return None
    if ARCHIVE_NAME.search(name):
        text, by_content = archived_log(file.data, name)
        return LogFile(file, by_content, text) if text or LOG_HINT.search(name) else None
    if looks_like_log(file.data):
        return LogFile(file, True)
    if LOG_NAME.search(name):
        return LogFile(file, False)
    return None


# -- telling a log by its lines -------------------------------------------------------------


def looks_like_log(data: bytes) -> bool:
    """Whether the start of `data` reads as a log, a crash report or a tombstone."""
    if is_binary(data):
        return False
    probe = text_of(data[:PROBE_BYTES])
    if any(signature in probe for signature in LOG_SIGNATURES):
        return True
    lines = [line for line in probe.splitlines()[:PROBE_LINES] if line.strip()]
    logged = sum(1 for line in lines if LOG_LINE.match(line))
    return logged >= MIN_LOG_LINES and logged >= MIN_LOG_SHARE * len(lines)


def is_binary(data: bytes) -> bool:
    """NUL bytes in text that is no UTF-16: compressed, encrypted or garbage."""
    start = data[:8192]
    return b"\x00" in start and not start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


# -- archives -------------------------------------------------------------------------------


def archived_log(data: bytes, name: str) -> tuple[str, bool]:
    """The text of the logs in an archive, and whether one was told by its content."""
    if name.endswith(".zip"):
        return logs_among(list(zip_members(data)))
    if name.endswith((".tar.gz", ".tgz")):
        return logs_among(list(tar_members(gunzip(data))))
    if name.endswith(".tar"):
        return logs_among(list(tar_members(data)))
    if name.endswith(".gz"):
        inner = gunzip(data)
        return logs_among([(name.rsplit(".", 1)[0], inner)] if inner else [])
    return NOT_READ


def logs_among(members: list[tuple[str, bytes]]) -> tuple[str, bool]:
    texts, by_content = [], False
    for member, data in members:
        name = lower(member)
        if NOT_LOG_NAME.search(name) or ARCHIVE_NAME.search(name):
            continue
        content = looks_like_log(data)
        if content or LOG_NAME.search(name.rsplit("/", 1)[-1]):
            texts.append("" if is_binary(data) else text_of(data))
            by_content = by_content or content
    return ("\n".join(texts) or " ", by_content) if texts else NOT_READ


# -- facts in logs --------------------------------------------------------------------------


def facts_in_logs(logs: tuple[LogFile, ...]) -> tuple[Finding, ...]:
    """Each fact from the first log that states it."""
    found: dict[Fact, Finding] = {}
    for log in logs:
        for finding in facts_in(log.text()):
            found.setdefault(finding.fact, finding)
    return tuple(found.values())


def facts_in(text: str, folded: str = "", facts: Iterable[Fact] = ()) -> Iterator[Finding]:
    """The facts `text` states as a log does (`folded`: `text` lowered, when at hand), or
    only those of `facts` when given (then no platform)."""
    folded = folded or lower(text)
    wanted = tuple(facts) or tuple(LOG_FACTS)
    found = [
        finding
        for fact in wanted
        if fact in LOG_FACTS and (finding := first_of(fact, LOG_FACTS[fact], text, folded))
    ]
    yield from found
    platform = None if facts else platform_in(text) or system_platform(found)
    if platform:
        yield platform


def first_of(
    fact: Fact, rows: list[tuple[tuple[str, ...], re.Pattern[str]]], text: str, folded: str
) -> Finding | None:
    """The first line a row of `fact` matches with a value (`folded` is `text` lowered)."""
    for words, pattern in rows:
        for start, end in lines_holding(folded, words):
            found = pattern.search(folded, start, end)
            value = fact_value(fact, found, text) if found else None
            if value:
                return Finding(fact, value, Source.LOG, excerpt_of(text[start:end]))
    return None


def lines_holding(text: str, words: tuple[str, ...]) -> Iterator[tuple[int, int]]:
    """Where the lines holding one of `words` start and end, word by word, at most
    `MAX_ROW_LINES` of them."""
    for word in words:
        at, seen = text.find(word), 0
        while at >= 0 and seen < MAX_ROW_LINES:
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            yield start, end
            at, seen = text.find(word, end), seen + 1


def system_platform(found: list[Finding]) -> Finding | None:
    """The platform of the system a log names: a fingerprint's Android, a report's iOS."""
    system = next((finding for finding in found if finding.fact is Fact.OS_VERSION), None)
    platform = platform_of_system(system.value) if system else None
    if system is None or platform is None:
        return None
    return Finding(Fact.PLATFORM, platform, Source.LOG, system.excerpt)


def fact_value(fact: Fact, found: re.Match[str], text: str) -> str | None:
    groups = {
        name: text[found.start(name) : found.end(name)]
        for name, value in found.groupdict().items()
        if value
    }
    if fact is Fact.OS_VERSION:
        if "android" in groups:
            return f"Android {groups['android']}"
        return system_in(groups.get("system", ""))
    value = groups.get("value", "").strip()
    if fact is Fact.DEVICE:
        return device_value(value)
    return None if is_placeholder(value) or (fact is Fact.UID and value == "0") else value


def platform_in(text: str) -> Finding | None:
    """A framework's own log lines, else the platform of the system the log names."""
    for name, (words, pattern) in LOG_PLATFORMS.items():
        for start, end in lines_holding(text, words):
            if pattern.search(text, start, end):
                return Finding(Fact.PLATFORM, name, Source.LOG, excerpt_of(text[start:end]))
    return None
