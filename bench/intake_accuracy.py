"""Precision and recall of the intake on the labelled first mails of `tests/data/intake/`,
per fact and language, and how often it tells the kind of report right.

    .venv/bin/python bench/intake_accuracy.py [--misses] [--kinds]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.intake_labels import LANGUAGES, cases, measure, read_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every wrong or missed value")
    parser.add_argument("--kinds", action="store_true", help="list every wrong kind of report")
    args = parser.parse_args()
    for language in LANGUAGES:
        scores, kinds = measure(language)
        total = len(cases(language))
        right = kinds["right"]
        print(f"\n{language}: {total} mails, kind right in {right} ({right / total:.2f})")
        if args.kinds:
            print_wrong_kinds(language)
        print(f"  {'fact':<12} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4}")
        for fact, score in scores.items():
            print(
                f"  {fact.value:<12} {score.precision:>9.2f} {score.recall:>7.2f} "
                f"{score.true_positive:>4} {score.false_positive:>4} {score.false_negative:>4}"
            )
            if args.misses:
                for miss in score.misses:
                    print(f"      {miss}")


def print_wrong_kinds(language: str) -> None:
    """Each mail whose kind is read wrong: found, labelled, and the words it was read from."""
    for case in cases(language):
        findings, _ = read_case(case)
        if findings.kind.value != case.kind:
            excerpt = findings.kind_excerpt.replace("\n", " ")[:90]
            print(
                f"    {case.file}: found {findings.kind.value}, labelled {case.kind}  «{excerpt}»"
            )


if __name__ == "__main__":
    main()
