"""Which articles answer a question, how well, and why.

The database ranks the articles holding any of the question's tokens by BM25 (`index`).
Misspelt words are first corrected to the nearest word the articles use. Articles for
another platform or SDK version are left out, as the intake read them from the mail. An
article's score, from 0 to 1, is mostly how strongly it matches (its BM25, scaled to
approach 1), partly how much of what the article is about (its title's and tags' tokens,
weighted by their rarity) the question names. `GATEWAY_KB_MIN_SCORE` is the line below
which nothing is suggested.
Translations are one answer: the best of a stem counts, shown in the asker's language
where it exists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.knowledge.articles import applies_to
from gateway.knowledge.index import Corpus, corpus_of, document_frequencies, ranked
from gateway.knowledge.words import Synonyms, query_terms
from storage.models import KbArticle, KbTerm

# What a question is read of: a report says what it is about at its start; a pasted log or
# a long thread further down would cost time and add nothing but noise.
QUESTION_CHARACTERS = 3000
# How many of BM25's best the scoring looks at.
CANDIDATES = 40
# A question is searched by its rarest words, at most this many, leaving out those most
# articles hold: they barely move BM25, yet make the database score nearly every article.
SALIENT_TERMS = 32
COMMON_SHARE = 0.2
# A score is this much the share of the article's key words the question names...
COVERAGE_WEIGHT = 0.2
# ...and the rest its BM25's strength, which is one half at this BM25.
HALF_STRENGTH_BM25 = 20.0


@dataclass(frozen=True, slots=True)
class Question:
    """What is asked, and what the mail says of the asker's platform and SDK version."""

    text: str
    lang: str | None = None
    platform: str | None = None
    sdk_version: str | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """One article that may answer a question."""

    slug: str
    stem: str
    title: str
    summary: str
    lang: str
    score: float
    bm25: float
    # The article's title and tag tokens the question names (concepts by their label).
    shared: tuple[str, ...]
    outdated: bool
    # Where it is read (`KnowledgeBase.link`); "" until a suggestion is made of it.
    url: str = ""

    def linked(self, url: str) -> Found:
        return replace(self, url=url)


def search(
    session: Session, question: Question, synonyms: Synonyms, limit: int = 10
) -> list[Found]:
    """The published articles for the question, best first, one per stem."""
    terms = corrected(session, query_terms(question.text[:QUESTION_CHARACTERS], synonyms))
    corpus = corpus_of(session)
    held = document_frequencies(session, terms)
    scored = ranked(session, salient(terms, held, corpus), CANDIDATES)
    if not scored:
        return []
    rows = session.scalars(select(KbArticle).where(KbArticle.id.in_([i for i, _ in scored])))
    fitting = {row.id: row for row in rows if fits(row, question)}
    key = sorted({t for row in fitting.values() for t in row.key_terms.split()})
    frequencies = document_frequencies(session, key)
    best: dict[str, Found] = {}
    for article_id, bm25 in scored:
        if (row := fitting.get(article_id)) is not None:
            found = scored_article(row, bm25, set(terms), corpus, frequencies, synonyms)
            if found.stem not in best or found.score > best[found.stem].score:
                best[found.stem] = found
    chosen = sorted(best.values(), key=lambda f: (-round(f.score, 9), -round(f.bm25, 9), f.slug))
    return in_language(session, chosen[:limit], question.lang)


def fits(row: KbArticle, question: Question) -> bool:
    """A published article for the asker's platform and SDK version."""
    platforms = tuple(row.platforms.split(",")) if row.platforms else ()
    return row.status == "published" and applies_to(
        platforms, row.sdk_versions, question.platform, question.sdk_version
    )


def salient(terms: Sequence[str], held: dict[str, int], corpus: Corpus) -> list[str]:
    """The words the articles hold, rarest first, without the commonest; as they came."""
    common = max(1, int(corpus.articles * COMMON_SHARE))
    rare = sorted((held[t], t) for t in held if held[t] <= common) or sorted(
        (n, t) for t, n in held.items()
    )
    chosen = {term for _, term in rare[:SALIENT_TERMS]}
    return [term for term in terms if term in chosen]


