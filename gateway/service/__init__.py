"""Service levels, pure: the desk's working hours and holidays, target lengths, engineers'
shifts (`hours`, `calendar`); the targets per priority and the sender rules (`levels`); a
ticket's clocks computed from its history (`clocks`); and how mail says them (`phrasing`).

The holiday tables are computed by the `holidays` package, never fetched.
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
