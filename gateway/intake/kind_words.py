"""What a report is about, as rows of regular expression fragments written in lower case:
the words of each kind (account, crash, quality, how-to), a crash in a log, the features
named with a symptom's word, questions about making something better, negations, the
subjects of feedback and business, and the topics a symptom's word also names.

Part of the intake's word tables (`patterns`), kept apart for their length; the same rules
hold: each row is in English and in Chinese, no row crosses a line or repeats without a
bound.
"""

from __future__ import annotations

from gateway.intake.facts import Kind
from gateway.intake.patterns import Words

KIND_WORDS: dict[Kind, Words] = {
    Kind.ACCOUNT: Words(
        # "Bill" alone signs many mails: the bill is "the bill", "our bill", "bills".
        r"billing|bills|billed|the bill|our bill|my bill|this bill|monthly bill|last bill|invoices?"
        r"|payments?|refunds?|charged|overcharged|pricing|waive\w{0,2}"
        r"|contracts?|quota|subscription plan|free minutes|usage (?:fee|bill|statement)"
        r"|credit card|top[- ]?up|recharge|account balance|arrears|overdue"
        r"|(?:log ?in|sign ?in|access)(?: to| into)? (?:my |our |the )?(?:developer |web )?"
        r"(?:account|console|dashboard)"
        r"|unexpected usage|abnormal usage|unusual usage|monthly usage|our usage|my usage"
        r"|usage (?:spike|surge|jump|breakdown)"
        r"|account (?:is |was |has been |got )?(?:locked|suspended|disabled|banned|frozen|deleted"
        r"|blocked|closed)|reset (?:my |our |the )?password|console access"
        r"|(?:transfer|close) (?:my |our |the )?account|how much (?:does|do|is|will|would)"
        r"|cost per|price per",
        r"发票|账单|充值|合同|用量|计费|扣费|付款|退款|欠费|余额|续费|套餐|价格|报价|对账|开票|收费|费用"
        r"|账号(?:被)?(?:封|冻结|锁定|停用|注销|登录不了|无法登录|登不上)|账户|控制台登录|免费额度|额度",
    ),
    Kind.CRASH: Words(
        r"crash(?:es|ed|ing)?|anr|not responding|exceptions?|fatal|sigsegv|sigabrt|segfault"
        r"|error ?codes?|errorcode|err(?:or)? ?-?\d{1,6}|errors?|hangs?(?! up)|hung(?! up)|deadlock"
        r"|(?:app|application|ui|whole app|program|game)"
        r" (?:freezes?|froze|frozen|hangs|stuck|is stuck|closes|closed|quits|exits|shuts down)"
        r"|isn't responding|is not responding|wasn't responding"
        r"|join(?:ing)?(?: the)?(?: channel)? fail(?:s|ed|ure)?|fail(?:s|ed)? to (?:join|publish"
        r"|push|pull|log ?in|connect|initiali[sz]e|init|start|load|enter)"
        r"|(?:cannot|can't|unable to|could not|couldn't) (?:join|connect|log ?in|publish|enter)"
        r"|initiali[sz]ation fail\w*|force close|stack ?trace|tombstone|abort(?:s|ed)?"
        r"|disconnect(?:s|ed|ion)?|call drops?|drops? the call|connection (?:lost|drops?)"
        r"|time ?outs?|timed out|kicked out"
        # An attached crash report, by its name: "MyApp-2026-12-04-221530.ips" ("x.crash"
        # is read as "crash").
        r"|(?<=\.)ips",
        r"闪退|崩溃|崩了|卡死|报错|错误码|错误|异常退出|加入失败|进房失败|推流失败|拉流失败|掉线|断线|超时|被踢"
        r"|初始化失败|登录失败|连接失败|无响应|死机|无法加入|进不去|失败|(?:app|应用|程序)卡住"
        r"|(?:app|应用|程序)(?:自动)?(?:退出|关闭)了",
    ),
    Kind.QUALITY: Words(
        r"no (?:sound|audio|voice|video|picture|image)"
        r"|(?:can't|cannot|can not|couldn't) (?:hear|see)"
        r"|silent|mute[ds]? (?:audio|sound)|echo(?:es|ing)?|lag(?:s|gy|ging)?|stutter\w*"
        r"|goes black|going black|went black|turns black|turned black|stays black"
        r"|latency|delay(?:s|ed)?|black (?:screen|video|frames?)|(?:video|picture|image|stream"
        r"|screen|frames?) (?:freezes|froze|frozen|stuck|flicker\w*)"
        r"|frozen (?:video|picture|frames?)"
        r"|freez\w* (?:video|picture|frames?)|mosaic|pixelat\w*|green screen|blurr?y"
        r"|blur|out of sync|lip[- ]sync|choppy|robotic|noise|noisy|distort\w*|jitter\w*"
        r"|packet loss|low (?:volume|quality|frame ?rate|resolution|fps)"
        r"|(?:audio|video|sound) quality"
        r"|fps drops?|frame drops?|buffering|one[- ]way audio|poor quality|quality issue"
        r"|cut(?:s|ting)? out|drop(?:s|ping)? out|drift\w{0,3} (?:ahead|behind|apart|out)"
        r"|too quiet|very quiet|(?:lips?|mouths?) (?:clearly )?(?:don't|doesn't|do not) match"
        r"|visual artifacts?|video artifacts?|compression artifacts?|blocky artifacts?",
        r"没有声音|没声音|无声|听不到|听不见|看不到(?:画面|对方|视频)?|回声|回音|卡顿|很卡|有点卡|特别卡"
        r"|一卡一卡|延迟|延时|黑屏|画面卡住|画面冻结|卡帧|花屏|绿屏|模糊|不清晰|清晰度|音画不同步"
        r"|不同步|断断续续|杂音|噪音|电流声|爆音|音质|画质|帧率低|掉帧|丢包|单通|失真"
        r"|白屏|马赛克|啸叫|声音小|声音很小|声音太小|声音特别小|声音有点小|音量小|音量很小|音量太小"
        r"|很小声|很糊|太糊|特别糊|有点糊"
        r"|糊了|发糊|看不清|画面冻住|画面定住|画面卡在|画面不动",
    ),
    Kind.HOWTO: Words(
        r"how (?:to|do|does|can|could|should|would)|is it possible|any way to|do you support"
        r"|is there (?:a|an|any|some|something|anything|other|plans?|no)"
        r"|are there (?:any|some|other|plans?|no)"
        r"|what(?:'s| is| are) the (?:minimum|maximum|best|lowest|recommended|typical|limit)"
        r"|recommend(?:ed|ation)?|evaluating|do you (?:have|provide|offer)"
        r"|does (?:the|your) (?:[\w-]+ ){0,2}(?:sdk|api|plugin|service|product) support"
        r"|can (?:the|your) (?:sdk|api)|can (?:i|we)|is it supported|supported\?|best practice"
        r"|any (?:sample|example|demo|docs?|documentation|guide)|where can i find|what is the best",
        r"如何|怎么|怎样|是否支持|能否|能不能|可不可以|可以吗|支持吗|有没有(?:办法|接口|api|示例|文档|demo)"
        r"|请问|最佳实践|有没有什么方法|求教|咨询|要不要|需不需要|是否需要|还是要|可否|是否支援|支援吗",
    ),
}
# A log that tells of a crash when the mail says nothing: an uncaught exception, a fatal
# signal, an iOS crash report's or a tombstone's own lines.
LOG_CRASH = (
    r"terminating app due to uncaught exception|fatal exception|uncaught exception"
    r"|^exception type:|^crashed thread:|fatal signal \d|\bsig(?:segv|abrt|bus|ill)\b"
    r"|exc_bad_access|exc_crash|^\*\*\* \*\*\* \*\*\*"
)
# Features named with a symptom's word: "echo cancellation" is a question, not an echo.
FEATURE_WORDS = (
    r"\b(?:echo cancel\w*|acoustic echo|noise (?:suppression|reduction|cancel\w*)|aec|ans|agc"
    r"|low[- ]latency (?:mode|live|streaming|profile)|crash (?:report\w*|log\w*|collect\w*))\b"
    # A virtual background is a feature, with its blur: "virtual background (blur or image)".
    r"|\b(?:virtual backgrounds?(?: \([^)\n]{0,40}\))?|background blur\w*"
    r"|blur\w* (?:the )?background)"
    r"|降噪|回声消除|超低延迟|极速直播|低延迟模式|崩溃(?:收集|上报|日志)"
    r"|虚拟背景(?:\([^)\n]{0,40}\))?|背景模糊|模糊背景"
)
# A question about making something better is a how-to, not a symptom: "how can we reduce
# the latency?", "如何降低延迟" (but "how to fix the echo?" reports one).
OPTIMISING = (
    r"\b(?:minimum|lowest|least|maximum|best|typical|expected|average) (?:\w+ )?(?:latency|delay"
    r"|resolution|quality|frame ?rate|bitrate)|最低延迟|最小延迟|延迟(?:最低)?能(?:做到|达到)"
    r"|(?:\bhow\b|\bcan we\b|\bis it possible\b|\bany way\b|如何|怎么|怎样|是否|能否|有没有办法)"
    r"[^\n?。]{0,40}?(?:\breduce|\blower|\bimprove|\bminimi[sz]e|\boptimi[sz]e|\bincrease|\bachieve"
    r"|降低|减少|优化|提高|提升|改善|做到)[^\n?。,]{0,40}"
)
# A negation just before a word undoes it: "no crash", "没有回声", "without lag", and in
# Chinese across what was looked for: "没有看到明显的报错", "未发现任何异常".
NEGATION = (
    r"(?:\b(?:no|not|never|without|nor|don't|doesn't|didn't|isn't|wasn't|won't|no more)"
    r"\s(?:\w+\s)?|(?:没有|没|不会|不|无|未|并未|不再)"
    r"(?:看到|看见|发现|出现|收到|遇到|碰到|任何|什么|明显|相关|提示|的|过){0,4})$"
)
# A subject that names the mail as feedback or business, not a report or a question: a
# feature request, a suggestion, a mistake in the docs or samples, a partnership.
FEEDBACK_SUBJECT = Words(
    r"feature requests?|suggestions?|proposals?|partnerships?|co-marketing|case study|reseller"
    r"|(?:docs?|documentation|sample|example|demo)(?: \w+){0,3} (?:typos?|mistakes?|is wrong"
    r"|are wrong|outdated|out of date|(?:does not|doesn't|won't) (?:build|compile))",
    r"功能建议|产品建议|改进建议|小建议|一点建议|的意见|合作|客户案例|定制开发|私有化部署|代理商"
    r"|(?:文档|示例|demo|sample)[^\n,。]{0,12}?(?:写错|有误|有错误|写反|过时|编译不过|编译报错)",
)
# Symptoms' words that also name a topic: a subject of one word ("Latency") may be a question.
TOPIC_WORDS = (
    r"latency|delay|echo|noise|quality|lag|jitter|packet loss|frame ?rate|resolution"
    r"|延迟|延时|回声|回音|噪音|画质|音质|清晰度|丢包|帧率"
)
