"""Platform, system version and device: the things a customer names, often more than one.

Each reader lists every mention on the page and `page.choose` takes the one with the
problem. A platform named outright ("Android", "Web SDK", "小程序") beats one implied by a
device or a browser, unless it is said to work or not to be involved ("works on iOS",
"鸿蒙不涉及") beside a device that has the problem; a framework (Flutter, React Native,
Unity, Electron, uni-app, Mini Program) wins over the system it runs on. A system version
needs its number ("Android 14", "安卓13", "iOS17.2", "Win11"): "Android phones" and "API
33" are none. A device is the model as written, with the brand next to it ("小米13", "华为
Mate 60 Pro"), or a labelled value ("机型：ZTE Axon 40") that has a digit and is no system.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.intake import patterns
from gateway.intake.page import (
    FLAGS,
    Mention,
    Page,
    choose,
    compiled,
    is_placeholder,
    lower,
    search,
    union,
    weigh,
)

# One search a table, reading only the lines that hold a word of a row; which row a match
# is of is told after.
NAMED_PLATFORMS = search(union(entry.words for entry in patterns.PLATFORMS))
PLATFORM_ROWS = [(entry.name, compiled(entry.words.pattern())) for entry in patterns.PLATFORMS]
IMPLIED_PLATFORMS = search(union(patterns.IMPLIED_PLATFORMS.values()))
IMPLIED_ROWS = [
    (name, compiled(words.pattern())) for name, words in patterns.IMPLIED_PLATFORMS.items()
]
FRAMEWORKS = frozenset(entry.name for entry in patterns.PLATFORMS if entry.framework)
PLATFORM_FLAVOUR = re.compile(patterns.PLATFORM_FLAVOUR, FLAGS)
SYSTEMS = search(
    rf"(?P<name>{union(entry.words for entry in patterns.OS_SYSTEMS)}){patterns.OS_GAP}"
    rf"(?P<number>{patterns.OS_NUMBER})(?![0-9])(?!\.\d)(?! ?sdk)"
)
SYSTEM_ROWS = [
    (entry, compiled(entry.words.pattern()), compiled(entry.number))
    for entry in patterns.OS_SYSTEMS
]
SYSTEM_PLATFORM = {entry.name: entry.platform for entry in patterns.OS_SYSTEMS}
SYSTEM_LABEL = search(rf"{patterns.OS_LABEL}(?P<number>{patterns.OS_NUMBER})(?![\d.])")
TOOLCHAIN = compiled(patterns.TOOLCHAIN.pattern())
DEVICE = search(rf"(?<![a-z0-9])(?:{'|'.join(patterns.DEVICES)})(?![a-z0-9])")
# A maker named right before a model the table knows without it: "Motorola moto g84".
MAKER_BEFORE = re.compile(
    r"(?<![a-z0-9])(?:motorola|sony|nokia|samsung|google|xiaomi|huawei|asus|lenovo|amazon"
    r"|oneplus|oppo|vivo|realme|honor|tecno|infinix|apple|microsoft|dell|hp|zte|nubia"
    r"|三星|小米|华为|华硕|联想|荣耀|一加|中兴)[ ]?$"
)
# What a model's name may end with after the table's match: "Nokia G42 5G", "iPhone SE
# (2022)", "iPhone SE 2022".
MODEL_ENDING = re.compile(r"(?: ?(?:5g|4g|lte)(?![a-z0-9])| ?\(?20[12]\d\)?(?![\d.:/-]))")
DEVICE_LABELS = (
    r"(?<![a-z])(?:device(?: model)?|model|phone(?: model)?|test device|hardware model"
    r"|machine|computer(?: model)?|laptop|设备型号|设备|机型|手机型号|手机|测试机|电脑(?:型号)?"
    rf"|计算机型号){patterns.DEVICE_SEPARATOR}"
)
DEVICE_LABEL = search(rf"{DEVICE_LABELS}(?P<value>[^\n,;()|]{{2,40}})")
LABEL_BEFORE = re.compile(rf"{DEVICE_LABELS}$", FLAGS)
GENERIC_DEVICE = re.compile(patterns.GENERIC_DEVICES, FLAGS)
DEVICE_VALUE_END = re.compile(
    r"\s(?:and|with|on|running|os|android|ios)\b|[，、。]", re.ASCII | re.IGNORECASE
)
LETTER = re.compile(r"[a-z\u4e00-\u9fff]")
DIGIT = re.compile(r"\d")


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
    """The platform named outright (a framework first); and, when none is or the one named
    is said to work, the platform a device or a browser implies."""
    frameworks: list[Mention] = []
    systems: list[Mention] = []
    for mention in platform_mentions(page):
        (frameworks if mention.value in FRAMEWORKS else systems).append(mention)
    outright = weigh(page, frameworks) or weigh(page, systems)
    # What a page implies matters only without a platform named, or one said to work.
    implied = weigh(page, implied_mentions(page)) if not outright or outright[0] < 0 else None
    if outright and implied and outright[0] < 0 <= implied[0]:
        outright = None  # "works on iOS" beside a Xiaomi 13: the phone has the problem
    return named(page, outright[1] if outright else None), named(page, implied and implied[1])


def platform_mentions(page: Page) -> Iterator[Mention]:
    """Each platform named: stronger with a flavour ("Android SDK", "iOS端") than without."""
    for spot in page.matches(NAMED_PLATFORMS):
        start, end = spot.span()
        flavour = PLATFORM_FLAVOUR.match(page.folded_line(spot.line), end) is not None
        name = row_of(PLATFORM_ROWS, spot.found.group())
        if name:
            yield Mention(name, spot.line, start, end, 3 if flavour else 2)


def implied_mentions(page: Page) -> Iterator[Mention]:
    for spot in page.matches(IMPLIED_PLATFORMS):
        name = row_of(IMPLIED_ROWS, spot.found.group())
        if name:
            yield Mention(name, spot.line, *spot.span())


def row_of(rows: list[tuple[str, re.Pattern[str]]], matched: str) -> str | None:
    """The name of the first row whose words are the matched text."""
    return next((name for name, pattern in rows if pattern.fullmatch(matched)), None)


def platform_of_system(system_version: str) -> str | None:
    """The platform a system version implies: "iPadOS 17.1" → iOS, "Ubuntu 22.04" → Linux."""
    return SYSTEM_PLATFORM.get(system_version.split(" ")[0])


# -- system version -------------------------------------------------------------------------


def read_system(page: Page, platform: str | None = None) -> Named | None:
    """The system and its version, on the platform with the problem when several are named;
    a labelled bare number ("OS version: 17.1.2") is the named platform's system."""
    mentions = [m for m in system_mentions(page) if not TOOLCHAIN.search(page.folded_line(m.line))]
    same = [m for m in mentions if platform_of_system(m.value) == platform]
    return named(page, choose(page, same or mentions)) or labelled_system(page, platform)


