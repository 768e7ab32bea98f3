"""Suggest: the knowledge base's articles that may answer a new ticket.

They are found after the ticket is opened (so the intake's reading of the platform and SDK
version is known) and before the acknowledgement is written, which carries them; the
`articles_suggested` event keeps them on the ticket, for a later "that solved it" and for
the figures.

A served worker's parser process searches ahead (`SuggestingAhead`), from each mail of a
batch and its reading as a first mail, so the search's CPU is not spent in the one worker
that files; `suggest` takes that answer when it was asked the very question the new ticket
asks, of the index as it is, and searches in the filing transaction otherwise (a follow-up,
a parser that could not search, an index changed since).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from gateway.database import reading
from gateway.intake import Fact, Findings
from gateway.knowledge import QUESTION_CHARACTERS, Found, KnowledgeBase, Question
from gateway.knowledge.snapshot import index_version
from gateway.loops import automatic_reason
from gateway.parsing import ParsedMail
from gateway.trail import Acting, record
from gateway.workflow import Applied, Author
from gateway.workflow.customers import ticket_subject
from gateway.workflow.intake import known, known_value
from storage.models import SYSTEM_ACTOR, EventKind
from storage.session import make_engine, make_session_factory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Suggested:
    """The suggestions found ahead, the question they answer and the version of the index
    they were found in."""

    question: Question
    version: str | None
    found: tuple[Found, ...]


def asked(
    subject: str, text: str, language: str, platform: str | None, sdk: str | None
) -> Question:
    """What a new ticket asks the knowledge base: its subject and first message, in its
    language, on the platform and SDK version known; as far as a search reads it, which
    keeps what the parser process sends back small."""
    return Question(f"{subject}\n{text}"[:QUESTION_CHARACTERS], language, platform, sdk)


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
    question = asked(
        ticket.subject,
        applied.message.text,
        ticket.language,
        known_value(ticket, Fact.PLATFORM),
        known_value(ticket, Fact.SDK_VERSION),
    )
    found = (
        list(ahead.found)
        if isinstance(ahead, Suggested)
        and ahead.question == question
        and ahead.version == index_version(session)
        else knowledge.suggestions(session, question)
    )
    if not found:
        return applied
    act = Acting(session, SYSTEM_ACTOR, applied.inbound.at)
    slugs = " ".join(article.slug for article in found)
    event = record(act, ticket, EventKind.ARTICLES_SUGGESTED, applied.message, slugs)
    return replace(applied, suggested=tuple(found), events=(*applied.events, event))


class SuggestingAhead:
    """The suggestions for each mail of a batch as the new ticket it would open asks them,
    found in the parser process over a reading connection of its own, in one transaction
    for the batch. It travels to that process as the database's URL and the settings; the
    engine is made there, when first used. A failure is the parser's to log: the worker
    then searches for itself."""

    def __init__(self, url: str, knowledge: KnowledgeBase, reads_facts: bool) -> None:
        self.url = url
        self.knowledge = knowledge
        # Whether the intake keeps a new ticket's facts (else it has none to filter by).
        self.reads_facts = reads_facts
        self._sessions: sessionmaker[Session] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "knowledge": self.knowledge, "reads_facts": self.reads_facts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url, self.knowledge = state["url"], state["knowledge"]
        self.reads_facts, self._sessions = state["reads_facts"], None

    def __call__(self, readings: Sequence[tuple[ParsedMail, Findings]]) -> list[Suggested | None]:
        questions = [self.question(mail, first_mail) for mail, first_mail in readings]
        if not any(questions):
            return [None] * len(questions)
        if self._sessions is None:
            self._sessions = make_session_factory(make_engine(self.url, reads_only=True))
        with reading(self._sessions) as session:
            version = index_version(session)
            return [self.answer(session, version, question) for question in questions]

    def answer(
        self, session: Session, version: str | None, question: Question | None
    ) -> Suggested | None:
        """The suggestions for one question; None, logged, when its search fails: the
        worker then searches for that mail alone, the rest of the batch keeps its answers."""
        if question is None:
            return None
        try:
            found = self.knowledge.suggestions(session, question)
        except Exception as exc:
            log.warning(
                "searching ahead failed (%s: %s); the worker searches", type(exc).__name__, exc
            )
            # A failed statement leaves a PostgreSQL transaction unusable: the next
            # question reads in a new one.
            session.rollback()
            return None
        return Suggested(question, version, tuple(found))

    def question(self, mail: ParsedMail, first_mail: Findings) -> Question | None:
        """What the new ticket the mail would open asks; None for a mail that most likely
        replies to a ticket, or that a machine wrote: nothing is suggested to those."""
        if mail.in_reply_to or mail.references or automatic_reason(mail):
            return None

        def fact(name: Fact) -> str | None:
            return known(first_mail.value(name)) if self.reads_facts else None

        return asked(
            ticket_subject(mail.subject),
            mail.text,
            mail.language,
            fact(Fact.PLATFORM),
            fact(Fact.SDK_VERSION),
        )
