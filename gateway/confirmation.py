"""Reads a customer's answer to "is it fixed?" as FIXED, NOT_FIXED, NEITHER or UNCLEAR.

A resolved ticket closes on FIXED, reopens on NOT_FIXED and on UNCLEAR (a new question or
problem), and stays resolved on NEITHER ("thanks, I'll test tomorrow", "收到，谢谢"), so a
wrong FIXED is the costly mistake: when in doubt, the rules here lean away from it. Pure (text in,
verdict out); what a verdict does to the ticket is the workflow's business.

The text is cut into clauses and each clause gets one kind. Negation is read against what
it negates: "not fixed" is NOT_FIXED but "no more crashes" is FIXED, so negated problems
are rewritten to a positive mark before anything else looks at the clause. English and
Chinese (traditional folded to simplified for the characters these rules use).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass


class Confirmation(enum.Enum):
    FIXED = "fixed"
    NOT_FIXED = "not_fixed"
    # Says nothing either way yet: thanks, "will test tomorrow", "收到".
    NEITHER = "neither"
    UNCLEAR = "unclear"  # a new question or a new problem report


class _Kind(enum.Enum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    QUESTION = "question"
    # A problem in the present tense that is neither "still" nor "again": a new report.
    REPORT = "report"
    # Politeness or a bare yes/no: an answer only when nothing stronger is said.
    WEAK_POSITIVE = "weak_positive"
    WEAK_NEGATIVE = "weak_negative"
    # The answer is still to come: "I'll test it tomorrow", "not sure yet", "收到".
    PENDING = "pending"
    NEUTRAL = "neutral"


@dataclass(frozen=True, slots=True)
class _Clause:
    text: str
    asked: bool  # ended in a question mark


# Beyond this, a message is a new report rather than an answer to a yes/no question.
MAX_CHARS = 600
# Politeness alone ("thanks!") confirms only in a message this short.
SHORT_CHARS = 60
# A longer subject is a topic, never a one-click answer.
MAX_SUBJECT_CHARS = 40

# Stands for a negated problem once `_mark_resolved_problems` has read it; a private-use
# character, removed from the input, so no customer can type it.
_MARK = "\ue000"
# NFKC leaves curly apostrophes alone; the mark must only ever come from this module.
_CHARACTER_FOLDS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u00b4": "'",
        "\u2032": "'",
        "`": "'",
        _MARK: None,
    }
)
# Only the characters the patterns below use; a full converter is not worth a dependency.
_TRADITIONAL = str.maketrans(
    "決沒還問題復潰閃報錯頓現無並舊謝嗎麼為經這個樣幫開關過後說請對試別當閉單號覆轉會動"
    "應變從點發誤異運確認見壞讓們時錄裡實該總來導種幾條",
    "决没还问题复溃闪报错顿现无并旧谢吗么为经这个样帮开关过后说请对试别当闭单号复转会动"
    "应变从点发误异运确认见坏让们时录里实该总来导种几条",
)

# Clause ends: sentence punctuation, commas and line breaks; NFKC has made "，！？；" ASCII.
# Not inside numbers: "fixed in 2.3", "1,000 users".
_CLAUSE = re.compile(r"((?:[^.!?;,\n。]|(?<=\d)[.,](?=\d))+)([.!?;,\n。]*)")
# A contrast starts a new clause, so "thanks but it still crashes" is read in two parts and
# a negation never reaches across it.
_CONTRAST = re.compile(r"\b(?:but|however|although|except)\b|但是|可是|不过|但")
# Idioms whose negation negates nothing ("不好意思" is "sorry", not "not good").
_NOISE = re.compile(
    r"不好意思|没想到|想不到|好像|你好|您好|大家好|不客气|不用谢|没关系"
    r"|不知道为什么|\bnever ?mind\b|\bdon'?t worry\b"
    r"|有问题(?:我|请)?(?:会)?再(?:联系|找|反馈|告诉)\S*"
)
# "I'll let you know if it happens again" promises a report; it does not make one.
_HYPOTHETICAL = re.compile(
    r"\b(?:if|in case|should)\b.*?\b(?:again|back|returns?)\b"
    r"|\b(?:let (?:you|u) know|get back to you|reach out|contact you|report back)\s+"
    r"(?:if|when|should)\b.*"
    r"|(?:如果|要是|万一|假如|若).*?(?:再|又).*"
)
# "有没有解决" asks "has it been solved?": a question, not a negation of 解决.
_A_NOT_A = re.compile(
    r"是不是|能不能|可不可以|可以不可以|会不会|有没有|行不行|好不好|要不要"
    r"|对不对|好没好|好了没"
)

_NEG_EN = (
    r"(?:\b(?:not|no|never|hardly|barely|cannot|nothing|unable to|used to)\b|n't\b"
    r"|\b(?:dont|doesnt|didnt|isnt|wasnt|arent|werent|cant|wont|havent|hasnt|hadnt"
    r"|couldnt|wouldnt|aint)\b)"
)
# Words a negation may skip on its way to what it negates; conjunctions end its reach.
_STOP_EN = r"(?:and|or|so|then|because|since|though|after|until|when|if|whether|which)\b"
_FIX_EN = (
    r"(?:fix(?:ed|es)?|resolved?|solved?|work(?:s|ed|ing)?|help(?:s|ed)?|good|better"
    r"|fine|ok|okay|right|close[ds]?)\b"
)
_PROBLEM_EN = (
    r"(?:crash(?:es|ed|ing)?|freez(?:e|es|ing)|froze(?:n)?|hang(?:s|ing)?|hung"
    r"|errors?|fail(?:s|ed|ing|ures?)?|problems?|issues?|bugs?|glitch(?:es|ing)?"
    r"|broken|slow|lag(?:s|gy|ging)?|stuck|wrong|happen(?:s|ed|ing)?"
    r"|occur(?:s|red|ring)?|reproduce[ds]?|appear(?:s|ed|ing)?|show(?:s|ed)? up"
    r"|come back|came back|comes back)\b"
)
_FILLER_EN = (
    r"(?:more|longer|any|anymore|the|a|an|single|one|seen|see|saw|seeing|had|have"
    r"|having|got|gotten|get|getting|experienced|encountered|noticed|been|further"
    r"|other|such|this|that|it|its|even|real|major|able|to|seem|seems|yet)"
)

_NEG_ZH = r"(?:并未|尚未|从未|还没有|还没|没有|没|未|不能|无法|不)"
_FIX_ZH = (
    r"(?:解决|修复|修好|好|可以|管用|有效|能用|正常|成功|搞定|生效|见效|奏效|恢复"
    r"|关闭|关单|行)"
)
_PROBLEM_ZH = (
    r"(?:崩溃|崩|闪退|报错|错误|卡顿|卡死|卡住|卡|死机|出现|问题|故障|异常|bug|白屏|黑屏"
    r"|打不开|用不了|登不上|失败|掉线)"
)
_FILLER_ZH = r"(?:再也|再次|再|也|有|过|会|什么|任何|发现|遇到|碰到|看到|见到|了)"
_NOT_PUNCT = rf"[^\s,.;!?。{_MARK}]"
_UNMARKED = rf"[^{_MARK}]"

# "之前一直闪退" is how it was: 一直/总是 after a word for "before" is no complaint.
_NOT_BEFORE = "(?<!之前)(?<!以前)(?<!原来)(?<!原先)(?<!过去)(?<!当时)"

# Negated problems are good news; each match becomes `_MARK`.
_RESOLVED_PROBLEMS = (
    re.compile(rf"{_NEG_EN}(?:\s+{_FILLER_EN}\b)*?\s+{_PROBLEM_EN}"),
    re.compile(rf"(?<!n't )(?<!not )(?<!never )\bstop(?:s|ped)?\s+{_PROBLEM_EN}"),
    re.compile(
        rf"\b{_PROBLEM_EN}(?:\s+(?:message|messages|popup|dialog|is|are|has|have|seems?"
        rf"|to|be|been|now|finally|completely|totally|all|just))*\s+(?:gone|went away"
        rf"|disappeared|vanished|stopped|not there|isn't there|aren't there)\b"
    ),
    re.compile(rf"{_NEG_ZH}{_FILLER_ZH}{{0,3}}{_PROBLEM_ZH}"),
    re.compile(rf"{_PROBLEM_ZH}(?:已经|都|也)?(?:没了|没有了|消失|不见了)"),
)

_NOT_FIXED = (
    re.compile(rf"{_NEG_EN}(?:\s+(?!{_STOP_EN})[\w']+){{0,3}}?\s+{_FIX_EN}"),
    re.compile(rf"{_NEG_ZH}{_NOT_PUNCT}{{0,2}}?{_FIX_ZH}"),
    # "still" with a problem or a negation: still crashes, still the same, still not working.
    re.compile(
        rf"\bstill\b{_UNMARKED}{{0,25}}?(?:\b{_PROBLEM_EN}|{_NEG_EN}|\b(?:same|there|present"
        rf"|waiting|seeing|getting|having|experiencing|bad|unusable|down)\b)"
    ),
    re.compile(
        rf"\b{_PROBLEM_EN}(?:\s+[\w']+){{0,2}}?\s+(?:again|is back|are back)\b"
        rf"|\b(?:came|comes|coming) back\b|\bback to {_PROBLEM_EN}"
        r"|\b(?:it|this|that)(?:'s| is| has)? (?:back|returned)\b|又来了|又出现"
    ),
    re.compile(
        r"\bkeeps?\s+(?:on\s+)?(?:crash|fail|freez|hang|happen|show|error|throw"
        r"|lagg|restart|clos|quit|disconnect)\w*"
    ),
    re.compile(
        r"\b(?:nope|no luck|no dice|not yet|not really|unfortunately not|sadly not"
        r"|afraid not|worse|persist(?:s|ing)?|stop(?:s|ped)? working"
        r"|no (?:change|difference|improvement)|nothing (?:has )?changed"
        r"|same (?:problem|issue|error|crash|bug|thing|result|behaviou?r)"
        r"|same as before|(?:problem|issue|error|crash|bug)s? (?:remains?|continues?))\b"
        rf"|{_NEG_EN}\s+stop(?:s|ped)?\b"
    ),
    # Partly fixed is not fixed: "only works after a restart", "works, but only on Wi-Fi".
    re.compile(
        r"\bonly\s+(?:sometimes\s+|partly\s+|partially\s+)?(?:works?|worked|working"
        r"|helps?|helped|fixed|resolved)\b|\b(?:partially|partly|half|sometimes|mostly"
        r"|kind of|sort of)\s+(?:works?|working|fixed|resolved|solved)\b"
        r"|^not\s+(?:on|for|in|with|when|after|always)\b"
        r"|^only\s+(?:on|for|in|with|when|after|if|sometimes)\b"
    ),
    re.compile(
        r"不行|没用(?!过)|没(?:有)?(?:什么|任何)?(?:效果|用处|变化|改善|改变|反应)|无效|白费"
        r"|老样子|别关|还有(?:这个|那个|同样的|一样的)?(?:问题|bug|报错)|部分(?:解决|修复)"
        r"|好一?点|好一些|好些|(?:跟|和|与)(?:之前|以前|原来)一样|(?:同样|一样)的问题"
        r"|一模一样"
    ),
    # 还是/仍然/又... with a problem or a negation, or a problem followed by 依旧/还在...
    re.compile(
        rf"(?:还是|仍然|仍旧|仍|依然|依旧|照旧|照样|还会|还在|又|再次|重新|偶尔|有时"
        rf"|{_NOT_BEFORE}(?:一直|总是|老是)){_UNMARKED}{{0,4}}?(?:{_PROBLEM_ZH}|{_NEG_ZH}|一样)"
        rf"|还(?={_PROBLEM_ZH})"
        rf"|{_PROBLEM_ZH}{_UNMARKED}{{0,2}}?(?:依旧|依然|仍|还在|还是|照旧|照样|存在|没变"
        rf"|一样)"
    ),
)

_CLOSE_TICKET = re.compile(
    r"\b(?:can|may|could|please|feel free to|go ahead and)\s+close\b"
    r"|\bclose\s+(?:the|this|my|our)\s+(?:ticket|case|request|issue)\b|\b(?:can|may) be closed\b"
    r"|关闭(?:工单|单子|吧|了)|关单|结单"
)
_FIXED = re.compile(
    rf"{_MARK}|\b(?:fixed|resolved|solved|works|worked|working(?! on\b)|helped|helps|sorted"
    r"|did the trick|does the trick|all (?:good|set|fine|ok)|(?:good|fine|ok|okay|great"
    r"|perfect) now|back to normal|confirmed|(?:i|we|can) confirm|(?:does|did|do) work"
    r"|yes,? it (?:is|does|did)|looks? (?:good|fine|great|ok)|seems? to (?:be )?work"
    r"|work (?:now|fine|again|perfectly|great|well))\b"
    r"|已(?:经)?(?:被)?(?:解决|修复|修好|好|正常|恢复|搞定|可以|ok)|解决了|解决掉|修复了|修好"
    r"|好了|好啦|可以了|可以用|可以正常|能用|能正常|正常了|正常使用|正常运行|恢复正常|搞定|管用"
    r"|有效|生效|成功了|ok了|没事了|行了|正常"
)
# Clear questions: a "?" (see `_Clause.asked`), 吗, an inverted verb, a request, a doubt.
_ASKS = re.compile(
    r"^(?:(?:and|also|so|btw|ok|okay|thanks)\s+)?(?:is|are|was|were|do|does|did|has|have"
    r"|can|could|will|would|should|shall|may)\s+(?!the trick)(?:it|this|that|there|the|you"
    r"|i|we|my|your|anyone|someone|u)\b"
    r"|\b(?:can|could|would|will) (?:you|u|someone|anyone)\b|\bis there (?:a|any) way\b"
    r"|\bany (?:idea|way|update|news|eta)\b|\bplease (?:advise|explain|tell me|help)\b"
    r"|\bdo you know\b|\bi (?:was )?wonder(?:ing)?\b"
    r"|吗|呢$|是否|请问|想问|问一下|能否|可否|帮我(?:看|查|处理|解决)"
)
# Doubt about the fix: never a "fixed", whatever words follow ("not sure it's fixed").
_DOUBT = re.compile(
    r"\b(?:not sure|unsure|don't know|do not know|no idea|can't tell|cannot tell"
    r"|hard to (?:say|tell)|too early to (?:say|tell))(?:\s+(?:yet|if|whether)\b|\s*$)"
    r"|不确定|说不准|不好说|还不知道"
)
# The answer is still to come: a promise to test, a receipt of the mail.
_PENDING = re.compile(
    r"\b(?:i'?ll|i will|we'?ll|we will|will|going to|gonna|let me|need to|have to)\s+"
    r"(?:\w+\s+){0,2}?(?:test|try|check|verify|confirm|look|see|let (?:you|u) know"
    r"|get back|update|report back|deploy|roll)"
    r"|\b(?:have|has|had)n'?t (?:had (?:the )?(?:time|chance) to |been able to |yet )?"
    r"(?:test|tri|check|verif|confirm)\w*|\bnot (?:tested|tried|checked|verified) yet\b"
    r"|\b(?:received|got it|noted|understood|will do|testing (?:it )?now)\b"
    r"|收到|已收到|知道了|了解|明白"
    r"|(?:稍后|明天|后天|晚点|晚些|下周|回头|等下|等会|过几天|马上|先)(?:再)?(?:测|试|验证|确认|看|检查|更新|升级)"
    r"|(?:我|我们)(?:会|将|要|先|再)?(?:测试|试试|试一下|验证|确认|看看|检查)(?:一下)?"
    r"|还没(?:有)?(?:来得及)?(?:测|试|验证|确认)"
)
# Question words: they only make a question when the clause is not a clear fixed-statement.
_WONDERS = re.compile(
    r"^(?:(?:and|also|so|btw|ok|okay|one more thing)\s+)?(?:how|what|why|where|which|who)\b"
    r"|\b(?:how (?:do|does|did|can|could|should|would|to|come|long|much|many|about)"
    r"|what (?:is|are|was|should|can|do|does|did|about|if)"
    r"|why (?:is|are|was|does|did|do|would|can))\b|\bquestions?\b"
    r"|怎么|如何|为什么|为啥|什么|哪里|哪儿|哪个|多久|何时|怎样|咋"
)
_SYMPTOM = re.compile(
    r"\b(?:crash|crashes|crashing|freezes|freezing|hangs|hanging|errors?|fails|failing"
    r"|broken|bugs?|glitch(?:es|ing)?|slow|stuck|problems?|issues?|wrong|lags?|lagging)\b"
    r"|崩溃|闪退|报错|错误|卡顿|卡死|卡住|死机|问题|故障|异常|白屏|黑屏|打不开|用不了|登不上|失败|掉线"
)
# A problem in the past is the story so far ("it used to crash, now it works"), not a report.
_PAST = re.compile(
    r"\b(?:used to|before|previously|earlier|was|were|had)\b"
    r"|之前|以前|原来|原先|过去|当时"
)

_WEAK_POSITIVE = re.compile(
    r"(?:\s|[!~👍🙏]|:\)|(?:thanks?|thank you|thankyou|thx|ty|cheers|many thanks|much"
    r"|appreciated|appreciate it|great|perfect|awesome|excellent|wonderful|brilliant|cool"
    r"|nice|super|amazing|fantastic|ok|okay|k|yes|yep|yeah|yup|sure|no problem|no worries"
    r"|so|very|a lot|again|all|guys|team|everyone|really|indeed"
    r"|for (?:the|your) (?:help|fix|support|quick fix|quick response|assistance|effort|work"
    r"|patience)|for (?:fixing|solving|resolving|sorting) (?:it|this|that|the \w+|my \w+))\b"
    r"|(?:谢谢|多谢|感谢)了?|谢啦|好的|好|嗯|行|可以|没问题|太好了|太棒了|太|棒|赞|非常|十分|你们|你"
    r"|您|大家|哈|呀)+"
)
_WEAK_NEGATIVE = re.compile(r"no|nah|没有|没|不是|不")

_SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:(?:re|fwd?|fw|aw|wg|sv|vs|回复|答复|转发|转寄)\s*:|\[[^\]]*\]|【[^】]*】))+"
)
_SUBJECT_FIXED = re.compile(
    r"(?:yes,? )?(?:it'?s |it is |confirmed,? )?(?:fixed|resolved|solved|works|working"
    r"|it works|works now|fixed now|all good|confirmed)(?: now)?(?:,? thanks?|,? thank you)?"
    r"|已解决|已修复|已经解决了?|已经修复了?|已经好了|解决了|修复了|好了|可以了|正常了|问题已解决|搞定了?"
)
_SUBJECT_NOT_FIXED = re.compile(
    r"(?:it'?s |it is )?not (?:yet )?(?:fixed|resolved|solved|working)(?: yet)?"
    r"|still (?:broken|crashing|failing|not (?:fixed|working|resolved))"
    r"|(?:it )?(?:doesn't|does not|didn't|did not) work|nope"
    r"|未解决|未修复|没(?:有)?解决|没(?:有)?修好|还是不行|不行|没好|还没好|问题依旧"
)


def classify_confirmation(text: str, subject: str = "") -> Confirmation:
    """The customer's answer in `text`: the new part of their reply, quotes removed.

    `subject` is read only when the text gives no answer and raises nothing new, and then
    only if, without its "Re:" prefixes and "[Support #12]" tag, it is an answer as a whole
    (the one-click "Fixed" / "未解决"): a reply keeps the ticket's own subject, which often
    names the problem.
    """
    reading = _read_text(text)
    if reading is not None:
        return reading
    if len(text.strip()) > MAX_CHARS:
        return Confirmation.UNCLEAR  # A long message that is no answer is a new report.
    return _read_subject(subject) or Confirmation.NEITHER


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text.translate(_CHARACTER_FOLDS)).lower()
    return folded.translate(_TRADITIONAL)


def _read_text(text: str) -> Confirmation | None:
    """The text's verdict, or None when it says nothing either way."""
    words = _NOISE.sub(" ", _normalise(text)[:MAX_CHARS])
    kinds = [_kind(clause) for clause in _clauses(words)]
    return _verdict(kinds, short=len(words.strip()) < SHORT_CHARS)


