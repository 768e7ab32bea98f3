"""The words `urgency` reads a customer's priority by: the values a priority is named with,
the forms that name one, the impacts and deadlines that imply one, and the words that take a
claim away (negations, conditions, test environments, recovery).

Rows are regular expression fragments in lower case, matched against a folded copy of the
mail: ASCII lower case, full-width forms as ASCII, traditional characters as simplified, one
character for one, so offsets point into the mail as written. Word boundaries are ASCII
(`re.ASCII`): `\\b` falls between "p1" and "级". Gaps are bounded and never cross a clause,
so reading stays linear in the (bounded) text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reading(enum.Enum):
    """How much a claim must survive before it counts."""

    # A label or a tag ("Priority: P1", "[P2]"): read as written.
    FORM = "form"
    # Prose naming a priority ("this is a P2"): a negation or a condition takes it away.
    STATEMENT = "statement"
    # An impact told ("production is down"): also a test environment or a recovery.
    FAILURE = "failure"
    # A deadline at stake ("go-live tomorrow"): only a negation; deadlines are in the future.
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class Level:
    """The words that name one priority, as a value after a label."""

    priority: str
    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class Claim:
    """A form or a phrase that asks for a priority: a fixed one, or the one its `value`
    group names (an explicit claim)."""

    pattern: str
    reading: Reading
    priority: str = ""
    # Words of which the text must hold at least one for the pattern to stand a chance
    # (empty: no such words): a cheap look first, since most mails make no claim at all.
    needs: tuple[str, ...] = ()

    @property
    def explicit(self) -> bool:
        """The customer named the priority rather than told of an impact."""
        return not self.priority


# P0 is what many Chinese companies call their worst incidents: it is our P1.
LEVELS: tuple[Level, ...] = (
    Level(
        "P1",
        r"p[01]|s[01]|[01]|urgent|critical|blocker|emergency|highest|immediate|showstopper"
        r"|very high",
        r"十万火急|非常紧急|特别紧急|很紧急|特急|紧急|最高|极高|非常高|特别高|致命|阻塞",
    ),
    Level(
        "P2",
        r"p2|s2|2|high|major|important|serious|severe|elevated",
        r"比较紧急|较紧急|比较急|较急|比较高|较高|很高|高|严重|重要",
    ),
    Level("P3", r"p3|s3|3|normal|medium|moderate|standard|average", r"中等|一般|普通|正常|适中|中"),
    Level(
        "P4",
        r"p4|s4|4|lowest|low|minor|trivial|cosmetic|not urgent|no rush",
        r"不紧急|不急|较低|很低|最低|低|轻微|次要",
    ),
)


def values() -> str:
    """Every level's words as one alternation, longest first ("不紧急" before "紧急")."""
    words = [w for level in LEVELS for part in (level.en, level.zh) for w in part.split("|")]
    return "|".join(sorted(words, key=len, reverse=True))


VALUE = values()
LABEL = (
    r"(?:\b(?:priority|prio|severity|sev|urgency|impact)(?![a-z])"
    r"|优先级|紧急程度|严重程度|严重性|紧急度|影响程度)"
)
# Within a clause: no sentence or clause break.
GAP = r"[^,，、;；:：.。!！?？\n]"
WORD = r"[a-z'-]{1,15}"


def one_of(words: str) -> tuple[str, ...]:
    """`"a|b c"` as `("a", "b c")`: a list of words kept short."""
    return tuple(words.split("|"))


# The words of `Claim.needs`: a claim cannot stand where none of its words is written.
LABEL_WORDS = one_of("prio|sev|urgency|impact|优先级|紧急程度|严重程度|严重性|紧急度|影响程度")
P_TOKENS = ("p0", "p1", "p2", "p3", "p4")
EVERY_WORDS = ("everyone", "everybody", "all", "every", "100%")
WHO_WORDS = one_of(
    "user|customer|viewer|host|stream|broadcaster|audience|player|student|teacher"
    "|participant|subscriber|member|client|channel|room|call|session|class|region|people"
)
ZH_WHO_WORDS = one_of(
    "用户|观众|主播|客户|学生|老师|玩家|直播间|房间|频道|人|user|viewer|host|room|channel"
)
IMPACT_WORDS = ("impact", "affected", "scope", "影响范围", "影响用户")

# -- explicit ------------------------------------------------------------------------------

