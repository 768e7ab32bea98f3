"""The words the intake reads facts by: one table per fact, each row one thing in English and
in Chinese, so a new platform, device brand or phrasing is one line here.

Every row is a regular expression fragment, written in lower case: the readers match a
lower-cased copy of the text (offsets unchanged, so values are cut from the text as
written), which lets the regular expression engine skip ahead on literal prefixes that a
case-blind pattern would try at every position. Word boundaries are ASCII (`re.ASCII`), so
`\\b` falls between "h5" and "页面". The text is NFKC-folded first: full-width colons,
commas, digits and letters are ASCII by then. No row crosses a line break or repeats a
repetition without a bound, so reading is linear in the (bounded) text.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.intake import devices
from gateway.intake.facts import Fact


@dataclass(frozen=True, slots=True)
class Words:
    """One thing as written in English and in Chinese: regular expression alternatives."""

    en: str
    zh: str = ""

    def pattern(self) -> str:
        """Both languages as one alternation. English words start at a word boundary and
        end before any letter, so "iOS17.2", "Win11" and "SDK4.0.6" are read."""
        english = rf"\b(?:{self.en})(?![A-Za-z_])" if self.en else ""
        return "|".join(part for part in (english, self.zh) if part)


@dataclass(frozen=True, slots=True)
class PlatformWords:
    """A platform by its canonical name; a framework wins over the system it runs on."""

    name: str
    framework: bool
    words: Words


@dataclass(frozen=True, slots=True)
class SystemWords:
    """An operating system with a version: its canonical name, the platform it is, its
    names, and the numbers its versions have."""

    name: str
    platform: str
    words: Words
    number: str


# -- platform ------------------------------------------------------------------------------

PLATFORMS: tuple[PlatformWords, ...] = (
    PlatformWords("Flutter", True, Words(r"flutter")),
    PlatformWords("React Native", True, Words(r"react[ -]?native|rn")),
    PlatformWords("Unity", True, Words(r"unity(?:3d)?")),
    PlatformWords("Electron", True, Words(r"electron")),
    PlatformWords("uni-app", True, Words(r"uni[- ]?app|uniapp")),
    PlatformWords(
        "Mini Program",
        True,
        Words(r"mini[- ]?programs?|weapp|miniapp", r"小程序"),
    ),
    PlatformWords("HarmonyOS", False, Words(r"harmony ?os|openharmony|arkts|arkui", r"鸿蒙")),
    PlatformWords("Android", False, Words(r"android", r"安卓")),
    PlatformWords("iOS", False, Words(r"ios|ipados|iphone ?os", r"苹果(?!电脑|笔记本|mac)")),
    PlatformWords(
        "Web",
        False,
        Words(r"web(?! ?(?:console|portal|site|page of))|h5|html5|browsers?", r"浏览器|网页"),
    ),
    PlatformWords("Windows", False, Words(r"windows|win ?(?:7|8|10|11)|win32", r"pc端")),
    PlatformWords("macOS", False, Words(r"mac ?os(?: ?x)?|osx|mac(?! ?address)", r"苹果电脑")),
    PlatformWords("Linux", False, Words(r"linux|ubuntu|centos|debian")),
)
# Names that imply a platform without naming it: a phone of one system, a browser.
IMPLIED_PLATFORMS: dict[str, Words] = {
    "iOS": Words(r"iphone|ipad", r"苹果手机"),
    "Web": Words(
        r"chrome|safari|firefox|microsoft edge|edge browser|edge \d{2,3}",
        r"微信浏览器|谷歌浏览器",
    ),
    "macOS": Words(r"macbook|imac|mac ?mini"),
    "Android": Words(
        r"xiaomi|redmi|huawei|honor|oppo|vivo|oneplus|samsung|galaxy|pixel|meizu|realme"
        r"|nexus|iqoo|tecno|infinix|motorola|xperia|nokia|zte|nubia|sm-[a-z]\d{3}",
        r"小米|红米|华为|荣耀|一加|三星|魅族|真我",
    ),
}
# After a platform's name, words that make it the SDK's flavour ("Android SDK", "iOS端").
PLATFORM_FLAVOUR = r"\s?(?:sdk|app|apps|demo|project|client|端|客户端|版|工程|项目|应用)"

# -- operating system and version -----------------------------------------------------------

OS_SYSTEMS: tuple[SystemWords, ...] = (
    SystemWords(
        "Android",
        "Android",
        Words(r"android(?: ?os)?", r"安卓(?:系统)?"),
        r"(?:[4-9]|1\d)(?:\.\d)?",
    ),
    SystemWords("iPadOS", "iOS", Words(r"ipad ?os"), r"(?:1[3-9]|2\d)(?:\.\d{1,2}){0,2}"),
    SystemWords(
        "iOS", "iOS", Words(r"ios|iphone ?os", r"苹果系统"), r"(?:9|1\d|2\d)(?:\.\d{1,2}){0,2}"
    ),
    SystemWords(
        "HarmonyOS",
        "HarmonyOS",
        Words(r"harmony ?os(?: next)?|openharmony", r"鸿蒙(?:系统|os)?(?: ?next)?"),
        r"[1-6](?:\.\d{1,2}){0,2}",
    ),
    SystemWords("Windows", "Windows", Words(r"windows|win"), r"7|8\.1|8|10|11"),
    SystemWords(
        "macOS",
        "macOS",
        Words(r"mac ?os(?: ?x)?(?: [a-z]{4,10})?|os ?x"),
        r"(?:10\.1?\d|1[1-9]|2\d)(?:\.\d{1,2}){0,2}",
    ),
    SystemWords("Ubuntu", "Linux", Words(r"ubuntu"), r"(?:1\d|2\d)\.\d\d(?:\.\d)?"),
    SystemWords("CentOS", "Linux", Words(r"centos"), r"[6-9](?:\.\d{1,2})?"),
    SystemWords("Debian", "Linux", Words(r"debian"), r"9|1\d"),
)
# Between a system's name and its number: "Android 14", "Android version 14", "安卓版本13".
OS_GAP = r"[ :=]{0,3}(?:version|ver\.?|版本号?|系统)?[ :=v]{0,3}"
# A system's number as written, before its own row says whether it is one.
OS_NUMBER = r"\d{1,2}(?:\.\d{1,2}){0,2}"
# A labelled bare number ("OS version: 17.1.2", "系统版本：14"): the system is the platform's.
OS_LABEL = r"(?:\bos(?: version)?|\bsystem(?: version)?|系统版本|系统)[ \t]?[:=][ \t]?v?"
# Lines about the build machine, not the device with the problem: "Xcode 15, macOS 13.5".
TOOLCHAIN = Words(
    r"xcode|android studio|visual studio|gradle|cocoapods|flutter doctor|build machine"
    r"|dev(?:elopment)? machine|node(?:js)?",
    r"开发环境|编译环境|开发机",
)

# -- device ---------------------------------------------------------------------------------

# The table of models is `devices.DEVICES`; what names no one model is `GENERIC_DEVICES`.
DEVICES = devices.DEVICES
GENERIC_DEVICES = devices.GENERIC_DEVICES

# -- the SDK version ------------------------------------------------------------------------

# A version number: two to four parts, an optional "v", a pre-release suffix left aside.
# It starts with its digits, so the engine skips to digits; a "v" before it and what may
# not stand before it (a digit, ".", "_", "-", "/") are read by `versions`.
VERSION = (
    r"(?P<number>\d{1,3}(?:\.\d{1,6}){1,3})(?![0-9])(?!\.[0-9x*])"
    r"(?P<suffix>[-_.+ ]?(?:beta|alpha|rc|preview|release|snapshot|dev)[.\-]?\d{0,3})?"
)
# What may not stand right before a version (after its "v"): it would be part of another.
NOT_BEFORE_VERSION = "0123456789_.-/\\"
# Words a version belongs to, nearest first wins: ours, someone else's, or a move to it.
VERSION_OWNERS: dict[str, Words] = {
    # Our SDK by its words and its product names; a Flutter or React Native package of ours.
    "sdk": Words(
        r"[a-z0-9_-]*(?:agora|zego|trtc|liteav|tencentrtc)[a-z0-9_-]*|sdk[_ -]?(?:version|ver)?"
        r"|sdkversion|sdk_ver|rtc(?:[ _]?engine)?|rtm|rtcengine|express(?: engine)?|im sdk",
        r"声网|即构|腾讯云|(?:语音|音视频|rtc)插件|音视频(?:sdk)?|sdk|引擎",
    ),
    # Someone else's version: the app, the system, the browser, a library, a toolchain.
    "other": Words(
        r"apps?|application|apk|android|ios|iphone|ipad|ipados|macos|mac|osx|windows|win"
        r"|linux|ubuntu|centos|harmony ?os|os|system|firmware|kernel|chrome|chromium|safari"
        r"|firefox|edge|browser|webview|wechat|flutter|dart|unity|electron|node(?:js)?|npm"
        r"|react(?:[ -]native)?|vue|uni[- ]?app|taro|xcode|gradle|kotlin|java|jdk|swift"
        r"|python|cocoapods|pods?|ffmpeg|webrtc|openssl|cmake|ndk|gcc|clang|qt|obs|api"
        r"|plugin|build|protocol|http|tls|ssl|cuda|directx|opengl|vulkan|metal",
        r"应用|客户端|系统|安卓|鸿蒙|浏览器|微信|基础库|固件|内核|插件|我们的app",
    ),
    # "upgraded to", "we are on", "升级到": the version the customer is on now.
    "move": Words(
        r"(?:upgrad|updat|bump|switch|migrat|mov)\w{0,5}(?: [\w .]{0,30}?\bto)?|from [\w.]{1,12} to"
        r"|we(?:'re| are)(?: now)? on|now on|(?:are|am) using|using|use|on version|installed",
        r"升级(?:到|至|为|成)?了?|升(?:到|至)了?|更新(?:到|至|为|成)?了?|换成|换到|用的(?:都|也)?是|使用的是"
        r"|用的|使用|集成了?",
    ),
    # A version left behind: "from 4.0.5", "降级到", "回退到".
    "old": Words(
        r"from|downgrad\w{0,5}(?: [\w ]{0,20}?\bto)?|roll(?:ed|ing)? back(?: to)?"
        r"|revert\w{0,3}(?: to)?",
        r"从|降级(?:到|至)?|回退(?:到|至)?|退回(?:到|至)?",
    ),
    # A bare label: "Version: 4.0.6", "版本号：4.0.6".
    "label": Words(r"version|ver", r"版本号|版本"),
}
# "<X> SDK" that is someone else's: Flutter's, Unity's, the Windows SDK. A system's own SDK
# ("Android SDK 34.0.0", "iOS SDK 17.2") is told from ours by its larger numbers.
SDKS_OF_OTHERS = Words(
    r"flutter|dart|unity|electron|node(?:js)?|java|jdk|windows|dotnet|firebase|facebook"
    r"|google|wechat|aws|azure|\.net"
)
# Our SDK's flavours as they follow its name: "SDK iOS 4.2.2", "SDK for Android v4.0.6".
SDK_PLATFORMS = Words(r"android|ios|web|windows|macos|mac|linux|electron|harmony ?os", r"安卓|鸿蒙")
# Frameworks and systems we ship a flavour for: "Unity SDK 4.2.6" is ours, while their own
# makers' SDKs have larger numbers ("Windows SDK 10.0.22621", "Unity 2022.3").
FLAVOURED_SDKS = Words(r"unity|electron|windows")
OUR_MAJOR_LIMIT = 10
# After our SDK's package name, a word for the package itself: "agora_rtc_engine plugin 6.2.6".
SDK_PACKAGE = Words(r"plugin|package|pod|module", r"插件")
# The customer's own app: "our App, version 2.8.5" labels the app's version, comma or not.
OWN_APP = Words(r"apps?|application|apk", r"(?:我们的)?(?:应用|客户端|app)")
# Frameworks whose plugin a customer names is ours: "Flutter plugin 6.3.0", "uni-app 插件 2.1.5".
PLUGIN_HOSTS = Words(r"flutter|react[ -]?native|unity|uni[- ]?app|electron|cordova|capacitor")
SYSTEMS_WITH_SDKS = Words(r"android|ios|ipados|macos|mac|harmony ?os", r"安卓|鸿蒙")
SYSTEM_SDK_MAJOR = 14
# What may stand between an owner and its version: "SDK version: v", "SDK 版本号是".
VERSION_GAP = (
    r"(?:[\s:=()\[\]【】（）\"'“,]|\bversion\b|\bver\b|\bis\b|\bnow\b|\bof\b|\bat\b|\bto\b"
    r"|版本号?|号|是|为|的|了|到)*"
)
# Our SDK's flavours before its name: "4.0.9 of the Android SDK", "4.1.0的Windows SDK"
# (not Flutter: "3.16 of the Flutter SDK" is Flutter's own).
SDK_FLAVOUR = r"(?:(?:android|ios|web|windows|macos|linux|unity|electron|rtc|video|voice) ?)?"
# After a version, words that give it to our SDK or to something else.
VERSION_AFTER: dict[str, str] = {
    "sdk": (
        rf"^\s?(?:(?:version )?of (?:the |your |our )?{SDK_FLAVOUR}sdk|sdk|版本的?sdk"
        rf"|的 ?{SDK_FLAVOUR}sdk)"
    ),
    "other": (
        r"^\s?(?:\(?(?:app|apk|应用|客户端)|版本的?(?:app|应用)"
        r"|(?:of|for) (?:our|the|my) (?:app|application|game|client|website))"
    ),
    # A version left behind for the next: "4.1.1 to 4.2.0", "4.1.1 -> 4.2.0", "4.1.1升级到4.2.0".
    "old": r"^\s?(?:to|->|→|=>|(?:升级|升|更新|换)?(?:到|至)了?)\s?v?\d",
}
# Units after a number that make it a measure, not a version: "1.5 s", "2.5 Mbps".
MEASURE = (
    r"^\s?(?:ms|s|sec|secs|seconds?|mins?|minutes?|hours?|mb|kb|gb|%|x|fps|kbps|mbps|hz|k|m"
    r"|秒|分钟|倍|小时)\b"
)

# -- labelled values: App ID, channel, user ID ----------------------------------------------

# "is", "=", ":", "是", "为" between a label and its value.
# A form's closing bracket ("【频道】：") or a table's column ("| Channel | x |", "App ID    x")
# may come between them too.
VALUE_SEPARATOR = (
    r"[】\])]?[ \t|]{0,24}(?:[:=]|\b(?:is|was)(?: always| fixed (?:to|at|as))?\b"
    r"|\bnamed\b|\bcalled\b|(?:固定)?(?:是|为|為))?[ \t|]{0,24}[\"'“`]?"
)
# A separator that says a value follows: a colon, "is", a quote, or a table's column.
EXPLICIT_SEPARATOR = r"[:=是为為|\t\"'“`]|\bis\b|\bwas\b|\bnamed\b|\bcalled\b|  "
# Between a device's label and its value: "Device: ", "机型是", "【机型】：", "| Device | ".
DEVICE_SEPARATOR = r"[】\])]?(?:[ \t]?(?:[:=]|是|为)|[ \t]{2,24}|[ \t]{0,24}\|)[ \t|]{0,8}"
LABELLED: dict[Fact, Words] = {
    Fact.APP_ID: Words(r"app ?id|appid|app_id|sdk ?app ?id|sdkappid", r"应用 ?(?:id|ID)"),
    Fact.CHANNEL: Words(
        r"channel ?(?:name|id)?|channelname|channelid|channel_name|channel_id|cname"
        r"|room ?(?:id|name|number|no\.?)?|roomid|room_id",
        r"频道(?:名称|名|号|id)?|頻道(?:名稱|名|號|id)?|房间(?:号|id|名)?|房間(?:號|id|名)?"
        r"|直播间(?:号|id)?|直播間(?:號|id)?",
    ),
    Fact.UID: Words(
        r"uid|user ?id|userid|user_id|user account|useraccount|streamer uid",
        r"用户 ?(?:id|号|uid)|用戶 ?(?:id|號|uid)|(?:主播|观众|觀眾)(?:账号|帳號)? ?(?:uid|id)"
        r"|账号 ?id|帳號 ?id|用户(?= ?[:=])|用戶(?= ?[:=])",
    ),
}
# The characters of a value: Agora's channel names and user accounts allow these.
LABELLED_VALUE = r"[a-z0-9][a-z0-9_\-.@#$%^&*+=~!]{0,63}(?=[\s,;，；。、)）\]\"'”]|$)"
# "audio channel", "声道", "stereo channel": not the channel of a call.
NOT_A_CHANNEL = r"(?:audio|stereo|mono|single|dual|sound|notification|release|update|stable)\s?$"
# A labelled word that is a word of the sentence, not a value: "the channel is full".
VALUE_WORDS = (
    r"the|a|an|and|or|is|are|was|with|when|that|this|it|name|id|profile|mode|list|full|same"
    r"|number|will|can|not|no|in|on|of|to|for|from|by|as|be|has|have|info|information|and"
    # Types in a code sample: "onUserJoined(uid: Int)".
    r"|int|uint|long|string|integer|nsuinteger|number"
)

# In a log: A line where the app joins a channel, and what in it says so.
LOG_JOIN_WORDS: tuple[str, ...] = ("joinchannel", "join channel", "加入频道")
LOG_JOIN = r"(?:(?:on)?joinchannel(?:success|ex|2)?|join channel|加入频道)"
LOG_JOINED_CHANNEL = (
    rf"{LOG_JOIN}[:(]?[ \t]{{1,3}}(?:channel ?(?:name|id)?[ \t]?[:=][ \t]?)?"
    r"[\"'\[]?(?=[a-z0-9.]{0,63}?[0-9_\-])"
    r"(?P<value>[a-z0-9][a-z0-9_\-.@#$%^&*+~!]{0,63})(?![=a-z0-9_\-])"
)
LOG_UID_VALUE = (
    r"\b(?:uid|user_?id|userid|user ?account)[ \t]?[:=][ \t]?[\"'\[]?(?P<value>[a-z0-9_\-@.]{1,64})"
)
# Lines whose uid is someone else's: a remote user's, a process's.
LOG_OTHER_UIDS = r"userjoined|useroffline|remote|onuser|chatty|process|pid"
LOG_JOINED_UID = rf"{LOG_JOIN}[^\n]{{0,160}}?{LOG_UID_VALUE}"
LOG_OWN_UID = rf"^(?![^\n]*(?:{LOG_OTHER_UIDS}))(?!uid: \d+$)[^\n]*?{LOG_UID_VALUE}"

# -- placeholders and unknowns --------------------------------------------------------------

# An unfilled field of a form: "x.x.x", "xxxx", "___", "N/A", "TBD", "无", "待补充".
PLACEHOLDER = (
    r"(?:x{1,4}(?:\.x{1,4}){0,3}|_+|\*+|\?+|-+|\.+|…+|n/?a|tbd|todo|none|null|nil|unknown"
    r"|your[ _-]?\w{0,20}|<[^>]{0,40}>|\{[^}]{0,40}\}|\[[^\]]{0,40}\]"
    r"|无|暂无|待补充|待定|未知|不详|略)"
)
# An answer meaning "don't know" or "not applicable": the fact is answered, its value unknown.
UNKNOWN_ANSWER = (
    r"(?:unknown|(?:i |we )?(?:don'?t|do not) know|not sure|no idea|unsure|n/?a|none|no"
    r"|nil|not applicable|not available|not relevant|not needed|-+"
    r"|不知道|不清楚|不确定|无|没有|暂无|不适用|不需要|不了解|未知|忘了|忘记了)"
)

# -- reproduction steps ---------------------------------------------------------------------

STEPS_HEADING = Words(
    r"steps? to reproduce|reproduction steps|repro(?:duction)? steps?|how to reproduce"
    r"|to reproduce(?: it| this| the (?:issue|problem|crash|bug))?|reproduce by|reproduce|repro"
    r"|steps|reproduction",
    r"复现步骤|重现步骤|操作步骤|复现方法|复现路径|复现方式|重现方法|复现流程|复现条件|重现路径|步骤",
)
STEP_ACTIONS = Words(
    r"join(?:s|ed|ing)?|open(?:s|ed)?|click(?:s|ed)?|tap(?:s|ped)?|press(?:es|ed)?"
    r"|start(?:s|ed)?|launch(?:es|ed)?|enter(?:s|ed)?|leave(?:s)?|left|call(?:s|ed)?"
    r"|switch(?:es|ed)?|enable(?:s|d)?|disable(?:s|d)?|turn(?:s|ed)?|set(?:s)?"
    r"|publish(?:es|ed)?|subscribe(?:s|d)?|push(?:es|ed)?|pull(?:s|ed)?|play(?:s|ed)?"
    r"|stop(?:s|ped)?|mute(?:s|d)?|unmute(?:s|d)?|log ?in|sign ?in|install(?:s|ed)?|run(?:s)?"
    r"|go(?:es)? to|navigate|select(?:s|ed)?|create(?:s|d)?|init(?:ialize)?(?:s|d)?"
    r"|send(?:s)?|share(?:s|d)?|background(?:ed)?|foreground|lock(?:s|ed)?|unlock"
    r"|rotate(?:s|d)?|wait(?:s|ed)?|repeat|kill(?:s|ed)?|restart(?:s|ed)?|connect(?:s|ed)?"
    r"|disconnect(?:s|ed)?|unplug(?:s|ged)?|plug(?:s|ged)? in|record(?:s|ed)?|minimi[sz]e"
    r"|return(?:s|ed)?|come back|exit(?:s|ed)?|close(?:s|d)?|invite(?:s|d)?|accept(?:s|ed)?"
    r"|answer(?:s|ed)?|dial(?:s|ed)?|hang up|load(?:s|ed)?|refresh(?:es|ed)?",
    r"进入|点击|打开|加入|开启|开始|切换|退出|调用|推流|拉流|启动|登录|关闭|离开|等待|发起|接听|挂断"
    r"|锁屏|解锁|切到|切回|后台|前台|重复|杀掉|重启|连接|断开|插入|拔出|录制|选择|创建|初始化|发送"
    r"|共享|旋转|静音|设置|安装|运行|跳转|返回|邀请|上麦|下麦|连麦|观看|播放|暂停|订阅|发布|拔掉"
    r"|插上|进房|退房|开播|关播|刷新|来电|接电话",
)
# "first ... then ...", "先…然后…", "A -> B -> C": steps in one sentence.
STEP_SEQUENCE = (
    # "first" after a determiner is an adjective: "our first report ... then".
    r"\b(?<!the )(?<!our )(?<!my )(?<!their )(?<!a )(?:first(?:ly)?|1st)\b[^\n]{3,200}?\bthen\b"
    r"|先[^\n]{2,120}?(?:然后|再|之后|接着|后)"
    r"|(?:->|→|=>)[^\n]{2,80}?(?:->|→|=>)"
)

# -- when it happened -----------------------------------------------------------------------

# Words for a day, by how many days before the mail's date it is.
RELATIVE_DAYS: dict[int, Words] = {
    0: Words(
        r"today|tonight|this (?:morning|afternoon|evening)|earlier today",
        r"今天|今日|今早|今晨|今晚|今夜",
    ),
    1: Words(r"yesterday|last (?:night|evening)", r"昨天|昨日|昨晚|昨夜|昨"),
    2: Words(r"the day before yesterday", r"前天|前晚"),
    3: Words("", r"大前天"),
}
# Words that put an hour after noon ("下午3点" is 15:00, "8 in the evening" 20:00) or
# before it; in Chinese they come right before the hour, in English anywhere on the line.
AFTERNOON = Words(r"afternoon|evening|night|tonight", r"下午|傍晚|晚上|晚间|夜里|夜间|晚")
MORNING = Words(r"morning", r"凌晨|早上|早晨|上午|清晨|半夜|早")
# Noon, in Chinese: "中午1点" is 13:00, "中午12点" 12:00.
NOON = "中午"
# Words that tell when the problem happened, rather than a time in passing.
OCCURRENCE_CUES = Words(
    r"happen(?:s|ed)?|occur(?:s|red)?|start(?:s|ed)?|began|begin|since|around|about|at approx"
    r"|approximately|when|time of|issue time|incident|reported|noticed|saw|seen",
    r"发生|出现|开始|大约|大概|左右|时间|时候|遇到|反馈",
)

# -- what the problem is with, when several are named ----------------------------------------

# A clause that says something does not work, whatever else it says: "not working on iOS",
# "安卓不行", "can reproduce on Android".
BROKEN = Words(
    r"(?:not|never)\s(?:\w+\s)?work\w*|\w+n't\s(?:\w+\s)?work\w*|reproduc\w*",
    r"不行|不正常|无法正常|不能正常|复现",
)
# A clause that says something works: "works on iOS", "iOS正常", "no problem on iPhone".
WORKS = Words(
    r"works?|worked|working|fine|ok|okay|normal(?:ly)?|no (?:problem|issue)s?|correctly"
    r"|perfectly|as expected|unaffected|not affected|not (?:involved|relevant|used)",
    r"正常|没问题|没有问题|没事|可以|好的|不受影响|无异常|没有这个问题|没有此问题|不涉及|无关|没用到|不用",
)
# A clause that tells of the problem: "fails on Android", "安卓不行".
FAILS = Words(
    r"fail(?:s|ed|ing|ure)?|crash\w*|broken|issues?|problems?|errors?|bug|only|not work\w*"
    r"|doesn't work|does not work|didn't work|can't|cannot|no (?:sound|audio|video)|black|freez\w*"
    r"|lag\w*|echo|stuck|happens|occurs|affected|reproduc\w*",
    r"不行|不可以|有问题|失败|崩溃|闪退|报错|出现|异常|黑屏|没声音|没有声音|卡|不正常|复现|只有|仅",
)
# Between names listed together: "Xiaomi 13, Honor 90 and Pixel 7", "小米13、荣耀90".
LIST_GAP = r"[ \t]{0,2}(?:[,/、&+]|\band\b|\bor\b|和|或|以及|及)?[ \t]{0,2}"
# Breaks between clauses: punctuation and the words that turn a sentence around.
CLAUSE_BREAK = (
    r"[,;!?。，；！？]|\.(?!\d)|\b(?:but|however|whereas|while|although|though|except)\b"
    r"|但是|但|而|可是|不过"
)

# -- the mail's text ------------------------------------------------------------------------

# A signature that names the sender's phone, not the customer's device: "Sent from my iPhone".
SENT_FROM = (
    r"^[ \t]*(?:sent from|get outlook for|发自|从我的|来自我的)[^\n]{0,60}$"
    r"|^[ \t]*来自[^\n]{0,20}(?:邮箱|邮件|mail|客户端)[^\n]{0,10}$"
)
# Lines of a forwarded or quoted message's header block, as written or as a table's rows
# ("| 日期 | 2026年11月23日 15:20 |").
HEADER_LINE = (
    r"^\s*\|?\s*(?:from|to|cc|subject|date|sent|发件人|收件人|抄送|主题|发送时间|发送日期|日期|时间"
    r"|寄件者|收件者|主旨|寄件日期|傳送時間)\s?[:|]"
)
# A label alone on its line, its value on the next (tables rendered from HTML).
FIELD_LABEL = (
    r"^\s*(?:sdk version|sdk版本|sdk 版本|版本号|platform|平台|os version|os|系统版本|系统"
    r"|device(?: model)?|model|设备型号|设备|机型|手机型号|app ?id|channel(?: name)?|频道名?"
    r"|房间号|uid|user id|用户 ?id|time|时间|发生时间)\s?:?\s*$"
)
# A subject's "Re:", "Fwd:", "回复：" and "[Support #12]" prefixes.
SUBJECT_PREFIX = (
    r"^(?:\s*(?:(?:re|fwd?|fw|aw|wg|回复|答复|转发)\s?:|\[[^\]\n]{0,60}\]|【[^】\n]{0,60}】))+"
)
