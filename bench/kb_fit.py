"""Fit the knowledge base's relevance score (`gateway.knowledge.relevance`) to the labelled
questions, and show how well it does on questions it was not fitted to.

The labelled set (`tests/kb_set`) is indexed into a fresh SQLite database and every
question is searched as a new ticket would be. The three articles of each question with
the strongest BM25 (an order no fitted score chose) give one example each: its `Evidence`,
and whether it is the question's answer. A logistic regression (Newton's method,
L2-penalised, on standardised features) is fitted to them.

Ten-fold cross-validation, by question, prints for a range of thresholds the share of
answered questions whose answer is suggested and the share of the others given no
suggestion, per language, each question's articles (all it found) scored by a model fitted
without it. Last it fits
all the questions and prints the weights to put in `relevance.py`.

    .venv/bin/python bench/kb_fit.py
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from gateway.knowledge import synonyms_for  # noqa: E402
from gateway.knowledge.ranking import candidates, widened  # noqa: E402
from gateway.knowledge.relevance import FEATURES, logistic  # noqa: E402
from gateway.knowledge.snapshot import snapshot  # noqa: E402
from tests.test_knowledge_search import KB_SET, as_question, indexed  # noqa: E402

# Examples a question gives: its articles of the strongest BM25.
EXAMPLES = 3
PENALTY = 0.01
FOLDS = 10
THRESHOLDS = [round(0.20 + 0.02 * step, 2) for step in range(26)]


@dataclass(frozen=True, slots=True)
class Asked:
    """One labelled question and the articles its search found."""

    lang: str
    expect: str | None
    # (stem, feature vector) of each article found, the strongest BM25 first.
    found: tuple[tuple[str, tuple[float, ...]], ...]


def searched(files: Sequence[Path]) -> list[Asked]:
    synonyms = synonyms_for(None)
    with tempfile.TemporaryDirectory() as folder, indexed(f"sqlite:///{folder}/kb.db") as session:
        return [
            Asked(
                entry["lang"],
                entry["expect"],
                tuple(
                    (w.article.stem, w.evidence.vector())
                    for w in sorted(
                        candidates(
                            session, snapshot(session), widened(as_question(entry)), synonyms
                        ),
                        key=lambda w: -w.bm25,
                    )
                ),
            )
            for path in files
            for entry in json.loads(path.read_text())
        ]


@dataclass(frozen=True, slots=True)
class Model:
    """Weights over raw features, the intercept last."""

    weights: tuple[float, ...]

    def chance(self, vector: Sequence[float]) -> float:
        return logistic(vector, self.weights[:-1], self.weights[-1])


def fit(questions: Sequence[Asked]) -> Model:
    rows = [
        (vector, float(stem == q.expect)) for q in questions for stem, vector in q.found[:EXAMPLES]
    ]
    width = len(FEATURES)
    mean = [sum(v[i] for v, _ in rows) / len(rows) for i in range(width)]
    spread = [
        max(1e-9, math.sqrt(sum((v[i] - mean[i]) ** 2 for v, _ in rows) / len(rows)))
        for i in range(width)
    ]
    scaled = [([(v[i] - mean[i]) / spread[i] for i in range(width)] + [1.0], y) for v, y in rows]
    beta = [0.0] * (width + 1)
    for _ in range(25):
        gradient = [0.0] * (width + 1)
        hessian = [[0.0] * (width + 1) for _ in range(width + 1)]
        for x, y in scaled:
            p = 1.0 / (1.0 + math.exp(-sum(b * xi for b, xi in zip(beta, x, strict=True))))
            for i in range(width + 1):
                gradient[i] += (p - y) * x[i] / len(scaled)
                for j in range(width + 1):
                    hessian[i][j] += p * (1 - p) * x[i] * x[j] / len(scaled)
        for i in range(width):  # The intercept is not penalised.
            gradient[i] += PENALTY * beta[i]
            hessian[i][i] += PENALTY
        beta = [b - s for b, s in zip(beta, solve(hessian, gradient), strict=True)]
    weights = [beta[i] / spread[i] for i in range(width)]
    intercept = beta[width] - sum(beta[i] * mean[i] / spread[i] for i in range(width))
    return Model((*weights, intercept))


def solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """x with matrix · x = vector (Gaussian elimination with partial pivoting)."""
    size = len(vector)
    rows = [row[:] + [value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    answer = [0.0] * size
    for r in reversed(range(size)):
        rest = sum(rows[r][c] * answer[c] for c in range(r + 1, size))
        answer[r] = (rows[r][size] - rest) / rows[r][r]
    return answer


def figures(
    questions: Sequence[Asked], chances: Sequence[Sequence[float]], threshold: float
) -> dict[str, float]:
    """Per language: the share of answered questions whose answer is among the (at most
    three) suggestions, and of the others given none."""
    tally: dict[str, list[bool]] = {}
    for question, chance in zip(questions, chances, strict=True):
        ordered = sorted(zip(chance, question.found, strict=True), key=lambda pair: -pair[0])
        suggested = [stem for p, (stem, _) in ordered if p >= threshold][:3]
        kind = "answered" if question.expect else "no answer"
        right = question.expect in suggested if question.expect else not suggested
        tally.setdefault(f"{question.lang} {kind}", []).append(right)
    return {key: sum(hits) / len(hits) for key, hits in sorted(tally.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="how the folds are drawn")
    args = parser.parse_args()
    files = [KB_SET / "questions.json"]
    questions = searched(files)
    order = list(range(len(questions)))
    random.Random(args.seed).shuffle(order)
    chances: list[list[float]] = [[] for _ in questions]
    for fold in range(FOLDS):
        left_out = set(order[fold::FOLDS])
        model = fit([q for i, q in enumerate(questions) if i not in left_out])
        for i in left_out:
            chances[i] = [model.chance(vector) for _, vector in questions[i].found]
    print(f"{len(questions)} questions, {FOLDS}-fold cross-validation; each threshold:")
    for threshold in THRESHOLDS:
        shares = figures(questions, chances, threshold)
        print(f"  {threshold:.2f}  " + "  ".join(f"{k} {v:4.0%}" for k, v in shares.items()))
    model = fit(questions)
    print("Fitted on all of them:")
    print(f"INTERCEPT = {model.weights[-1]:.4f}")
    print("WEIGHTS = {")
    for name, weight in zip(FEATURES, model.weights, strict=False):
        print(f'    "{name}": {weight:.4f},')
    print("}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