EXPLICIT: tuple[Claim, ...] = (
    Claim(
        rf"{LABEL}\s{{0,3}}(?:[:=]|-\s|–)\s{{0,3}}(?:is\s)?(?P<value>{VALUE})(?![a-z0-9])",
        Reading.FORM,
        needs=LABEL_WORDS,
    ),
    # "Our priority is high", "Sev2", "优先级很高": no separator, so it is prose.
    Claim(
        rf"{LABEL}\s{{0,3}}(?:is\s{{1,3}})?(?P<value>{VALUE})(?![a-z0-9])",
        Reading.STATEMENT,
        needs=LABEL_WORDS,
    ),
    # The subject's opening tag, after any reply or forward prefixes: "Fwd: P1 - ...".
    Claim(
        r"\A(?:\s?(?:re|fw|fwd|aw|回复|答复|转发)\s?:)*\s?(?P<value>p[0-4])(?=[\s:|–-])",
        Reading.FORM,
    ),
    Claim(r"[\[【(]\s?(?P<value>p[0-4]|sev\s?-?\s?[0-4])\s?[\])】]", Reading.STATEMENT),
    Claim(
        r"\b(?:this is|this's|it is|it's|that's|treat (?:this|it) as|mark(?:ed)? (?:this |it )?as"
        r"|set (?:this |it )?(?:to|as)|(?:raise|escalate) (?:this |it |this ticket |the ticket )?to"
        r"|consider (?:this |it )?(?:as )?|is a|as a)\s(?:an? )?(?P<value>p[0-4])(?![\w])",
        Reading.STATEMENT,
        needs=P_TOKENS,
    ),
    Claim(
        r"\b(?P<value>p[0-4]) (?:incident|issue|outage|bug|ticket|problem)s?\b",
        Reading.STATEMENT,
        needs=P_TOKENS,
    ),
    Claim(
        r"(?:是|属于|算|按|定为|作为|当作|当成)\s?(?:一个)?\s?(?P<value>p[0-4])(?![\w])",
        Reading.STATEMENT,
        needs=P_TOKENS,
    ),
    Claim(
        r"(?<![\w])(?P<value>p[0-4])\s?(?:级别?)?\s?(?:故障|事故|问题|bug|工单|事件)",
        Reading.STATEMENT,
        needs=P_TOKENS,
    ),
    Claim(
        r"\b(?P<value>urgent|critical|highest|high|medium|normal|lowest|low)[ -]priority\b",
        Reading.STATEMENT,
        needs=("priority",),
    ),
    Claim(r"(?P<value>最高|紧急|高|中|低)优先级", Reading.STATEMENT, needs=("优先级",)),
)

# -- implicit: who is hit, and how ---------------------------------------------------------

