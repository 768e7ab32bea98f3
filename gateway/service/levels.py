"""The promises support makes: per priority a first-response and a resolution target, in the
team's business hours or around the clock; the team's calendar; the sender rules that give a
customer's mail its priority; whether new tickets are assigned as they are routed.

`ServiceLevels` is the settings' section (`settings.service`), read from the TOML tables
`[service_levels]`, `[business_hours]`, `[customers]` and `[routing]` by `gateway.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.service.calendar import BusinessCalendar
from gateway.service.hours import Duration, parse_week

PRIORITIES = ("P1", "P2", "P3", "P4")
BUSINESS = "business"
AROUND_THE_CLOCK = "24x7"
ASSIGN_CHOICES = ("none", "least_loaded")
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Target:
    """What one priority promises: the first response and the resolution within these
    durations, counted in business hours or around the clock."""

    first_response: Duration
    resolution: Duration
    hours: str = BUSINESS

    @property
    def around_the_clock(self) -> bool:
        return self.hours == AROUND_THE_CLOCK


DEFAULT_TARGETS: tuple[tuple[str, Target], ...] = (
    ("P1", Target(Duration(0, HOUR), Duration(1, 0), AROUND_THE_CLOCK)),
    ("P2", Target(Duration(0, 4 * HOUR), Duration(3, 0))),
    ("P3", Target(Duration(1, 0), Duration(5, 0))),
    ("P4", Target(Duration(3, 0), Duration(10, 0))),
)


@dataclass(frozen=True, slots=True)
class SenderRule:
    """A customer's plan: mail from this address or domain gets at least `priority`."""

    sender: str
    priority: str


def default_calendar() -> BusinessCalendar:
    """The team's calendar unless `[business_hours]` says otherwise: Shanghai office hours
    with China's public holidays and make-up working days."""
    week = parse_week("business_hours.week", "Mon-Fri 09:00-18:00")
    return BusinessCalendar.build("Asia/Shanghai", week, "CN")


@dataclass(frozen=True)
class ServiceLevels:
    """The targets per priority, the calendar business hours are counted in, the sender
    rules and the routing choice."""

    targets: tuple[tuple[str, Target], ...] = DEFAULT_TARGETS
    calendar: BusinessCalendar = field(default_factory=default_calendar)
    # Sender rules by address or domain (`[customers]`); a rule can only raise a priority.
    customers: tuple[SenderRule, ...] = ()
    # `least_loaded`: a new ticket is also assigned to the L1 on shift with the fewest open
    # tickets; `none`: it is offered to all of them and assigned to nobody.
    assign: str = "none"

    def target(self, priority: str) -> Target:
        """The target of `priority`; a priority with none configured has P3's or the
        last one's."""
        targets = dict(self.targets)
        return targets.get(priority) or targets.get("P3") or self.targets[-1][1]

    def calendar_of(self, target: Target) -> BusinessCalendar:
        """The calendar a target counts in."""
        return BusinessCalendar.always() if target.around_the_clock else self.calendar

    def sender_rule(self, address: str) -> SenderRule | None:
        """The rule for `address`: its own, else its domain's, else a parent domain's."""
        rules = {rule.sender: rule for rule in self.customers}
        address = address.lower()
        if address in rules:
            return rules[address]
        domain = address.rpartition("@")[2]
        while domain:
            if domain in rules:
                return rules[domain]
            domain = domain.partition(".")[2]
        return None


def more_urgent(first: str, second: str) -> str:
    """The more urgent of two priorities (P1 is the most urgent)."""
    return min(first, second, key=PRIORITIES.index)
