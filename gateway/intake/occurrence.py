"""When it happened: a day and a time of day, as ISO 8601 to the minute with its offset
("2026-11-30T20:30+08:00").

Read line by line. A line gives a moment when it has a time of day ("20:30", "8:30pm",
"11pm", "八点半", "下午3点20", "十点左右") and a day: a date ("2026-11-30", "Nov 30", "30
Nov 2026", "11月30日", "30号"), a word for one ("yesterday", "last night", "this morning",
"today", "昨晚", "前天", "今天上午"), a weekday ("last Friday", "上周五"), or "2 hours ago".
A date alone is no moment, nor a time alone. Relative words are resolved against the mail's
`Date` in its own zone.

The offset is the zone written on the line (read by `zones`), else one given elsewhere as
"Time zone: ...", else the mail's `Date`.

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
from gateway.intake.page import Page, compiled, page_from, search, union
from gateway.intake.zones import zone_in

CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
CHINESE_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
HAN_DIGIT = "[零〇一二两三四五六七八九十]"
HAN_NUMBER = HAN_DIGIT + "{1,3}"
# Times of day, one search a form, each starting with what it starts with so the engine
# can skip to it: "20:30", "8:30 pm" / "8.30pm" / "11pm", "at 11" (with a period word on
# the line), "noon", "八点半" / "下午3点20". What may not come before one is read in code.
CLOCK = search(
    r"(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?::[0-5]\d)?(?![\d:])(?:[ \t]?(?P<ap>[ap]\.?m\b\.?))?",
    words=(":",),
)
MERIDIEM = search(
    r"(?P<h>\d{1,2})(?:\.(?P<m>[0-5]\d))?"
    r"(?:[ \t]?[-–~][ \t]?\d{1,2}(?:[.:][0-5]\d)?)?[ \t]?(?P<ap>[ap]\.?m\b\.?)",
    words=None,  # "am" is in "stream", "team" and "camera": the digits find it faster
)
SPOKEN = search(
    r"\b(?:at|around|about|by|after|before)[ \t](?P<h>1[0-2]|0?[1-9])(?P<clock>[ \t]?o'?clock)?"
    r"(?![\d:.%]|[ \t]?(?:[ap]\.?m\b|%|percent|mins?|minutes|seconds|secs?|s\b|people|users"
    r"|times|hours?))",
    words=("night", "evening", "morning", "afternoon", "clock"),
)
NOON = search(r"\b(?P<noon>noon|midday|midnight)\b")
HAN_TIME = search(
    rf"(?P<zh>\d{{1,2}}|{HAN_NUMBER})(?:[ \t]?[-–~到至][ \t]?(?:\d{{1,2}}|{HAN_NUMBER}))?"
    r"[ \t]?[点點时]"
    # One Han digit is minutes only with 分: "9点一直" is "all along", not 9:01.
    rf"(?:[ \t]?(?P<zm>\d{{1,2}}|{HAN_DIGIT}{{2,3}}|半|一刻|三刻|{HAN_DIGIT}(?=[ \t]?分))(?!\d)"
    r"[ \t]?分?)?"
    r"(?P<about>左右|钟|多|前后|整)?",
    words=("点", "點", "时"),
)
TIMES = (CLOCK, MERIDIEM, SPOKEN, NOON, HAN_TIME)
NOT_BEFORE_TIME = "0123456789:."
PERIOD_BEFORE = re.compile(
    rf"(?:{patterns.MORNING.zh}|{patterns.NOON}|{patterns.AFTERNOON.zh})\s?$"
)
DAY_BEFORE_ZH = re.compile(r"(?:天|日|号|晚|早)\s?$")
AFTERNOON = compiled(rf"(?:{patterns.AFTERNOON.zh})$")
EVENING_WORDS = compiled(patterns.Words(patterns.AFTERNOON.en).pattern())
MORNING_WORDS = compiled(patterns.Words(patterns.MORNING.en).pattern())
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
MONTH = r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?"
# A letter right after the day makes a version, not a date ("Unity 2022.3.12f1"); a `T` may
# join an ISO 8601 time.
DATE = compiled(
    r"(?P<y>20\d\d)\s?[-/.年]\s?(?P<mo>1[0-2]|0?[1-9])\s?[-/.月]\s?(?P<d>3[01]|[12]\d|0?[1-9])"
    r"(?![\d:]|[a-su-z])[日号]?",
    r"(?<!\d)(?P<mo2>1[0-2]|0?[1-9])\s?月\s?(?P<d2>3[01]|[12]\d|0?[1-9])\s?[日号]",
    rf"\b{MONTH}\s(?P<d3>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\b(?:,?\s(?P<y3>20\d\d))?",
    r"\b(?P<d4>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\s(?:of\s)?(?P<mon4>jan|feb|mar|apr|may|jun"
    r"|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?(?:,?\s(?P<y4>20\d\d))?\b",
    r"(?<![\d/.])(?P<a>3[01]|[12]\d|0?[1-9])/(?P<b>3[01]|[12]\d|0?[1-9])(?:/(?P<y5>(?:20)?\d\d))?(?![\d/])",
    r"(?<![\d月])(?P<d6>3[01]|[12]\d|0?[1-9])\s?[号日](?!本|志)",
)
# The day words, longest first ("前天" before "前", "大前天" before "前天"), and each row's.
RELATIVE = compiled(
    union(words for _, words in sorted(patterns.RELATIVE_DAYS.items(), reverse=True))
)
RELATIVE_ROWS = [
    (days, compiled(words.pattern())) for days, words in patterns.RELATIVE_DAYS.items()
]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAY = compiled(
    r"\b(?P<last>last\s)?(?:on\s)?(?P<wd>mon|tue|wed|thu|fri|sat|sun)[a-z]{0,6}day\b",
    r"(?P<lastzh>上个?)?(?:周|星期|礼拜)(?P<wdz>[一二三四五六日天])",
)
AGO = search(
    r"\b(?P<n>\d{1,2}|an?|one|two|three|half an?)[ \t](?P<unit>hours?|minutes?|mins?)[ \t]ago\b",
    rf"(?P<nz>\d{{1,2}}|{HAN_NUMBER}|半)[ \t]?个?(?P<unitz>小时|钟头|分钟)(?:之|以)?前",
    words=("ago", "前"),
)
# Words for a time still to come: a meeting, a webinar, a release, not the problem.
FUTURE = compiled(
    r"\b(?:next|coming|upcoming|tomorrow|later today|schedule[ds]?|webinar)\b"
    r"|明天|后天|下周|下星期|下礼拜|下个月|预约|约个?时间"
)
FUTURE_DAYS = 90
LATE_NIGHT = compiled(r"\blast night\b|昨晚|昨夜")
ZONE_LABEL = search(r"\btime ?zone\b|\btz\b|\ball times\b|时区")
CUES = compiled(patterns.OCCURRENCE_CUES.pattern())
# Read on the line as written: log levels are capitals.
LOG_LINE = compiled(
    r"\d{1,2}:\d\d:\d\d[.,]\d{3}|^\s*[\[(]?\d{4}[-/]\d{1,2}[-/]\d{1,2}[ T]\d{1,2}:\d\d:\d\d",
    r"^\s*\d\d-\d\d\s+\d\d:\d\d:\d\d|\[[VDIWEF]\]|(?:^|\s)[VDIWEF]/[\w.$-]{1,40}\s?\(",
)
HEADER_LINE = compiled(patterns.HEADER_LINE)
ATTRIBUTION = compiled(r"\bwrote\s?:|写道\s?:?")


# The years of a mail's Date that relative words are read against.
DATE_YEARS = (1970, 2199)


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

    def ahead(self, day: date) -> bool:
        """Whether `day` comes after the mail's (a day's grace for zones): no problem told
        of has happened then."""
        today = self.today()
        return today is not None and day > today + timedelta(days=1)


def read_occurrence(page: Page, sent_at: datetime | None) -> Named | None:
    """When the customer says it happened, or None. A Date no mail client writes (year 9999,
    year 1) is no Date: "yesterday" against it would leave the calendar."""
    sane = sent_at is not None and DATE_YEARS[0] <= sent_at.year <= DATE_YEARS[1]
    clock = Clock(sent_at if sane else None)
    lines = timed_lines(page)
    default_zone = page_zone(page, clock) if lines else None
    best: tuple[int, Named] | None = None
    for index in lines:
        folded = page.folded_line(index)
        value = moment_in(page.lines[index], folded, clock, default_zone)
        if value is None or not told_by_customer(page, index):
            continue
        score = 2 if CUES.search(folded) or RELATIVE.search(folded) else 1
        if best is None or score > best[0]:
            best = (score, Named(value, index, page.excerpt(index)))
    return best[1] if best else None


def timed_lines(page: Page) -> list[int]:
    """The lines with a time of day or an "ago" in them, in order."""
    return sorted({spot.line for form in (*TIMES, AGO) for spot in page.matches(form)})


def occurrence_in(text: str, sent_at: datetime | None) -> str | None:
    """The moment a short answer gives ("昨晚八点半"), or None."""
    found = read_occurrence(page_from([text]), sent_at)
    return found.value if found else None


def told_by_customer(page: Page, index: int) -> bool:
    """Not a log line, a quoted header block's Date or an "On ... wrote:" line."""
    line, folded = page.lines[index], page.folded_line(index)
    if LOG_LINE.search(line) or ATTRIBUTION.search(folded):
        return False
    following = page.folded_line(index + 1) if index + 1 < len(page.lines) else ""
    if folded.lstrip().startswith("on ") and ATTRIBUTION.search(following):
        return False
    if not HEADER_LINE.match(folded):
        return True
    previous = page.folded_line(index - 1) if index > 0 else ""
    return not (HEADER_LINE.match(previous) or HEADER_LINE.match(following))


