"""Indexing the article folder into the database, and the full text search over it.

Each published article's tokens are handed to the database's own full text engine: FTS5 on
SQLite, a `tsvector` with a GIN index on PostgreSQL. Both rank by the same BM25 (FTS5's
`bm25()`; the same formula in SQL on PostgreSQL, which has none), so a question finds the
same articles in the same order on either database. Document frequencies come from the
engines too (`fts5vocab`, `ts_stat`) and are kept in `kb_terms`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from gateway.errors import ConfigError
from gateway.knowledge.articles import Article, article_files, read_article
from gateway.knowledge.words import Synonyms, tokens
from storage.models import KbArticle, KbTerm

# Title and tags weigh as if written this many times.
TITLE_WEIGHT = 3
TAG_WEIGHT = 2
# An article's tokens beyond this are not indexed: PostgreSQL keeps positions up to 16383
# and 256 of one token, and both databases must see the same document.
MAX_TOKENS = 4000
MAX_REPEATS = 255
# BM25's constants, FTS5's own.
K1 = 1.2
B = 0.75


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


def document_tokens(article: Article, synonyms: Synonyms) -> list[str]:
    """The tokens indexed for an article, title and tags weighted, within the bounds both
    databases keep alike."""
    weighted = [article.title] * TITLE_WEIGHT + [" ".join(article.tags)] * TAG_WEIGHT
    stream = tokens("\n".join((*weighted, article.summary, article.body)), synonyms)
    seen: Counter[str] = Counter()
    kept = []
    for token in stream:
        seen[token] += 1
        if seen[token] <= MAX_REPEATS:
            kept.append(token)
        if len(kept) == MAX_TOKENS:
            break
    return kept


def indexed_digest(article: Article, synonyms: Synonyms) -> str:
    """The file's digest and the synonym table's, halves of each: a changed table
    indexes every article again, and an edited file shows in the first half."""
    return article.digest[:32] + synonyms.digest[:32]


def key_terms(article: Article, synonyms: Synonyms) -> str:
    return " ".join(dict.fromkeys(tokens(" ".join((article.title, *article.tags)), synonyms)))


def index_folder(session: Session, folder: Path, synonyms: Synonyms, now: datetime) -> IndexRun:
    """Bring the index in line with the folder: new and changed files indexed, removed
    ones dropped, bad ones named (and their last good version kept)."""
    run = IndexRun()
    rows = {row.slug: row for row in session.scalars(select(KbArticle))}
    on_disk: set[str] = set()
    for path in article_files(folder):
        slug = path.name.removesuffix(".md")
        on_disk.add(slug)
        try:
            article = read_article(path)
        except (ConfigError, OSError) as exc:
            run.errors[path.name] = getattr(exc, "reason", None) or str(exc)
            continue
        row = rows.get(slug)
        if row is not None and row.digest == indexed_digest(article, synonyms):
            run.unchanged += 1
            continue
        keep_article(session, row, article, synonyms, now)
        (run.changed if row else run.added).append(slug)
    for slug in sorted(set(rows) - on_disk):
        drop_article(session, rows[slug])
        run.removed.append(slug)
    if run.touched:
        session.flush()
        count_terms(session)
    return run


def keep_article(
    session: Session, row: KbArticle | None, article: Article, synonyms: Synonyms, now: datetime
) -> None:
    stream = document_tokens(article, synonyms)
    if row is None:
        row = KbArticle(slug=article.slug, outdated="")
        session.add(row)
    elif not row.digest.startswith(article.digest[:32]):
        row.outdated, row.outdated_at = "", None  # Edited: reviewed.
    row.stem, row.lang, row.status = article.stem, article.lang, article.status
    row.title, row.summary = article.title, article.summary
    row.platforms, row.sdk_versions = ",".join(article.platforms), article.sdk_versions
    row.tags, row.indexed_at = ",".join(article.tags), now
    row.digest = indexed_digest(article, synonyms)
    row.length = len(stream) if article.published else 0
    row.key_terms = key_terms(article, synonyms)
    session.flush()
    write_terms(session, row.id, stream if article.published else None)


def drop_article(session: Session, row: KbArticle) -> None:
    write_terms(session, row.id, None)
    session.delete(row)


def write_terms(session: Session, article_id: int, stream: Sequence[str] | None) -> None:
    """The article's tokens in the full text index; None takes it out."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("UPDATE kb_articles SET terms = CAST(:terms AS tsvector) WHERE id = :id"),
            {"id": article_id, "terms": None if stream is None else tsvector_text(stream)},
        )
        return
    session.execute(text("DELETE FROM kb_fts WHERE rowid = :id"), {"id": article_id})
    if stream is not None:
        session.execute(
            text("INSERT INTO kb_fts (rowid, terms) VALUES (:id, :terms)"),
            {"id": article_id, "terms": " ".join(stream)},
        )


