"""A mail's words as the intake's readers see them, and the choice between things named twice.

A `Page` is the subject and the text cut to `MAX_TEXT_CHARS`, NFKC-folded (full-width
colons, digits and letters become ASCII), one line a row, with quote markers, links,
addresses and "Sent from my iPhone" lines taken out: those name the sender's phone, not
the customer's device. A label alone on its line takes the next line as its value, as
HTML tables render ("SDK version" / "4.0.6"). Readers match on `joined`, the rows joined by
line breaks, with patterns that never cross one.

When a mail names several platforms, systems or devices, `choose` takes the one whose
clause tells of the problem ("works on iOS but fails on Android": Android), else the
strongest, else the first.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gateway.intake import patterns
from gateway.intake.facts import Source

FLAGS = re.IGNORECASE | re.ASCII
# A first mail's text is read up to here; facts are at the top, and a pasted log below
# them must not cost more than this.
MAX_TEXT_CHARS = 96 * 1024
MAX_EXCERPT = 160

QUOTE_MARKERS = re.compile(r"^(?:[ \t]*>)+[ \t]?")
LINKS = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"]{1,500}|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"
)
SENT_FROM = re.compile(patterns.SENT_FROM, FLAGS)
FIELD_LABEL = re.compile(patterns.FIELD_LABEL, FLAGS)
SUBJECT_PREFIX = re.compile(patterns.SUBJECT_PREFIX, FLAGS)
CLAUSE_BREAK = re.compile(patterns.CLAUSE_BREAK, FLAGS)
BROKEN = re.compile(
    r"\b(?:not|never|n't)\s(?:\w+\s)?work|\breproduc\w*|不行|不正常|无法正常|不能正常|复现",
    FLAGS,
)
WORKS = re.compile(patterns.WORKS.pattern(), FLAGS)
FAILS = re.compile(patterns.FAILS.pattern(), FLAGS)
# Circled numbers start steps in Chinese mail; NFKC would fold them to bare digits.
PLACEHOLDER = re.compile(patterns.PLACEHOLDER, FLAGS)
CIRCLED = str.maketrans({chr(0x2460 + n): f"{n + 1}. " for n in range(20)})


def compiled(*alternatives: str) -> re.Pattern[str]:
    """The alternatives as one pattern, read the intake's way (case-blind, ASCII words)."""
    return re.compile("|".join(f"(?:{a})" for a in alternatives if a), FLAGS)


def is_placeholder(value: str) -> bool:
    """Whether `value` is an unfilled field of a form ("x.x.x", "___", "待补充")."""
    return PLACEHOLDER.fullmatch(value.strip()) is not None


@dataclass(frozen=True, slots=True)
class Page:
    """The lines a reader reads; the first is the subject when `has_subject`."""

    lines: tuple[str, ...]
    has_subject: bool
    joined: str
    starts: tuple[int, ...]

    def line_at(self, offset: int) -> int:
        """The index of the line holding `offset` of `joined`."""
        return bisect.bisect_right(self.starts, offset) - 1

    def source(self, line: int) -> Source:
        return Source.SUBJECT if self.has_subject and line == 0 else Source.BODY

    def excerpt(self, line: int, start: int = 0, end: int = 0) -> str:
        """The words around `start`..`end` of a line, at most `MAX_EXCERPT` characters."""
        return excerpt_of(self.lines[line], start, end)

    def matches(self, pattern: re.Pattern[str]) -> Iterator[tuple[int, re.Match[str]]]:
        """Each match with its line's index."""
        for found in pattern.finditer(self.joined):
            yield self.line_at(found.start()), found


def excerpt_of(line: str, start: int = 0, end: int = 0) -> str:
    """`line` cut to `MAX_EXCERPT` characters around `start`..`end`, on one line."""
    text = " ".join(line.split())
    if len(line) <= MAX_EXCERPT:
        return text
    middle = (start + end) // 2
    left = max(0, min(middle - MAX_EXCERPT // 2, len(line) - MAX_EXCERPT))
    return " ".join(line[left : left + MAX_EXCERPT].split())


def page_of(subject: str, text: str) -> Page:
    """The page of a mail: its subject (when it has one) above its text."""
    body = [clean_line(line) for line in fold(text[:MAX_TEXT_CHARS]).splitlines()]
    heading = SUBJECT_PREFIX.sub("", fold(subject)).strip()
    lines = ([heading] if heading else []) + join_fields(body)
    return page_from(lines, has_subject=bool(heading))


def page_from(lines: list[str], *, has_subject: bool = False) -> Page:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    return Page(tuple(lines), has_subject, "\n".join(lines), tuple(starts))


def fold(text: str) -> str:
    """NFKC with circled numbers kept as step numbers: "①" is "1. ", not "1"."""
    return unicodedata.normalize("NFKC", text.translate(CIRCLED))


def clean_line(line: str) -> str:
    line = LINKS.sub(" ", QUOTE_MARKERS.sub("", line)).rstrip()
    return "" if SENT_FROM.match(line) else line


def join_fields(lines: list[str]) -> list[str]:
    """A label alone on its line followed by a short value line becomes "label: value"."""
    joined: list[str] = []
    index = 0
    while index < len(lines):
        line, following = lines[index], lines[index + 1] if index + 1 < len(lines) else ""
        if FIELD_LABEL.match(line) and is_field_value(following):
            joined += [f"{line.rstrip(' :')}: {following.strip()}", ""]
            index += 2
        else:
            joined.append(line)
            index += 1
    return joined


def is_field_value(line: str) -> bool:
    return 0 < len(line.strip()) <= 60 and not FIELD_LABEL.match(line)


# -- which of several ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mention:
    """A thing named in a line: its value, where, and how plainly it was named."""

    value: str
    line: int
    start: int
    end: int
    strength: int = 1


def choose(page: Page, mentions: Iterable[Mention]) -> Mention | None:
    """The mention with the problem; else the strongest; else the first."""
    ranked = [(problem_of(page.lines[m.line], m.start, m.end), m) for m in mentions]
    if not ranked:
        return None
    best = max(ranked, key=lambda pair: (pair[0], pair[1].strength, -pair[1].line, -pair[1].start))
    return best[1]


def problem_of(line: str, start: int, end: int) -> int:
    """1 when the clause around `start`..`end` tells of the problem, -1 when it says all is
    well there, 0 when it says neither."""
    clause = clause_of(line, start, end)
    if BROKEN.search(clause):
        return 1
    if WORKS.search(clause):
        return -1
    return 1 if FAILS.search(clause) else 0


def clause_of(line: str, start: int, end: int) -> str:
    left, right = 0, len(line)
    for found in CLAUSE_BREAK.finditer(line):
        if found.end() <= start:
            left = found.end()
        elif found.start() >= end:
            right = found.start()
            break
    return line[left:start] + " " + line[end:right]