WHO = (
    r"(?:users?|customers?|viewers?|hosts?|streamers?|broadcasters?|audiences?|players?"
    r"|students?|teachers?|participants?|subscribers?|members?|clients?|channels?|rooms?"
    r"|(?:live ?)?streams?|calls?|sessions?|classes|regions?|people)"
)
FAIL = (
    r"(?:cannot|can't|can not|unable|couldn't|could not|fail\w*|affected|impacted|down"
    r"|broken|not working|stopped|disconnect\w*|dropp\w*|drops?|kicked|black|frozen|freez\w*"
    r"|stuck|crash\w*|lag\w*|stutter\w*|errors?|no (?:audio|video|sound|picture)|silent|lost"
    r"|losing|offline|time ?outs?|timing out|timed out|rejected|unavailable|inaccessible"
    r"|complain\w*|report\w*|hear nothing|see nothing)"
)
OWNER = r"(?: of)?(?: (?:our|the|my|your|its))?"
EVERY = rf"(?:everyone|everybody|(?:all|every|100% of){OWNER}(?: {WORD})? {WHO})"
MANY = (
    r"(?:many|most|lots of|a lot of|numerous|multiple|several|some|a large number of"
    r"|large numbers of|a number of|a significant number of|a growing number of|a majority of"
    r"|the majority of|half of|hundreds of|thousands of|dozens of|tens of thousands of"
    r"|(?:about |around |over |more than )?\d{2,}(?:,\d{3})*\+?"
    r"|(?:about |around |over )?\d{1,2}(?:\.\d+)?% of)"
    rf"{OWNER}(?: {WORD})? {WHO}"
)
HIT = rf"(?:{FAIL}|affect\w*|impact\w*|hits?|hitting)"
DOWN_WHAT = (
    r"(?:production|prod|everything|(?:our |the |your |whole |entire )?(?:app|application"
    r"|service|platform|site|website|product|live ?streams?|streams?|broadcasts?|live events?"
    r"|events?|servers?|api|cdn|system|backend))"
)
DOWN_VERB = (
    r"(?:is|are|was|were|went|go|goes|gone|has|have|been|being|still|now|currently"
    r"|completely|totally|entirely|all|fully|will)"
)
ZH_WHO = (
    r"(?:用户|观众|主播|客户|学生|老师|玩家|直播间|房间|频道|人"
    r"|users?|viewers?|hosts?|(?:live )?rooms?|channels?)"
)
ZH_FAIL = (
    r"(?:无法|不能|没法|不了|不上|不到|不来|不去|失败|卡顿|卡住|很卡|黑屏|花屏|掉线|断线|断开|崩溃"
    r"|闪退|挂了|报错|异常|受影响|听不|看不|进不|连不|登不|推不|拉不|打不开|用不了|没有声音|没声音"
    r"|没有画面|无声|延迟|超时|被踢|crash|fail|lag|error)"
)
ZH_ALL = r"(?:全部|所有|全体|全量|整个)"
ZH_MANY = (
    r"(?:大量|很多|许多|大批|大部分|大多数|多数|一部分|部分|不少|好多|一些|有些|相当多"
    r"|\d{2,}\s?(?:个|位|名|多个)?|\d{1,2}%\s?)"
)
DEADLINE_WHAT = r"(?:上线|发版|发布|上架|交付|验收|演示|release|launch|go[- ]?live|demo)"
WHEN = (
    r"(?:tomorrow|today|tonight|this (?:week|weekend|\w+day)|next (?:week|\w+day)|on \w+day"
    r"|in (?:\d{1,2}|an?|one|two|three|a few|few) (?:hours?|days?|minutes?))"
)
ZH_WHEN = (
    r"(?:今天|今晚|明天|明早|明晚|后天|本周|这周|下周[一二三四五六日天]?|周[一二三四五六日末]"
    r"|马上|即将)"
)