def _clauses(text: str) -> list[_Clause]:
    found: list[_Clause] = []
    for match in _CLAUSE.finditer(text):
        pieces = [piece.strip() for piece in _CONTRAST.split(match.group(1))]
        # The question mark belongs to the last piece: "works, but how do I ...?"
        found += [
            _Clause(piece, "?" in match.group(2) and index == len(pieces) - 1)
            for index, piece in enumerate(pieces)
            if piece
        ]
    return found


def _kind(clause: _Clause) -> _Kind:
    """The order is the policy: a complaint beats everything, and a clear question beats a
    "fixed" in the same clause ("is it fixed in 2.3?")."""
    text = _HYPOTHETICAL.sub(" ", clause.text).strip()
    if _WEAK_POSITIVE.fullmatch(text):
        return _Kind.WEAK_POSITIVE
    if _WEAK_NEGATIVE.fullmatch(text):
        return _Kind.WEAK_NEGATIVE
    marked = _mark_resolved_problems(text)
    if any(pattern.search(marked) for pattern in _NOT_FIXED):
        return _Kind.NEGATIVE
    if _CLOSE_TICKET.search(marked):
        return _Kind.POSITIVE
    if _DOUBT.search(marked) or (_PENDING.search(marked) and not _FIXED.search(marked)):
        return _Kind.PENDING
    if clause.asked or _ASKS.search(marked):
        return _Kind.QUESTION
    if _FIXED.search(marked):
        return _Kind.POSITIVE
    if _WONDERS.search(marked):
        return _Kind.QUESTION
    if _SYMPTOM.search(marked) and not _PAST.search(marked):
        return _Kind.REPORT
    return _Kind.NEUTRAL


