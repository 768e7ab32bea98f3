"""Service time: weekly hours and durations read from their text, business time counted
across weekends, public holidays, make-up working days and daylight saving, and engineers'
shifts that cross midnight. Every expected moment here is worked out by hand."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import ConfigError
from gateway.service import (
    ALWAYS,
    BusinessCalendar,
    Duration,
    Shift,
    Week,
    parse_duration,
    parse_week,
)

KEY = "business_hours.week"
HOUR = 3600
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
SINGAPORE = ZoneInfo("Asia/Singapore")
OFFICE = "Mon-Fri 09:00-18:00"
LUNCH_SPLIT = "Mon-Fri 09:00-12:00,13:00-18:00"


def week(text: str) -> Week:
    return parse_week(KEY, text)


def days(text: str) -> list[tuple[tuple[int, int], ...]]:
    parsed = week(text)
    return [parsed.intervals(weekday) for weekday in range(7)]


def shanghai(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=SHANGHAI)


def new_york(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=NEW_YORK)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def china(text: str = OFFICE, **extra: list[date]) -> BusinessCalendar:
    return BusinessCalendar.build("Asia/Shanghai", week(text), "CN", **extra)


def office_without_holidays() -> BusinessCalendar:
    return BusinessCalendar.build("Asia/Shanghai", week(OFFICE))


# -- reading a week ---------------------------------------------------------------------------


def test_day_range_covers_each_day_in_it() -> None:
    nine_to_six = ((540, 1080),)
    assert days(OFFICE) == [nine_to_six] * 5 + [(), ()]


def test_day_range_may_wrap_over_the_weekend() -> None:
    ten_to_four = ((600, 960),)
    assert days("Fri-Mon 10:00-16:00") == [ten_to_four, (), (), (), ten_to_four, ten_to_four] + [
        ten_to_four
    ]


def test_day_list_names_only_those_days() -> None:
    morning = ((540, 720),)
    assert days("Mon,Wed,Fri 09:00-12:00") == [morning, (), morning, (), morning, (), ()]


def test_several_intervals_a_day_and_several_groups() -> None:
    parsed = days("Mon-Fri 09:00-12:00,13:00-18:00; Sat 10:00-14:00")
    assert parsed[0] == parsed[4] == ((540, 720), (780, 1080))
    assert parsed[5] == ((600, 840),)
    assert parsed[6] == ()


def test_touching_and_overlapping_intervals_are_joined() -> None:
    assert days("Mon 09:00-12:00,11:00-13:00; Mon 13:00-14:00")[0] == ((540, 840),)


def test_interval_ending_before_its_start_runs_into_the_next_morning() -> None:
    parsed = days("Fri 22:00-06:00")
    assert parsed[4] == ((1320, 1440),)
    assert parsed[5] == ((0, 360),)


def test_sunday_night_spills_into_monday_morning() -> None:
    parsed = days("Sun 22:00-06:00")
    assert parsed[6] == ((1320, 1440),)
    assert parsed[0] == ((0, 360),)
    assert parsed[1:6] == [()] * 5


def test_a_range_may_end_at_24_00_without_spilling() -> None:
    assert days("Mon 00:00-24:00")[:2] == [((0, 1440),), ()]
    assert days("Tue 18:00-24:00")[1:3] == [((1080, 1440),), ()]


def test_whitespace_and_case_do_not_matter() -> None:
    assert week("  mon - FRI   9:00 - 18:00 ;; sat 10:00-14:00 ; ") == week(
        "Mon-Fri 09:00-18:00; Sat 10:00-14:00"
    )


def test_full_and_chinese_day_names_are_read() -> None:
    assert week("Monday-Friday 09:00-18:00") == week(OFFICE)
    assert week("周一-周五 09:00-18:00") == week(OFFICE)
    assert week("周六,周日 10:00-12:00") == week("Sat,Sun 10:00-12:00")


@pytest.mark.parametrize("text", ["24x7", "Always", " 24/7 "])
def test_round_the_clock_words_give_every_minute(text: str) -> None:
    assert week(text) == ALWAYS
    assert ALWAYS.intervals(6) == ((0, 1440),)


@pytest.mark.parametrize(
    "text, named",
    [
        ("Mon-Fry 09:00-18:00", "'Fry'"),
        ("Mon 9-18", "'9-18'"),
        ("Mon 25:00-26:00", "25:00"),
        ("Mon 09:60-10:00", "09:60"),
        ("Mon 24:00-06:00", "24:00"),
        ("Mon-Fri 09:00-18:00,", "''"),
        ("", "no working hours"),
        (" ; ", "no working hours"),
        ("Mon-Fri", "'Mon-Fri' names no hours"),
        ("09:00-18:00", "'09:00-18:00' names no days"),
        ("Mon-Fri 09:00-18:00; Sun", "'Sun' names no hours"),
    ],
)
def test_bad_week_names_the_key_and_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        week(text)
    message = str(raised.value)
    assert message.startswith(f"{KEY}: ")
    assert named in message
    assert "09:00-18:00" in message or "24x7" in message


def test_week_refuses_intervals_it_cannot_hold() -> None:
    with pytest.raises(ValueError):
        Week(((),) * 6)
    with pytest.raises(ValueError):
        Week.of([[(600, 500)]] + [[]] * 6)
    with pytest.raises(ValueError):
        Week((((540, 720), (700, 800)),) + ((),) * 6)


# -- a regular working day --------------------------------------------------------------------


def test_regular_day_is_nine_hours_in_the_office_week() -> None:
    assert week(OFFICE).regular_day_minutes() == 540
    assert week(OFFICE).regular_day() == ((540, 1080),)


def test_regular_day_leaves_out_the_lunch_hour() -> None:
    assert week(LUNCH_SPLIT).regular_day_minutes() == 480
    assert week(LUNCH_SPLIT).regular_day() == ((540, 720), (780, 1080))


def test_short_saturday_does_not_change_the_regular_day() -> None:
    assert week("Mon-Fri 09:00-18:00; Sat 10:00-14:00").regular_day_minutes() == 540


def test_regular_day_ties_go_to_the_longer_day() -> None:
    text = "Mon-Tue 09:00-17:00; Wed-Thu 09:00-18:00; Fri 09:00-12:00"
    assert week(text).regular_day_minutes() == 540
    assert week(text).regular_day() == ((540, 1080),)


def test_regular_day_is_the_first_weekday_of_that_length() -> None:
    assert week("Mon 10:00-19:00; Tue-Fri 09:00-18:00").regular_day() == ((600, 1140),)


def test_weekend_only_week_takes_its_regular_day_from_the_weekend() -> None:
    assert week("Sat-Sun 10:00-14:00").regular_day_minutes() == 240


def test_empty_week_has_no_regular_day() -> None:
    empty = Week.of([[]] * 7)
    assert empty.regular_day_minutes() == 0
    assert empty.regular_day() == ()
    assert ALWAYS.regular_day_minutes() == 1440


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, days, seconds",
    [
        ("1h", 0, 3600),
        ("30m", 0, 1800),
        ("1d", 1, 0),
        ("1d4h", 1, 4 * HOUR),
        ("1h30m", 0, 5400),
        ("90m", 0, 5400),
        ("2.5h", 0, 9000),
        (" 1D 4H ", 1, 4 * HOUR),
        ("1h 30m", 0, 5400),
        ("0.5d", 0.5, 0),
    ],
)
def test_durations_are_read(text: str, days: float, seconds: float) -> None:
    assert parse_duration("service.p1", text) == Duration(days, seconds)


@pytest.mark.parametrize("text", ["", "0h", "0d0m", "4", "h", "1x", "-1h", "4h1d", "1h30", "1 h x"])
def test_bad_durations_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_duration("service.p1", text)
    assert str(raised.value).startswith("service.p1: ")
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(
    "duration, text",
    [
        (Duration(0, 4 * HOUR), "4h"),
        (Duration(1, 0), "1d"),
        (Duration(1, 4 * HOUR), "1d4h"),
        (Duration(0, 5400), "1h30m"),
        (Duration(0, 90), "1.5m"),
        (Duration(1.5, 0), "1.5d"),
    ],
)
def test_durations_print_compactly(duration: Duration, text: str) -> None:
    assert str(duration) == text
    assert parse_duration("k", text) == duration


def test_a_day_is_as_long_as_the_calendars_regular_day() -> None:
    one_day = parse_duration("k", "1d")
    assert office_without_holidays().seconds_of(one_day) == 9 * HOUR
    lunch_split = BusinessCalendar.build("Asia/Shanghai", week(LUNCH_SPLIT))
    assert lunch_split.seconds_of(one_day) == 8 * HOUR
    assert lunch_split.seconds_of(parse_duration("k", "1d4h")) == 12 * HOUR
    assert BusinessCalendar.always().seconds_of(one_day) == 24 * HOUR


# -- weekends ---------------------------------------------------------------------------------


def test_friday_afternoon_target_falls_due_on_monday() -> None:
    calendar = office_without_holidays()
    assert calendar.add(shanghai(2026, 3, 13, 17), 4 * HOUR) == shanghai(2026, 3, 16, 12)


def test_weekend_message_counts_from_monday_morning() -> None:
    calendar = office_without_holidays()
    assert calendar.add(shanghai(2026, 3, 14, 3), 4 * HOUR) == shanghai(2026, 3, 16, 13)


def test_evening_message_counts_from_the_next_working_minute() -> None:
    calendar = office_without_holidays()
    assert calendar.add(shanghai(2026, 3, 10, 20), 4 * HOUR) == shanghai(2026, 3, 11, 13)
    assert calendar.add(shanghai(2026, 3, 10, 20), 0) == shanghai(2026, 3, 11, 9)
    assert calendar.add(shanghai(2026, 3, 10, 7), 0) == shanghai(2026, 3, 10, 9)


def test_adding_nothing_within_working_time_stays_put() -> None:
    at = shanghai(2026, 3, 10, 11, 23, 45)
    assert office_without_holidays().add(at, 0) == at


def test_target_may_end_at_the_close_of_the_day() -> None:
    calendar = office_without_holidays()
    assert calendar.add(shanghai(2026, 3, 13, 17), HOUR) == shanghai(2026, 3, 13, 18)


def test_results_are_in_utc() -> None:
    due = office_without_holidays().add(shanghai(2026, 3, 13, 17), 4 * HOUR)
    assert due.tzinfo is UTC
    assert due == utc(2026, 3, 16, 4)


def test_working_intervals_are_clipped_and_in_order() -> None:
    calendar = office_without_holidays()
    spans = list(calendar.working_intervals(shanghai(2026, 3, 13, 12), shanghai(2026, 3, 16, 10)))
    assert spans == [
        (utc(2026, 3, 13, 4), utc(2026, 3, 13, 10)),
        (utc(2026, 3, 16, 1), utc(2026, 3, 16, 2)),
    ]


def test_between_skips_the_weekend() -> None:
    calendar = office_without_holidays()
    assert calendar.between(shanghai(2026, 3, 13, 17), shanghai(2026, 3, 16, 10)) == 2 * HOUR
    assert calendar.between(shanghai(2026, 3, 9), shanghai(2026, 3, 16)) == 45 * HOUR
    assert calendar.between(shanghai(2026, 3, 16, 10), shanghai(2026, 3, 13, 17)) == 0
    assert calendar.between(shanghai(2026, 3, 16, 12), shanghai(2026, 3, 16, 10)) == 0
    assert (
        list(calendar.working_intervals(shanghai(2026, 3, 16, 12), shanghai(2026, 3, 16, 10))) == []
    )


def test_is_working_follows_the_hours() -> None:
    calendar = office_without_holidays()
    assert calendar.is_working(shanghai(2026, 3, 13, 9))
    assert calendar.is_working(shanghai(2026, 3, 13, 17, 59))
    assert not calendar.is_working(shanghai(2026, 3, 13, 18))
    assert not calendar.is_working(shanghai(2026, 3, 14, 12))


def test_lunch_hour_is_not_working_time() -> None:
    calendar = BusinessCalendar.build("Asia/Shanghai", week(LUNCH_SPLIT))
    assert calendar.add(shanghai(2026, 3, 9, 11), 2 * HOUR) == shanghai(2026, 3, 9, 14)
    assert calendar.add(shanghai(2026, 3, 9, 12, 30), 0) == shanghai(2026, 3, 9, 13)
    one_day = calendar.seconds_of(parse_duration("k", "1d"))
    assert calendar.add(shanghai(2026, 3, 9, 9), one_day) == shanghai(2026, 3, 9, 18)
    assert calendar.add(shanghai(2026, 3, 9, 10), one_day) == shanghai(2026, 3, 10, 10)


# -- public holidays and make-up working days -------------------------------------------------
# CN 2026 in the holidays package: 02-16..02-20 and 02-23 are off (with the weekend of
# 02-21/22 and Sunday 02-15, nine days), Saturdays 02-14 and 02-28 are worked; New Year's
# 01-01 and 01-02 are off and Sunday 01-04 is worked.


def test_make_up_saturday_is_a_working_day() -> None:
    assert china().add(shanghai(2026, 2, 13, 17), 4 * HOUR) == shanghai(2026, 2, 14, 12)
    assert china().is_working(shanghai(2026, 2, 14, 10))


def test_spring_festival_days_are_skipped() -> None:
    assert china().add(shanghai(2026, 2, 14, 17), 4 * HOUR) == shanghai(2026, 2, 24, 12)
    assert not china().is_working(shanghai(2026, 2, 16, 10))
    assert not china().is_working(shanghai(2026, 2, 23, 10))


def test_second_make_up_saturday_after_the_festival() -> None:
    assert china().add(shanghai(2026, 2, 27, 17), 4 * HOUR) == shanghai(2026, 2, 28, 12)


def test_make_up_sunday_across_new_year() -> None:
    assert china().add(shanghai(2025, 12, 31, 17), 4 * HOUR) == shanghai(2026, 1, 4, 12)


def test_between_counts_only_the_days_worked_around_the_festival() -> None:
    calendar = china()
    assert calendar.between(shanghai(2026, 2, 13, 9), shanghai(2026, 2, 25, 9)) == 27 * HOUR
    assert calendar.between(shanghai(2026, 2, 26, 9), shanghai(2026, 3, 2, 9)) == 27 * HOUR


def test_make_up_day_works_the_regular_weekday_hours() -> None:
    lunch_split = china(LUNCH_SPLIT)
    assert lunch_split.add(shanghai(2026, 2, 13, 17), 5 * HOUR) == shanghai(2026, 2, 14, 14)
    short_saturdays = china("Mon-Fri 09:00-18:00; Sat 10:00-14:00")
    assert short_saturdays.add(shanghai(2026, 2, 14, 8), 0) == shanghai(2026, 2, 14, 9)
    # The package lists only the break's weekdays: its Saturday 02-21 keeps the week's hours.
    assert short_saturdays.add(shanghai(2026, 2, 21, 8), 0) == shanghai(2026, 2, 21, 10)
    assert short_saturdays.add(shanghai(2026, 2, 21, 15), 0) == shanghai(2026, 2, 24, 9)


def test_extra_holiday_is_skipped() -> None:
    calendar = china(extra_holidays=[date(2026, 2, 24)])
    assert calendar.add(shanghai(2026, 2, 14, 17), 4 * HOUR) == shanghai(2026, 2, 25, 12)


def test_extra_holiday_cancels_a_make_up_day() -> None:
    calendar = china(extra_holidays=[date(2026, 2, 14)])
    assert calendar.add(shanghai(2026, 2, 13, 17), 4 * HOUR) == shanghai(2026, 2, 24, 12)


def test_extra_workday_overrides_a_public_holiday() -> None:
    calendar = china(extra_workdays=[date(2026, 2, 23)])
    assert calendar.add(shanghai(2026, 2, 14, 17), 4 * HOUR) == shanghai(2026, 2, 23, 12)
    both = china(extra_holidays=[date(2026, 2, 23)], extra_workdays=[date(2026, 2, 23)])
    assert both.is_working(shanghai(2026, 2, 23, 10))


def test_extra_workday_on_a_plain_saturday() -> None:
    calendar = BusinessCalendar.build(
        "Asia/Shanghai", week(OFFICE), extra_workdays=[date(2026, 3, 14)]
    )
    assert calendar.add(shanghai(2026, 3, 13, 17), 4 * HOUR) == shanghai(2026, 3, 14, 12)


def test_us_thanksgiving_is_off_in_new_york() -> None:
    calendar = BusinessCalendar.build("America/New_York", week(OFFICE), "us")
    assert calendar.add(new_york(2026, 11, 25, 17), 4 * HOUR) == new_york(2026, 11, 27, 12)


def test_unknown_country_and_zone_name_their_keys() -> None:
    with pytest.raises(ConfigError, match=r"^business_hours\.holidays: .*'XX'"):
        BusinessCalendar.build("Asia/Shanghai", week(OFFICE), "XX")
    with pytest.raises(ConfigError, match=r"^business_hours\.timezone: .*'Mars/Base'"):
        BusinessCalendar.build("Mars/Base", week(OFFICE))
    with pytest.raises(ConfigError, match=r"^business_hours\.timezone: "):
        BusinessCalendar.build("", week(OFFICE))


# -- daylight saving --------------------------------------------------------------------------
# New York: 2026-03-08 02:00 EST becomes 03:00 EDT; 2026-11-01 02:00 EDT becomes 01:00 EST.


def test_new_york_office_day_moves_in_utc_across_the_spring_change() -> None:
    calendar = BusinessCalendar.build("America/New_York", week(OFFICE))
    friday = list(calendar.working_intervals(utc(2026, 3, 6), utc(2026, 3, 7)))
    monday = list(calendar.working_intervals(utc(2026, 3, 9), utc(2026, 3, 10)))
    assert friday == [(utc(2026, 3, 6, 14), utc(2026, 3, 6, 23))]
    assert monday == [(utc(2026, 3, 9, 13), utc(2026, 3, 9, 22))]
    assert calendar.add(new_york(2026, 3, 6, 17), 4 * HOUR) == utc(2026, 3, 9, 16)


def test_new_york_office_day_across_the_autumn_change() -> None:
    calendar = BusinessCalendar.build("America/New_York", week(OFFICE))
    assert calendar.add(new_york(2026, 10, 30, 17), 4 * HOUR) == utc(2026, 11, 2, 17)
    assert calendar.between(new_york(2026, 10, 30, 9), new_york(2026, 11, 2, 18)) == 18 * HOUR


def test_change_days_are_as_long_as_the_clocks_say() -> None:
    always = BusinessCalendar.build("America/New_York", week("24x7"))
    assert always.between(new_york(2026, 3, 8), new_york(2026, 3, 9)) == 23 * HOUR
    assert always.between(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 25 * HOUR
    early = BusinessCalendar.build("America/New_York", week("Sun 00:00-06:00"))
    assert early.between(new_york(2026, 3, 8), new_york(2026, 3, 9)) == 5 * HOUR
    assert early.between(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 7 * HOUR


# -- the round-the-clock calendar -------------------------------------------------------------


def test_always_adds_plain_time() -> None:
    calendar = BusinessCalendar.always()
    start = utc(2026, 2, 14, 17, 3, 5)
    assert calendar.add(start, 12345.678) == start + timedelta(seconds=12345.678)
    assert calendar.add(start, 30 * 86400) == start + timedelta(days=30)
    assert calendar.between(start, start + timedelta(days=9, seconds=7)) == 9 * 86400 + 7
    assert calendar.is_working(start)


# -- add and between agree --------------------------------------------------------------------


def sample_calendars() -> list[BusinessCalendar]:
    return [
        china(),
        BusinessCalendar.build("America/New_York", week(LUNCH_SPLIT), "US"),
        BusinessCalendar.build("Asia/Singapore", week("Mon-Fri 22:00-06:00; Sun 10:00-11:00")),
        BusinessCalendar.build("Europe/London", week("Mon-Sat 08:00-20:00"), "GB"),
        BusinessCalendar.always(),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_between_undoes_add(seed: int) -> None:
    chooser = random.Random(seed)
    for calendar in sample_calendars():
        for _ in range(40):
            start = utc(2026, 1, 1) + timedelta(seconds=chooser.randrange(365 * 86400))
            seconds = chooser.choice([0, 60, 3600, chooser.uniform(0, 30 * 9 * HOUR)])
            due = calendar.add(start, seconds)
            assert due >= start
            assert calendar.between(start, due) == pytest.approx(seconds, abs=1e-5)
            end = start + timedelta(seconds=chooser.randrange(20 * 86400))
            worked = calendar.between(start, end)
            reached = calendar.add(start, worked)
            assert reached <= end or worked == 0
            assert calendar.between(reached, end) == 0


def test_calendar_without_working_time_refuses_to_add() -> None:
    calendar = BusinessCalendar.build("UTC", Week.of([[]] * 7))
    with pytest.raises(ValueError, match="has no working hours"):
        calendar.add(utc(2026, 1, 1), 0)
    assert calendar.between(utc(2026, 1, 1), utc(2027, 1, 1)) == 0


def test_naive_times_are_refused() -> None:
    calendar = office_without_holidays()
    with pytest.raises(ValueError):
        calendar.add(datetime(2026, 3, 9, 10), HOUR)
    with pytest.raises(ValueError):
        calendar.between(datetime(2026, 3, 9, 10), utc(2026, 3, 10))
    with pytest.raises(ValueError):
        Shift.build("UTC", week(OFFICE)).on(datetime(2026, 3, 9, 10))


def test_ten_business_days_are_quick() -> None:
    calendar = china()
    start = shanghai(2026, 2, 10, 10)
    ten_days = calendar.seconds_of(parse_duration("k", "10d"))
    calendar.add(start, ten_days)
    began = time.perf_counter()
    for _ in range(100):
        due = calendar.add(start, ten_days)
    assert due == shanghai(2026, 3, 2, 10)
    assert time.perf_counter() - began < 0.5


# -- shifts -----------------------------------------------------------------------------------
# 2026-03-02 is a Monday.


def singapore(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=SINGAPORE)


def night_shift(text: str = "Mon-Fri 22:00-06:00") -> Shift:
    return Shift.build("Asia/Singapore", week(text))


def test_night_shift_is_on_after_midnight_and_began_the_evening_before() -> None:
    shift = night_shift()
    assert shift.on(singapore(2026, 3, 3, 2))
    assert shift.current_start(singapore(2026, 3, 3, 2)) == singapore(2026, 3, 2, 22)
    assert shift.next_start(singapore(2026, 3, 3, 2)) == singapore(2026, 3, 3, 22)


def test_night_shift_is_off_in_the_morning_and_starts_again_at_night() -> None:
    shift = night_shift()
    assert not shift.on(singapore(2026, 3, 3, 7))
    assert shift.current_start(singapore(2026, 3, 3, 7)) is None
    assert shift.next_start(singapore(2026, 3, 3, 7)) == singapore(2026, 3, 3, 22)
    assert shift.next_start(singapore(2026, 3, 3, 22)) == singapore(2026, 3, 4, 22)


def test_friday_night_runs_into_saturday_and_sunday_night_is_free() -> None:
    shift = night_shift()
    assert shift.on(singapore(2026, 3, 7, 3))
    assert shift.current_start(singapore(2026, 3, 7, 3)) == singapore(2026, 3, 6, 22)
    assert not shift.on(singapore(2026, 3, 8, 23))
    assert not shift.on(singapore(2026, 3, 9, 3))
    assert shift.next_start(singapore(2026, 3, 7, 7)) == singapore(2026, 3, 9, 22)


def test_sunday_night_shift_runs_into_monday() -> None:
    shift = night_shift("Sun 22:00-06:00")
    assert shift.on(singapore(2026, 3, 9, 3))
    assert shift.current_start(singapore(2026, 3, 9, 3)) == singapore(2026, 3, 8, 22)
    assert not shift.on(singapore(2026, 3, 9, 7))
    assert shift.next_start(singapore(2026, 3, 9, 7)) == singapore(2026, 3, 15, 22)


def test_shift_knows_no_public_holidays() -> None:
    shift = Shift.build("Asia/Shanghai", week(OFFICE))
    assert shift.on(shanghai(2026, 2, 17, 10))
    assert not shift.on(shanghai(2026, 2, 14, 10))


def test_always_on_shift_has_no_start() -> None:
    for shift in (Shift.build("UTC", None), Shift.build("Asia/Tokyo", ALWAYS)):
        assert shift.on(utc(2026, 3, 8, 3))
        assert shift.current_start(utc(2026, 3, 8, 3)) is None
        assert shift.next_start(utc(2026, 3, 8, 3)) is None


def test_shift_with_no_hours_never_starts() -> None:
    shift = Shift.build("UTC", Week.of([[]] * 7))
    assert not shift.on(utc(2026, 3, 8, 3))
    assert shift.next_start(utc(2026, 3, 8, 3)) is None


def test_los_angeles_shift_starts_an_hour_earlier_in_utc_after_the_spring_change() -> None:
    shift = Shift.build("America/Los_Angeles", week("Mon-Fri 09:00-17:00"))
    assert shift.current_start(utc(2026, 3, 6, 18)) == utc(2026, 3, 6, 17)
    assert shift.next_start(utc(2026, 3, 6, 20)) == utc(2026, 3, 9, 16)
    assert shift.on(utc(2026, 3, 9, 16, 30))


def test_los_angeles_shift_starts_an_hour_later_in_utc_after_the_autumn_change() -> None:
    shift = Shift.build("America/Los_Angeles", week("Mon-Fri 09:00-17:00"))
    assert shift.current_start(utc(2026, 10, 30, 17)) == utc(2026, 10, 30, 16)
    assert shift.next_start(utc(2026, 10, 30, 20)) == utc(2026, 11, 2, 17)
    assert not shift.on(utc(2026, 11, 2, 16, 30))


def test_london_shift_follows_british_summer_time() -> None:
    shift = Shift.build("Europe/London", week("Mon-Fri 09:00-17:00"))
    assert shift.next_start(utc(2026, 3, 27, 18)) == utc(2026, 3, 30, 8)
    assert shift.next_start(utc(2026, 10, 23, 17)) == utc(2026, 10, 26, 9)


def test_bad_shift_zone_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"^engineers\.shift: .*'Moon/Base'"):
        Shift.build("Moon/Base", None, key="engineers.shift")


def test_working_hours_that_start_in_a_spring_forward_gap_start_when_the_clock_jumps() -> None:
    # New York skips 02:00-03:00 on 2026-03-08: 02:30-10:00 starts at 03:00 EDT (07:00 UTC).
    calendar = BusinessCalendar.build("America/New_York", parse_week("k", "Sun 02:30-10:00"))
    day = list(
        calendar.working_intervals(
            datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
        )
    )
    assert day == [(datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 3, 8, 14, tzinfo=UTC))]
