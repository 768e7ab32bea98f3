"""Time zones as customers write them, to the offset in minutes a time was given in.

"GMT+8", "UTC+05:30" and "+08:00" right after a time are offsets as written; "北京时间",
"Beijing time", "东八区" and the capitals "SGT", "WIB", "ICT", "JST", "IST", "PST", "EST"
are named zones (short names in capitals only: "ist", "est" and "pt" are words). CST is
China Standard Time (+08:00) when the mail's Date is +08:00 and US Central (-06:00)
otherwise. "Pacific time", "ET" and their kind follow US daylight saving time on the day.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from gateway.intake.page import compiled, lower

# Named zones and their offsets in minutes; CST is told by `capital_zone` (China or US).
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


# "GMT+8", "UTC+08:00", "UTC -5": an offset after the name.
NAMED_OFFSET = compiled(
    r"\b(?:gmt|utc)[ \t]?(?P<sign>[+-])[ \t]?(?P<h>1[0-4]|0?\d)(?::?(?P<m>[0-5]\d))?(?!\d)"
)
# "20:30+08:00", "20:30 -0500": an offset right after a time (its digit is checked in code).
BARE_OFFSET = compiled(r"(?P<sign>[+-])(?P<h>[01]\d):?(?P<m>[0-5]\d)\b")
# Short zone names are read in capitals only: "IST", "EST" and "PT" are words in lower case.
CAPITALS = re.compile(r"\b[A-Z]{2,4}\b")
ZULU = re.compile(r"\d(?::\d\d)?Z\b")
SHORT_ZONES = {name.upper(): offset for name, offset in ZONES.items() if " " not in name}
SHORT_US_ZONES = {name.upper(): offset for name, offset in US_ZONES.items() if " " not in name}
LONG_ZONES = {name: offset for name, offset in ZONES.items() if " " in name or not name.isascii()}
LONG_US_ZONES = {name: offset for name, offset in US_ZONES.items() if " " in name}
CHINA = 480
US_CENTRAL = -360


def zone_in(line: str, mail_offset: int | None, day: date | None) -> int | None:
    """The offset in minutes the line's times are in, or None when it names no zone."""
    folded = lower(line)
    offset = written_offset(folded)
    if offset is not None:
        return offset
    for name, standard in LONG_US_ZONES.items():
        if name in folded:
            return us_offset(standard, day)
    for name, minutes in LONG_ZONES.items():
        if name in folded:
            return minutes
    return capital_zone(line, mail_offset, day)


def written_offset(folded: str) -> int | None:
    """ "GMT+8", "UTC+05:30", or "+08:00" right after a time: the offset in minutes."""
    found = NAMED_OFFSET.search(folded) if "gmt" in folded or "utc" in folded else None
    for bare in BARE_OFFSET.finditer(folded) if found is None else ():
        if folded[max(0, bare.start() - 2) : bare.start()].strip(" ")[-1:].isdigit():
            found = bare
            break
    if found is None:
        return None
    sign = -1 if found.group("sign") == "-" else 1
    return sign * (int(found.group("h")) * 60 + int(found.group("m") or 0))


def capital_zone(line: str, mail_offset: int | None, day: date | None) -> int | None:
    """ "PST", "SGT", "CST" (China's when the mail's Date is, else US Central), "Z"."""
    if ZULU.search(line):
        return 0
    for found in CAPITALS.finditer(line):
        name = found.group()
        if name == "CST":
            return CHINA if mail_offset == CHINA else US_CENTRAL
        if name in SHORT_US_ZONES:
            return us_offset(SHORT_US_ZONES[name], day)
        if name in SHORT_ZONES:
            return SHORT_ZONES[name]
    return None


def us_offset(standard: int, day: date | None) -> int:
    """A US zone's offset on `day`: an hour more in summer time."""
    return standard + (60 if day is not None and us_summer_time(day) else 0)


def us_summer_time(day: date) -> bool:
    """Between the second Sunday of March and the first Sunday of November."""
    start = nth_sunday(day.year, 3, 2)
    end = nth_sunday(day.year, 11, 1)
    return start <= day < end


def nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