def scored_article(
    row: KbArticle,
    bm25: float,
    asked: set[str],
    corpus: Corpus,
    frequencies: dict[str, int],
    synonyms: Synonyms,
) -> Found:
    key = row.key_terms.split()
    weight = {term: corpus.idf(frequencies.get(term, 0)) for term in key}
    named = [term for term in key if term in asked]
    coverage = sum(weight[t] for t in named) / sum(weight.values()) if key else 0.0
    strength = bm25 / (bm25 + HALF_STRENGTH_BM25)
    return Found(
        row.slug,
        row.stem,
        row.title,
        row.summary,
        row.lang,
        round(coverage * COVERAGE_WEIGHT + strength * (1 - COVERAGE_WEIGHT), 4),
        bm25,
        tuple(synonyms.label_of.get(t, t) for t in named),
        bool(row.outdated),
    )


def in_language(session: Session, found: list[Found], lang: str | None) -> list[Found]:
    """Each found article in its translation in `lang`, where one is published."""
    stems = [f.stem for f in found if lang is not None and f.lang != lang]
    if not stems:
        return found
    translated = {
        row.stem: row
        for row in session.scalars(
            select(KbArticle).where(
                KbArticle.stem.in_(stems), KbArticle.lang == lang, KbArticle.status == "published"
            )
        )
    }
    return [
        replace(
            f,
            slug=other.slug,
            title=other.title,
            summary=other.summary,
            lang=other.lang,
            outdated=bool(other.outdated),
        )
        if (other := translated.get(f.stem)) is not None and f.lang != lang
        else f
        for f in found
    ]


# -- misspellings --------------------------------------------------------------------------


def corrected(session: Session, terms: Sequence[str]) -> list[str]:
    """The question's tokens, each Latin word no article uses replaced by the nearest one
    that some article does (one edit away, two for long words; of equally near ones, the
    commonest)."""
    unknown = [t for t in terms if t.isalpha() and t.isascii() and len(t) >= 4]
    if not unknown:
        return list(terms)
    known = document_frequencies(session, unknown)
    vocabulary = latin_vocabulary(session)
    fixed = []
    for term in terms:
        if term in unknown and term not in known:
            limit = 2 if len(term) >= 8 else 1
            match = process.extractOne(
                term, vocabulary, scorer=Levenshtein.distance, score_cutoff=limit
            )
            fixed.append(match[0] if match else term)
        else:
            fixed.append(term)
    return list(dict.fromkeys(fixed))


def latin_vocabulary(session: Session) -> tuple[str, ...]:
    """The Latin words of the index, cached until the index changes (looked at once every
    few seconds: a word learned a little late costs nothing but a correction)."""
    place = str(session.get_bind().engine.url)
    looked = LOOKED_AT.get(place)
    if looked is not None and time.monotonic() - looked[0] < VOCABULARY_CHECK_SECONDS:
        return vocabulary_at(session, looked[1])
    state = session.execute(select(func.count(), func.max(KbArticle.indexed_at))).one()
    key = (place, state[0], str(state[1]))
    LOOKED_AT[place] = (time.monotonic(), key)
    return vocabulary_at(session, key)


def vocabulary_at(session: Session, state: tuple[str, int, str]) -> tuple[str, ...]:
    cached = VOCABULARY.get(state)
    if cached is None:
        # The commonest first, then by spelling: of equally near words, the first is taken.
        rows = session.execute(select(KbTerm.term, KbTerm.articles)).all()
        words = sorted(rows, key=lambda row: (-row[1], row[0]))
        cached = tuple(w for w, _ in words if w.isascii() and w.isalpha() and len(w) >= 3)
        VOCABULARY.clear()
        VOCABULARY[state] = cached
    return cached


VOCABULARY: dict[tuple[str, int, str], tuple[str, ...]] = {}
VOCABULARY_CHECK_SECONDS = 5.0
LOOKED_AT: dict[str, tuple[float, tuple[str, int, str]]] = {}
