"""The knowledge base: articles that already answer a question reach the customer first.

Operators keep articles as Markdown files in a folder (`articles`). `index` brings the
folder into the database's full text index (`storage.fulltext`), with the tokens `words`
reads (Latin words, Chinese character pairs, synonyms across the two languages); `ranking`
ranks the articles for a question and `relevance` scores them. `replies` reads which
suggested article a customer's reply names, `usage` how the articles were used, and
`drafts` turns a solved ticket into a draft article with the customer's details taken out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.knowledge.articles import Article, read_article
from gateway.knowledge.drafts import Draft, write_draft
from gateway.knowledge.index import IndexRun, apply_plan, index_folder, indexed_versions, plan_index
from gateway.knowledge.ranking import QUESTION_CHARACTERS, Found, Question, search
from gateway.knowledge.replies import article_named, points_at_an_article
from gateway.knowledge.words import Synonyms, synonyms_for
from gateway.settings import Knowledge
from storage.models import KbArticle

__all__ = [
    "QUESTION_CHARACTERS",
    "Article",
    "Draft",
    "Found",
    "IndexRun",
    "KnowledgeBase",
    "Question",
    "article_named",
    "points_at_an_article",
    "published_article",
    "article_by_slug",
    "apply_plan",
    "index_folder",
    "indexed_versions",
    "plan_index",
    "read_article",
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
        flagged as outdated, each with its link."""
        if not self.enabled:
            return []
        # The index is not what the filing transaction changes: no flush of its rows first.
        with session.no_autoflush:
            found = search(
                session,
                question,
                self.synonyms,
                self.settings.max_suggestions + 2,
                floor=self.settings.min_score,
            )
        good = [f for f in found if self.would_suggest(f)]
        return [self.linked(f) for f in good[: self.settings.max_suggestions]]

    def would_suggest(self, found: Found) -> bool:
        """Whether the article is good enough to suggest, and not flagged outdated."""
        return found.score >= self.settings.min_score and not found.outdated

    def sendable(self, session: Session, slug: str, lang: str) -> Found | None:
        """The published article an engineer names (by slug or stem), in `lang` where it
        has that translation, with its link."""
        row = published_article(session, slug, lang)
        return self.linked(Found.of(row)) if row is not None else None

    def linked(self, found: Found) -> Found:
        """The article with where a customer reads it: `GATEWAY_KB_URL` + slug, else its
        page on the web service; no link with neither."""
        if self.settings.url:
            return replace(found, url=f"{self.settings.url}/{found.slug}")
        if not self.public_url:
            return found
        return replace(found, url=f"{self.public_url}/kb/{found.slug}", own_page=True)


def article_by_slug(session: Session, slug: str) -> KbArticle | None:
    """The indexed article of exactly that slug, draft or published."""
    return session.scalars(select(KbArticle).where(KbArticle.slug == slug)).first()


def published_article(session: Session, slug: str, lang: str | None = None) -> KbArticle | None:
    """The published article of that slug or stem: its translation in `lang` when there is
    one, else the one so named, else the first of the stem."""
    named = article_by_slug(session, slug)
    query = select(KbArticle).where(
        KbArticle.stem == (named.stem if named is not None else slug),
        KbArticle.status == "published",
    )
    rows = session.scalars(query.order_by(KbArticle.slug)).all()
    in_lang = [row for row in rows if row.lang == lang]
    same = [row for row in rows if row.slug == slug]
    chosen = in_lang or same or list(rows)
    return chosen[0] if chosen else None
