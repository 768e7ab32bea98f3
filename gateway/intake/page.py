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
from dataclasses import dataclass, field

from gateway.intake import patterns
from gateway.intake.facts import Source

# Patterns are written in lower case and matched against `Page.folded`; `^` and `$` are a
# line's ends, `\b` an ASCII word's.
FLAGS = re.ASCII | re.MULTILINE
# A first mail's text is read up to here; facts are at the top, and a pasted log below
# them must not cost more than this.
MAX_TEXT_CHARS = 96 * 1024
MAX_EXCERPT = 160
MAX_LABEL_CHARS = 40
MAX_MENTIONS = 12

QUOTE_MARKERS = re.compile(r"^(?:[ \t]*>)+[ \t]?", re.MULTILINE)
LINKS = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"]{1,500}|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}",
    re.IGNORECASE,
)
SENT_FROM = re.compile(patterns.SENT_FROM, FLAGS | re.IGNORECASE)
FIELD_LABEL = re.compile(patterns.FIELD_LABEL, FLAGS)
SUBJECT_PREFIX = re.compile(patterns.SUBJECT_PREFIX, FLAGS | re.IGNORECASE)
CLAUSE_BREAK = re.compile(patterns.CLAUSE_BREAK, FLAGS)
LIST_GAP = re.compile(patterns.LIST_GAP, FLAGS)
BROKEN = re.compile(patterns.BROKEN.pattern(), FLAGS)
WORKS = re.compile(patterns.WORKS.pattern(), FLAGS)
FAILS = re.compile(patterns.FAILS.pattern(), FLAGS)
PLACEHOLDER = re.compile(patterns.PLACEHOLDER, FLAGS)
# Circled numbers start steps in Chinese mail; NFKC would fold them to bare digits.
CIRCLED_NUMBER = re.compile("[\u2460-\u2473]")
CIRCLED = str.maketrans({chr(0x2460 + n): f"{n + 1}. " for n in range(20)})
LEADING_LITERAL = re.compile(r"[^()\[\]{}?*+.|\\^$]*")
GROUP_OPENING = re.compile(r"^\((?:\?:|\?P<\w+>)?")
ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})


def compiled(*alternatives: str) -> re.Pattern[str]:
    """The alternatives as one pattern, read the intake's way (lower case, ASCII words)."""
    return re.compile("|".join(f"(?:{a})" for a in alternatives if a), FLAGS)


def union(rows: Iterable[patterns.Words]) -> str:
    """Many `Words` as one pattern: the English words behind one word boundary (one
    boundary test for all is far cheaper than one for each), then the Chinese."""
    listed = list(rows)
    english = "|".join(row.en for row in listed if row.en)
    return patterns.Words(english, "|".join(row.zh for row in listed if row.zh)).pattern()


@dataclass(frozen=True, slots=True)
class Search:
    """A pattern a page is searched with, and the words every match of it starts with: a
    line holding none of them is not read (None: every line is)."""

    pattern: re.Pattern[str]
    words: tuple[str, ...] | None


def search(*alternatives: str, words: tuple[str, ...] | None = None) -> Search:
    """The alternatives as a `Search`, with the words they start with unless given."""
    pattern = compiled(*alternatives)
    return Search(pattern, words if words is not None else starting_words(pattern.pattern))


def starting_words(pattern: str) -> tuple[str, ...] | None:
    """The fixed words the top-level alternatives of `pattern` start with, looking through
    leading groups, word boundaries and look-arounds; None when one starts with none."""
    found: list[str] = []
    for alternative in top_level(pattern):
        words = alternative_words(alternative)
        if words is None:
            return None
        found += words
    return tuple(
        word for word in dict.fromkeys(found) if not any(o in word for o in found if o != word)
    )


def top_level(pattern: str) -> list[str]:
    """`pattern` split at the "|" that are in no group and no character class."""
    parts, start = [], 0
    for index, char, depth in structure(pattern):
        if char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
    return [*parts, pattern[start:]]


