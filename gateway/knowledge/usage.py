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


def suggested_slugs(detail: str) -> list[str]:
    """The slugs an `articles_suggested` event's detail names, first suggested first."""
    return detail.split()


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
            usage.suggested.update(suggested_slugs(detail))
            usage.tickets_suggested.add(ticket_id)
        elif kind is EventKind.ARTICLE_OPENED:
            usage.opened[detail] += 1
            usage.tickets_opened.add(ticket_id)
        else:
            usage.solved[detail] += 1
            usage.tickets_solved.add(ticket_id)
    return usage


@dataclass(frozen=True, slots=True)
class ArticleFigures:
    """The knowledge base in the lead's report: tickets given suggestions, opening one,
    solved by one; the articles most suggested without solving anything."""

    tickets_suggested: int = 0
    tickets_opened: int = 0
    tickets_solved: int = 0
    # (slug, times suggested), most suggested first.
    never_solving: tuple[tuple[str, int], ...] = ()

    @property
    def click_through(self) -> float | None:
        return self.tickets_opened / self.tickets_suggested if self.tickets_suggested else None


def article_figures(session: Session, since: datetime, until: datetime) -> ArticleFigures:
    usage = article_usage(session, since, until)
    unsolved = [(slug, n) for slug, n in usage.suggested.items() if not usage.solved[slug]]
    unsolved.sort(key=lambda pair: (-pair[1], pair[0]))
    return ArticleFigures(
        len(usage.tickets_suggested),
        len(usage.tickets_opened),
        len(usage.tickets_solved),
        tuple(unsolved[:5]),
    )
