"""Suggest: the knowledge base's articles that may answer a new ticket.

They are found after the ticket is opened (so the intake's reading of the platform and SDK
version is known) and before the acknowledgement is written, which carries them; the
`articles_suggested` event keeps them on the ticket, for a later "that solved it" and for
the figures.

A served worker's parser process searches ahead (`SuggestingAhead`), from the mail and its
reading as a first mail, so the search's CPU is not spent in the one worker that files;
`suggest` takes that answer when it was asked the very question the new ticket asks, and
searches in the filing transaction otherwise (a follow-up, a parser that could not search).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.intake import Fact, Findings
from gateway.knowledge import Found, KnowledgeBase, Question
from gateway.parsing import ParsedMail
from gateway.trail import Acting, record
from gateway.workflow import Applied, Author
from gateway.workflow.intake import known_value
from storage.models import SYSTEM_ACTOR, EventKind
from storage.session import make_engine, make_session_factory

log = logging.getLogger(__name__)

# A ticket's subject when its first mail has none, and how much of one is kept
# (`gateway.workflow.customers.new_ticket`).
NO_SUBJECT = "(no subject)"
SUBJECT_CHARACTERS = 998


@dataclass(frozen=True, slots=True)
class Suggested:
    """The suggestions found ahead, and the question they answer."""

    question: Question
    found: tuple[Found, ...]


def suggest(
    session: Session, applied: Applied, knowledge: KnowledgeBase, ahead: object = None
) -> Applied:
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
    if isinstance(ahead, Suggested) and ahead.question == question:
        found = list(ahead.found)
    else:
        found = knowledge.suggestions(session, question)
    if not found:
        return applied
    act = Acting(session, SYSTEM_ACTOR, applied.inbound.at)
    slugs = " ".join(article.slug for article in found)
    event = record(act, ticket, EventKind.ARTICLES_SUGGESTED, applied.message, slugs)
    return replace(applied, suggested=tuple(found), events=(*applied.events, event))


class SuggestingAhead:
    """The suggestions for a mail as the new ticket it would open asks them, found in the
    parser process over a reading connection of its own. It travels to that process as
    the database's URL and the settings; the engine is made there, when first used."""

    def __init__(self, url: str, knowledge: KnowledgeBase) -> None:
        self.url = url
        self.knowledge = knowledge
        self._sessions: sessionmaker[Session] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "knowledge": self.knowledge}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url, self.knowledge, self._sessions = state["url"], state["knowledge"], None

    def __call__(self, mail: ParsedMail, first_mail: Findings) -> Suggested | None:
        subject = (mail.subject or NO_SUBJECT)[:SUBJECT_CHARACTERS]
        question = Question(
            f"{subject}\n{mail.text}",
            mail.language,
            first_mail.value(Fact.PLATFORM),
            first_mail.value(Fact.SDK_VERSION),
        )
        if self._sessions is None:
            self._sessions = make_session_factory(make_engine(self.url, reads_only=True))
        try:
            with self._sessions() as session:
                return Suggested(question, tuple(self.knowledge.suggestions(session, question)))
        except SQLAlchemyError as exc:  # The worker searches for itself.
            log.warning("searching the knowledge base ahead failed: %s", exc)
            return None