def structure(pattern: str) -> Iterator[tuple[int, str, int]]:
    """Each character of `pattern` that is neither escaped nor in a character class, with
    the depth of groups it leaves open."""
    depth, escaped, in_class = 0, False, False
    for index, char in enumerate(pattern):
        if escaped or char == "\\":
            escaped = not escaped
        elif in_class or char == "[":
            in_class = char != "]"
        else:
            depth += 1 if char == "(" else -1 if char == ")" else 0
            yield index, char, depth


def alternative_words(text: str) -> tuple[str, ...] | None:
    while text.startswith(("\\b", "^")):
        text = text[1 if text[0] == "^" else 2 :]
    if text.startswith("("):
        return group_words(text)
    literal = LEADING_LITERAL.match(text)
    word = literal.group() if literal else ""
    if text[len(word) : len(word) + 1] in ("?", "*", "{"):
        word = word[:-1]  # its last letter is optional
    return (word,) if word.strip() else None


def group_words(text: str) -> tuple[str, ...] | None:
    """The words a text opening with a group starts with: a look-around is stepped over,
    a group that may be left out (`(...)?`) gives none."""
    close = closing_parenthesis(text)
    if close is None or text[close + 1 : close + 2] in ("?", "*", "{"):
        return None
    if text.startswith(("(?=", "(?!", "(?<=", "(?<!")):
        return alternative_words(text[close + 1 :])
    inner = GROUP_OPENING.sub("", text[:close], count=1)
    return starting_words(inner)


def closing_parenthesis(text: str) -> int | None:
    """Where the group `text` opens with closes, or None when it does not."""
    return next(
        (index for index, char, depth in structure(text) if char == ")" and not depth), None
    )


def lower(text: str) -> str:
    """`text` in lower case, character for character, so offsets into it hold in `text`
    ("İ" would lower to two characters: then only ASCII letters are lowered)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(ASCII_LOWER)


def is_placeholder(value: str) -> bool:
    """Whether `value` is an unfilled field of a form ("x.x.x", "___", "待补充")."""
    return PLACEHOLDER.fullmatch(lower(value.strip())) is not None


@dataclass(frozen=True, slots=True)
class Page:
    """The lines a reader reads (the first is the subject when `has_subject`), joined by
    line breaks, and the same in lower case for matching."""

    lines: tuple[str, ...]
    has_subject: bool
    joined: str
    folded: str
    starts: tuple[int, ...]
    # The lines each word was found on: several searches look for the same words.
    found: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)

    def line_at(self, offset: int) -> int:
        """The index of the line holding `offset` of `joined`."""
        return bisect.bisect_right(self.starts, offset) - 1

    def folded_line(self, line: int) -> str:
        start = self.starts[line]
        return self.folded[start : start + len(self.lines[line])]

    def source(self, line: int) -> Source:
        return Source.SUBJECT if self.has_subject and line == 0 else Source.BODY

    def excerpt(self, line: int, start: int = 0, end: int = 0) -> str:
        """The words around `start`..`end` of a line, at most `MAX_EXCERPT` characters."""
        return excerpt_of(self.lines[line], start, end)

    def lines_with(self, words: tuple[str, ...]) -> list[int]:
        """The lines (by index) holding one of `words`, in order."""
        return sorted({line for word in words for line in self.lines_holding(word)})

    def lines_holding(self, word: str) -> tuple[int, ...]:
        """The lines holding `word`, in order; a line once however often it holds it."""
        if word not in self.found:
            self.found[word] = tuple(self.find_lines(word))
        return self.found[word]

    def find_lines(self, word: str) -> Iterator[int]:
        at = self.folded.find(word)
        while at >= 0:
            line = self.line_at(at)
            yield line
            at = self.folded.find(word, self.starts[line] + len(self.lines[line]) + 1)

    def matches(self, searched: Search) -> Iterator[Spot]:
        """Each match in the folded text, placed on its line: on the lines holding the
        search's words when it has some, else in the whole text."""
        if searched.words is None:
            for found in searched.pattern.finditer(self.folded):
                line = self.line_at(found.start())
                yield Spot(self, line, found, self.starts[line])
            return
        for line in self.lines_with(searched.words):
            for found in searched.pattern.finditer(self.folded_line(line)):
                yield Spot(self, line, found, 0)


