"""The device models a customer names, as rows of regular expression fragments written in
lower case: phones and tablets by brand and family, computers, single-board computers.

Part of the intake's word tables (`patterns`), kept apart for their length; the same rules
hold: each row starts with a fixed word, no row crosses a line or repeats without a bound.
"""

from __future__ import annotations

PIXEL = r"pixel ?\d{1,2}a?(?: ?(?:pro(?: ?xl)?|xl|fold)(?![a-z]))?"
GALAXY = (
    r"galaxy ?(?:[samzn]\d{1,2}|note ?\d{1,2}|tab ?[sa]\d{1,2}|z ?(?:fold|flip) ?\d)"
    r"(?: ?(?:ultra|plus|\+|fe|5g)(?![a-z])){0,2}"
)
REDMI = (
    r"(?:redmi|红米) ?(?:note ?\d{1,2}|k\d{2}|\d{1,2}[a-z]?)"
    r"(?: ?(?:pro\+?|ultra|turbo|5g)(?![a-z])){0,2}"
)
ASUS = r"(?:rog ?phone ?\d|zenfone ?\d{1,2})(?: ?(?:pro|ultra)(?![a-z]))?"
IQOO = r"iqoo ?(?:neo ?|z)?\d{1,2}(?: ?pro(?![a-z]))?"
RENO = r"(?:reno ?\d{1,2}|find ?(?:x\d|n\d))(?: ?(?:pro\+?|ultra|se|z)(?![a-z])){0,2}"
# An Apple generation after a model: "iPad Air (5th gen)", "iPad Pro 11 (4th generation)".
GENERATION = r"(?: ?\(?\d(?:st|nd|rd|th) gen(?:eration)?\)?| ?\(?第[一二三四五六七八九十\d]代\)?)?"
LENOVO = (
    r"(?:thinkpad ?[a-z]{1,2}\d{1,3}[a-z]?(?: ?gen ?\d)?|thinkbook ?\d{2}[a-z]?(?: ?g\d)?"
    r"|thinkcentre ?[a-z]\d{2,4}[a-z]?"
    r"|(?:legion|ideapad|yoga) ?(?:pro|slim|gaming|go)? ?[a-z]{0,2}\d{1,4}[a-z]{0,2}"
    r"|小新 ?(?:pro|air)? ?\d{2}|拯救者 ?[a-z]?\d{3,4}[a-z]{0,2})"
)
DELL = (
    r"(?:xps ?\d{2}|(?:optiplex|latitude|inspiron|vostro|precision) ?[a-z]?\d{4}[a-z]?"
    r"|alienware ?[a-z]\d{2}[a-z]?)(?: ?(?:plus|pro)(?![a-z]))?"
)
MATEPAD = r"matepad ?(?:pro|air|se)? ?\d{0,2}(?:\.\d)?"
CHROMEBOOK = (
    r"chromebook(?: ?(?:duet|plus|spin|flip|go|x\d{3,4}|c\d{3,4}|cm\d{2,4})(?: ?\d{1,2})?)?"
)
# An Amazon tablet's size and edition, after "Fire" or "Fire HD": "Fire HD 10 Plus".
FIRE = r"\d{1,2}(?: ?(?:plus|kids)(?![a-z]))?"
SURFACE = r"surface ?(?:pro|laptop(?: studio| go)?|go|book)(?: ?\d{1,2})?"
MATEBOOK = r"matebook ?(?:x ?pro|x|d|e|b)? ?\d{0,2}(?: ?pro)?"
ASUS_PC = r"(?:zenbook|vivobook|rog ?strix|rog ?zephyrus) ?[a-z]{0,2}\d{1,4}[a-z]?"
# Each row starts with a fixed word (its brand or family), so that lines without one are
# not read: the same model with its brand in front is a row of its own.
DEVICES: tuple[str, ...] = (
    r"iphone ?(?:1\d|[4-9]|x[sr]?|se)(?: ?(?:pro ?max|pro|max|plus|mini|ultra|e)(?![a-z]))?",
    r"iphone\d{1,2},\d",
    rf"ipad ?(?:pro|air|mini)(?: ?\d{{1,2}}(?:\.\d)?(?: ?(?:-?inch|寸|\"))?)?{GENERATION}",
    r"ipad ?\d{1,2}",
    r"macbook ?(?:pro|air)?"
    r"(?: ?(?:1[3-7](?: ?(?:inch|寸|\"))?|m[1-4](?: ?(?:pro|max|ultra)(?![a-z]))?)){0,2}",
    r"(?:imac|mac ?mini|mac ?studio)(?: ?m[1-4](?: ?(?:pro|max|ultra)(?![a-z]))?)?",
    rf"google ?{PIXEL}|{PIXEL}",
    rf"(?:samsung|三星) ?{GALAXY}|{GALAXY}",
    r"(?:samsung|三星) ?[sa]\d{1,2}(?: ?(?:ultra|plus|\+|fe)(?![a-z]))?",
    r"(?:samsung|三星) ?sm-[a-z]\d{3,4}[a-z0-9]{0,3}|sm-[a-z]\d{3,4}[a-z0-9]{0,3}",
    r"(?:xiaomi|小米) ?(?:mix ?(?:fold ?)?\d?|civi ?\d?|(?:pad|平板) ?\d{1,2}|note ?\d{1,2}"
    r"|\d{1,2}t?)"
    r"(?: ?(?:pro|ultra|lite|s|x)(?![a-z])){0,2}",
    r"mi ?\d{1,2}(?: ?(?:pro|ultra|lite)(?![a-z]))?",
    rf"(?:xiaomi|小米) ?{REDMI}|{REDMI}",
    r"(?:huawei|华为) ?(?:mate ?(?:x\d|\d{1,2})|p ?\d{2}|nova ?\d{1,2}|pura ?\d{2})"
    r"(?: ?(?:pro\+?|rs|ultra|art|plus|e|se|5g)(?![a-z])){0,2}",
    r"mate ?(?:[2-9]\d|x\d)(?: ?(?:pro\+?|rs|ultra|e)(?![a-z]))?",
    r"pura ?\d{2}(?: ?(?:pro|ultra)(?![a-z]))?",
    r"(?:honor|荣耀) ?(?:magic ?\d{1,2}|x\d{2}[a-z]?|play ?\d{1,2}|\d{2,3})"
    r"(?: ?(?:pro|lite|gt|ultra|v)(?![a-z])){0,2}",
    rf"oppo ?{RENO}|{RENO}",
    r"oppo ?[ak]\d{1,2}[a-z]?",
    r"vivo ?(?:x ?fold\d?|x\d{2,3}|[yv]\d{2,3}[a-z]?|s\d{2})"
    r"(?: ?(?:pro\+?|ultra|neo|se)(?![a-z])){0,2}",
    rf"vivo ?{IQOO}|{IQOO}",
    r"(?:oneplus|一加) ?(?:\d{1,2}[rt]?|nord ?[a-z0-9]{1,3}|ace ?\d{0,2})(?: ?pro(?![a-z]))?",
    r"nexus ?\d{1,2}[xp]?",
    r"(?:meizu|魅族) ?\d{1,2}(?: ?pro(?![a-z]))?",
    r"(?:realme|真我) ?(?:gt ?[a-z0-9]{1,4}|\d{1,2})(?: ?pro\+?(?![a-z]))?",
    r"(?:tecno|infinix) ?(?:spark|camon|pova|hot|note|zero)? ?\d{1,2}[a-z]?(?: ?pro(?![a-z]))?",
    r"(?:motorola|moto) ?(?:[geo]\d{1,3}|edge ?\d{0,2})",
    r"sony ?xperia ?\d{1,2}(?: ?[iv]{1,3}(?![a-z]))?",
    r"nokia ?(?:\d{1,2}(?:\.\d)?|[cgx]\d{1,3})",
    r"(?:zte|中兴) ?(?:axon ?\d{1,2}|blade ?[a-z]?\d{1,3})(?: ?(?:pro|ultra)(?![a-z]))?",
    rf"asus ?{ASUS}|{ASUS}",
    r"(?:nubia|努比亚) ?(?:z\d{2}|red ?magic ?\d{1,2})(?: ?(?:pro|ultra|s)(?![a-z]))?",
    r"xperia ?\d{1,2}(?: ?[iv]{1,3}(?![a-z]))?",
    # Tablets of the phone makers: "华为MatePad Pro 13.2", "OPPO Pad 2", "荣耀平板9".
    rf"(?:huawei|华为) ?{MATEPAD}|{MATEPAD}",
    r"(?:oppo|vivo|oneplus|一加|honor|荣耀|realme|redmi|红米) ?(?:pad|平板) ?[a-z]?\d{0,2}"
    r"(?: ?(?:pro|air|se|x)(?![a-z]))?",
    rf"(?:amazon|kindle) ?(?:kindle ?)?fire ?(?:hd ?|max ?)?{FIRE}|fire ?(?:hd|max) ?{FIRE}",
    # Computers: a laptop or desktop family, its model number, its generation.
    r"(?:lenovo|联想|asus|华硕|acer|宏碁|hp|惠普|dell|戴尔|samsung|google) ?"
    rf"{CHROMEBOOK}|{CHROMEBOOK}",
    r"(?:asus|华硕) ?(?:天选|灵耀|无畏|a豆|飞行堡垒) ?\d{0,2}(?: ?(?:pro|air|plus)(?![a-z]))?",
    rf"(?:lenovo|联想) ?{LENOVO}|{LENOVO}",
    rf"(?:dell|戴尔) ?{DELL}|{DELL}",
    r"(?:hp|惠普) ?(?:elitebook|probook|zbook|pavilion|envy|spectre|omen|elitedesk|prodesk)"
    r" ?(?:x360 ?)?[a-z]?\d{2,4}[a-z]?(?: ?g\d{1,2})?(?: notebook pc| desktop pc)?",
    rf"microsoft ?{SURFACE}|{SURFACE}",
    rf"(?:huawei|华为) ?{MATEBOOK}|{MATEBOOK}",
    r"(?:honor|荣耀) ?magicbook ?(?:pro|x|v)? ?\d{0,2}|magicbook ?(?:pro|x|v)? ?\d{0,2}",
    rf"(?:asus|华硕) ?{ASUS_PC}|{ASUS_PC}",
    # Single-board computers: "Raspberry Pi 4 Model B", "Orange Pi 5 Plus", "树莓派4B".
    r"(?:raspberry|orange|banana|rock) ?pi ?\d{1,2}[a-z]?"
    r"(?: ?(?:model ?[ab]\+?|plus|pro|max)(?![a-z]))?",
    r"树莓派 ?\d{1,2}[a-z]?",
)
# What a device's value is not: words for many devices, not one model.
GENERIC_DEVICES = (
    r"\b(?:some|all|many|most|several|various|any|other|android|ios|different|multiple)\b"
    r"|各种|所有|部分|一些|多款|多种|安卓|全部|很多"
)
