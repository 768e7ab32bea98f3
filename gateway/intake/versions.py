"""The version of our SDK: a number tied to the SDK's words, never the app's own version, a
system's, a browser's or a library's, an address or a date.

Each version-like number ("4.0.6", "v3.7.2.1", "4.1.0-beta.2" → "4.1.0") is given to its
owner, the nearest word before it with only labels between ("SDK version: v", "版本号是"):

- 4: ours: "SDK", a product word ("Agora", "RTC", "agora_rtc_engine"), or "4.0.6 SDK" after;
- 3: a move to it: "upgraded to", "we are on", "using", "升级到了";
- 2: a bare label ("Version: 4.0.6", "版本号：4.0.6") with nobody else's word before it,
  or our words further back on the line;
- 1: a version left behind: "from 4.0.5", "降级到4.0.5";
- 0: someone else's ("our app v2.3.1", "App版本2.3.1", "iOS 17.2", "ffmpeg 6.0", "Flutter
  SDK 3.16", "Windows SDK 10.0.22621"), a measure ("1.5 s"), an address, a date, or nobody's.

The highest wins, the first among equals. A number with one dot ("SDK 4.2") counts only at
4. "latest" and "最新版" are no number, so no version; placeholders ("x.x.x", "4.0.x") none.
"""

from __future__ import annotations

import re

from gateway.intake import patterns
from gateway.intake.mentions import Named
from gateway.intake.page import FLAGS, Page, compiled, lower, search

# Every line is read: a version starts with a digit or a "v", no fixed word.
VERSION = search(patterns.VERSION)
OWNERS = re.compile(
    "|".join(f"(?P<{kind}>{words.pattern()})" for kind, words in patterns.VERSION_OWNERS.items()),
    FLAGS,
)
GAP = re.compile(patterns.VERSION_GAP, FLAGS)
SDK_AFTER = re.compile(patterns.VERSION_AFTER["sdk"], FLAGS)
OTHER_AFTER = re.compile(patterns.VERSION_AFTER["other"], FLAGS)
OLD_AFTER = re.compile(patterns.VERSION_AFTER["old"], FLAGS)
FLAVOURED_SDKS = compiled(patterns.FLAVOURED_SDKS.pattern())
SDK_PACKAGE = compiled(patterns.SDK_PACKAGE.pattern())
PLUGIN_HOSTS = compiled(patterns.PLUGIN_HOSTS.pattern())
OWN_APP = compiled(patterns.OWN_APP.pattern())
MEASURE = re.compile(patterns.MEASURE, FLAGS)
SDKS_OF_OTHERS = compiled(patterns.SDKS_OF_OTHERS.pattern())
SYSTEMS_WITH_SDKS = compiled(patterns.SYSTEMS_WITH_SDKS.pattern())
BARE_SDK = re.compile(r"sdk[_ -]?(?:version|ver)?[ ]?", FLAGS)
SCORES = {"sdk": 4, "move": 3, "label": 2, "old": 1, "other": 0}
OWNER_REACH = 60
SUBJECT_REACH = 12
PLATFORM = compiled(patterns.SDK_PLATFORMS.pattern())
FOR_PLATFORM = re.compile(r"[ _-]{0,2}(?:(?:for|on)[ ]|版)?[ ]?")
CLAUSE_BREAK = re.compile(r"[,;.!?。，；！？、]|\b(?:and|but)\b")
FAR_SDK_REACH = 40


def read_sdk_version(page: Page) -> Named | None:
    """The version of our SDK the page gives, or None."""
    best: tuple[int, Named] | None = None
    for spot in page.matches(VERSION):
        line, (digits, end) = page.folded_line(spot.line), spot.span()
        start = version_start(line, digits)
        number = spot.found.group("number")
        score = version_score(line, start, end, number) if start is not None else 0
        if score and (best is None or score > best[0]):
            best = (score, Named(number, spot.line, spot.excerpt()))
    return best[1] if best else None


def version_start(line: str, start: int) -> int | None:
    """Where the version whose digits start at `start` begins, with its "v" ("v4.0.6", "v
    4.0.6"); None when it is the tail of something else ("1.4.0.6", "lib/4.0.6")."""
    if line[max(0, start - 2) : start] == "v ":
        start -= 2
    elif line[start - 1 : start] == "v":
        start -= 1
    return None if start and line[start - 1] in patterns.NOT_BEFORE_VERSION else start


def version_score(line: str, start: int, end: int, number: str) -> int:
    """How surely the number at `start`..`end` of `line` is our SDK's version (0: not)."""
    after = line[end : end + 24]
    if MEASURE.match(after) or OTHER_AFTER.match(after) or is_date(number):
        return 0
    score = (
        4
        if SDK_AFTER.match(after)
        else owner_score(line[max(0, start - OWNER_REACH) : start], number)
    )
    if score < 4 and (number.count(".") == 1 or is_address(number, after)):
        return 0
    return min(score, SCORES["old"]) if OLD_AFTER.match(after) else score


