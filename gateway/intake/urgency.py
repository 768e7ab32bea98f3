"""The priority a customer asks for, in their own words: P1 (production down) .. P4 (low).

Read from the subject and the new text (the first `MAX_TEXT_CHARS`); lines starting with ">"
and pasted log or stack-trace lines are not the customer's words and are not read. The
words are in `urgency_words`; the labelling rules the tests hold this to are in
`tests/data/urgency/README.md`.

- Explicit: the customer names a priority, with a label ("Priority: P1", "Severity:
  critical", "Sev 1", "优先级：紧急"), a tag ("P1: ..." opening the subject, "[P2]",
  "【P1】") or a sentence ("this is a P2 for us", "high priority", "请按 P2 处理").
- Implicit: the customer tells of the impact. A total failure is P1 (production down, an
  outage, all users or nobody can..., "线上事故", "全部用户无法推流", "大面积卡顿"); many
  users hit, or a release or event within about a week at stake, is P2 ("many users
  affected", "blocking our release", "go-live tomorrow", "部分用户无法...", "影响上线").
  A production problem of unknown scope, or a few users, raises nothing.

Bare urgency words in prose or a subject tag ("urgent", "ASAP", "URGENT:", "急", "【紧急】")
ask for nothing: nearly every mail says them, so they tell the desk nothing about impact,
and raising on them would put most tickets at P2 and teach customers that the word is how to
jump the queue. Their negations ("not urgent", "不急") lower nothing, for the same reason.
Only a label or a told impact moves a ticket.

A claim is taken away when negated ("not a production issue", "不影响上线"), when a
condition or a possibility comes before it in its sentence, when its own clause asks whether
it is so ("is it possible that production will go down?", "Outage?", "宕机了吗？"; a why- or
what-question, "why is production down?", tells it), when its sentence is about service
levels ("what is your SLA for P1?"), when the failure is in a test or staging environment
and its clause does not name production, or when the mail says the failure has recovered
(it then asks about a past incident). Deadlines lie in the future, so only a negation
takes one away.

Explicit beats implicit: a customer who writes "Priority: P3" above "a short outage" has
weighed it, and an engineer can still raise it. Among claims of one sort the strongest
wins; among equals, the first.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from gateway.intake import urgency_words as words
from gateway.intake.urgency_words import Claim, Reading

MAX_SUBJECT_CHARS = 1_000
# About the first hundred lines: a customer says how bad it is at the top, and every
# pattern is run over all of it (bench/README.md, "Service levels on the filing path").
MAX_TEXT_CHARS = 6_000
MAX_WORDS = 120
NEGATION_REACH = 24

FLAGS = re.ASCII | re.MULTILINE
CLAIMS = [(claim, re.compile(claim.pattern, FLAGS)) for claim in words.EXPLICIT + words.IMPLICIT]
LEVELS = [(level.priority, re.compile(f"{level.en}|{level.zh}")) for level in words.LEVELS]
SEVERITY_PREFIX = re.compile(r"^sev\s?-?\s?")
OPTIONS = re.compile(r"\s{0,3}[/|]")
NEGATION = re.compile(words.NEGATION, FLAGS)
CONDITION = re.compile(words.CONDITION, FLAGS)
SERVICE_LEVEL = re.compile(words.SERVICE_LEVEL, FLAGS)
ASKED = re.compile(words.ASKED)
WH_QUESTION = re.compile(words.WH_QUESTION, re.ASCII)
TEST_ENVIRONMENT = re.compile(words.TEST_ENVIRONMENT, FLAGS)
PRODUCTION = re.compile(words.PRODUCTION, FLAGS)
RECOVERED = re.compile(words.RECOVERED, FLAGS)
SKIPPED_LINE = re.compile(words.SKIPPED_LINE, FLAGS)
SENTENCE_END = re.compile(r"[!?;。！？；\n]+|\.(?=\s|$)")
# A comma or colon ends a clause, but not inside a number or a time ("10,000", "22:00").
CLAUSE_END = re.compile(r"[，、：]|[,:](?!\d)")

FOLD: dict[int, str] = {
    **{c: chr(c + 32) for c in range(ord("A"), ord("Z") + 1)},
    **{c: chr(c - 0xFEE0).lower() for c in range(0xFF01, 0xFF5F)},
    0x3000: " ",
    0x2018: "'",
    0x2019: "'",
    **{ord(t): s for t, s in zip(*words.TRADITIONAL, strict=True)},
}


@dataclass(frozen=True, slots=True)
class Urgency:
    """The priority a customer's words ask for, and the words it came from."""

    priority: str
    words: str
    explicit: bool


