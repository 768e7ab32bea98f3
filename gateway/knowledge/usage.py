"""How the articles are used: how often each was suggested, opened from a suggestion, and
said to have solved a ticket, read from the tickets' trails."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Event, EventKind

COUNTED = (EventKind.ARTICLES_SUGGESTED, EventKind.ARTICLE_OPENED, EventKind.SOLVED_BY_ARTICLE)


@dataclass(slots=True)
class Usage:
    """Per slug; and how many tickets had a suggestion, and had one opened."""

    suggested: Counter[str] = field(default_factory=Counter)
    opened: Counter[str] = field(default_factory=Counter)
    solved: Counter[str] = field(default_factory=Counter)
    tickets_suggested: set[int] = field(default_factory=set)
    tickets_opened: set[int] = field(default_factory=set)
    tickets_solved: set[int] = field(default_factory=set)


def article_usage(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> Usage:
    """What the trail says of the articles, between `since` and `until` when given."""
    query = select(Event.ticket_id, Event.type, Event.detail).where(Event.type.in_(COUNTED))
    if since is not None:
        query = query.where(Event.at >= since)
    if until is not None:
        query = query.where(Event.at < until)
    usage = Usage()
    for ticket_id, kind, detail in session.execute(query):
        if kind is EventKind.ARTICLES_SUGGESTED:
            usage.suggested.update(detail.split())
            usage.tickets_suggested.add(ticket_id)
        elif kind is EventKind.ARTICLE_OPENED:
            usage.opened[detail] += 1
            usage.tickets_opened.add(ticket_id)
        else:
            usage.solved[detail] += 1
            usage.tickets_solved.add(ticket_id)
    return usage
