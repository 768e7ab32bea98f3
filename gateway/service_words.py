"""What mail says of the service levels: the promise in a customer's acknowledgement, in
their time zone when their mail told it, and the due times in an engineer's mail, in the
engineer's own zone with the time left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.phrases import Phrase
from gateway.service.hours import Duration
from gateway.service.levels import ServiceLevels
from gateway.service.phrasing import (
    due_words,
    span_words,
    target_words,
    zone_label_zh,
    zone_of,
)
from gateway.workflow.service import reason_in
from storage.models import DONE_STATUSES, Ticket


def promise(ticket: Ticket, service: ServiceLevels, now: datetime, language: str) -> str:
    """ "We answer P2 requests within 4 business hours (by 15:30 your time)."."""
    target = service.target(ticket.priority.value)
    business = not target.around_the_clock
    day = service.calendar_of(target).seconds_of(Duration(1, 0))
    within = target_words(target.first_response, business, language, day)
    priority = ticket.priority.value
    if ticket.response_due is None:
        return ""
    team_zone = service.calendar.timezone
    if ticket.customer_utc_offset is not None:
        zone = zone_of(utc_offset_minutes=ticket.customer_utc_offset)
        where = "您当地时间" if language == "zh" else "your time"
    else:
        zone = zone_of(team_zone)
        where = zone_label_zh(now.astimezone(zone)) if language == "zh" else f"{team_zone} time"
    # The zone's label is left out: "your time" or the zone's name says it.
    by = due_words(ticket.response_due, zone, now, language).rsplit(" ", 1)[0]
    if language == "zh":
        return f"{priority} 级请求我们会在 {within}内答复（{where} {by} 前）。"
    return f"We answer {priority} requests within {within} (by {by} {where})."


CLOCK_NAMES = (Phrase("Reply", "首次回复"), Phrase("Resolution", "解决"))
PAUSED = Phrase("Resolution clock paused: waiting on the customer", "解决时限已暂停：等待客户回复")
LEFT = Phrase(
    "{name} due {when}, {span}{business} left", "{name}截止 {when}，剩余 {span}{business}"
)
OVERDUE = Phrase(
    "{name} was due {when}, {span} overdue{business}",
    "{name}已于 {when}到期，已超出 {span}{business}",
)
# After the time left, or after the time overdue, when the target counts business hours.
LEFT_IN_BUSINESS_TIME = Phrase(" of business time", "工作时间")
OVERDUE_IN_BUSINESS_TIME = Phrase(" (business time)", "（工作时间）")


def engineer_context(
    ticket: Ticket, service: ServiceLevels, zone_name: str, now: datetime, language: str
) -> dict[str, Any]:
    """What an engineer's mail says of the service levels: the due times and where the
    priority came from, in their zone and language."""
    return {
        "due_lines": due_lines(ticket, service, zone_name, now, language),
        "priority_reason": reason_in(ticket.priority_reason, language),
    }


def due_lines(
    ticket: Ticket, service: ServiceLevels, zone_name: str, now: datetime, language: str
) -> list[str]:
    """The ticket's due times in the engineer's zone, with the time left: "Reply due 10:30
    CST, 2 h 10 min of business time left"."""
    if ticket.status in DONE_STATUSES:
        return []
    target = service.target(ticket.priority.value)
    calendar, business = service.calendar_of(target), not target.around_the_clock
    zone = zone_of(zone_name)
    dues = (ticket.response_due if ticket.responded_at is None else None, ticket.resolution_due)
    lines = []
    for name, due in zip(CLOCK_NAMES, dues, strict=True):
        if due is None:
            continue
        late = now >= due
        span = span_words(calendar.between(*sorted((now, due))), language, not business)
        in_business = OVERDUE_IN_BUSINESS_TIME if late else LEFT_IN_BUSINESS_TIME
        line = (OVERDUE if late else LEFT).said_in(language)
        lines.append(
            line.format(
                name=name.said_in(language),
                when=due_words(due, zone, now, language),
                span=span,
                business=in_business.said_in(language) if business else "",
            )
        )
    if ticket.resolution_paused:
        lines.append(PAUSED.said_in(language))
    return lines