def _mark_resolved_problems(text: str) -> str:
    """`text` with each negated problem ("no more crashes") replaced by a positive mark."""
    text = _A_NOT_A.sub("吗", text)
    for pattern in _RESOLVED_PROBLEMS:
        text = pattern.sub(f" {_MARK} ", text)
    return text


def _verdict(kinds: list[_Kind], *, short: bool) -> Confirmation | None:
    if _Kind.NEGATIVE in kinds:
        return Confirmation.NOT_FIXED
    # A new question or problem reopens rather than closes, whatever else was said.
    if _Kind.QUESTION in kinds or _Kind.REPORT in kinds:
        return Confirmation.UNCLEAR
    if _Kind.POSITIVE in kinds:
        return Confirmation.FIXED
    if _Kind.WEAK_NEGATIVE in kinds:
        return Confirmation.NOT_FIXED
    if kinds and short and all(kind is _Kind.WEAK_POSITIVE for kind in kinds):
        return Confirmation.FIXED
    return None


def _read_subject(subject: str) -> Confirmation | None:
    answer = _SUBJECT_PREFIX.sub("", _normalise(subject)).strip(" .!。~")
    if len(answer) > MAX_SUBJECT_CHARS:
        return None
    if _SUBJECT_FIXED.fullmatch(answer):
        return Confirmation.FIXED
    if _SUBJECT_NOT_FIXED.fullmatch(answer):
        return Confirmation.NOT_FIXED
    return None
