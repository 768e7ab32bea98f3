"""Which suggested article a customer's reply points at.

Whether the reply says the problem is solved is `gateway.confirmation`'s to read, as for
any confirmation; this reads only which article it names: by slug or title, else whether
it points at an article at all ("the article", "that link", "文章", "文档").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ARTICLE_WORDS = re.compile(
    r"\b(?:article|link|doc|docs|documentation|guide|suggestion)s?\b|文章|文档|链接|教程",
    re.IGNORECASE,
)


def points_at_an_article(text: str) -> bool:
    return ARTICLE_WORDS.search(text) is not None


def article_named(text: str, suggested: Sequence[tuple[str, str]]) -> str | None:
    """The slug of the suggested article (slug, title) the reply names, else None."""
    lowered = text.lower()
    for slug, title in suggested:
        if slug.lower() in lowered or (title and title.lower() in lowered):
            return slug
    return None