def owner_score(before: str, number: str) -> int:
    owners = list(OWNERS.finditer(before))
    if not owners:
        return 0
    last = owners[-1]
    kind = last.lastgroup or "other"
    if not GAP.fullmatch(before, last.end()):
        near = kind == "sdk" and len(before) - last.end() <= FAR_SDK_REACH
        return 2 if near else 0
    if kind in ("move", "label") and subject_is_other(before, owners):
        return 0
    previous = owners[-2] if len(owners) > 1 and adjacent(before, owners[-2], last) else None
    if kind == "other" and (sdk_for_platform(before, owners) or sdk_package(before, owners)):
        return 4
    if kind == "label" and previous is not None:
        return 4 if previous.lastgroup == "sdk" else 0 if previous.lastgroup == "other" else 2
    if kind == "sdk" and previous is not None and BARE_SDK.fullmatch(last.group()):
        return 0 if someone_elses_sdk(before, owners, number) else 4
    return SCORES[kind]


def sdk_for_platform(before: str, owners: list[re.Match[str]]) -> bool:
    """ "SDK iOS 4.2.2", "RTC SDK for Android v4.0.6": our SDK's flavour for a platform."""
    if len(owners) < 2 or owners[-2].lastgroup != "sdk":
        return False
    between = before[owners[-2].end() : owners[-1].start()]
    return (
        PLATFORM.fullmatch(owners[-1].group()) is not None
        and FOR_PLATFORM.fullmatch(between) is not None
    )


def sdk_package(before: str, owners: list[re.Match[str]]) -> bool:
    """ "agora_rtc_engine plugin 6.2.6", "Flutter插件 6.2.4": the package our SDK ships in,
    named after it or after the framework it is for."""
    if len(owners) < 2 or not adjacent(before, owners[-2], owners[-1]):
        return False
    host = owners[-2].lastgroup == "sdk" or PLUGIN_HOSTS.fullmatch(owners[-2].group())
    return bool(host) and SDK_PACKAGE.fullmatch(owners[-1].group()) is not None


def subject_is_other(before: str, owners: list[re.Match[str]]) -> bool:
    """ "our app is using 2.3.1", "我们App用的是2.3.1": a move or a label whose subject, a few
    words before it in the same clause, is someone else's."""
    if len(owners) < 2 or owners[-2].lastgroup != "other":
        return False
    between = before[owners[-2].end() : owners[-1].start()]
    if not between.strip(" ,，:：") and OWN_APP.fullmatch(owners[-2].group()):
        return True  # "our App, version 2.8.5": the label is the App's
    return len(between) <= SUBJECT_REACH and not CLAUSE_BREAK.search(between)


def adjacent(text: str, first: re.Match[str], second: re.Match[str]) -> bool:
    return first.end() >= second.start() - 2 and not text[first.end() : second.start()].strip(" _-")


def someone_elses_sdk(before: str, owners: list[re.Match[str]], number: str) -> bool:
    """ "Flutter SDK 3.16", "Windows SDK", "Android SDK 34.0.0": not ours; "Agora Unity SDK"
    is, its maker named first."""
    maker = owners[-2].group()
    if (
        len(owners) > 2
        and owners[-3].lastgroup == "sdk"
        and adjacent(before, owners[-3], owners[-2])
    ):
        return False
    major = int(number.split(".")[0])
    if FLAVOURED_SDKS.fullmatch(maker):
        return major >= patterns.OUR_MAJOR_LIMIT
    if SDKS_OF_OTHERS.fullmatch(maker):
        return True
    return SYSTEMS_WITH_SDKS.fullmatch(maker) is not None and major >= patterns.SYSTEM_SDK_MAJOR


def is_date(number: str) -> bool:
    """ "30.11.2026", "2026.11.30": a part of four digits is a year."""
    return any(len(part) == 4 and part[:2] in ("19", "20") for part in number.split("."))


def is_address(number: str, after: str) -> bool:
    """ "192.168.1.10", "10.0.0.5:8080": an IPv4 address, not a version."""
    parts = [int(part) for part in number.split(".")]
    if len(parts) != 4 or max(parts) > 255:
        return False
    return parts[0] >= 10 or re.match(r":\d", after) is not None


def version_in(text: str) -> str | None:
    """The first version a short answer gives ("v4.0.7 (app 2.3.1)" → "4.0.7"), or None."""
    text = lower(text)
    for found in VERSION.pattern.finditer(text):
        start = version_start(text, found.start())
        if start is None:
            continue
        after = text[found.end() : found.end() + 24]
        owner = owner_score(text[max(0, start - OWNER_REACH) : start], "0")
        measured = MEASURE.match(after) or OTHER_AFTER.match(after)
        if (owner or not OWNERS.search(text[:start])) and not measured:
            return found.group("number")
    return None