def page_zone(page: Page, clock: Clock) -> int | None:
    """The zone the mail says its times are in ("Time zone: GMT+8"), else its Date's."""
    for spot in page.matches(ZONE_LABEL):
        zone = zone_in(page.lines[spot.line], clock.offset(), None)
        if zone is not None:
            return zone
    return clock.offset()


# -- one line -------------------------------------------------------------------------------


def moment_in(line: str, folded: str, clock: Clock, default_zone: int | None) -> str | None:
    """The moment one line gives (`folded` is the line in lower case), or None."""
    ago = ago_in(folded, clock) if "ago" in folded or "前" in folded else None
    if ago or FUTURE.search(folded):
        return ago
    for found in times_in(folded):
        hour_minute = time_of(found, folded)
        if hour_minute is None:
            continue
        day = day_in(folded, clock)
        zone = zone_in(line, clock.offset(), day) if day else None
        zone = default_zone if zone is None else zone
        if day is None or zone is None or clock.ahead(day):
            return None
        if hour_minute[0] < 5 and LATE_NIGHT.search(folded):
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


def times_in(line: str) -> list[re.Match[str]]:
    """The times of day on a line (in lower case), in order; none that continues a number."""
    forms = [CLOCK, MERIDIEM, HAN_TIME]
    forms += [form for form in (SPOKEN, NOON) if any(word in line for word in form.words or ())]
    found = [
        match
        for form in forms
        for match in form.pattern.finditer(line)
        if not (match.start() and line[match.start() - 1] in NOT_BEFORE_TIME)
    ]
    return sorted(found, key=lambda match: match.start())