def labelled_system(page: Page, platform: str | None) -> Named | None:
    """ "OS version: 17.1.2" with "Platform: iOS" → "iOS 17.1.2"."""
    if platform not in SYSTEM_PLATFORM.values():
        return None
    for spot in page.matches(SYSTEM_LABEL):
        value = system_in(f"{platform} {spot.found.group('number')}")
        if value:
            return Named(value, spot.line, spot.excerpt())
    return None


def system_mentions(page: Page) -> Iterator[Mention]:
    for spot in page.matches(SYSTEMS):
        value = system_value(spot.found)
        if value:
            yield Mention(value, spot.line, *spot.span())


def system_value(found: re.Match[str]) -> str | None:
    """ "安卓13" → "Android 13": the canonical name of the system, when the number is one of
    its versions ("Android 4.0.6" is none)."""
    name, number = found.group("name"), found.group("number")
    for entry, words, numbers in SYSTEM_ROWS:
        if words.fullmatch(name):
            return f"{entry.name} {number}" if numbers.fullmatch(number) else None
    return None


def system_in(text: str) -> str | None:
    """The first system version in a short text ("安卓14" → "Android 14"), or None."""
    for found in SYSTEMS.pattern.finditer(lower(text)):
        value = system_value(found)
        if value:
            return value
    return None


# -- device ---------------------------------------------------------------------------------


def read_device(page: Page) -> Named | None:
    """The device with the problem, else the first; a model from the table or a label."""
    modelled = list(device_mentions(page))
    taken = {mention.line for mention in modelled}
    labelled = [mention for mention in labelled_devices(page) if mention.line not in taken]
    mentions = modelled + labelled
    chosen = under_label(page, mentions) or choose(page, mentions)
    return named(page, chosen and fullest(chosen, mentions))


def fullest(chosen: Mention, mentions: list[Mention]) -> Mention:
    """The same model as written most fully: "三星 Galaxy Z Fold6" over "Galaxy Z Fold6"."""
    model = lower(chosen.value)
    same = [mention for mention in mentions if model in lower(mention.value)]
    return max(same, key=lambda mention: len(mention.value), default=chosen)


def under_label(page: Page, mentions: list[Mention]) -> Mention | None:
    """The device a "Device:" or "机型：" field names: the customer's answer to which one,
    fuller than a mention in passing ("iPad Pro" in the subject), unless it is said to work."""
    fields = [
        mention
        for mention in mentions
        if LABEL_BEFORE.search(page.folded_line(mention.line)[: mention.start])
    ]
    ranked = weigh(page, fields)
    return ranked[1] if ranked and ranked[0] >= 0 else None


def device_mentions(page: Page) -> Iterator[Mention]:
    """Each model the table finds, with its maker written before it ("Motorola moto g84")
    and what the model's name ends with after it ("5G", "(2022)")."""
    for spot in page.matches(DEVICE):
        folded, (start, end) = page.folded_line(spot.line), spot.span()
        if maker := MAKER_BEFORE.search(folded, 0, start):
            start = maker.start()
        while ending := MODEL_ENDING.match(folded, end):
            end = ending.end()
        yield Mention(page.lines[spot.line][start:end].strip(), spot.line, start, end)


def labelled_devices(page: Page) -> Iterator[Mention]:
    for spot in page.matches(DEVICE_LABEL):
        value = device_value(spot.written("value"))
        if value:
            start = spot.span("value")[0]
            yield Mention(value, spot.line, start, start + len(value))


def device_value(text: str) -> str | None:
    """A labelled device's value, or None when it names no one model."""
    value = DEVICE_VALUE_END.split(text, maxsplit=1)[0].strip(" .\"'“”")
    folded = lower(value)
    if not (LETTER.search(folded) and DIGIT.search(folded)) or GENERIC_DEVICE.search(folded):
        return None
    return None if system_in(value) or is_placeholder(value) else value


def device_in(text: str) -> str | None:
    """The device a short text names: a model from the table, else the text as written
    when it names one model ("ZTE Axon 40", not "many devices")."""
    found = DEVICE.pattern.search(lower(text))
    if found:
        return text[found.start() : found.end()].strip()
    return device_value(text)


def names_platform(text: str, platform: str) -> bool:
    """Whether the text names the platform, outright or by a device or a browser, whatever
    else it names."""
    folded = lower(text)
    return any(
        words.search(folded) for name, words in PLATFORM_ROWS + IMPLIED_ROWS if name == platform
    )
