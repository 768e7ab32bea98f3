"""What a customer's reply says of the articles suggested to them: that one solved it.

"That solved it", "the article fixed it", "文章解决了", "按照文档已经解决": the words must say
solved and point at the article (or be the short "that solved it" said to a suggestion); a
negation ("didn't solve it", "没有解决") says the opposite. Which article: the one whose slug,
link or title the reply names, else the first suggested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FLAGS = re.IGNORECASE
NEGATED_EN = re.compile(
    r"\b(?:not|n't|never|no longer|didn t|doesn t|did not|does not|hasn t|has not)\b[^.!?\n]{0,25}"
    r"\b(?:solve|solved|fix|fixed|resolve|resolved|help|helped|work|worked)\b",
    FLAGS,
)
SOLVED_EN = re.compile(
    r"\b(?:that|this|it|which|the (?:article|link|doc|docs|guide|page|answer|suggestion)"
    r"|your (?:article|link|doc|docs|guide|answer|suggestion))\s+"
    r"(?:has\s+|have\s+|just\s+|really\s+|actually\s+)?"
    r"(?:solved|fixed|resolved|sorted|answered)\b"
    r"|\b(?:solved|fixed|resolved)\s+(?:it|by the (?:article|link|doc|guide))\b"
    r"|\b(?:article|link|doc|docs|guide|suggestion)s?\b[^.!?\n]{0,40}\b(?:solved|fixed|resolved"
    r"|helped|worked)\b"
    r"|\b(?:followed|following|per|after reading) the (?:article|link|doc|docs|guide)\b"
    r"[^.!?\n]{0,60}\b(?:works?|working|solved|fixed)\b",
    FLAGS,
)
NEGATED_ZH = re.compile(r"(?:没|没有|未|不能|无法|还是没|并没|没能)[^。！？\n]{0,4}解决")
SOLVED_ZH = re.compile(
    r"(?:文章|文档|链接|帮助|教程|方法|建议)[^。！？\n]{0,20}(?:解决了|搞定了|好了|有效|管用)"
    r"|(?:按照|根据|照着|参考)[^。！？\n]{0,20}(?:已经|已)?(?:解决|搞定|好了)"
)
# Solved, without saying by what: the article's doing only while no engineer has answered.
SOLVED_EN_PLAIN = re.compile(
    r"\b(?:problem|issue|it)(?:'s|\s+is|\s+has been|\s+was)?\s+(?:now\s+)?"
    r"(?:solved|fixed|resolved)\b"
    r"|\bsolved it\b|\bworks now\b|\bworking now\b",
    FLAGS,
)
SOLVED_ZH_PLAIN = re.compile(r"已(?:经)?解决|(?:问题)?解决了|搞定了|好了，?谢谢")


def says_article_solved(text: str) -> bool:
    """Whether the reply's own words say a suggested article solved the problem."""
    words = text.strip()
    if not words:
        return False
    english = SOLVED_EN.search(words) and not NEGATED_EN.search(words)
    chinese = SOLVED_ZH.search(words) and not NEGATED_ZH.search(words)
    return bool(english or chinese)


def says_solved(text: str) -> bool:
    """Whether the reply says the problem is solved, by whatever means."""
    words = text.strip()
    english = SOLVED_EN_PLAIN.search(words) and not NEGATED_EN.search(words)
    chinese = SOLVED_ZH_PLAIN.search(words) and not NEGATED_ZH.search(words)
    return says_article_solved(words) or bool(english or chinese)


def article_named(text: str, suggested: Sequence[tuple[str, str]]) -> str | None:
    """The slug of the suggested article (slug, title) the reply names, else None."""
    lowered = text.lower()
    for slug, title in suggested:
        if slug.lower() in lowered or (title and title.lower() in lowered):
            return slug
    return None