@dataclass(frozen=True, slots=True)
class Found:
    """One claim read, where it stands in the page."""

    priority: str
    explicit: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Page:
    """The subject and the text as written, a folded copy with unread lines blanked out
    (same offsets), where its sentences and clauses end, and whether it tells of a recovery."""

    written: str
    folded: str
    sentence_ends: tuple[int, ...]
    clause_ends: tuple[int, ...]
    recovered: bool

    def sentence(self, at: int) -> str:
        """The sentence (in the folded copy) holding offset `at`, with its end mark."""
        return self.folded[self.span(self.sentence_ends, at)]

    def clause(self, found: re.Match[str]) -> str:
        """The clause of a claim: from the break before it to the break after it."""
        start = self.span(self.clause_ends, found.start()).start
        end = self.span(self.clause_ends, found.end() - 1).stop
        return self.folded[start:end]

    def before(self, found: re.Match[str]) -> str:
        """The folded text of the claim's clause up to the claim."""
        start = self.span(self.clause_ends, found.start()).start
        return self.folded[start : found.start()]

    def sentence_before(self, found: re.Match[str]) -> str:
        """The folded text of the claim's sentence up to the claim's end."""
        return self.folded[self.span(self.sentence_ends, found.start()).start : found.end()]

    def span(self, ends: tuple[int, ...], at: int) -> slice:
        """The piece of the folded copy between two of `ends` that holds offset `at`."""
        index = bisect.bisect_right(ends, at)
        start = ends[index - 1] if index else 0
        return slice(start, ends[index] if index < len(ends) else len(self.folded))


def read_urgency(subject: str, text: str) -> Urgency | None:
    """The priority the customer's words ask for, or None when they ask for none."""
    page = page_of(subject, text)
    found = [one for claim, pattern in CLAIMS for one in claims_of(page, claim, pattern)]
    explicit = [one for one in found if one.explicit]
    chosen = min(explicit or found, key=lambda one: (one.priority, one.start), default=None)
    if chosen is None:
        return None
    return Urgency(
        chosen.priority, excerpt(page.written[chosen.start : chosen.end]), chosen.explicit
    )


def page_of(subject: str, text: str) -> Page:
    """The page read: the subject on its own line, then the text, both bounded."""
    head = " ".join(subject[:MAX_SUBJECT_CHARS].split())
    body = text[:MAX_TEXT_CHARS]
    folded_body = SKIPPED_LINE.sub(lambda line: " " * len(line.group()), body.translate(FOLD))
    folded = f"{head.translate(FOLD)}\n{folded_body}"
    sentence_ends = tuple(end.end() for end in SENTENCE_END.finditer(folded))
    clause_ends = tuple(sorted({*sentence_ends, *(e.end() for e in CLAUSE_END.finditer(folded))}))
    recovered = RECOVERED.search(folded) is not None
    return Page(f"{head}\n{body}", folded, sentence_ends, clause_ends, recovered)


def claims_of(page: Page, claim: Claim, pattern: re.Pattern[str]) -> list[Found]:
    """Each place `claim` stands in the page and holds, with the priority it asks for."""
    if claim.needs and not any(word in page.folded for word in claim.needs):
        return []
    found = []
    for match in pattern.finditer(page.folded):
        priority = claim.priority or priority_named(page, match)
        if priority and holds(page, claim.reading, match):
            found.append(Found(priority, claim.explicit, match.start(), match.end()))
    return found


def priority_named(page: Page, match: re.Match[str]) -> str:
    """The priority the `value` group names ("" for a value among listed choices)."""
    if OPTIONS.match(page.folded, match.end()):
        return ""
    value = SEVERITY_PREFIX.sub("", " ".join(match.group("value").split()))
    return next((p for p, level in LEVELS if level.fullmatch(value)), "")


def holds(page: Page, reading: Reading, match: re.Match[str]) -> bool:
    """Whether a claim survives what its reading asks of it."""
    if reading is Reading.FORM:
        return True
    if NEGATION.search(page.before(match)[-NEGATION_REACH:]):
        return False
    if reading is Reading.DEADLINE:
        return True
    if supposed(page, match):
        return False
    return reading is Reading.STATEMENT or not (page.recovered or in_test(page, match))


def supposed(page: Page, match: re.Match[str]) -> bool:
    """A condition before the claim, a clause asking whether it is so, or a sentence on
    service levels."""
    if CONDITION.search(page.sentence_before(match)):
        return True
    if SERVICE_LEVEL.search(page.sentence(match.start())):
        return True
    clause = page.clause(match)
    return ASKED.search(clause) is not None and WH_QUESTION.search(clause) is None


def in_test(page: Page, match: re.Match[str]) -> bool:
    """A failure in a test environment, unless its own clause names production."""
    if not TEST_ENVIRONMENT.search(page.sentence(match.start())):
        return False
    return not PRODUCTION.search(page.clause(match))


def excerpt(written: str) -> str:
    """The words as written, on one line, at most `MAX_WORDS` characters."""
    line = " ".join(written.split())
    return line if len(line) <= MAX_WORDS else line[: MAX_WORDS - 1].rstrip() + "…"
