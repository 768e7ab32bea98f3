"""When it happened: a day and a time of day, as ISO 8601 to the minute with its offset
("2026-11-30T20:30+08:00").

Read line by line. A line gives a moment when it has a time of day ("20:30", "8:30pm",
"11pm", "八点半", "下午3点20", "十点左右") and a day: a date ("2026-11-30", "Nov 30", "30
Nov 2026", "11月30日", "30号"), a word for one ("yesterday", "last night", "this morning",
"today", "昨晚", "前天", "今天上午"), a weekday ("last Friday", "上周五"), or "2 hours ago".
A date alone is no moment, nor a time alone. Relative words are resolved against the mail's
`Date` in its own zone.

The offset is the zone written on the line ("GMT+8", "UTC+7", "北京时间", "PST", "SGT",
"WIB", "IST", "+08:00"), else one given elsewhere as "Time zone: ...", else the mail's
`Date`. CST is China Standard Time (+08:00) when the mail's Date is +08:00 and US Central
(-06:00) otherwise; "Pacific time" and its kind follow US daylight saving time.

A timestamp in a pasted log line, a forwarded mail's "Date:" line and an "On ... wrote:"
line are not the customer saying when it happened. Lines that say so ("happened at",
"around", "发生在", "左右") or use a relative day are preferred to bare dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.intake import patterns
from gateway.intake.mentions import Named
from gateway.intake.page import FLAGS, Page, compiled, page_from

# Named time zones and their offsets in minutes. CST is read below (China or US).
ZONES: dict[str, int] = {
    "utc": 0,
    "gmt": 0,
    "bst": 60,
    "cet": 60,
    "cest": 120,
    "ist": 330,
    "wib": 420,
    "ict": 420,
    "sgt": 480,
    "hkt": 480,
    "pht": 480,
    "myt": 480,
    "awst": 480,
    "jst": 540,
    "kst": 540,
    "aest": 600,
    "pst": -480,
    "pdt": -420,
    "mst": -420,
    "mdt": -360,
    "cdt": -300,
    "est": -300,
    "edt": -240,
    "北京时间": 480,
    "北京": 480,
    "东八区": 480,
    "beijing time": 480,
    "china time": 480,
    "singapore time": 480,
    "manila time": 480,
    "jakarta time": 420,
    "bangkok time": 420,
    "vietnam time": 420,
    "tokyo time": 540,
    "india time": 330,
}
# US zones whose offset depends on daylight saving time: standard offset in minutes.
US_ZONES: dict[str, int] = {
    "pacific time": -480,
    "pt": -480,
    "mountain time": -420,
    "mt": -420,
    "central time": -360,
    "ct": -360,
    "eastern time": -300,
    "et": -300,
}


def zone_name(name: str) -> str:
    """Short zone names only in capitals: "IST", "EST" and "PT" are words in lower case."""
    return f"(?-i:{name.upper()})" if len(name) <= 4 and " " not in name else name


CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
CHINESE_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
HAN_NUMBER = r"[零〇一二两三四五六七八九十]{1,3}"
PERIOD_ZH = r"凌晨|早上|早晨|上午|清晨|中午|下午|傍晚|晚上|晚间|夜里|夜间|半夜|晚|早"
TIME = re.compile(
    r"(?<![\d:.])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::[0-5]\d)?(?![\d:])(?:\s?(?P<ap>[ap]\.?m\b\.?))?"
    r"|(?<![\d:.])(?P<h2>1[0-2]|0?[1-9])(?:\.(?P<m2>[0-5]\d))?\s?(?P<ap2>[ap]\.?m\b\.?)"
    r"|\b(?:at|around|about|by|after|before)\s(?P<h3>1[0-2]|0?[1-9])(?P<clock>\s?o'?clock)?"
    r"(?![\d:.%]|\s?(?:[ap]\.?m\b|%|percent|mins?|minutes|seconds|secs?|s\b|people|users|times|hours?))"
    r"|(?P<noon>\bnoon\b|\bmidday\b|\bmidnight\b)"
    rf"|(?<![\d.])(?P<zh>\d{{1,2}}|{HAN_NUMBER})\s?[点點时](?:\s?(?P<zm>\d{{1,2}}|{HAN_NUMBER}|半|一刻|三刻)(?!\d)\s?分?)?"
    r"(?P<about>左右|钟|多|前后|整)?",
    FLAGS,
)
PERIOD_BEFORE = re.compile(rf"(?:{PERIOD_ZH})\s?$")
DAY_BEFORE_ZH = re.compile(r"(?:天|日|号|晚|早)\s?$")
AFTERNOON = compiled(rf"(?:{patterns.AFTERNOON})$")
EVENING_WORDS = compiled(r"\b(?:afternoon|evening|night|tonight)\b")
MORNING_WORDS = compiled(r"\b(?:morning)\b")
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
MONTH = r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?"
DATE = compiled(
    r"(?P<y>20\d\d)\s?[-/.年]\s?(?P<mo>1[0-2]|0?[1-9])\s?[-/.月]\s?(?P<d>3[01]|[12]\d|0?[1-9])(?![\d:])[日号]?",
    r"(?<!\d)(?P<mo2>1[0-2]|0?[1-9])\s?月\s?(?P<d2>3[01]|[12]\d|0?[1-9])\s?[日号]",
    rf"\b{MONTH}\s(?P<d3>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\b(?:,?\s(?P<y3>20\d\d))?",
    r"\b(?P<d4>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\s(?:of\s)?(?P<mon4>jan|feb|mar|apr|may|jun"
    r"|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?(?:,?\s(?P<y4>20\d\d))?\b",
    r"(?<![\d/.])(?P<a>3[01]|[12]\d|0?[1-9])/(?P<b>3[01]|[12]\d|0?[1-9])(?:/(?P<y5>(?:20)?\d\d))?(?![\d/])",
    r"(?<![\d月])(?P<d6>3[01]|[12]\d|0?[1-9])\s?[号日](?!本|志)",
)
RELATIVE = compiled(
    *(rf"\b{word}\b" if word.isascii() else word for word in patterns.RELATIVE_DAYS)
)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAY = compiled(
    r"\b(?P<last>last\s)?(?:on\s)?(?P<wd>mon|tue|wed|thu|fri|sat|sun)[a-z]{0,6}day\b",
    r"(?P<lastzh>上个?)?(?:周|星期|礼拜)(?P<wdz>[一二三四五六日天])",
)
AGO = compiled(
    r"\b(?P<n>\d{1,2}|an?|one|two|three|half an?)\s(?P<unit>hours?|minutes?|mins?)\sago\b",
    rf"(?P<nz>\d{{1,2}}|{HAN_NUMBER}|半)\s?个?(?P<unitz>小时|钟头|分钟)(?:之|以)?前",
)
ZONE = compiled(
    r"\b(?:gmt|utc)\s?(?P<sign>[+-])\s?(?P<zh>1[0-4]|0?\d)(?::?(?P<zm>[0-5]\d))?(?!\d)",
    r"(?<=\d)\s?(?P<sign2>[+-])(?P<zh2>[01]\d):?(?P<zm2>[0-5]\d)\b",
    r"(?<=\d)(?-i:(?P<utc>Z))\b|\b(?-i:(?P<cst>CST))\b",
    "|".join(rf"\b(?P<us{n}>{zone_name(name)})\b" for n, name in enumerate(US_ZONES)),
    "|".join(
        rf"\b(?P<named{n}>{zone_name(name)})\b" if name.isascii() else rf"(?P<named{n}>{name})"
        for n, name in enumerate(ZONES)
    ),
)
LATE_NIGHT = compiled(r"\blast night\b|昨晚|昨夜")
ZONE_LABEL = compiled(r"\btime ?zone\b|\btz\b|\ball times\b|时区")
CUES = compiled(patterns.OCCURRENCE_CUES.pattern())
LOG_LINE = compiled(
    r"\d{1,2}:\d\d:\d\d[.,]\d{3}|^\s*[\[(]?\d{4}[-/]\d{1,2}[-/]\d{1,2}[ T]\d{1,2}:\d\d:\d\d",
    r"^\s*\d\d-\d\d\s+\d\d:\d\d:\d\d|\[[VDIWEF]\]|(?:^|\s)[VDIWEF]/[\w.$-]{1,40}\s?\(",
)
HEADER_LINE = compiled(patterns.HEADER_LINE)
ATTRIBUTION = compiled(r"\bwrote\s?:|写道\s?:?")
ZONE_NAMES = list(ZONES.values())
US_NAMES = list(US_ZONES.values())
CHINA = 480
US_CENTRAL = -360


@dataclass(frozen=True, slots=True)
class Clock:
    """What relative words are read against: the mail's Date, or None without one."""

    sent_at: datetime | None

    def offset(self) -> int | None:
        if self.sent_at is None:
            return None
        delta = self.sent_at.utcoffset()
        return int(delta.total_seconds() // 60) if delta is not None else 0

    def today(self) -> date | None:
        return self.sent_at.date() if self.sent_at is not None else None


def read_occurrence(page: Page, sent_at: datetime | None) -> Named | None:
    """When the customer says it happened, or None."""
    clock = Clock(sent_at)
    default_zone = page_zone(page, clock)
    best: tuple[int, Named] | None = None
    for index, line in enumerate(page.lines):
        if not line or not told_by_customer(page, index):
            continue
        value = moment_in(line, clock, default_zone)
        score = 2 if value and (CUES.search(line) or RELATIVE.search(line)) else 1
        if value and (best is None or score > best[0]):
            best = (score, Named(value, index, page.excerpt(index)))
    return best[1] if best else None


def occurrence_in(text: str, sent_at: datetime | None) -> str | None:
    """The moment a short answer gives ("昨晚八点半"), or None."""
    found = read_occurrence(page_from([text]), sent_at)
    return found.value if found else None


def told_by_customer(page: Page, index: int) -> bool:
    """Not a log line, a quoted header block's Date or an "On ... wrote:" line."""
    line = page.lines[index]
    if LOG_LINE.search(line) or ATTRIBUTION.search(line):
        return False
    following = page.lines[index + 1] if index + 1 < len(page.lines) else ""
    if line.lstrip().lower().startswith("on ") and ATTRIBUTION.search(following):
        return False
    if not HEADER_LINE.match(line):
        return True
    previous = page.lines[index - 1] if index > 0 else ""
    return not (HEADER_LINE.match(previous) or HEADER_LINE.match(following))


def page_zone(page: Page, clock: Clock) -> int | None:
    """The zone the mail says its times are in ("Time zone: GMT+8"), else its Date's."""
    for line in page.lines:
        if ZONE_LABEL.search(line):
            zone = zone_in(line, clock, None)
            if zone is not None:
                return zone
    return clock.offset()


# -- one line -------------------------------------------------------------------------------


def moment_in(line: str, clock: Clock, default_zone: int | None) -> str | None:
    """The moment one line gives, or None."""
    ago = ago_in(line, clock)
    if ago:
        return ago
    for found in TIME.finditer(line):
        hour_minute = time_of(found, line)
        if hour_minute is None:
            continue
        day = day_in(line, clock)
        zone = zone_in(line, clock, day) if day else None
        zone = default_zone if zone is None else zone
        if day is None or zone is None:
            return None
        if hour_minute[0] < 5 and LATE_NIGHT.search(line):
            day += timedelta(days=1)  # "last night around 1am" was early this morning
        return stamp(day, *hour_minute, zone)
    return None


def stamp(day: date, hour: int, minute: int, zone: int) -> str:
    if hour == 24:
        day, hour = day + timedelta(days=1), 0
    sign = "+" if zone >= 0 else "-"
    return (
        f"{day.isoformat()}T{hour:02d}:{minute:02d}{sign}{abs(zone) // 60:02d}:{abs(zone) % 60:02d}"
    )


def time_of(found: re.Match[str], line: str) -> tuple[int, int] | None:
    """The hour and minute of a time match, in 24 hours, or None when it is no time."""
    if found.group("noon"):
        return (0, 0) if "night" in found.group("noon").lower() else (12, 0)
    if found.group("zh"):
        return chinese_time(found, line)
    hour = found.group("h") or found.group("h2") or found.group("h3")
    minute = int(found.group("m") or found.group("m2") or 0)
    marker = found.group("ap") or found.group("ap2") or ""
    if found.group("h3") and not found.group("clock") and not period_word(line):
        return None
    return twelve_hour(int(hour), minute, marker.lower()[:1] or period_word(line))


def twelve_hour(hour: int, minute: int, period: str) -> tuple[int, int]:
    """`hour` read with "a" (morning) or "p" (afternoon and evening), or as written."""
    if period == "p" and hour < 12:
        return hour + 12, minute
    if period == "a" and hour == 12:
        return 0, minute
    return hour, minute


def period_word(line: str) -> str:
    if EVENING_WORDS.search(line):
        return "p"
    return "a" if MORNING_WORDS.search(line) else ""


def chinese_time(found: re.Match[str], line: str) -> tuple[int, int] | None:
    """ "下午3点20", "昨晚八点半", "十点左右"; "一点" ("a little") and "3点" ("three points")
    alone are no time: a time needs a period, minutes, "左右" or a day just before it."""
    hour, minute = han_number(found.group("zh")), han_minutes(found.group("zm"))
    if hour is None or minute is None or hour > 24:
        return None
    before = line[: found.start()]
    period = PERIOD_BEFORE.search(before)
    if not (period or found.group("zm") or found.group("about") or DAY_BEFORE_ZH.search(before)):
        return None
    return chinese_period(period.group().strip() if period else "", hour, minute)


def chinese_period(word: str, hour: int, minute: int) -> tuple[int, int]:
    if word.endswith(("凌晨", "半夜")) and hour == 12:
        return 0, minute
    if word.endswith("中午"):
        return (hour + 12 if hour < 6 else hour), minute
    return twelve_hour(hour, minute, "p" if AFTERNOON.search(word) else "")


def han_number(text: str) -> int | None:
    """ "八" 8, "十一" 11, "二十" 20, "12" 12."""
    if text.isdigit():
        return int(text)
    if "十" not in text:
        return CHINESE_DIGITS.get(text) if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    high = CHINESE_DIGITS.get(tens, -100) if tens else 1
    low = CHINESE_DIGITS.get(ones, -100) if ones else 0
    value = high * 10 + low
    return value if value >= 0 else None


def han_minutes(text: str | None) -> int | None:
    if not text:
        return 0
    special = {"半": 30, "一刻": 15, "三刻": 45}
    if text in special:
        return special[text]
    minutes = han_number(text[1:] if text[0] in "零〇" and len(text) > 1 else text)
    return minutes if minutes is not None and minutes < 60 else None


# -- the day --------------------------------------------------------------------------------


def day_in(line: str, clock: Clock) -> date | None:
    """The day a line names: a date, a relative word, or a weekday."""
    found = DATE.search(line)
    if found:
        return date_of(found, clock)
    today = clock.today()
    if today is None:
        return None
    relative = RELATIVE.search(line)
    if relative:
        return today - timedelta(days=patterns.RELATIVE_DAYS[relative.group().lower()])
    weekday = WEEKDAY.search(line)
    return weekday_of(weekday, today) if weekday else None


def date_of(found: re.Match[str], clock: Clock) -> date | None:
    groups = {name: value for name, value in found.groupdict().items() if value}
    year = groups.get("y") or groups.get("y3") or groups.get("y4") or groups.get("y5")
    month, day = month_and_day(groups, clock.today())
    if month is None or day is None:
        return None
    if year is not None:
        return safe_date(int(year) + (2000 if len(year) == 2 else 0), month, day)
    return date_in_past_year(month, day, clock.today())


def month_and_day(groups: dict[str, str], today: date | None) -> tuple[int | None, int | None]:
    if "mo" in groups or "mo2" in groups:
        return int(groups.get("mo") or groups["mo2"]), int(groups.get("d") or groups["d2"])
    name = groups.get("mon") or groups.get("mon4")
    if name:
        return MONTHS.index(name.lower()[:3]) + 1, int(groups.get("d3") or groups["d4"])
    if "a" in groups:
        first, second = int(groups["a"]), int(groups["b"])
        return (second, first) if first > 12 else (first, second)
    return (today.month if today else None), int(groups["d6"])


def date_in_past_year(month: int, day: int, today: date | None) -> date | None:
    """A date without its year: this year's, or last year's when that would be ahead."""
    if today is None:
        return None
    found = safe_date(today.year, month, day)
    if found is not None and found > today + timedelta(days=1):
        return safe_date(today.year - 1, month, day)
    return found


def safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def weekday_of(found: re.Match[str], today: date) -> date:
    """ "on Monday", "周五": the latest such day up to today; "last Friday" before today;
    "上周五": that day of the week before this one."""
    if found.group("wd"):
        wanted = [day[:3] for day in WEEKDAYS].index(found.group("wd").lower())
    else:
        wanted = "一二三四五六日".index(found.group("wdz").replace("天", "日"))
    if found.group("lastzh"):
        return today - timedelta(days=today.weekday() + 7 - wanted)
    back = (today.weekday() - wanted) % 7
    return today - timedelta(days=back or (7 if found.group("last") else 0))


def ago_in(line: str, clock: Clock) -> str | None:
    """ "2 hours ago", "半小时前": the mail's Date less that, in its zone."""
    found = AGO.search(line)
    if found is None or clock.sent_at is None:
        return None
    unit = (found.group("unit") or found.group("unitz")).lower()
    minutes = amount_of(found.group("n") or found.group("nz"))
    minutes *= 60 if unit.startswith(("hour", "小时", "钟头")) else 1
    then = clock.sent_at - timedelta(minutes=minutes)
    return stamp(then.date(), then.hour, then.minute, clock.offset() or 0)


def amount_of(text: str) -> float:
    words = {"a": 1.0, "an": 1.0, "one": 1.0, "two": 2.0, "three": 3.0, "半": 0.5}
    lowered = text.lower()
    if lowered.startswith("half"):
        return 0.5
    return words.get(lowered, float(han_number(text) or 0))


# -- the zone -------------------------------------------------------------------------------


def zone_in(line: str, clock: Clock, day: date | None) -> int | None:
    """The offset in minutes the line's times are in, or None when it names no zone."""
    found = ZONE.search(line)
    if found is None:
        return None
    groups = {name: value for name, value in found.groupdict().items() if value}
    if "sign" in groups or "sign2" in groups:
        sign = -1 if (groups.get("sign") or groups["sign2"]) == "-" else 1
        hours, minutes = groups.get("zh") or groups["zh2"], groups.get("zm") or groups.get("zm2")
        return sign * (int(hours) * 60 + int(minutes or 0))
    if "utc" in groups:
        return 0
    if "cst" in groups:
        return CHINA if clock.offset() == CHINA else US_CENTRAL
    name = next(iter(groups))
    if name.startswith("us"):
        standard = US_NAMES[int(name[2:])]
        return standard + (60 if day is not None and us_summer_time(day) else 0)
    return ZONE_NAMES[int(name[5:])]


def us_summer_time(day: date) -> bool:
    """Between the second Sunday of March and the first Sunday of November."""
    start = nth_sunday(day.year, 3, 2)
    end = nth_sunday(day.year, 11, 1)
    return start <= day < end


def nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
