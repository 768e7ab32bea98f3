"""Indexing the article folder into the database's full text index (`storage.fulltext`).

Indexing is planned from the files first (read, checked, tokenised) and then written in
one short transaction, so the database's write lock is not held while files are read. A
file is indexed again when its bytes or the synonym table changed; a bad file is named and
keeps its last good version; a removed file leaves the index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import ConfigError
from gateway.knowledge.articles import Article, article_files, read_article
from gateway.knowledge.snapshot import changed
from gateway.knowledge.words import Synonyms, is_concept, plain_tokens, tokens
from storage.fulltext import count_terms, write_terms
from storage.models import KbArticle

# Title and tags weigh as if written this many times.
TITLE_WEIGHT = 3
TAG_WEIGHT = 2
# An article's text beyond this is not read, and its tokens beyond this not indexed:
# PostgreSQL keeps positions up to 16383 and 256 of one token, and both databases must
# see the same document. The concepts it names are kept within the bound first.
MAX_CHARACTERS = 40_000
MAX_TOKENS = 4000
MAX_CONCEPTS = MAX_TOKENS // 4
MAX_REPEATS = 255


@dataclass(slots=True)
class IndexRun:
    """What one indexing of the folder did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    # File name → why it was not indexed; a file that became bad keeps its last good index.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An article read and tokenised, ready to be written."""

    article: Article
    # Its tokens in the full text index; none for a draft.
    stream: tuple[str, ...]
    key_terms: str
    # The synonym table's concepts it names, each once.
    concepts: str


@dataclass(slots=True)
class IndexPlan:
    """What the folder holds that the index does not."""

    synonyms: str
    prepared: list[Prepared] = field(default_factory=list)
    # Every slug with a file, good or bad: the others leave the index.
    on_disk: set[str] = field(default_factory=set)
    unchanged: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def index_folder(session: Session, folder: Path, synonyms: Synonyms, now: datetime) -> IndexRun:
    """Bring the index in line with the folder, in `session`'s transaction."""
    plan = plan_index(folder, synonyms, indexed_versions(session))
    return apply_plan(session, plan, now)


def indexed_versions(session: Session) -> dict[str, tuple[str, str]]:
    """Each indexed slug's file digest and synonym table digest."""
    query = select(KbArticle.slug, KbArticle.digest, KbArticle.synonyms)
    return {slug: (digest, table) for slug, digest, table in session.execute(query)}


def plan_index(folder: Path, synonyms: Synonyms, indexed: dict[str, tuple[str, str]]) -> IndexPlan:
    """The files to index, read and tokenised, with nothing written yet."""
    plan = IndexPlan(synonyms.digest)
    for path in article_files(folder):
        plan.on_disk.add(path.name.removesuffix(".md"))
        try:
            article = read_article(path)
        except (ConfigError, OSError) as exc:
            plan.errors[path.name] = getattr(exc, "reason", None) or str(exc)
            continue
        if indexed.get(article.slug) == (article.digest, synonyms.digest):
            plan.unchanged += 1
        else:
            plan.prepared.append(prepared(article, synonyms))
    return plan


def prepared(article: Article, synonyms: Synonyms) -> Prepared:
    stream = document_tokens(article, synonyms) if article.published else ()
    key = " ".join(dict.fromkeys(tokens(" ".join((article.title, *article.tags)), synonyms)))
    concepts = " ".join(dict.fromkeys(token for token in stream if is_concept(token)))
    return Prepared(article, tuple(stream), key, concepts)


def document_tokens(article: Article, synonyms: Synonyms) -> list[str]:
    """The tokens indexed for an article: title and tags weighted, the concepts it names
    kept, within the bounds both databases keep alike."""
    weighted = [article.title] * TITLE_WEIGHT + [" ".join(article.tags)] * TAG_WEIGHT
    lowered = "\n".join((*weighted, article.summary, article.body))[:MAX_CHARACTERS].lower()
    concepts = list(synonyms.concepts(lowered))[:MAX_CONCEPTS]
    plain = plain_tokens(lowered)[: MAX_TOKENS - len(concepts)]
    seen: Counter[str] = Counter()
    kept = []
    for token in plain + concepts:
        seen[token] += 1
        if seen[token] <= MAX_REPEATS:
            kept.append(token)
    return kept


def apply_plan(session: Session, plan: IndexPlan, now: datetime) -> IndexRun:
    """Write what `plan_index` prepared; count the terms again when anything changed."""
    run = IndexRun(unchanged=plan.unchanged, errors=plan.errors)
    rows = {row.slug: row for row in session.scalars(select(KbArticle))}
    for ready in plan.prepared:
        row = rows.get(ready.article.slug)
        keep_article(session, row, ready, plan.synonyms, now)
        (run.changed if row else run.added).append(ready.article.slug)
    for slug in sorted(set(rows) - plan.on_disk):
        write_terms(session, rows[slug].id, None)
        session.delete(rows[slug])
        run.removed.append(slug)
    if run.touched:
        session.flush()
        count_terms(session)
        changed(session)
    return run


def keep_article(
    session: Session, row: KbArticle | None, ready: Prepared, synonyms: str, now: datetime
) -> None:
    article = ready.article
    if row is None:
        row = KbArticle(slug=article.slug, outdated="")
        session.add(row)
    elif row.digest != article.digest:
        row.outdated, row.outdated_at = "", None  # Edited: reviewed.
    row.stem, row.lang, row.status = article.stem, article.lang, article.status
    row.title, row.summary = article.title, article.summary
    row.platforms, row.sdk_versions = ",".join(article.platforms), article.sdk_versions
    row.tags, row.indexed_at = ",".join(article.tags), now
    row.digest, row.synonyms = article.digest, synonyms
    row.length, row.key_terms = len(ready.stream), ready.key_terms
    row.concepts = ready.concepts
    session.flush()
    write_terms(session, row.id, ready.stream if article.published else None)
