"""A solved ticket as a draft article (`#kb new`), with what identifies the customer taken
out, for a person to review and publish.

Redacted wherever they appear: e-mail addresses, phone numbers, App IDs (labelled, or the
32 hex digits they are made of), the ticket's own identifiers (App ID, channel, user ID),
and tokens or keys: long random-looking strings of letters and digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from gateway.intake import patterns
from gateway.intake.facts import Fact
from storage.blobs import write_durably

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# International or local numbers of 7 digits or more, with the usual separators.
PHONE = re.compile(
    r"(?<![\w.])(?!\d{4}-\d\d-\d\d)(?:\+\d{1,3}[\s-]?)?(?:\(\d{1,4}\)[\s-]?)?\d(?:[\s-]?\d){6,14}(?!\w|\.\d)"
)
APP_ID_LABELLED = re.compile(
    rf"(?P<label>{patterns.LABELLED[Fact.APP_ID].pattern()})\s*[:=：是]?\s*(?P<value>[\w-]{{4,}})",
    re.IGNORECASE,
)
HEX_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", re.IGNORECASE)
# A run of 20 or more characters of the kinds keys are made of (JWTs, base64, hex).
KEY_LIKE = re.compile(r"[A-Za-z0-9_\-+/=.]{20,}")
SLUG_WORD = re.compile(r"[a-z0-9]+")


def looks_random(text: str) -> bool:
    """A key or token rather than a word or a path: letters and digits mixed throughout."""
    if "/" in text.strip("/=+") and text.count("/") > 2:
        return False  # a path or a URL
    digits = sum(c.isdigit() for c in text)
    letters = sum(c.isalpha() for c in text)
    upper = sum(c.isupper() for c in text)
    return digits >= 3 and letters >= 3 and (upper >= 2 or digits >= 6)


def redacted(text: str, known: Iterable[str] = ()) -> str:
    """`text` with addresses, phone numbers, App IDs, the ticket's identifiers (`known`)
    and token-like strings replaced by what they were."""
    for value in sorted({v for v in known if len(v) >= 3}, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", "[redacted]", text)
    text = EMAIL.sub("[email]", text)
    text = APP_ID_LABELLED.sub(lambda m: f"{m.group('label')}: [app id]", text)
    text = HEX_ID.sub("[app id]", text)
    text = KEY_LIKE.sub(lambda m: "[token]" if looks_random(m.group(0)) else m.group(0), text)
    return PHONE.sub("[phone]", text)


@dataclass(frozen=True, slots=True)
class Draft:
    """What a draft article is made of: the customer's question and the answer that solved it."""

    ticket_id: int
    title: str
    lang: str
    platform: str | None
    question: str
    answer: str


def draft_slug(draft: Draft, taken: int = 0) -> str:
    words = SLUG_WORD.findall(draft.title.lower())[:8]
    middle = "-".join(words) or "answer"
    again = f"-{taken + 1}" if taken else ""
    return f"ticket-{draft.ticket_id}-{middle}{again}-{draft.lang}"


def write_draft(folder: Path, draft: Draft, known: Iterable[str] = ()) -> str:
    """The draft written to `folder` as `status: draft`, under a name no file has (an
    earlier draft of the ticket may have been edited or published since); its slug."""
    taken = 0
    while (folder / f"{draft_slug(draft, taken)}.md").exists():
        taken += 1
    slug = draft_slug(draft, taken)
    known = tuple(known)
    meta = {
        "title": redacted(draft.title, known),
        "lang": draft.lang,
        "platforms": [draft.platform] if draft.platform else [],
        "tags": [],
        "status": "draft",
        "source_ticket": draft.ticket_id,
    }
    heading = ("问题", "解答") if draft.lang == "zh" else ("Question", "Answer")
    body = (
        f"## {heading[0]}\n\n{redacted(draft.question, known).strip()}\n\n"
        f"## {heading[1]}\n\n{redacted(draft.answer, known).strip()}\n"
    )
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    folder.mkdir(parents=True, exist_ok=True)
    write_durably(folder / f"{slug}.md", f"---\n{front}---\n{body}".encode())
    return slug
