"""Which articles answer a question, how well, and why.

The database ranks the articles holding any of the question's tokens by BM25
(`storage.fulltext`). Misspelt words are first corrected to the nearest word the articles
use. Articles for another platform or SDK version are left out, as the intake read them
from the mail. An article's score, from 0 to 1, is the chance that it answers the question,
from how strongly and how widely it matches (`relevance`); `GATEWAY_KB_MIN_SCORE` is the
line below which nothing is suggested. Translations are one answer: the best of a stem
counts, shown in the asker's language where it exists and fits the asker too.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy.orm import Session

from gateway.intake.mentions import FRAMEWORKS, names_platform
from gateway.knowledge.articles import applies_to
from gateway.knowledge.relevance import (
    MAX_MATCHED,
    Evidence,
    best_score,
    score,
    share,
    strength,
)
from gateway.knowledge.snapshot import MAX_CORRECTIONS, IndexedArticle, Snapshot, snapshot
from gateway.knowledge.words import Synonyms, is_concept, query_terms
from storage.fulltext import Corpus, ranked
from storage.models import KbArticle

# What a question is read of: a report says what it is about at its start; a pasted log or
# a long thread further down would cost time and add nothing but noise.
QUESTION_CHARACTERS = 3000
# How many of BM25's best the scoring looks at.
CANDIDATES = 40
WEB = "Web"
# At most this many of a question's unknown words are corrected, the first: a question's
# own words come first, and a pasted log's hundreds of names would each cost a look
# through the whole vocabulary.
MAX_CORRECTED = 12
# A question is searched by its rarest words, at most this many, leaving out those a fifth
# of the articles hold: they barely move BM25, yet make the database score nearly every
# article. In a small knowledge base no word held by this few articles is common (a
# translated pair alone makes two).
SALIENT_TERMS = 32
COMMON_SHARE = 0.2
MIN_COMMON = 5


@dataclass(frozen=True, slots=True)
class Question:
    """What is asked, and what the mail says of the asker's platform and SDK version."""

    text: str
    lang: str | None = None
    platform: str | None = None
    sdk_version: str | None = None
    # Platforms an article may be for instead (`widened`).
    also_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Found:
    """One article that may answer a question, or that an engineer sends (score 1)."""

    slug: str
    stem: str
    title: str
    summary: str
    lang: str
    score: float = 1.0
    bm25: float = 0.0
    # The article's title and tag tokens the question names (concepts by their label).
    shared: tuple[str, ...] = ()
    outdated: bool = False
    # Where it is read (`KnowledgeBase.link`), and whether that is the web service's own
    # page, which takes the reader's status token; "" until it goes in a mail.
    url: str = ""
    own_page: bool = False

    @classmethod
    def of(cls, row: KbArticle | IndexedArticle) -> Found:
        return cls(
            row.slug, row.stem, row.title, row.summary, row.lang, outdated=bool(row.outdated)
        )


def search(
    session: Session, question: Question, synonyms: Synonyms, limit: int = 10, floor: float = 0.0
) -> list[Found]:
    """The published articles for the question, best first, one per stem; with a `floor`,
    only those that score at least that."""
    question, index = widened(question), snapshot(session)
    weighed = candidates(session, index, question, synonyms, floor)
    found = [w.found(synonyms) for w in weighed[:limit]]
    return in_language(index, found, question)


@dataclass(frozen=True, slots=True)
class Weighed:
    """An article found for a question, with what its score was made of."""

    article: IndexedArticle
    score: float
    bm25: float
    evidence: Evidence
    # The question's tokens, to tell which of the article's key terms it names.
    asked: frozenset[str]

    def found(self, synonyms: Synonyms) -> Found:
        named = (synonyms.label_of.get(t, t) for t in self.article.key_terms if t in self.asked)
        return replace(
            Found.of(self.article), score=self.score, bm25=self.bm25, shared=tuple(named)
        )


def candidates(
    session: Session, index: Snapshot, question: Question, synonyms: Synonyms, floor: float = 0.0
) -> list[Weighed]:
    """The published articles fitting the asker that share words with the question, each
    scored (`relevance`), best first, the best of each stem, none under `floor`; those
    that could not reach it from their BM25 are left out unmeasured."""
    asked = query_terms(question.text[:QUESTION_CHARACTERS], synonyms)
    terms = corrected(index, asked, synonyms)
    held = {term: index.holding[term] for term in terms if term in index.holding}
    corpus = index.corpus
    searched = salient(held, corpus)
    # Best first: the first that fits is the strongest, and what comes after one that
    # could not reach the floor is neither looked at nor measured.
    fitting = (
        (row, bm25)
        for article_id, bm25 in ranked(session, searched, corpus, CANDIDATES)
        if (row := index.articles.get(article_id)) is not None and fits(row, question)
    )
    strongest = next(fitting, None)
    if strongest is None:
        return []
    measure = Measure(
        question,
        frozenset(terms),
        {t: corpus.idf(held[t]) for t in held if is_concept(t)},
        sum(corpus.idf(n) for n in searched.values()) or 1.0,
        strongest_bm25=strongest[1],
    )
    best: dict[str, Weighed] = {}
    for row, bm25 in itertools.chain([strongest], fitting):
        if not measure.could_reach(bm25, floor):
            break  # Nor could any after it, of lower BM25.
        evidence = measure.evidence(row, bm25, index)
        scored_at = score(evidence)
        if scored_at >= floor and (row.stem not in best or scored_at > best[row.stem].score):
            best[row.stem] = Weighed(row, scored_at, bm25, evidence, measure.terms)
    return sorted(best.values(), key=lambda w: (-w.score, -round(w.bm25, 9), w.article.slug))


