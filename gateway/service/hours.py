"""Weekly working hours and the lengths of service targets, read from their setting text.

A `Week` holds each weekday's working intervals as minutes from local midnight, so one week
serves any time zone; `parse_week` reads `Mon-Fri 09:00-18:00; Sat 10:00-14:00`. A
`Duration` keeps days apart from hours and minutes because a business day lasts as long as
the calendar's regular working day, not 24 hours; `parse_duration` reads `1d4h`. Bad text
raises `ConfigError` naming the setting's key.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.errors import ConfigError

DAY_MINUTES = 1440
Interval = tuple[int, int]
Day = tuple[Interval, ...]

WEEK_EXAMPLE = "Mon-Fri 09:00-18:00; Sat 10:00-14:00"
ALWAYS_WORDS = ("24x7", "24/7", "always")
_ENGLISH = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CHINESE = "一二三四五六日"
WEEKDAYS: dict[str, int] = {
    **{name: number for number, name in enumerate(_ENGLISH)},
    **{name[:3]: number for number, name in enumerate(_ENGLISH)},
    **{f"周{name}": number for number, name in enumerate(_CHINESE)},
    **{f"星期{name}": number for number, name in enumerate(_CHINESE)},
    "周天": 6,
    "星期天": 6,
}
_RANGE = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_DURATION = re.compile(
    rf"\s*(?:{_NUMBER}\s*d)?\s*(?:{_NUMBER}\s*h)?\s*(?:{_NUMBER}\s*m)?\s*", re.IGNORECASE
)


def _merged(intervals: Iterable[Interval]) -> Day:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if not 0 <= start < end <= DAY_MINUTES:
            raise ValueError(f"not an interval within a day: {(start, end)!r}")
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _minutes(day: Day) -> int:
    return sum(end - start for start, end in day)


@dataclass(frozen=True, slots=True)
class Week:
    """Working intervals of each weekday, Monday 0 to Sunday 6, as `(start, end)` minutes
    from that day's local midnight: sorted, apart, within 0..1440. `Week.of` builds one
    from intervals in any order."""

    days: tuple[Day, ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7 or any(day != _merged(day) for day in self.days):
            raise ValueError(f"not a week of sorted, separate intervals: {self.days!r}")

    @classmethod
    def of(cls, days: Iterable[Iterable[Interval]]) -> Week:
        """A week from each weekday's intervals; touching or overlapping ones are joined."""
        return cls(tuple(_merged(day) for day in days))

    def intervals(self, weekday: int) -> Day:
        """The working intervals of a weekday (Monday 0)."""
        return self.days[weekday]

    def regular_day_minutes(self) -> int:
        """The working minutes of a regular weekday: the most common non-zero total of Monday
        to Friday (the larger on a tie), else of the whole week; 0 for an empty week."""
        totals = [_minutes(day) for day in self.days]
        worked = [total for total in totals[:5] if total] or [total for total in totals if total]
        counts = Counter(worked)
        return max(counts, key=lambda total: (counts[total], total), default=0)

    def regular_day(self) -> Day:
        """The intervals of the first weekday as long as a regular one: the hours of a
        make-up working day."""
        length = self.regular_day_minutes()
        return next((day for day in self.days if length and _minutes(day) == length), ())


ALWAYS = Week((((0, DAY_MINUTES),),) * 7)


@dataclass(frozen=True, slots=True)
class Duration:
    """A service target's length: whole or part business days, whose length depends on the
    calendar, plus seconds, which do not."""

    days: float
    seconds: float

    def __str__(self) -> str:
        hours, rest = divmod(self.seconds, 3600)
        parts = (
            f"{_number(self.days)}d" if self.days else "",
            f"{_number(hours)}h" if hours else "",
            f"{_number(rest / 60)}m" if rest else "",
        )
        return "".join(parts) or "0m"


def parse_week(key: str, text: str) -> Week:
    """`Mon-Fri 09:00-18:00; Sat 10:00-14:00`, or `24x7` (also `always`) for every minute.

    A group's days are a day, a range (`Fri-Mon` wraps) or a list (`Mon,Wed`); its hours
    are `HH:MM-HH:MM` ranges separated by commas. A range that ends at or before it starts
    crosses midnight: `Fri 22:00-06:00` also works Saturday until 06:00."""
    if text.strip().lower() in ALWAYS_WORDS:
        return ALWAYS
    groups = [group.strip() for group in text.split(";") if group.strip()]
    if not groups:
        raise ConfigError(f"{key}: no working hours given; expected {WEEK_EXAMPLE!r} or 24x7")
    days: list[list[Interval]] = [[] for _ in range(7)]
    for group in groups:
        for weekday, interval in read_group(key, group):
            days[weekday].append(interval)
    return Week.of(days)