IMPLICIT: tuple[Claim, ...] = (
    # -- P1: a total failure
    Claim(rf"\b{EVERY}\b{GAP}{{0,40}}?\b{FAIL}", Reading.FAILURE, "P1", needs=EVERY_WORDS),
    Claim(
        rf"\b{HIT}\b{GAP}{{0,30}}?\b(?:for |to |across |in |on )?{EVERY}\b",
        Reading.FAILURE,
        "P1",
        needs=EVERY_WORDS,
    ),
    Claim(
        rf"\b(?:nobody|no one|no-one|none of (?:our|the|my) [a-z]+)(?: {WORD}){{0,2}}?"
        r" (?:can|could|is able|are able|was able|were able|manages?|succeeds?)\b",
        Reading.FAILURE,
        "P1",
        needs=("nobody", "no one", "no-one", "none of"),
    ),
    Claim(
        rf"\b{DOWN_WHAT}\b(?:(?: {WORD}){{0,2}}? {DOWN_VERB}(?: {DOWN_VERB}){{0,2}})?"
        r" down\b(?! to)",
        Reading.FAILURE,
        "P1",
        needs=("down",),
    ),
    Claim(
        r"\b(?:outages?|blackout)\b|\b(?:production|prod) (?:incident|emergency)\b",
        Reading.FAILURE,
        "P1",
        needs=("outage", "blackout", "incident", "emergency"),
    ),
    Claim(
        rf"\b(?:service|api|servers?|platform|system|backend)\b(?: {WORD}){{0,3}}?"
        r" (?:unavailable|inaccessible|unreachable)\b",
        Reading.FAILURE,
        "P1",
        needs=("unavailable", "inaccessible", "unreachable"),
    ),
    Claim(rf"\bwidespread(?: {WORD}){{0,2}}? {HIT}", Reading.FAILURE, "P1", needs=("widespread",)),
    Claim(
        rf"{ZH_ALL}(?:的)?\s?{ZH_WHO}{GAP}{{0,12}}?{ZH_FAIL}",
        Reading.FAILURE,
        "P1",
        needs=("全部", "所有", "全体", "全量", "整个"),
    ),
    Claim(
        rf"(?:{ZH_WHO}|线上|生产环境|现网)\s?(?:都)?(?:全部|全都|全)(?:都)?\s?{ZH_FAIL}",
        Reading.FAILURE,
        "P1",
        needs=("全",),
    ),
    Claim(
        r"(?:线上|生产(?:环境)?|现网|重大)\s?(?:事故|故障|宕机|瘫痪|全挂|挂了|崩了|outage)"
        r"|宕机|瘫痪|大面积|大范围|服务[^,，。!！?？\n]{0,6}?不可用"
        r"|(?:服务|服务器|直播|平台|系统)(?:全部|全都|都)?(?:挂了|挂掉了|down了)",
        Reading.FAILURE,
        "P1",
        needs=one_of("线上|生产|现网|重大|宕机|瘫痪|大面积|大范围|服务|直播|平台|系统"),
    ),
    Claim(
        r"(?:\bimpact|\baffected(?: users)?|\bscope|影响范围|影响用户)\s?[:=]\s?"
        r"(?:all\b|everyone|100%|全部|所有|全量|全体)",
        Reading.FAILURE,
        "P1",
        needs=IMPACT_WORDS,
    ),
    # -- P2: many, but not all
    Claim(rf"\b{MANY}\b{GAP}{{0,40}}?\b{FAIL}", Reading.FAILURE, "P2", needs=WHO_WORDS),
    Claim(
        rf"\b{HIT}\b{GAP}{{0,30}}?\b(?:for |to |across |in |on )?{MANY}\b",
        Reading.FAILURE,
        "P2",
        needs=WHO_WORDS,
    ),
    Claim(
        rf"{ZH_MANY}(?:的)?\s?{ZH_WHO}{GAP}{{0,12}}?(?:{ZH_FAIL}|反馈|投诉)",
        Reading.FAILURE,
        "P2",
        needs=ZH_WHO_WORDS,
    ),
    Claim(
        r"大量(?:的)?\s?(?:投诉|反馈|报错|卡顿|掉线|崩溃|crash)",
        Reading.FAILURE,
        "P2",
        needs=("大量",),
    ),
    Claim(
        r"(?:\bimpact|\baffected(?: users)?|\bscope|影响范围|影响用户)\s?[:=]\s?"
        r"(?:many|most|some|multiple|several|部分|大量|很多|多数|大部分|一些)",
        Reading.FAILURE,
        "P2",
        needs=IMPACT_WORDS,
    ),
    # -- P2: a release or an event at stake
    Claim(
        rf"\b(?:block(?:s|ed|ing)?|blocker for|hold(?:s|ing)? up|delay(?:s|ing)?|jeopardi[sz]\w*)\b"
        rf"(?: {WORD}){{0,3}}? (?:release|launch|go-?live|go live|rollout|roll-out|deployment"
        r"|submission|delivery|demo|event)\b",
        Reading.DEADLINE,
        "P2",
        needs=("block", "hold", "delay", "jeopardi"),
    ),
    Claim(
        r"\b(?:release|launch|go-?live|go live|rollout|event|demo)\b"
        r" (?:is |was |has been |are )?(?:blocked|on hold|delayed|at risk)\b",
        Reading.DEADLINE,
        "P2",
        needs=("blocked", "on hold", "delayed", "at risk"),
    ),
    Claim(
        r"\b(?:go(?:ing)?[- ]live|launch(?:ing|es)?|releas(?:e|ing)(?! notes)|ship(?:ping)?"
        rf"|deadline|demo|live event|event|launch date|release date)\b(?: {WORD}){{0,4}}? {WHEN}\b",
        Reading.DEADLINE,
        "P2",
    ),
    Claim(
        r"\b(?:concert|show|broadcast|webinar|live ?stream|stream|match|game|tournament"
        r"|conference|class|lecture|event|launch|premiere)\b"
        rf" (?:starts|begins|kicks off|goes live|is scheduled|airs)\b(?: {WORD}){{0,2}}? {WHEN}\b",
        Reading.DEADLINE,
        "P2",
        needs=("starts", "begins", "kicks off", "goes live", "is scheduled", "airs"),
    ),
    Claim(
        rf"(?:影响|阻塞|阻碍|卡住|耽误|拖延|延误|block\s?了?|blocking|挡住){GAP}{{0,8}}?{DEADLINE_WHAT}"
        r"|(?:无法|没法|不能)(?:按时|如期)?(?:上线|发版|上架)|上不了线|上线在即"
        r"|(?:上线|发版)(?:要)?(?:延期|推迟)|(?:延期|推迟)上线",
        Reading.DEADLINE,
        "P2",
        needs=one_of(
            "影响|阻塞|阻碍|卡住|耽误|拖延|延误|block|挡住|无法|没法|不能|上不了线|上线|发版|延期|推迟"
        ),
    ),
    Claim(
        rf"{ZH_WHEN}(?:就)?(?:要)?{GAP}{{0,6}}?(?:{DEADLINE_WHAT}|开播|直播)",
        Reading.DEADLINE,
        "P2",
        needs=("今天", "今晚", "明天", "明早", "明晚", "后天", "周", "马上", "即将"),
    ),
)

