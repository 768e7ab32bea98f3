"""What searching needs of the index besides the full text itself, kept in memory until the
index changes.

A search needs every question word's document frequency, the corpus's size, the matching
articles' front matter and their translations. Asked of the database, that is five or six
queries a search, most of a new ticket's search time. The index changes only when it is
written (`gateway kb index`, `serve` on a change) or an article is flagged (`#kb
outdated`), and each of those writes a new version token (`changed`); a search reads the
token, one row, and uses the process's snapshot of that version, reading a new one when it
differs. The token is random, not a counter, so a change rolled back can never leave a
snapshot under a version another change reuses.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.knowledge.words import is_concept
from storage.fulltext import Corpus
from storage.models import KbArticle, KbIndexVersion, KbTerm
from storage.session import driver_rows


@dataclass(frozen=True, slots=True)
class IndexedArticle:
    """A published article's front matter and what its score reads, as last indexed."""

    id: int
    slug: str
    stem: str
    title: str
    summary: str
    lang: str
    # The intake's platform names; none: every platform.
    platforms: tuple[str, ...]
    sdk_versions: str
    key_terms: tuple[str, ...]
    concepts: frozenset[str]
    outdated: str


@dataclass(frozen=True)
class Snapshot:
    """One version of the index."""

    # How many published articles hold each token.
    holding: dict[str, int]
    corpus: Corpus
    articles: dict[int, IndexedArticle]
    # Each (stem, language)'s article.
    translations: dict[tuple[str, str], IndexedArticle]
    # The words already corrected in this version, each to its nearest or None (mail
    # repeats its misspellings and the words no article uses; each costs a look through
    # the vocabulary), at most `MAX_CORRECTIONS`.
    corrections: dict[str, str | None] = field(default_factory=dict)

    @functools.cached_property
    def latin_words(self) -> dict[int, tuple[str, ...]]:
        """The Latin words misspellings are corrected to, by length (a word is as many
        edits from one of another length as their lengths differ, at least): each length's
        commonest first, then by spelling, so of equally near words the first is taken."""
        by_length: dict[int, list[str]] = {}
        for word in self.holding:
            if word.isascii() and word.isalpha() and len(word) >= 3:
                by_length.setdefault(len(word), []).append(word)
        order = self.commonness
        return {n: tuple(sorted(words, key=order)) for n, words in by_length.items()}

    @functools.cached_property
    def key_concept_rarity(self) -> dict[int, dict[str, float]]:
        """Each article's title and tag concepts, each with its rarity (FTS5's idf; a
        concept no published article holds is as rare as can be)."""
        idf, holding = self.corpus.idf, self.holding
        return {
            article.id: {t: idf(holding.get(t, 0)) for t in article.key_terms if is_concept(t)}
            for article in self.articles.values()
        }

    def commonness(self, word: str) -> tuple[int, str]:
        """How a word sorts among the corrections: commonest first, then by spelling."""
        return -self.holding[word], word


def changed(session: Session) -> None:
    """Mark the index changed, in the writer's transaction."""
    session.execute(update(KbIndexVersion).values(version=secrets.token_hex(16)))


def snapshot(session: Session) -> Snapshot:
    """The index as this transaction sees it, read again only when its version changed."""
    version = index_version(session)
    place = str(session.get_bind().engine.url)
    cached = SNAPSHOTS.get(place)
    if version is not None and cached is not None and cached[0] == version:
        return cached[1]
    taken = read_snapshot(session)
    if version is not None:
        SNAPSHOTS[place] = (version, taken)
    return taken


def index_version(session: Session) -> str | None:
    """The index's version as this transaction sees it (None before any migration made
    one); asked as written, to the driver: it is asked before every search."""
    rows = driver_rows(session, VERSION_QUERY)
    return str(rows[0][0]) if rows else None


def read_snapshot(session: Session) -> Snapshot:
    """The index as the database holds it now."""
    holding = {term: count for term, count in session.execute(select(KbTerm.term, KbTerm.articles))}
    rows = session.scalars(select(KbArticle).where(KbArticle.status == "published")).all()
    articles = {
        row.id: IndexedArticle(
            row.id,
            row.slug,
            row.stem,
            row.title,
            row.summary,
            row.lang,
            tuple(row.platforms.split(",")) if row.platforms else (),
            row.sdk_versions,
            tuple(row.key_terms.split()),
            frozenset(row.concepts.split()),
            row.outdated,
        )
        for row in rows
    }
    total = sum(row.length for row in rows)
    return Snapshot(
        holding,
        Corpus(len(rows), total / len(rows) if rows else 0.0),
        articles,
        {(a.stem, a.lang): a for a in articles.values()},
    )


# The corrections a snapshot keeps: the first words met, none forgotten (a pasted log's
# names could otherwise fill memory until the index changes).
MAX_CORRECTIONS = 20000
VERSION_QUERY = f"SELECT version FROM {KbIndexVersion.__tablename__}"
# Database URL → (version, snapshot): one snapshot a database, the last read.
SNAPSHOTS: dict[str, tuple[str, Snapshot]] = {}
