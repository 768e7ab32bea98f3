"""A reply to our ask: the lines of the fill-in block the customer answered.

The ask ends with one line per missing fact, `LABELS[fact].en + ": ____"` in English mail
and `LABELS[fact].zh + "：____"` in Chinese mail. Customers type the value after the label,
often in the quoted part ("> SDK version: 4.0.7"), with any colon (":", "：", "-", "="), in
either language, or with the fact's own name ("sdk_version: 4.0.7"). Every line of the whole
text is read, the reply's own lines first, quote markers stripped; a line whose value is
blank or underscores is unanswered. The first answer to a fact wins. A line of the quoted
part answers only a fact we asked for: any other is the customer's first mail quoted back
(our acknowledgement quotes it), which would undo what the reply's own lines correct.

Values are normalised as in a first mail ("v4.0.7" → "4.0.7", "安卓14" → "Android 14",
"flutter" → "Flutter", "昨晚八点半" resolved against the mail's Date); one that cannot be
read so gives nothing. "unknown", "don't know", "n/a", "不知道", "无" answer with `UNKNOWN`.
Steps may follow their label as a list on the lines below it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime

from gateway.intake import patterns
from gateway.intake.facts import LABELS, UNKNOWN, Fact, Finding, Source
from gateway.intake.identifiers import value_in
from gateway.intake.mentions import device_in, read_platform, system_in
from gateway.intake.occurrence import occurrence_in
from gateway.intake.page import FLAGS, excerpt_of, fold, lower, page_from
from gateway.intake.steps import ITEM
from gateway.intake.versions import version_in

QUOTE_MARKERS = re.compile(r"^(?:[ \t]*>)+[ \t]?")
# "not sure", "不知道" — alone or before a comma: "not sure, the latest".
UNKNOWN_ANSWER = re.compile(rf"(?:{patterns.UNKNOWN_ANSWER})(?:[\s.!。~]*|\s*[,，;；].*)", FLAGS)
# The blank of the fill-in block, or what the customer left of it: "4.0.7____".
BLANKS = re.compile(r"_{2,}")
# The block is near the top of the quoted history; a thread below it is not read further.
MAX_ANSWER_CHARS = 128 * 1024
BARE_NUMBER = re.compile(r"\d{1,2}(?:\.\d{1,2}){0,2}")


def label_pattern(label: str) -> str:
    """A label as customers retype it: spaces optional, a bracketed part optional."""
    base, _, bracket = lower(fold(label)).partition("(")
    words = r"\s?".join(re.escape(word) for word in base.split())
    return words + (rf"(?:\s?\({re.escape(bracket)})?" if bracket else "")


def fact_labels(fact: Fact) -> str:
    labels = {LABELS[fact].en, LABELS[fact].zh, fact.value, fact.value.replace("_", " ")}
    return "|".join(label_pattern(label) for label in sorted(labels, key=len, reverse=True))


ANSWER = re.compile(
    r"^\s*(?:[-*•]\s)?(?:"
    + "|".join(f"(?P<{fact.name}>{fact_labels(fact)})" for fact in Fact)
    + r")\s?[:=\-]\s?(?P<value>.*)$",
    FLAGS,
)


def read_answers(
    text: str, reply_text: str, sent_at: datetime | None, asked: frozenset[Fact]
) -> tuple[Finding, ...]:
    """The facts the customer filled in: in the reply's own lines, then, for the facts we
    asked for, in the whole text."""
    found: dict[Fact, Finding] = {}
    read_lines(reply_text, sent_at, frozenset(Fact), found)
    read_lines(text, sent_at, asked, found)
    return tuple(found.values())


def read_lines(
    text: str, sent_at: datetime | None, facts: frozenset[Fact], found: dict[Fact, Finding]
) -> None:
    """The answers to `facts` in `text`, added to `found` unless it has them."""
    lines = [QUOTE_MARKERS.sub("", line) for line in fold(text[:MAX_ANSWER_CHARS]).splitlines()]
    for index, line in enumerate(lines):
        answer = ANSWER.match(lower(line))
        if answer is None or labelled_fact(answer) in found or labelled_fact(answer) not in facts:
            continue
        fact, raw = labelled_fact(answer), line[answer.start("value") :]
        value = answered_value(fact, raw, lines[index + 1 :], sent_at, found)
        if value is not None:
            found[fact] = Finding(fact, value, Source.ANSWER, excerpt_of(line))


def labelled_fact(answer: re.Match[str]) -> Fact:
    return next(fact for fact in Fact if answer.group(fact.name))


def answered_value(
    fact: Fact, raw: str, below: list[str], sent_at: datetime | None, found: dict[Fact, Finding]
) -> str | None:
    """The normalised value of one answer, `UNKNOWN`, or None when it says nothing."""
    value = BLANKS.sub(" ", raw).strip(" _")
    if fact is Fact.REPRO_STEPS and not value:
        value = "\n".join(steps_below(below))
    if not value:
        return None
    if UNKNOWN_ANSWER.fullmatch(lower(value)):
        return UNKNOWN
    if fact is Fact.OS_VERSION:
        return system_answer(value, found.get(Fact.PLATFORM))
    if fact is Fact.OCCURRED_AT:
        return occurrence_in(value, sent_at)
    return NORMALISERS[fact](value)


def steps_below(lines: list[str]) -> Iterator[str]:
    for line in lines:
        if not ITEM.pattern.match(lower(line)):
            return
        yield line.strip()


def system_answer(value: str, platform: Finding | None) -> str | None:
    """ "安卓14" → "Android 14"; a bare "14" with the platform answered too."""
    system = system_in(value)
    if system is None and platform is not None and BARE_NUMBER.fullmatch(value):
        return system_in(f"{platform.value} {value}")
    return system


def platform_answer(value: str) -> str | None:
    outright, implied = read_platform(page_from([value]))
    chosen = outright or implied
    return chosen.value if chosen else None


NORMALISERS: dict[Fact, Callable[[str], str | None]] = {
    Fact.SDK_VERSION: version_in,
    Fact.PLATFORM: platform_answer,
    Fact.DEVICE: device_in,
    Fact.APP_ID: value_in,
    Fact.CHANNEL: value_in,
    Fact.UID: value_in,
    Fact.REPRO_STEPS: lambda value: value[:2000],
    Fact.LOGS: lambda value: None,
}
