"""What mail says of the service levels: the promise in a customer's acknowledgement, in
their time zone when their mail told it, and the due times in an engineer's mail, in the
engineer's own zone with the time left.
"""

from __future__ import annotations

from datetime import datetime

from gateway.service.hours import Duration
from gateway.service.levels import ServiceLevels
from gateway.service.phrasing import (
    due_words,
    span_words,
    target_words,
    zone_label_zh,
    zone_of,
)
from storage.models import Ticket, TicketStatus

DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


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


def due_lines(
    ticket: Ticket, service: ServiceLevels, zone_name: str, now: datetime, language: str
) -> list[str]:
    """The ticket's due times in the engineer's zone, with the time left: "Reply due 10:30
    CST, 2 h 10 min of business time left"."""
    if ticket.status in DONE:
        return []
    target = service.target(ticket.priority.value)
    calendar = service.calendar_of(target)
    zone = zone_of(zone_name)
    kind = (
        ("" if language == "zh" else " ")
        if target.around_the_clock
        else ("工作" if language == "zh" else " business ")
    )
    lines = []
    names = ("首次回复", "解决") if language == "zh" else ("Reply", "Resolution")
    dues = (ticket.response_due if ticket.responded_at is None else None, ticket.resolution_due)
    for name, due in zip(names, dues, strict=True):
        if due is None:
            continue
        when = due_words(due, zone, now, language)
        if now >= due:
            late = span_words(calendar.between(due, now), language, target.around_the_clock)
            lines.append(overdue_line(name, when, late, kind, language))
        else:
            left = span_words(calendar.between(now, due), language, target.around_the_clock)
            lines.append(left_line(name, when, left, kind, language))
    if ticket.resolution_paused:
        lines.append(
            "解决时限已暂停：等待客户回复"
            if language == "zh"
            else "Resolution clock paused: waiting on the customer"
        )
    return lines


def left_line(name: str, when: str, left: str, kind: str, language: str) -> str:
    if language == "zh":
        return f"{name}截止 {when}，剩余 {left}{kind}时间"
    return f"{name} due {when}, {left} of{kind}time left".replace("  ", " ")


def overdue_line(name: str, when: str, late: str, kind: str, language: str) -> str:
    if language == "zh":
        return f"{name}已于 {when} 到期，已超出 {late}{kind}时间"
    return f"{name} was due {when}, {late} of{kind}time ago".replace("  ", " ")
