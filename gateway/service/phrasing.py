"""Service levels in people's words, in English and Chinese: how long a target is ("4
business hours", "4 个工作小时"), when something is due in the reader's own zone ("10:30
CST", "Mon 7 Dec 09:30 PST"), and how much time is left ("2 h 10 min").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from gateway.service.hours import Duration

WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def target_words(duration: Duration, business: bool, language: str, day_seconds: float) -> str:
    """A target's length as the promise states it: "4 business hours", "1 个工作日"; a
    length mixing days and hours in hours, a day being `day_seconds` long."""
    seconds = duration.days * day_seconds + duration.seconds
    if duration.days and not duration.seconds:
        count, unit = duration.days, "day"
    elif seconds % 3600 == 0:
        count, unit = seconds / 3600, "hour"
    else:
        count, unit = seconds / 60, "minute"
    number = f"{count:g}"
    if language == "zh":
        names = {
            "day": ("个工作日", "天"),
            "hour": ("个工作小时", "小时"),
            "minute": ("分钟", "分钟"),
        }
        name = names[unit][0 if business else 1]
        return f"{number} {name}" + ("（工作时间）" if business and unit == "minute" else "")
    plural = "" if count == 1 else "s"
    return f"{number} {'business ' if business else ''}{unit}{plural}"


def zone_of(name: str = "", utc_offset_minutes: int | None = None) -> tzinfo:
    """A named zone, else a fixed offset, else UTC."""
    if name:
        return ZoneInfo(name)
    if utc_offset_minutes is not None:
        return timezone(timedelta(minutes=utc_offset_minutes))
    return UTC


def zone_label(moment: datetime) -> str:
    """The zone's abbreviation ("CST", "PDT"), or its offset where it has none ("UTC+08")."""
    label = moment.strftime("%Z")
    if label and label[0] not in "+-" and not label.startswith("UTC"):
        return label
    offset = moment.strftime("%z")
    if offset in ("", "+0000"):
        return "UTC"
    return f"UTC{offset[:3]}" + (f":{offset[3:5]}" if offset[3:5] != "00" else "")


def zone_label_zh(moment: datetime) -> str:
    """Chinese readers name UTC+8 Beijing time, whatever the city; other zones as in
    English."""
    if moment.utcoffset() == timedelta(hours=8):
        return "北京时间"
    return zone_label(moment)


def due_words(due: datetime, zone: tzinfo, now: datetime, language: str) -> str:
    """When `due` is, on the reader's clock: the time alone today, with the day otherwise;
    the zone's name last ("10:30 CST", "12月14日周一 17:00 北京时间")."""
    local, today = due.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    label = zone_label_zh(local) if language == "zh" else zone_label(local)
    if local.date() == today:
        return f"{clock} {label}"
    if language == "zh":
        return f"{local.month}月{local.day}日{WEEKDAYS_ZH[local.weekday()]} {clock} {label}"
    day = f"{WEEKDAYS_EN[local.weekday()]} {local.day} {MONTHS_EN[local.month - 1]}"
    return f"{day} {clock} {label}"


def span_words(seconds: float, language: str, whole_days: bool = True) -> str:
    """A length of time, to the minute: "2 h 10 min", "3 d 4 h", "2 小时 10 分钟"; business
    time stays in hours (`whole_days` off), since its days are not 24 hours long."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60) if whole_days else (0, minutes)
    hours, minutes = divmod(rest, 60)
    units = (("d", "天"), ("h", "小时"), ("min", "分钟"))
    parts = [
        f"{value} {unit[1] if language == 'zh' else unit[0]}"
        for value, unit in zip((days, hours, minutes), units, strict=True)
        if value
    ]
    if days:
        parts = parts[:2]
    return " ".join(parts) or ("不到 1 分钟" if language == "zh" else "under a minute")
