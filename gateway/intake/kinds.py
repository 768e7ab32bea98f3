"""What a report is about: account, crash, quality, how-to or other.

The words of each kind are in `kind_words.KIND_WORDS`. A subject that names the mail as
feedback or business (a feature request, a suggestion, a mistake in our docs, a
partnership: `kind_words.FEEDBACK_SUBJECT`) makes it OTHER. Else the first of these wins:

1. account, anywhere: billing, invoices, quotas, contracts, access to an account ("发票",
   "账单", "充值", "用量"). Money and access come first: "we were charged for minutes the
   crash cost us" is about the bill.
2. the subject's kind, in the order below: the customer's own summary of the mail.
3. the text's kind, in this order:
   - crash: crashes, freezes of the app, ANRs, exceptions, error codes, failing joins
     ("闪退", "崩溃", "报错", "加入失败"). A question about a crash is a crash: "how do I
     fix this crash?".
   - quality: sound, echo, lag, latency, black or frozen video, blur, sync ("没有声音",
     "卡顿", "黑屏", "花屏"). "How to fix the echo?" is a quality problem too, but a
     question about making something better ("how can we reduce the latency?", "如何降低
     延迟") is a how-to, and so is a subject that only names a topic ("Latency") above a
     question that tells of no such symptom.
   - howto: a question about doing something or whether it is supported ("how do I", "is
     it possible", "是否支持", "如何").
4. other.

A forwarded mail is read in the forwarder's own words (with the subject) first, and in
the message forwarded only when those tell nothing: a colleague who asks us to look at a
lag is reporting the lag, whatever else the customer below asked of them.

A negated word says nothing ("no crash", "没有回声", "没有看到报错", "without lag"), and
features named with a symptom's word ("echo cancellation", "降噪", "crash reporting",
"background blur") are questions, not symptoms: they are taken out before the kinds are
read. Traditional Chinese is read as simplified ("延遲" as "延迟").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.intake import kind_words
from gateway.intake.facts import Kind
from gateway.intake.page import FLAGS, Page, compiled, excerpt_of, lower, page_from, search

# Traditional characters of the kinds' words, and their simplified forms: "延遲" is "延迟".
TRADITIONAL = str.maketrans(
    "遲聲頓畫沒閃潰報錯誤碼線斷時無聽見異發帳單費額號凍結鎖錄連續雜機麼樣幫該網頁擬體響應質幀圖訊戶裡嗎請問實現對辦數據視頻務價餘儲約檔範寫過臺賬",
    "迟声顿画没闪溃报错误码线断时无听见异发账单费额号冻结锁录连续杂机么样帮该网页拟体响应质帧图讯户里吗请问实现对办数据视频务价余储约档范写过台账",
)
# Where a forwarded or quoted message starts: what follows is another's words. Read only
# on the lines holding one of `FORWARD_WORDS`.
FORWARD_WORDS = ("forwarded", "original message", "原始邮件", "转发", "____", "wrote", "写道")
FORWARD = (
    r"^\s*(?:-{2,}|_{2,}|={2,})?\s?(?:forwarded message|original message|begin forwarded message"
    r"|原始邮件|转发邮件|转发的邮件)\b|^\s*_{10,}\s*$|\bwrote\s?:\s*$|写道\s?:?\s*$"
)
ORDER = (Kind.ACCOUNT, Kind.CRASH, Kind.QUALITY, Kind.HOWTO)
SYMPTOMS = ORDER[1:]
WORDS = {kind: search(kind_words.KIND_WORDS[kind].pattern()) for kind in ORDER}
FEATURES = re.compile(kind_words.FEATURE_WORDS, FLAGS)
OPTIMISING = re.compile(kind_words.OPTIMISING, FLAGS)
NEGATED = re.compile(kind_words.NEGATION, FLAGS)
NEGATION_REACH = 24
# Symptoms that are themselves negative: "no sound" must not be read as "no" + "sound".
SELF_NEGATIVE = compiled(
    r"^(?:no|not|can't|cannot|can not|couldn't|without)\b|^(?:没|无|听不|看不)"
)
FEEDBACK = compiled(kind_words.FEEDBACK_SUBJECT.pattern())
FORWARD_LINE = compiled(FORWARD)
TOPIC = compiled(rf"^(?:{kind_words.TOPIC_WORDS})$")
LOG_CRASH = compiled(kind_words.LOG_CRASH)
# A mail written in traditional characters shows it early: only its start is looked at.
TRADITIONAL_PROBE = 4096
TRADITIONAL_CHARACTER = compiled("[" + "".join(chr(c) for c in TRADITIONAL) + "]")


def read_kind(page: Page) -> tuple[Kind, str]:
    """The kind of report and the words it was read from ("" for OTHER)."""
    read = simplified(page)
    if read.has_subject and FEEDBACK.search(read.folded_line(0)):
        return Kind.OTHER, ""
    own = forward_line(read)
    for lines in (range(own), range(own, len(read.lines))):
        if found := kind_among(read, lines):
            kind, line, span = found
            return kind, page.excerpt(line, *span)
    return Kind.OTHER, ""


def crash_in_logs(texts: Iterable[str]) -> str:
    """The line of an attached log that tells of a crash ("" when none does): a mail that
    only attaches a log reports what the log shows."""
    for text in texts:
        if found := LOG_CRASH.search(lower(text)):
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            return excerpt_of(text[start : end if end >= 0 else len(text)])
    return ""


def simplified(page: Page) -> Page:
    """`page` with traditional Chinese characters read as simplified, one for one."""
    if not TRADITIONAL_CHARACTER.search(page.folded, 0, TRADITIONAL_PROBE):
        return page
    lines = [line.translate(TRADITIONAL) for line in page.lines]
    return page_from(lines, has_subject=page.has_subject)


def forward_line(page: Page) -> int:
    """The line a forwarded or quoted message starts at (after the last when none)."""
    for line in page.lines_with(FORWARD_WORDS):
        if line >= page.has_subject and FORWARD_LINE.search(page.folded_line(line)):
            return line
    return len(page.lines)


def kind_among(page: Page, lines: range) -> tuple[Kind, int, tuple[int, int]] | None:
    """The kind `lines` tell and where: account anywhere, then the subject's, then the text's."""
    subject = lines.start == 0 and page.has_subject
    text = range(lines.start + subject, lines.stop)
    steps = [(Kind.ACCOUNT, lines)] + [(kind, range(0, subject)) for kind in SYMPTOMS]
    for kind, where in steps + [(kind, text) for kind in SYMPTOMS]:
        found = kind_on(page, kind, where)
        if found is not None and not topic_only(page, kind, found, text):
            return kind, *found
    return None


def topic_only(page: Page, kind: Kind, found: tuple[int, tuple[int, int]], text: range) -> bool:
    """A subject that names a topic with a symptom's word ("Latency") heads a question
    when the text asks one and tells of no such symptom itself."""
    line, (start, end) = found
    if kind is not Kind.QUALITY or line != 0 or not page.has_subject:
        return False
    if not TOPIC.match(page.folded_line(0)[start:end]):
        return False
    return kind_on(page, kind, text) is None and kind_on(page, Kind.HOWTO, text) is not None


def kind_on(page: Page, kind: Kind, lines: range) -> tuple[int, tuple[int, int]] | None:
    """The first of `lines` with a word of `kind` (the subject first), and where on it."""
    if not lines:
        return None
    if lines.start == 0 and page.has_subject and (span := kind_in(kind, page.folded_line(0))):
        return 0, span
    for word in WORDS[kind].words or ("",):
        for line in page.lines_holding(word):
            if line in lines and (span := kind_in(kind, page.folded_line(line))):
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
