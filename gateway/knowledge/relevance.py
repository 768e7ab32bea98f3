"""How likely an article is to answer a question: the score `GATEWAY_KB_MIN_SCORE` is
compared with.

BM25 alone cannot tell a near miss from an answer: a long mail on a neighbouring topic
matches as strongly as a short one on the article's own, and an article in the other
language than the question's matches only through the synonym table's concepts, so the
right answer across languages scores lower than a wrong one in the asker's. The score is
therefore a logistic model over what the search measured of each article (`Evidence`):
the chance, from 0 to 1, that it is the answer. Its weights were fitted on the labelled
questions of `tests/kb_set` by `bench/kb_fit.py`, which prints them, and its cross-validated
figures, again.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence, Set
from dataclasses import dataclass, fields

# BM25 at which an article's strength is one half.
HALF_STRENGTH_BM25 = 20.0
# A match this many times stronger than the question's words' rarity adds nothing more.
MAX_MATCHED = 3.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the search measured of one article for one question, each from 0 to 1 but
    `matched` (0 to 3)."""

    # Its BM25, scaled to approach 1.
    strength: float
    # Its BM25 against the best article's.
    relative: float
    # 1 for the article with the best BM25.
    strongest: float
    # 1 when it is written in another language than the question.
    other_language: float
    # The share of the question's concepts (by rarity) the article names too.
    concepts_held: float
    # The share of the concepts of its title and tags (by rarity) the question names.
    key_concepts_named: float
    # Its BM25 against the rarity of all the question's searched words (at most 3).
    matched: float

    def vector(self) -> tuple[float, ...]:
        """The measures in `FEATURES` order, as the weights are."""
        return (
            self.strength,
            self.relative,
            self.strongest,
            self.other_language,
            self.concepts_held,
            self.key_concepts_named,
            self.matched,
        )


FEATURES = tuple(field.name for field in fields(Evidence))

# Fitted by `bench/kb_fit.py` (logistic regression, L2 0.01, over the three articles of
# the strongest BM25 of each of the labelled set's questions).
INTERCEPT = -10.9195
WEIGHTS = {
    "strength": 6.4534,
    "relative": 2.3820,
    "strongest": 0.5643,
    "other_language": 3.0254,
    "concepts_held": 2.4008,
    "key_concepts_named": 1.9451,
    "matched": 2.2351,
}

COEFFICIENTS = tuple(WEIGHTS[name] for name in FEATURES)
# The measures that grow with an article's BM25, the others being the same. Their weights
# are positive (a test checks it), so the score does not fall as BM25 rises.
RISING_WITH_BM25 = ("strength", "relative", "strongest", "matched")
# The value of each measure (from 0 to 1) that raises the likelihood most.
BEST = {name: 1.0 if weight > 0 else 0.0 for name, weight in WEIGHTS.items()}


def likelihood(evidence: Evidence) -> float:
    """The chance, from 0 to 1, that the article answers the question."""
    return logistic(evidence.vector(), COEFFICIENTS, INTERCEPT)


def score(evidence: Evidence) -> float:
    """An article's score: its likelihood to four places, as shown and as compared with
    `GATEWAY_KB_MIN_SCORE`."""
    return round(likelihood(evidence), 4)


def best_score(rising: dict[str, float]) -> float:
    """The most `score` can be for an article of these measures that grow with BM25
    (`RISING_WITH_BM25`), its language and concept measures taken as they would raise it
    most. An article under a threshold at best need not be measured further, nor any of
    lower BM25."""
    measures = {name: rising[name] if name in RISING_WITH_BM25 else BEST[name] for name in FEATURES}
    return score(Evidence(**measures))


def logistic(vector: Sequence[float], coefficients: Sequence[float], intercept: float) -> float:
    """The logistic model's chance for `vector` (what `bench/kb_fit.py` fits, too)."""
    if len(vector) != len(coefficients):
        raise ValueError(f"{len(vector)} measures for {len(coefficients)} weights")
    logit = intercept + sum(map(operator.mul, coefficients, vector))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))


def strength(bm25: float) -> float:
    """BM25 scaled to approach 1: one half at `HALF_STRENGTH_BM25`."""
    return bm25 / (bm25 + HALF_STRENGTH_BM25)


def share(weights: dict[str, float], chosen: Set[str]) -> float:
    """The weight of `chosen` among `weights`' terms, from 0 to 1 (0 with no terms)."""
    total = sum(weights.values())
    return sum(w for term, w in weights.items() if term in chosen) / total if total else 0.0