def read_group(key: str, group: str) -> list[tuple[int, Interval]]:
    """The `(weekday, interval)` pairs one group such as `Mon-Fri 09:00-18:00` names."""
    first_digit = next((at for at, char in enumerate(group) if char.isdigit()), len(group))
    days_text, times_text = group[:first_digit].strip(), group[first_digit:]
    if not days_text:
        raise ConfigError(f"{key}: {group!r} names no days; expected {WEEK_EXAMPLE!r}")
    if not times_text:
        raise ConfigError(f"{key}: {group!r} names no hours; expected {WEEK_EXAMPLE!r}")
    pairs: list[tuple[int, Interval]] = []
    for weekday in read_days(key, group, days_text):
        for start, end in read_times(key, group, times_text):
            pairs.extend(split_at_midnight(weekday, start, end))
    return pairs


def read_days(key: str, group: str, text: str) -> list[int]:
    """The weekdays of `Mon-Fri`, `Fri-Mon` or `Mon,Wed,Fri`."""
    weekdays: list[int] = []
    for item in "".join(text.split()).split(","):
        first, dash, last = item.partition("-")
        start = weekday_named(key, group, first)
        end = weekday_named(key, group, last) if dash else start
        weekdays.extend((start + step) % 7 for step in range((end - start) % 7 + 1))
    return weekdays


def weekday_named(key: str, group: str, word: str) -> int:
    """Monday 0 for `Mon`, `monday` or `周一`."""
    weekday = WEEKDAYS.get(word.lower())
    if weekday is None:
        raise ConfigError(
            f"{key}: unknown day {word!r} in {group!r}; use Mon, Tue, Wed, Thu, Fri, Sat or "
            f"Sun, as in {WEEK_EXAMPLE!r}"
        )
    return weekday


def read_times(key: str, group: str, text: str) -> list[Interval]:
    """The `(start, end)` minutes of `09:00-12:00,13:00-18:00`; an end may precede its start."""
    intervals: list[Interval] = []
    for item in "".join(text.split()).split(","):
        match = _RANGE.fullmatch(item)
        if match is None:
            raise ConfigError(
                f"{key}: {item!r} in {group!r} is not a range of hours; expected HH:MM-HH:MM, "
                f"as in {WEEK_EXAMPLE!r}"
            )
        start = minute_of_day(key, group, match[1], match[2])
        if start == DAY_MINUTES:
            raise ConfigError(
                f"{key}: {item!r} in {group!r} starts at 24:00; start the next day at 00:00, "
                "as in Fri 22:00-06:00 or 09:00-18:00"
            )
        intervals.append((start, minute_of_day(key, group, match[3], match[4])))
    return intervals


def minute_of_day(key: str, group: str, hours: str, minutes: str) -> int:
    """The minutes from midnight of `HH:MM`, up to 24:00."""
    minute = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or minute > DAY_MINUTES:
        raise ConfigError(
            f"{key}: {hours}:{minutes} in {group!r} is not a time of day; "
            "expected 00:00 to 24:00, as in 09:00-18:00"
        )
    return minute


def split_at_midnight(weekday: int, start: int, end: int) -> list[tuple[int, Interval]]:
    """A range on a weekday; one ending at or before its start runs on into the next day."""
    if start < end:
        return [(weekday, (start, end))]
    after_midnight = [((weekday + 1) % 7, (0, end))] if end else []
    return [(weekday, (start, DAY_MINUTES)), *after_midnight]


def parse_duration(key: str, text: str) -> Duration:
    """`4h`, `30m`, `90m`, `2.5h`, `1d`, `1d4h`, `1h 30m`: a `d` is one regular working day
    of the calendar the duration is counted in."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ConfigError(f"{key}: expected a duration such as 4h, 30m, 1d or 1d4h, got {text!r}")
    days, hours, minutes = (float(number) if number else 0.0 for number in match.groups())
    if days + hours + minutes <= 0:
        raise ConfigError(f"{key}: must be longer than zero, got {text!r}")
    return Duration(days, hours * 3600 + minutes * 60)


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")