# -- what takes a claim away ---------------------------------------------------------------

NEGATION = (
    r"\b(?:not|no|never|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|won't|hasn't|haven't"
    r"|without|nor|neither)\b"
    r"|(?:不是|并非|并不|没有|没|未|不会|不算|不属于|不)\s?(?:出现|发生|造成|导致|是|算|属于|会)?\s?$"
)
# A condition or a possibility before the claim in its sentence. Courtesy ("would
# appreciate", "could you") is not a condition.
CONDITION = (
    r"\b(?:if|whether|in case|unless|would(?! (?:appreciate|like|be grateful|be great))"
    r"|could(?! not| you)|might|may(?! \d)|will(?! you)|shall|is it possible|what if"
    r"|what happens|how (?:do|does|can|should|would|to|quickly|fast|long|soon)"
    r"|prevent\w*|avoid\w*|worried|afraid|concerned)\b"
    r"|如果|假如|假设|万一|要是|会不会|是否|是不是|可能会|有没有可能|以防|防止|避免|担心|的话|怎么办"
)
# A sentence about service levels names priorities without claiming one.
SERVICE_LEVEL = r"\bsla\b|response times?|\bdefin\w*|响应时间|响应时效|定义"
# A clause that asks ("Outage?", "宕机了吗？") unless it asks why or what of a fact it states.
ASKED = r"(?:[?？]|[吗么嘛]\s?[?？]*)\s*$"
WH_QUESTION = r"^\s*(?:why|what|how|when|where|who|which)\b|为什么|怎么|什么|如何|哪"
TEST_ENVIRONMENT = (
    r"\b(?:test|testing|staging|dev|development|qa|uat|sandbox)\s?(?:env\w*|环境|server|cluster)"
    r"|\bstaging\b|\bsandbox\b|\bpre-?prod\w*|测试环境|开发环境|测试服|预发|沙箱"
)
PRODUCTION = r"\b(?:production|prod|live)\b|线上|生产|正式环境|现网"
RECOVERED = (
    r"\b(?:recovered|resolved|back to normal|working again|works again|fixed now)\b"
    r"|已恢复|已经恢复|恢复正常|已经正常|已解决|已经解决|已修复"
)

# -- what is not the customer's prose ------------------------------------------------------

SKIPPED_LINE = (
    r"^(?:[ \t]*>"
    r"|[ \t]*[\[(]?\d{4}[-/.]\d{1,2}[-/.]\d{1,2}[ t_]\d{1,2}:\d\d"
    r"|[ \t]*\d\d-\d\d\s{1,4}\d\d:\d\d:\d\d"
    r"|[ \t]*[\[(]?\d{1,2}:\d\d:\d\d(?:[.,:]\d{1,6})?[\])]?\s"
    r"|[ \t]*[vdiwef]/[\w.$-]{1,60}\s?(?:\(\s?\d+\))?:"
    r"|[ \t]*\[(?:info|warn|warning|error|debug|verbose|fatal|trace|[iwedvf])\]"
    r"|[ \t]*\d{10,13}[\s,|]"
    r"|[ \t]*at [\w.$<>]+\("
    r"|[ \t]*(?:caused by:|fatal exception|\*\*\* \*\*\*|#\d{1,3} pc |traceback \(most recent)"
    r"|[ \t]*\d{1,3} +[\w.+-]+ +0x[0-9a-f]+"
    r"|[ \t]*(?:[a-z_$][\w$]*\.){2,}[\w$]*(?:exception|error)\b"
    r"|[ \t]*file \"[^\"\n]+\", line \d+"
    r").*$"
)

# Traditional characters of the words above, and their simplified forms, one for one.
TRADITIONAL = (
    "優級緊嚴線戶無進間敗錯誤碼觀眾個務響應發佈環產斷連聽見聲畫還掛當機癱瘓試測開現網題問為屬復決沒並會將馬週這後範圍積許數較設擔頓閃潰報異麼嗎辦別們時",
    "优级紧严线户无进间败错误码观众个务响应发布环产断连听见声画还挂当机瘫痪试测开现网题问为属复决没并会将马周这后范围积许数较设担顿闪溃报异么吗办别们时",
)