@dataclass(frozen=True, slots=True)
class Spot:
    """A match on a page: its line, and where on it (`found` on the line's text when
    `offset` is 0, on the whole folded text when it is the line's start)."""

    page: Page
    line: int
    found: re.Match[str]
    offset: int

    def span(self, group: str | int = 0) -> tuple[int, int]:
        """Where `group` is on the line."""
        return self.found.start(group) - self.offset, self.found.end(group) - self.offset

    def written(self, group: str | int = 0) -> str:
        """The text of `group` as the customer wrote it (the match is in lower case)."""
        start, end = self.span(group)
        return self.page.lines[self.line][start:end]

    def excerpt(self) -> str:
        return self.page.excerpt(self.line, *self.span())


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
    body = SENT_FROM.sub("", QUOTE_MARKERS.sub("", fold(text[:MAX_TEXT_CHARS])))
    heading = SUBJECT_PREFIX.sub("", fold(subject)).strip()
    lines = ([heading] if heading else []) + join_fields(unlinked(body.splitlines()))
    return page_from(lines, has_subject=bool(heading))


def page_from(lines: list[str], *, has_subject: bool = False) -> Page:
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    joined = "\n".join(lines)
    return Page(tuple(lines), has_subject, joined, lower(joined), tuple(starts))


def unlinked(lines: list[str]) -> list[str]:
    """The lines with links and addresses blanked: a path's "ios" or "web" is no platform.
    Only lines that can hold one are searched: the search costs more than the look."""
    return [
        LINKS.sub(" ", line) if "@" in line or "://" in line or "www." in line else line
        for line in lines
    ]


def fold(text: str) -> str:
    """NFKC with circled numbers kept as step numbers: "①" is "1. ", not "1". Each step
    only when needed: both cost more than the check."""
    if CIRCLED_NUMBER.search(text):
        text = text.translate(CIRCLED)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def join_fields(lines: list[str]) -> list[str]:
    """A label alone on its line followed by a short value line becomes "label: value"."""
    joined: list[str] = []
    index = 0
    while index < len(lines):
        line, following = lines[index], lines[index + 1] if index + 1 < len(lines) else ""
        if is_label(line) and is_field_value(following):
            joined += [f"{line.rstrip(' :')}: {following.strip()}", ""]
            index += 2
        else:
            joined.append(line)
            index += 1
    return joined


def is_label(line: str) -> bool:
    return len(line) <= MAX_LABEL_CHARS and FIELD_LABEL.match(lower(line)) is not None


def is_field_value(line: str) -> bool:
    return 0 < len(line.strip()) <= 60 and not is_label(line)


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
    ranked = weigh(page, mentions)
    return ranked[1] if ranked else None


def weigh(page: Page, mentions: Iterable[Mention]) -> tuple[int, Mention] | None:
    """The mention `choose` takes, with what its clause says of the problem (`problem_of`).
    Only the first `MAX_MENTIONS` are weighed: a name repeated all along a mail says no more."""
    first = sorted(mentions, key=lambda m: (m.line, m.start))[:MAX_MENTIONS]
    ranked = in_lists(
        page, [(problem_of(page.folded_line(m.line), m.start, m.end), m) for m in first]
    )
    if not ranked:
        return None
    return max(ranked, key=lambda pair: (pair[0], pair[1].strength, -pair[1].line, -pair[1].start))


def in_lists(page: Page, ranked: list[tuple[int, Mention]]) -> list[tuple[int, Mention]]:
    """Names listed together ("Xiaomi 13, Honor 90, Pixel 7 (all fail)") share what the
    list's clauses say: the first named is as much the one with the problem as the last."""
    groups: list[list[tuple[int, Mention]]] = []
    for pair in ranked:
        last = groups[-1][-1][1] if groups else None
        if last and last.line == pair[1].line and listed(page, last, pair[1]):
            groups[-1].append(pair)
        else:
            groups.append([pair])
    return [(max(p for p, _ in group), m) for group in groups for _, m in group]


def listed(page: Page, first: Mention, second: Mention) -> bool:
    return LIST_GAP.fullmatch(page.folded_line(first.line)[first.end : second.start]) is not None


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
