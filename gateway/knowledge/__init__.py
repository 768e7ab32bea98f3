"""The knowledge base: articles that already answer a question reach the customer first.

Operators keep articles as Markdown files in a folder (`articles`). `index` brings the
folder into the database's full text index, with the tokens `words` reads (Latin words,
Chinese character pairs, synonyms across the two languages); `search` ranks and scores the
articles for a question. `replies` reads "that solved it" in a customer's reply, and
`drafts` turns a solved ticket into a draft article with the customer's details taken out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.knowledge.articles import Article, read_article
from gateway.knowledge.drafts import Draft, redacted, write_draft
from gateway.knowledge.index import IndexRun, index_folder
from gateway.knowledge.replies import article_named, points_at_an_article
from gateway.knowledge.search import Found, Question, search
from gateway.knowledge.words import Synonyms, synonyms_for
from gateway.settings import Knowledge
from storage.models import KbArticle

__all__ = [
    "Article",
    "Draft",
    "Found",
    "IndexRun",
    "KnowledgeBase",
    "Question",
    "Synonyms",
    "article_named",
    "points_at_an_article",
    "published_article",
    "index_folder",
    "read_article",
    "redacted",
    "search",
    "synonyms_for",
    "write_draft",
]


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """The knowledge base as the settings make it, and the web service's base URL."""

    settings: Knowledge
    public_url: str = ""

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def folder(self) -> Path:
        assert self.settings.directory is not None
        return self.settings.directory

    @property
    def synonyms(self) -> Synonyms:
        return synonyms_for(self.settings.directory)

    def suggestions(self, session: Session, question: Question) -> list[Found]:
        """What to suggest: the best published articles over the threshold, none of them
        flagged as outdated."""
        if not self.enabled:
            return []
        # The index is not what the filing transaction changes: no flush of its rows first.
        with session.no_autoflush:
            found = search(session, question, self.synonyms, self.settings.max_suggestions + 2)
        good = [f for f in found if f.score >= self.settings.min_score and not f.outdated]
        return [f.linked(self.link(f.slug)) for f in good[: self.settings.max_suggestions]]

    def link(self, slug: str) -> str:
        """Where a customer reads an article: `GATEWAY_KB_URL` + slug, else its page on the
        web service; "" with neither."""
        if self.settings.url:
            return f"{self.settings.url}/{slug}"
        return f"{self.public_url}/kb/{slug}" if self.public_url else ""

    def index(self, session: Session, now: datetime) -> IndexRun:
        return index_folder(session, self.folder, self.synonyms, now)


def published_article(session: Session, slug: str) -> KbArticle | None:
    """The published article of that slug, or of that stem (either language)."""
    row = session.scalars(select(KbArticle).where(KbArticle.slug == slug)).first()
    if row is None:
        row = session.scalars(
            select(KbArticle).where(KbArticle.stem == slug).order_by(KbArticle.slug)
        ).first()
    return row if row is not None and row.status == "published" else None
