"""The knowledge base's full text index, in each database's own engine: FTS5 on SQLite; on
PostgreSQL each article's `tsvector` (migration 0013) and, made from them, each token's
postings (0015).

Tokens arrive made (`gateway.knowledge.words`) and are stored as given, with no parser
of the engine's own. Both rank by the same BM25: FTS5's `bm25()`, and on PostgreSQL, which
has none, the same formula in SQL over the postings of the question's tokens, with FTS5's
constants and its inverse document frequency (`Corpus.idf`). Document frequencies come from
the engines too (`fts5vocab`, the postings) and are kept in `kb_terms`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, text
from sqlalchemy.orm import Session

from storage.models import KbTerm
from storage.session import driver_rows

# FTS5's BM25 constants.
K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class Corpus:
    """What BM25 needs of the whole index: how many articles, how long on average."""

    articles: int
    average_length: float

    def idf(self, holding: int) -> float:
        """FTS5's inverse document frequency, floored as it floors it."""
        value = math.log((self.articles - holding + 0.5) / (holding + 0.5))
        return value if value > 0 else 1e-6


def on_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def write_terms(session: Session, article_id: int, stream: Sequence[str] | None) -> None:
    """The article's tokens in the full text index; None takes it out. PostgreSQL searches
    them once `count_terms` has made the postings again."""
    if on_postgres(session):
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
    """A tsvector's text form with each token's positions, taken as written: tokens hold
    only letters, digits, '.', '_' and '-'."""
    positions: dict[str, list[str]] = {}
    for number, token in enumerate(stream, 1):
        positions.setdefault(token, []).append(str(number))
    return " ".join(f"'{token}':{','.join(where)}" for token, where in positions.items())


def count_terms(session: Session) -> None:
    """`kb_terms` from the engine's own vocabulary: how many articles hold each token. On
    PostgreSQL the postings are made again first, and counted."""
    if on_postgres(session):
        write_postings(session)
        counted = text("SELECT term, cardinality(articles) FROM kb_postings")
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


def write_postings(session: Session) -> None:
    """`kb_postings` again from every published article's tsvector: for each token, the
    articles holding it, how often each does, and their lengths.

    One row a token lets a search read only its own tokens' rows. Rows of a token and an
    article could be kept article by article, but they lie in the order the articles were
    written, and BM25 over 10,000 articles then read a page for nearly every posting (17-20
    ms for BM25 alone, against 5). So they are made whole after each change, as `kb_terms`
    is: about 2 s for 10,000 articles."""
    session.execute(text("DELETE FROM kb_postings"))
    session.execute(
        text(
            "INSERT INTO kb_postings (term, articles, frequencies, lengths) "
            "SELECT l.lexeme, array_agg(a.id), array_agg(cardinality(l.positions)), "
            "array_agg(a.length) FROM kb_articles a CROSS JOIN LATERAL unnest(a.terms) AS l "
            "WHERE a.terms IS NOT NULL GROUP BY l.lexeme"
        )
    )


def ranked(
    session: Session, held: dict[str, int], corpus: Corpus, limit: int
) -> list[tuple[int, float]]:
    """The published articles holding any of the tokens (`held`: each with how many
    articles hold it), best first by BM25: (id, score); ties by id."""
    if not held or not corpus.articles:
        return []
    if on_postgres(session):
        found = ranked_in_postgres(session, held, corpus, limit)
    else:
        rows = driver_rows(
            session,
            "SELECT rowid, -bm25(kb_fts) FROM kb_fts WHERE kb_fts MATCH ? "
            "ORDER BY rank, rowid LIMIT ?",
            (" OR ".join(f'"{term}"' for term in held), limit),
        )
        found = [(int(article), float(score)) for article, score in rows]
    return sorted(found, key=lambda pair: (-round(pair[1], 9), pair[0]))


def ranked_in_postgres(
    session: Session, held: dict[str, int], corpus: Corpus, limit: int
) -> list[tuple[int, float]]:
    terms = list(held)
    rows = session.execute(
        text(
            "SELECT p.article, SUM(q.idf * (p.frequency * (:k1 + 1)) / "
            "(p.frequency + :k1 * (1 - :b + :b * p.length / :average))) AS score "
            "FROM unnest(CAST(:terms AS text[]), CAST(:idfs AS float8[])) AS q(term, idf) "
            "JOIN kb_postings t ON t.term = q.term CROSS JOIN LATERAL "
            "unnest(t.articles, t.frequencies, t.lengths) AS p(article, frequency, length) "
            "GROUP BY p.article ORDER BY score DESC, p.article LIMIT :limit"
        ),
        {
            "terms": terms,
            "idfs": [corpus.idf(held[term]) for term in terms],
            "k1": K1,
            "b": B,
            "average": corpus.average_length,
            "limit": limit,
        },
    )
    return [(int(article), float(score)) for article, score in rows]
