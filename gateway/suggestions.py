"""Suggest: the knowledge base's articles that may answer a new ticket.

They are found after the ticket is opened (so the intake's reading of the platform and SDK
version is known) and before the acknowledgement is written, which carries them; the
`articles_suggested` event keeps them on the ticket, for a later "that solved it" and for
the figures.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from gateway.intake import Fact
from gateway.knowledge import KnowledgeBase, Question
from gateway.trail import Acting, record
from gateway.workflow import Applied, Author
from gateway.workflow.intake import known_value
from storage.models import SYSTEM_ACTOR, EventKind


def suggest(session: Session, applied: Applied, knowledge: KnowledgeBase) -> Applied:
    """`applied` with the articles that may answer it, when it opened a ticket."""
    if (
        not knowledge.enabled
        or not applied.new_ticket
        or applied.author is not Author.CUSTOMER
        or applied.inbound.automatic
    ):
        return applied
    ticket = applied.ticket
    question = Question(
        f"{ticket.subject}\n{applied.message.text}",
        ticket.language,
        known_value(ticket, Fact.PLATFORM),
        known_value(ticket, Fact.SDK_VERSION),
    )
    found = knowledge.suggestions(session, question)
    if not found:
        return applied
    act = Acting(session, SYSTEM_ACTOR, applied.inbound.at)
    slugs = " ".join(article.slug for article in found)
    event = record(act, ticket, EventKind.ARTICLES_SUGGESTED, applied.message, slugs)
    return replace(applied, suggested=tuple(found), events=(*applied.events, event))