def tsvector_text(stream: Sequence[str]) -> str:
    """A tsvector's text form with each token's positions, taken as written (no parser):
    tokens hold only letters, digits, '.', '_' and '-'."""
    positions: dict[str, list[str]] = {}
    for number, token in enumerate(stream, 1):
        positions.setdefault(token, []).append(str(number))
    return " ".join(f"'{token}':{','.join(where)}" for token, where in positions.items())


def count_terms(session: Session) -> None:
    """`kb_terms` from the engine's own vocabulary: how many articles hold each token."""
    if session.get_bind().dialect.name == "postgresql":
        counted = text(
            "SELECT word, ndoc FROM ts_stat('SELECT terms FROM kb_articles "
            "WHERE terms IS NOT NULL')"
        )
    else:
        session.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.kb_vocab "
                "USING fts5vocab(main, kb_fts, row)"
            )
        )
        counted = text("SELECT term, doc FROM temp.kb_vocab")
    rows = [{"term": term, "articles": n} for term, n in session.execute(counted)]
    session.execute(delete(KbTerm))
    if rows:
        session.execute(insert(KbTerm), rows)


# -- searching -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    """What BM25 needs of the whole index."""

    articles: int
    average_length: float

    def idf(self, holding: int) -> float:
        """FTS5's inverse document frequency, floored as it floors it."""
        value = math.log((self.articles - holding + 0.5) / (holding + 0.5))
        return value if value > 0 else 1e-6


def corpus_of(session: Session) -> Corpus:
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(KbArticle.length), 0)).where(
            KbArticle.status == "published"
        )
    ).one()
    return Corpus(count, total / count if count else 0.0)


def document_frequencies(session: Session, terms: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(terms), 500):
        chunk = list(terms[start : start + 500])
        query = select(KbTerm.term, KbTerm.articles).where(KbTerm.term.in_(chunk))
        found.update((term, count) for term, count in session.execute(query))
    return found


def ranked(session: Session, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
    """The published articles holding any of `terms`, best first by BM25: (id, score)."""
    if not terms:
        return []
    if session.get_bind().dialect.name == "postgresql":
        found = ranked_in_postgres(session, terms, limit)
    else:
        query = " OR ".join(f'"{term}"' for term in terms)
        rows = session.execute(
            text(
                "SELECT rowid, -bm25(kb_fts) FROM kb_fts WHERE kb_fts MATCH :query "
                "ORDER BY rank LIMIT :limit"
            ),
            {"query": query, "limit": limit},
        )
        found = [(int(article), float(score)) for article, score in rows]
    return sorted(found, key=lambda pair: (-round(pair[1], 9), pair[0]))


def ranked_in_postgres(
    session: Session, terms: Sequence[str], limit: int
) -> list[tuple[int, float]]:
    corpus = corpus_of(session)
    held = document_frequencies(session, terms)
    present = [term for term in terms if term in held]
    if not present or not corpus.articles:
        return []
    rows = session.execute(
        text(
            "WITH q AS (SELECT * FROM unnest(CAST(:terms AS text[]), "
            "CAST(:idfs AS float8[])) AS q(term, idf)) "
            "SELECT a.id, SUM(q.idf * (cardinality(l.positions) * (:k1 + 1)) / "
            "(cardinality(l.positions) + :k1 * (1 - :b + :b * a.length / :average))) "
            "AS score FROM kb_articles a CROSS JOIN LATERAL unnest(a.terms) AS l "
            "JOIN q ON q.term = l.lexeme WHERE a.terms @@ CAST(:query AS tsquery) "
            "GROUP BY a.id ORDER BY score DESC, a.id LIMIT :limit"
        ),
        {
            "terms": present,
            "idfs": [corpus.idf(held[term]) for term in present],
            "k1": K1,
            "b": B,
            "average": corpus.average_length,
            "query": " | ".join(f"'{term}'" for term in present),
            "limit": limit,
        },
    )
    return [(int(article), float(score)) for article, score in rows]
