"""Reading the structured tables of `gateway.toml`: the service levels, the team's calendar,
the sender rules, the routing choice and the engineers with their zones and shifts.

```toml
[service_levels]      # per priority; hours = "business" or "24x7"
P2 = { first_response = "4h", resolution = "3d", hours = "business" }
[business_hours]      # timezone, week, holidays, extra_holidays, extra_workdays
[customers]           # "bigstream.example" = { priority = "P2" }
[routing]             # assign = "none" | "least_loaded"
[[engineers]]         # address, tier, language, timezone, shift, on_call
```

Each value is checked as it is read; a bad one raises `ConfigError` naming the file, the
table and the key. What a table leaves out keeps its default (`gateway.service.levels`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.errors import ConfigError
from gateway.service.calendar import BusinessCalendar
from gateway.service.hours import parse_duration, parse_week
from gateway.service.levels import (
    AROUND_THE_CLOCK,
    ASSIGN_CHOICES,
    BUSINESS,
    PRIORITIES,
    SenderRule,
    ServiceLevels,
    Target,
)
from gateway.setting_values import Engineer, parse_address, parse_language, parse_tier

SERVICE_TABLES = ("service_levels", "business_hours", "customers", "routing")
TARGET_FIELDS = ("first_response", "resolution", "hours")
CALENDAR_FIELDS = ("timezone", "week", "holidays", "extra_holidays", "extra_workdays")
ENGINEER_FIELDS = ("address", "tier", "language", "timezone", "shift", "on_call")


def read_service_levels(path: Path, raw: dict[str, Any]) -> ServiceLevels:
    """The service levels the file's tables give, over the defaults."""
    levels = ServiceLevels()
    where = f"{path}: "
    if "service_levels" in raw:
        levels = replace(levels, targets=read_targets(where, levels, raw["service_levels"]))
    if "business_hours" in raw:
        levels = replace(levels, calendar=read_calendar(where, table(where, raw, "business_hours")))
    if "customers" in raw:
        levels = replace(levels, customers=read_sender_rules(where, raw["customers"]))
    if "routing" in raw:
        levels = replace(levels, assign=read_assign(where, table(where, raw, "routing")))
    return levels


