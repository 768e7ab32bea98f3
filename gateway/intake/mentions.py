"""Platform, system version and device: the things a customer names, often more than one.

Each reader lists every mention on the page and `page.choose` takes the one with the
problem. A platform named outright ("Android", "Web SDK", "小程序") beats one implied by a
device or a browser, and a framework (Flutter, React Native, Unity, Electron, uni-app, Mini
Program) wins over the system it runs on. A system version needs its number ("Android 14",
"安卓13", "iOS17.2", "Win11"): "Android phones" and "API 33" are none. A device is the model
as written, with the brand next to it ("小米13", "华为 Mate 60 Pro"), or a labelled value
("机型：ZTE Axon 40") that has a digit and is no system.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.intake import patterns
from gateway.intake.page import FLAGS, Mention, Page, choose, compiled, is_placeholder

NAMED_PLATFORMS = [(entry, compiled(entry.words.pattern())) for entry in patterns.PLATFORMS]
IMPLIED_PLATFORMS = [
    (name, compiled(words.pattern())) for name, words in patterns.IMPLIED_PLATFORMS.items()
]
PLATFORM_FLAVOUR = re.compile(patterns.PLATFORM_FLAVOUR, FLAGS)
SYSTEMS = [
    (
        entry,
        compiled(
            rf"(?:{entry.words.pattern()}){patterns.OS_GAP}(?P<number>(?:{entry.number})"
            rf"{patterns.OS_MINOR})(?![0-9])(?!\.\d)(?! ?(?:sdk|SDK))"
        ),
    )
    for entry in patterns.OS_SYSTEMS
]
SYSTEM_PLATFORM = {entry.name: entry.platform for entry in patterns.OS_SYSTEMS}
DEVICE = compiled(*(rf"(?<![A-Za-z0-9])(?:{row})(?![A-Za-z0-9])" for row in patterns.DEVICES))
DEVICE_LABEL = compiled(
    r"(?:^|[\s,;(])(?:device(?: model)?|model|phone(?: model)?|test device|hardware model"
    r"|设备型号|设备|机型|手机型号|手机|测试机)[ \t]?[:=][ \t]?(?P<value>[^\n,;()]{2,40})"
)
GENERIC_DEVICE = re.compile(patterns.GENERIC_DEVICES, FLAGS)
DEVICE_VALUE_END = re.compile(r"\s(?:and|with|on|running|os|android|ios)\b|[，、。]", FLAGS)


@dataclass(frozen=True, slots=True)
class Named:
    """What a reader found, with the line it is in."""

    value: str
    line: int
    excerpt: str


def named(page: Page, mention: Mention | None) -> Named | None:
    if mention is None:
        return None
    excerpt = page.excerpt(mention.line, mention.start, mention.end)
    return Named(mention.value, mention.line, excerpt)


# -- platform ------------------------------------------------------------------------------


def read_platform(page: Page) -> tuple[Named | None, Named | None]:
    """The platform named outright (a framework first), and the one only implied."""
    frameworks: list[Mention] = []
    systems: list[Mention] = []
    for entry, pattern in NAMED_PLATFORMS:
        found = list(platform_mentions(page, entry.name, pattern))
        (frameworks if entry.framework else systems).extend(found)
    outright = choose(page, frameworks) or choose(page, systems)
    implied = choose(page, implied_mentions(page))
    return named(page, outright), named(page, implied)


def platform_mentions(page: Page, name: str, pattern: re.Pattern[str]) -> Iterator[Mention]:
    for line, found in page.matches(pattern):
        start = found.start() - page.starts[line]
        end = found.end() - page.starts[line]
        flavour = PLATFORM_FLAVOUR.match(page.lines[line], end) is not None
        yield Mention(name, line, start, end, 3 if flavour else 2)


def implied_mentions(page: Page) -> Iterator[Mention]:
    for name, pattern in IMPLIED_PLATFORMS:
        for line, found in page.matches(pattern):
            start = found.start() - page.starts[line]
            yield Mention(name, line, start, start + len(found.group()))


def platform_of_system(system_version: str) -> str | None:
    """The platform a system version implies: "iPadOS 17.1" → iOS, "Ubuntu 22.04" → Linux."""
    return SYSTEM_PLATFORM.get(system_version.split(" ")[0])


# -- system version -------------------------------------------------------------------------


def read_system(page: Page, platform: str | None = None) -> Named | None:
    """The system and its version, on the platform with the problem when several are named."""
    mentions = list(system_mentions(page))
    same = [m for m in mentions if platform_of_system(m.value) == platform]
    return named(page, choose(page, same or mentions))


def system_mentions(page: Page) -> Iterator[Mention]:
    for entry, pattern in SYSTEMS:
        for line, found in page.matches(pattern):
            start = found.start() - page.starts[line]
            value = f"{entry.name} {found.group('number')}"
            yield Mention(value, line, start, start + len(found.group()))


def system_in(text: str) -> str | None:
    """The first system version in a short text ("安卓14" → "Android 14"), or None."""
    for entry, pattern in SYSTEMS:
        found = pattern.search(text)
        if found:
            return f"{entry.name} {found.group('number')}"
    return None


# -- device ---------------------------------------------------------------------------------


def read_device(page: Page) -> Named | None:
    """The device with the problem, else the first; a model from the table or a label."""
    mentions = list(device_mentions(page)) or list(labelled_devices(page))
    return named(page, choose(page, mentions))


def device_mentions(page: Page) -> Iterator[Mention]:
    for line, found in page.matches(DEVICE):
        start = found.start() - page.starts[line]
        yield Mention(found.group().strip(), line, start, start + len(found.group()))


def labelled_devices(page: Page) -> Iterator[Mention]:
    for line, found in page.matches(DEVICE_LABEL):
        value = device_value(found.group("value"))
        if value:
            start = found.start("value") - page.starts[line]
            yield Mention(value, line, start, start + len(value))


def device_value(text: str) -> str | None:
    """A labelled device's value, or None when it names no one model."""
    value = DEVICE_VALUE_END.split(text, maxsplit=1)[0].strip(" .\"'“”")
    has_letter = re.search(r"[A-Za-z\u4e00-\u9fff]", value) is not None
    if not (has_letter and re.search(r"\d", value)) or GENERIC_DEVICE.search(value):
        return None
    if system_in(value) or is_placeholder(value):
        return None
    return value


def device_in(text: str) -> str | None:
    """The device a short text names: a model from the table, else the text as written."""
    found = DEVICE.search(text)
    if found:
        return found.group().strip()
    value = DEVICE_VALUE_END.split(text, maxsplit=1)[0].strip(" .\"'“”")
    return value[:60] or None
