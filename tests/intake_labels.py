"""The labelled first mails of `tests/data/intake/` read by the intake, and scored: precision
and recall per fact and language, as `tests/test_intake_accuracy.py` checks them and
`bench/intake_accuracy.py` prints them.

A value found that differs from the label counts against both precision and recall; logs
count file by file; `repro_steps` counts as present or not; times count to the minute.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.intake import Fact, File, Findings, MailText, read_first_mail
from gateway.parsing import parse_message

DATA = Path(__file__).resolve().parent / "data" / "intake"
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class Case:
    language: str
    file: str
    style: str
    kind: str
    facts: dict[str, Any]


@dataclass
class Score:
    """Counts of one fact in one language."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_positive + self.false_negative
        return self.true_positive / labelled if labelled else 1.0


def cases(language: str) -> list[Case]:
    labels = json.loads((DATA / language / "labels.json").read_text("utf-8"))
    return [
        Case(language, item["file"], item["style"], item["kind"], item["facts"]) for item in labels
    ]


def read_case(case: Case) -> tuple[Findings, dict[str, str]]:
    """What the intake reads of the case's mail, and the file name of each SHA-256."""
    mail = parse_message((DATA / case.language / case.file).read_bytes())
    files = tuple(
        File(a.filename, a.content_type, a.data, hashlib.sha256(a.data).hexdigest())
        for a in mail.attachments
    )
    text = MailText(mail.subject, mail.text, "", files, mail.sent_at)
    return read_first_mail(text), {file.sha256: file.name for file in files}


def normal(fact: Fact, value: str) -> str:
    """A value as compared: case, spaces and a version's trailing `.0`s aside."""
    value = re.sub(r"[\s\-_]+", "", value.casefold())
    if fact is Fact.OS_VERSION:
        value = re.sub(r"(?:\.0)+$", "", value)
    return value


def same_time(found: str, label: str) -> bool:
    try:
        return datetime.fromisoformat(found) == datetime.fromisoformat(label)
    except ValueError:
        return False


def score_case(case: Case, scores: dict[Fact, Score], kinds: Counter[str]) -> None:
    findings, names = read_case(case)
    kinds["right" if findings.kind.value == case.kind else "wrong"] += 1
    for fact in Fact:
        label = case.facts[fact.value]
        found = findings.value(fact)
        score = scores[fact]
        if fact is Fact.LOGS:
            score_logs(case, score, set(label), {names[sha] for sha in (found or "").split()})
            continue
        if fact is Fact.REPRO_STEPS:
            label = "yes" if label else None
            found = "yes" if found else None
        score_value(case, fact, score, label, found)


def score_logs(case: Case, score: Score, labelled: set[str], found: set[str]) -> None:
    score.true_positive += len(labelled & found)
    score.false_positive += len(found - labelled)
    score.false_negative += len(labelled - found)
    if labelled != found:
        score.misses.append(f"{case.file}: found {sorted(found)}, labelled {sorted(labelled)}")


def score_value(case: Case, fact: Fact, score: Score, label: str | None, found: str | None) -> None:
    if found is None and label is None:
        return
    right = (
        found is not None
        and label is not None
        and (
            same_time(found, label)
            if fact is Fact.OCCURRED_AT
            else normal(fact, found) == normal(fact, label)
        )
    )
    if right:
        score.true_positive += 1
        return
    score.false_positive += found is not None
    score.false_negative += label is not None
    score.misses.append(f"{case.file}: found {found!r}, labelled {label!r}")


def measure(language: str) -> tuple[dict[Fact, Score], Counter[str]]:
    scores = {fact: Score() for fact in Fact}
    kinds: Counter[str] = Counter()
    for case in cases(language):
        score_case(case, scores, kinds)
    return scores, kinds