def fits(row: IndexedArticle, question: Question) -> bool:
    """An article (the snapshot holds published ones only) for the asker's platform and
    SDK version."""
    return any(
        applies_to(row.platforms, row.sdk_versions, platform, question.sdk_version)
        for platform in (question.platform, *question.also_on)
    )


def widened(question: Question) -> Question:
    """The question with the Web platform too, when the intake read an operating system
    but the mail names a browser or the Web SDK: the Web SDK runs in a browser on every
    system, so a Mac or Windows user in Chrome is on the Web platform as articles mean it.
    A framework (Electron, Flutter...) is no browser, whatever else the mail names."""
    if (
        question.platform in (None, WEB)
        or question.platform in FRAMEWORKS
        or not names_platform(question.text[:QUESTION_CHARACTERS], WEB)
    ):
        return question
    return replace(question, also_on=(WEB,))


def salient(present: dict[str, int], corpus: Corpus) -> dict[str, int]:
    """Of the question's words the articles hold (`present`, with how many hold each), the
    rarest, without the commonest (unless that leaves none)."""
    common = max(MIN_COMMON, int(corpus.articles * COMMON_SHARE))
    rare = [term for term in present if present[term] <= common] or list(present)
    chosen = set(sorted(rare, key=lambda term: (present[term], term))[:SALIENT_TERMS])
    return {term: count for term, count in present.items() if term in chosen}


@dataclass(frozen=True, slots=True)
class Measure:
    """What every article of one search is measured against."""

    question: Question
    terms: frozenset[str]
    # The question's concepts the index holds, each with its rarity (FTS5's idf).
    concepts: dict[str, float]
    # The rarity of all the words searched, together.
    searched_rarity: float
    strongest_bm25: float

    def evidence(self, row: IndexedArticle, bm25: float, index: Snapshot) -> Evidence:
        key_concepts = index.key_concept_rarity[row.id]
        return Evidence(
            **self.rising(bm25),
            other_language=float(self.question.lang is not None and row.lang != self.question.lang),
            concepts_held=share(self.concepts, row.concepts),
            key_concepts_named=share(key_concepts, self.terms),
        )

    def could_reach(self, bm25: float, floor: float) -> bool:
        """Whether an article of this BM25 may score `floor`, as its other measures are."""
        return floor <= 0.0 or best_score(self.rising(bm25)) >= floor

    def rising(self, bm25: float) -> dict[str, float]:
        """The measures that grow with the article's BM25 (`RISING_WITH_BM25`)."""
        return {
            "strength": strength(bm25),
            "relative": bm25 / self.strongest_bm25 if self.strongest_bm25 else 0.0,
            "strongest": 1.0 if bm25 >= self.strongest_bm25 else 0.0,
            "matched": min(MAX_MATCHED, bm25 / self.searched_rarity),
        }


def in_language(index: Snapshot, found: list[Found], question: Question) -> list[Found]:
    """Each found article in its translation in the asker's language, where one is
    published and fits the asker's platform and version too."""
    lang = question.lang
    if lang is None:
        return found
    shown = []
    for f in found:
        other = index.translations.get((f.stem, lang)) if f.lang != lang else None
        if other is not None and fits(other, question):
            f = replace(Found.of(other), score=f.score, bm25=f.bm25, shared=f.shared)
        shown.append(f)
    return shown


# -- misspellings --------------------------------------------------------------------------


def corrected(index: Snapshot, terms: Sequence[str], synonyms: Synonyms) -> list[str]:
    """The question's tokens, each Latin word no article uses replaced by the nearest one
    that some article does (one edit away, two for long words; of equally near ones, the
    commonest), with the concepts the replacement names."""
    unknown = [
        t for t in terms if t not in index.holding and t.isalpha() and t.isascii() and len(t) >= 4
    ][:MAX_CORRECTED]
    fixed = list(terms)
    for term in unknown:
        if (word := nearest_word(index, term)) is not None:
            fixed[fixed.index(term)] = word
            fixed += synonyms.concepts(word)
    return list(dict.fromkeys(fixed))


def nearest_word(index: Snapshot, term: str) -> str | None:
    """The index's word nearest `term`: one edit away, two for long words; of equally near
    ones the commonest, then the first by spelling."""
    if term in index.corrections:
        return index.corrections[term]
    limit = 2 if len(term) >= 8 else 1
    best: tuple[int, tuple[int, str]] | None = None
    for length in range(len(term) - limit, len(term) + limit + 1):
        words = index.latin_words.get(length, ())
        match = process.extractOne(term, words, scorer=Levenshtein.distance, score_cutoff=limit)
        if match is not None:
            ranked_match = (int(match[1]), index.commonness(match[0]))
            best = ranked_match if best is None or ranked_match < best else best
    nearest = best[1][1] if best is not None else None
    if len(index.corrections) < MAX_CORRECTIONS:
        index.corrections[term] = nearest
    return nearest
