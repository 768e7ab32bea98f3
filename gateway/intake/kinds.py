"""What a report is about: account, crash, quality, how-to or other.

The words of each kind are in `patterns.KIND_WORDS`; the first kind in this order whose
words the mail uses wins:

1. account: billing, invoices, quotas, contracts, access to an account ("发票", "账单",
   "充值", "用量"). Money and access come first: "we were charged for minutes the crash
   cost us" is about the bill.
2. crash: crashes, freezes of the app, ANRs, exceptions, error codes, failing joins ("闪退",
   "崩溃", "报错", "加入失败"). A question about a crash is a crash: "how do I fix this
   crash?".
3. quality: sound, echo, lag, latency, black or frozen video, blur, sync ("没有声音", "卡顿",
   "黑屏", "花屏"). "How to fix the echo?" is a quality problem too, but a question about
   making something better ("how can we reduce the latency?", "如何降低延迟") is a how-to.
4. howto: a question about doing something or whether it is supported ("how do I", "is it
   possible", "是否支持", "如何").
5. other.

A negated word says nothing ("no crash", "没有回声", "without lag"), and features named with
a symptom's word ("echo cancellation", "降噪", "crash reporting") are questions, not
symptoms: they are taken out before the kinds are read.
"""

from __future__ import annotations

import re

from gateway.intake import patterns
from gateway.intake.facts import Kind
from gateway.intake.page import FLAGS, Page, compiled, search

ORDER = (Kind.ACCOUNT, Kind.CRASH, Kind.QUALITY, Kind.HOWTO)
WORDS = {kind: search(patterns.KIND_WORDS[kind].pattern()) for kind in ORDER}
FEATURES = re.compile(patterns.FEATURE_WORDS, FLAGS)
OPTIMISING = re.compile(patterns.OPTIMISING, FLAGS)
NEGATED = re.compile(patterns.NEGATION, FLAGS)
NEGATION_REACH = 16
# Symptoms that are themselves negative: "no sound" must not be read as "no" + "sound".
SELF_NEGATIVE = compiled(
    r"^(?:no|not|can't|cannot|can not|couldn't|without)\b|^(?:没|无|听不|看不)"
)


def read_kind(page: Page) -> tuple[Kind, str]:
    """The kind of report and the words it was read from ("" for OTHER): the subject's
    words when it has them, else the first line found with them."""
    for kind in ORDER:
        found = kind_on(page, kind)
        if found is not None and not topic_only(page, kind, found[0]):
            line, span = found
            return kind, page.excerpt(line, *span)
    return Kind.OTHER, ""


def topic_only(page: Page, kind: Kind, line: int) -> bool:
    """A symptom's word in the subject alone ("Latency") names the topic of a question
    when the text asks one and tells of no such symptom itself."""
    if kind is not Kind.QUALITY or line != 0 or not page.has_subject:
        return False
    return kind_on(page, kind, subject=False) is None and (
        kind_on(page, Kind.HOWTO, subject=False) is not None
    )


def kind_on(page: Page, kind: Kind, *, subject: bool = True) -> tuple[int, tuple[int, int]] | None:
    """A line with a word of `kind`, and where on it; the subject first (or not at all)."""
    if page.has_subject and subject and (span := kind_in(kind, page.folded_line(0))):
        return 0, span
    for word in WORDS[kind].words or ("",):
        for line in page.lines_holding(word):
            if (line or not page.has_subject) and (span := kind_in(kind, page.folded_line(line))):
                return line, span
    return None


def kind_in(kind: Kind, line: str) -> tuple[int, int] | None:
    """Where on a line (in lower case) the first word of `kind` is that is not negated."""
    text = blank(FEATURES, line)
    if kind is Kind.QUALITY:
        text = blank(OPTIMISING, text)
    for found in WORDS[kind].pattern.finditer(text):
        if not negated(text, found):
            return found.span()
    return None


def blank(pattern: re.Pattern[str], text: str) -> str:
    """`text` with `pattern`'s matches spaced out, so offsets still point into the line."""
    return pattern.sub(lambda found: " " * len(found.group()), text)


def negated(text: str, found: re.Match[str]) -> bool:
    """ "no crash", "没有回声": the word is denied, not reported."""
    if SELF_NEGATIVE.match(found.group()):
        return False
    return NEGATED.search(text[max(0, found.start() - NEGATION_REACH) : found.start()]) is not None