def time_of(found: re.Match[str], line: str) -> tuple[int, int] | None:
    """The hour and minute of a time match, in 24 hours, or None when it is no time."""
    groups = {name: value for name, value in found.groupdict().items() if value}
    if "noon" in groups:
        return (0, 0) if groups["noon"] == "midnight" else (12, 0)
    if "zh" in groups:
        return chinese_time(found, line)
    hour, minute = int(groups["h"]), int(groups.get("m", 0))
    spoken = found.re is SPOKEN.pattern and "clock" not in groups
    if hour > (12 if "ap" in groups else 23) or (spoken and not period_word(line)):
        return None
    # A Chinese period just before a clock time is the clock's: "晚上 10:15" is 22:15.
    period = None if "ap" in groups else PERIOD_BEFORE.search(line[: found.start()])
    if period:
        return chinese_period(period.group().strip(), hour, minute)
    return twelve_hour(hour, minute, groups.get("ap", "")[:1] or period_word(line))


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
    if word.endswith(patterns.NOON):
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
        days = next(days for days, words in RELATIVE_ROWS if words.fullmatch(relative.group()))
        return today - timedelta(days=days)
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
        return slashed(int(groups["a"]), int(groups["b"]), today)
    return (today.month if today else None), int(groups["d6"])


def slashed(first: int, second: int, today: date | None) -> tuple[int, int]:
    """ "11/30" month first, "30/11" day first; of "1/12" the reading nearest before the
    mail's date (a report tells of days just past), month first when that says nothing."""
    if first > 12:
        return second, first
    if second > 12 or today is None or first == second:
        return first, second
    month_first = date_in_past_year(first, second, today)
    day_first = date_in_past_year(second, first, today)
    if month_first and day_first and day_first > month_first:
        return second, first
    return first, second


def date_in_past_year(month: int, day: int, today: date | None) -> date | None:
    """A date without its year: this year's; last year's when this year's is months ahead
    ("Dec 30" in January); None when it is weeks ahead, a day still to come."""
    if today is None:
        return None
    found = safe_date(today.year, month, day)
    if found is None or found <= today + timedelta(days=1):
        return found
    if found > today + timedelta(days=FUTURE_DAYS):
        return safe_date(today.year - 1, month, day)
    return None


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
    found = AGO.pattern.search(line)
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
