"""Business time: when a target counted in working hours falls due, and who is on shift.

A `BusinessCalendar` is the support desk's working week in its time zone, less public
holidays (the `holidays` package's, by country, and the operators' own) and plus make-up
working days such as China's 调休 Saturdays; `add` and `between` count only its working
time. A `Shift` is one engineer's weekly pattern in their own zone. Wall times become UTC
through `zoneinfo` one by one, so the days daylight saving starts or ends are as long as the
clocks say. Every time given must be timezone-aware; every time returned is in UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays import country_holidays, list_supported_countries

from gateway.errors import ConfigError
from gateway.service.hours import ALWAYS, Day, Duration, Week

Span = tuple[datetime, datetime]
ONE_DAY = timedelta(days=1)
# How far `add` looks for working time before deciding a calendar has none left.
LOOKAHEAD_YEARS = 3
# A weekly shift with any break in it began less than a week (and the hour daylight saving
# may add) before any moment in it; the window of days looked at reaches a day further, so
# a shift that seems to have begun more than `ENDLESS` before has no break at all.
SHIFT_WINDOW_DAYS = 8
ENDLESS = timedelta(days=7, hours=12)


# The longest a clock change skips (Lord Howe Island: 30 minutes; most zones: an hour).
MAX_GAP_MINUTES = 120


@dataclass(frozen=True, slots=True)
class YearOff:
    """One year of a country's public holidays and the weekend days worked to make up for
    them."""

    holidays: frozenset[date]
    makeup_days: frozenset[date]


NO_HOLIDAYS = YearOff(frozenset(), frozenset())


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """The desk's working week in its zone, less holidays, plus make-up working days.

    A local date is off when the country's table or `extra_holidays` lists it, and works
    the regular weekday's hours when it is a make-up day of the country (even on a weekend);
    `extra_workdays` work the regular hours whatever the tables say, and `extra_holidays`
    also cancel a country's make-up day. A country's table is computed the first time a
    date of its year is asked about."""

    zone: ZoneInfo
    week: Week
    country: str = ""
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    years: dict[int, YearOff] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        timezone: str,
        week: Week,
        holidays: str = "",
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> BusinessCalendar:
        """A calendar in an IANA zone (`Asia/Shanghai`), with the public holidays of a
        country code of the `holidays` package (`CN`, `US`, `SG`; empty for none)."""
        zone = zone_named("business_hours.timezone", timezone)
        country = country_named("business_hours.holidays", holidays)
        return cls(zone, week, country, frozenset(extra_holidays), frozenset(extra_workdays))

    @property
    def timezone(self) -> str:
        """The calendar's IANA zone name."""
        return self.zone.key

    @classmethod
    def always(cls) -> BusinessCalendar:
        """Every minute of every day, in UTC: business time is wall-clock time."""
        return cls(ZoneInfo("UTC"), ALWAYS)

    def working_intervals(self, start: datetime, end: datetime) -> Iterator[Span]:
        """The working intervals overlapping `[start, end)`, clipped to it, in order."""
        require_aware(start, end)
        if end <= start:
            return
        day = start.astimezone(self.zone).date()
        while local_midnight(self.zone, day) < end:
            for begins, ends in wall_spans(self.zone, day, self.day_hours(day)):
                if ends > start and begins < end:
                    yield max(begins, start).astimezone(UTC), min(ends, end).astimezone(UTC)
            day += ONE_DAY

    def add(self, start: datetime, seconds: float) -> datetime:
        """The moment at which `seconds` of working time after `start` have passed; with 0,
        the first working moment at or after `start`."""
        remaining = timedelta(seconds=seconds)
        if remaining < timedelta(0):
            raise ValueError(f"cannot add negative working time: {seconds}")
        horizon = start + timedelta(days=366 * LOOKAHEAD_YEARS)
        for begins, ends in self.working_intervals(start, horizon):
            if remaining <= ends - begins:
                return begins + remaining
            remaining -= ends - begins
        raise ValueError(
            f"the calendar in {self.zone.key} has no working hours left within "
            f"{LOOKAHEAD_YEARS} years of {start.isoformat()}"
        )

    def between(self, start: datetime, end: datetime) -> float:
        """The working seconds in `[start, end)`; 0 when `end` is not after `start`."""
        spans = self.working_intervals(start, end)
        return sum((ends - begins for begins, ends in spans), timedelta(0)).total_seconds()

    def seconds_of(self, duration: Duration) -> float:
        """A duration in working seconds: each day is a regular working day."""
        return duration.days * self.week.regular_day_minutes() * 60 + duration.seconds

    def is_working(self, at: datetime) -> bool:
        """Whether `at` is working time."""
        return any(self.working_intervals(at, at + timedelta(microseconds=1)))

    def day_hours(self, day: date) -> Day:
        """The working intervals of a local date, holidays and make-up days counted."""
        if day in self.extra_workdays:
            return self.week.regular_day()
        if day in self.extra_holidays:
            return ()
        if self.is_makeup_day(day):
            return self.week.regular_day()
        if day in self.year_off(day.year).holidays:
            return ()
        return self.week.intervals(day.weekday())

    def is_makeup_day(self, day: date) -> bool:
        """Whether the country works a local date to make up for a holiday."""
        # A December make-up day can belong to the next year's New Year, and the package
        # lists it with that year.
        return day in self.year_off(day.year).makeup_days or (
            day.month == 12 and day in self.year_off(day.year + 1).makeup_days
        )

    def year_off(self, year: int) -> YearOff:
        """The country's holidays and make-up days of one year, computed once."""
        if not self.country:
            return NO_HOLIDAYS
        if year not in self.years:
            self.years[year] = country_year(self.country, year)
        return self.years[year]