def table(where: str, raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw[name]
    if not isinstance(value, dict):
        raise ConfigError(f"{where}[{name}] must be a table")
    return value


def known_keys(where: str, name: str, value: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ConfigError(f"{where}unknown key {unknown[0]!r} in {name}; known: {', '.join(known)}")


def read_targets(where: str, levels: ServiceLevels, value: Any) -> tuple[tuple[str, Target], ...]:
    """`P1 = { first_response = "1h", resolution = "1d", hours = "24x7" }`, per priority."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}[service_levels] must be a table")
    known_keys(where, "[service_levels]", value, PRIORITIES)
    targets = dict(levels.targets)
    for priority, fields in value.items():
        targets[priority] = read_target(
            f"{where}service_levels.{priority}", targets[priority], fields
        )
    return tuple((priority, targets[priority]) for priority in PRIORITIES)


def read_target(key: str, default: Target, fields: Any) -> Target:
    if not isinstance(fields, dict):
        raise ConfigError(f'{key}: expected a table like {{ first_response = "4h", ... }}')
    known_keys(f"{key}: ", "the table", fields, TARGET_FIELDS)
    hours = str(fields.get("hours", default.hours))
    if hours not in (BUSINESS, AROUND_THE_CLOCK):
        raise ConfigError(f'{key}.hours: expected "business" or "24x7", got {hours!r}')
    first = fields.get("first_response")
    resolution = fields.get("resolution")
    return Target(
        parse_duration(f"{key}.first_response", str(first)) if first else default.first_response,
        parse_duration(f"{key}.resolution", str(resolution)) if resolution else default.resolution,
        hours,
    )


def read_calendar(where: str, fields: dict[str, Any]) -> BusinessCalendar:
    """`[business_hours]`: the zone, the week, the country's holidays and the extra days."""
    known_keys(where, "[business_hours]", fields, CALENDAR_FIELDS)
    key = f"{where}business_hours"
    zone = read_zone(f"{key}.timezone", fields.get("timezone", "Asia/Shanghai"))
    week = parse_week(f"{key}.week", str(fields.get("week", "Mon-Fri 09:00-18:00")))
    return BusinessCalendar.build(
        zone,
        week,
        str(fields.get("holidays", "CN")),
        read_dates(f"{key}.extra_holidays", fields.get("extra_holidays", [])),
        read_dates(f"{key}.extra_workdays", fields.get("extra_workdays", [])),
    )


def read_zone(key: str, value: Any) -> str:
    """An IANA time zone name (`Asia/Shanghai`)."""
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{key}: unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
        ) from None
    return str(value)


def read_dates(key: str, value: Any) -> tuple[date, ...]:
    """`["2027-02-08", ...]`, quoted or as TOML dates."""
    if not isinstance(value, list):
        raise ConfigError(f'{key}: expected a list of dates like ["2027-02-08"]')
    dates = []
    for item in value:
        if isinstance(item, date):
            dates.append(item)
            continue
        try:
            dates.append(date.fromisoformat(str(item)))
        except ValueError:
            raise ConfigError(f"{key}: {item!r} is not a date like 2027-02-08") from None
    return tuple(dates)


def read_sender_rules(where: str, value: Any) -> tuple[SenderRule, ...]:
    """`"bigstream.example" = { priority = "P2" }` (a domain or an address)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}[customers] must be a table")
    rules = []
    for sender, fields in value.items():
        key = f"{where}customers.{sender}"
        priority = fields.get("priority") if isinstance(fields, dict) else fields
        if priority not in PRIORITIES:
            raise ConfigError(f'{key}: expected {{ priority = "P2" }} (P1..P4), got {fields!r}')
        rules.append(SenderRule(str(sender).strip().lower(), str(priority)))
    return tuple(rules)


def read_assign(where: str, fields: dict[str, Any]) -> str:
    known_keys(where, "[routing]", fields, ("assign",))
    assign = str(fields.get("assign", "none"))
    if assign not in ASSIGN_CHOICES:
        raise ConfigError(
            f'{where}routing.assign: expected "none" or "least_loaded", got {assign!r}'
        )
    return assign


def read_engineer_tables(path: Path, items: list[Any]) -> tuple[Engineer, ...]:
    """`[[engineers]]`: one table per engineer; a later table for one address wins."""
    engineers: dict[str, Engineer] = {}
    for number, fields in enumerate(items, start=1):
        key = f"{path}: engineers[{number}]"
        if not isinstance(fields, dict) or "address" not in fields:
            raise ConfigError(f"{key}: each [[engineers]] table needs an address")
        engineer = read_engineer(key, fields)
        engineers[engineer.address] = engineer
    return tuple(engineers.values())


def read_engineer(key: str, fields: dict[str, Any]) -> Engineer:
    known_keys(f"{key}: ", "[[engineers]]", fields, ENGINEER_FIELDS)
    address = parse_address(f"{key}.address", str(fields["address"])).lower()
    shift = fields.get("shift")
    on_call = fields.get("on_call", False)
    if not isinstance(on_call, bool):
        raise ConfigError(f"{key}.on_call: expected true or false, got {on_call!r}")
    return Engineer(
        address,
        parse_tier(key, address, str(fields.get("tier", "L1"))),
        parse_language(key, address, str(fields.get("language", "en"))),
        read_zone(f"{key}.timezone", fields["timezone"]) if "timezone" in fields else "",
        parse_week(f"{key}.shift", str(shift)) if shift is not None else None,
        on_call,
    )


def merge_engineers(
    from_file: tuple[Engineer, ...], from_environment: tuple[Engineer, ...]
) -> tuple[Engineer, ...]:
    """`GATEWAY_ENGINEERS` extends the file's engineers: it adds the addresses the file does
    not name; for one it names, the file's table, which says more, stands."""
    engineers = {engineer.address: engineer for engineer in from_file}
    for engineer in from_environment:
        engineers.setdefault(engineer.address, engineer)
    return tuple(engineers.values())
