"""Service time: the desk's working hours and holidays, target lengths, engineers' shifts.

Pure: the holiday tables are computed by the `holidays` package, never fetched.
"""

from gateway.service.calendar import BusinessCalendar, Shift
from gateway.service.hours import ALWAYS, Duration, Week, parse_duration, parse_week

__all__ = [
    "ALWAYS",
    "BusinessCalendar",
    "Duration",
    "Shift",
    "Week",
    "parse_duration",
    "parse_week",
]