@dataclass(frozen=True, slots=True)
class Shift:
    """An engineer's weekly shift in their own zone; `week` None is always on shift.

    A shift knows no public holidays: it is the engineer's own weekly pattern, wherever they
    are, and not the desk's calendar. Intervals that meet at midnight are one shift."""

    zone: ZoneInfo
    week: Week | None = None

    @classmethod
    def build(cls, timezone: str, week: Week | None, key: str = "shift.timezone") -> Shift:
        """A shift in an IANA zone; a bad zone names `key`."""
        return cls(zone_named(key, timezone), week)

    def on(self, at: datetime) -> bool:
        """Whether the engineer is on shift at `at`."""
        require_aware(at)
        return self.week is None or self.shift_at(at) is not None

    def current_start(self, at: datetime) -> datetime | None:
        """When the shift the engineer is in at `at` began; None when off shift or always
        on."""
        require_aware(at)
        shift = self.shift_at(at)
        if shift is None or at - shift[0] >= ENDLESS:
            return None
        return shift[0]

    def next_start(self, after: datetime) -> datetime | None:
        """The next moment strictly after `after` at which the engineer comes on shift; None
        when always on or never on."""
        require_aware(after)
        starts = (begins for begins, _ in self.shifts_around(after) if begins > after)
        return next(starts, None)

    def shift_at(self, at: datetime) -> Span | None:
        """The whole shift holding `at`, or None."""
        return next(((a, b) for a, b in self.shifts_around(at) if a <= at < b), None)

    def shifts_around(self, at: datetime) -> list[Span]:
        """The shifts of the local days a window either side of `at`, joined at midnight."""
        if self.week is None:
            return []
        first = at.astimezone(self.zone).date() - timedelta(days=SHIFT_WINDOW_DAYS)
        joined: list[Span] = []
        for offset in range(2 * SHIFT_WINDOW_DAYS + 1):
            day = first + timedelta(days=offset)
            for begins, ends in wall_spans(self.zone, day, self.week.intervals(day.weekday())):
                if joined and begins <= joined[-1][1]:
                    joined[-1] = (joined[-1][0], max(ends, joined[-1][1]))
                else:
                    joined.append((begins, ends))
        return joined


def wall_spans(zone: ZoneInfo, day: date, hours: Day) -> Iterator[Span]:
    """A local date's intervals in UTC, each end from its own wall time."""
    midnight = datetime.combine(day, time(), tzinfo=zone)
    for start, end in hours:
        begins, ends = wall_moment(midnight, start), wall_moment(midnight, end)
        if begins < ends:
            yield begins, ends


def wall_moment(midnight: datetime, minutes: int) -> datetime:
    """The UTC moment of a wall time `minutes` after local midnight; a wall time the clock
    skips (spring forward) is the moment it jumps to, not an hour after."""
    for late in range(MAX_GAP_MINUTES + 1):
        local = midnight + timedelta(minutes=minutes + late)
        moment = local.astimezone(UTC)
        if moment.astimezone(midnight.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None):
            return moment
    return (midnight + timedelta(minutes=minutes)).astimezone(UTC)


def local_midnight(zone: ZoneInfo, day: date) -> datetime:
    """The UTC moment a local date begins."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def require_aware(*moments: datetime) -> None:
    """Refuse times without a zone: which moment they mean is a guess."""
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"a time without a time zone: {moment.isoformat()}")


def zone_named(key: str, name: str) -> ZoneInfo:
    """The IANA time zone `name`, or a `ConfigError` naming `key`."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"{key}: unknown time zone {name!r}; expected an IANA name such as Asia/Shanghai "
            "or America/New_York"
        ) from None


@functools.lru_cache(maxsize=256)
def country_year(country: str, year: int) -> YearOff:
    """A country's holidays and make-up days of one year, shared by every calendar of the
    process: each gateway and each test builds its own calendar."""
    table = country_holidays(country, years=year)
    return YearOff(frozenset(table), frozenset(table.weekend_workdays))


def country_named(key: str, code: str) -> str:
    """A country code the `holidays` package knows, upper-cased; empty for none."""
    country = code.strip().upper()
    if country and country not in list_supported_countries():
        raise ConfigError(
            f"{key}: unknown country code {code!r}; expected one the holidays package knows, "
            "such as CN, US or SG, or empty for none"
        )
    return country
