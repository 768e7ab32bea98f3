"""The name a writer signs with: the short last line of their new words.

People sign as they want to be called ("Dave", not the "Dave Customer" of their From
field), so the gateway greets them by it. A sign-off is read only where it cannot be taken
for words of the message: a name after a closing ("Thanks,\\nDave", "谢谢！\\n小王"), on the
closing's own line ("Thanks, Dave") or after a dash ("— Dave"); a bare last line only when
it is one of the words of the display name ("Dave" from "Dave Customer"), since a bare
"Fixed" or "还是不行" is a message, not a name.
"""

from __future__ import annotations

import re

from gateway.parsing.quoting import quoted_history_start

# Closings that come before a name, in English and Chinese; the name may follow on the
# same line after a comma or on the next line.
CLOSING = (
    r"(?:many\s+)?thanks(?:\s+again)?|thank\s+you|thx|cheers|regards|best(?:\s+regards)?"
    r"|kind\s+regards|best\s+wishes|warm\s+regards|br|sincerely|yours(?:\s+sincerely)?"
    r"|谢谢|多谢|感谢|非常感谢|此致\s*敬礼|敬礼|祝好|顺祝商祺"
)
CLOSING_LINE = re.compile(rf"^\s*(?:{CLOSING})\s*[,，.。!！~]*\s*$", re.IGNORECASE)
CLOSING_AND_NAME = re.compile(rf"^\s*(?:{CLOSING})\s*[,，]\s*(?P<name>.+?)\s*$", re.IGNORECASE)
DASH_AND_NAME = re.compile(r"^\s*(?:--?|—|–|~)\s*(?P<name>\S.*?)\s*$")
# What a name looks like: a few words of letters (with the marks names carry), or two to
# four Han characters (with an interpunct for transcribed names).
LATIN_NAME = re.compile(r"[^\W\d_][\w.'’-]*(?:\s+[^\W\d_][\w.'’-]*){0,2}")
HAN_NAME = re.compile(r"[\u3400-\u9fff·]{1,6}")
MAX_NAME = 40


def signed_name(text: str, display_name: str = "") -> str:
    """The name `text` is signed with, or '' when its last lines hold none."""
    lines = own_lines(text)
    if not lines:
        return ""
    last = lines[-1]
    if len(lines) > 1 and CLOSING_LINE.match(lines[-2]):
        return as_name(last)
    if found := CLOSING_AND_NAME.match(last):
        # "谢谢，还是不行": on the closing's own line only a written-out name counts.
        return as_name(found["name"], han=False)
    if found := DASH_AND_NAME.match(last):
        return as_name(found["name"])
    if len(lines) > 1 and last.casefold() in display_name.casefold().split():
        return as_name(last)
    return ""


def own_lines(text: str) -> list[str]:
    """The non-empty lines of the writer's own words, without quoted history."""
    lines = text.splitlines()
    start = quoted_history_start(lines)
    own = lines[:start] if start is not None else lines
    # A signature block ("-- " on a line of its own) is the mail client's, not a sign-off.
    own = own[: next((i for i, line in enumerate(own) if line.rstrip() == "--"), len(own))]
    return [line.strip() for line in own if line.strip() and not line.lstrip().startswith(">")]


def as_name(candidate: str, han: bool = True) -> str:
    """`candidate` when it looks like a name (capitalised words, or Han characters when
    `han`), else ''."""
    candidate = candidate.strip().rstrip(".,，。!！")
    if len(candidate) > MAX_NAME or CLOSING_LINE.match(candidate):
        return ""
    if LATIN_NAME.fullmatch(candidate) and all(w[0].isupper() for w in candidate.split()):
        return candidate
    return candidate if han and HAN_NAME.fullmatch(candidate) else ""
