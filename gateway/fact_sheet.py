"""What mail says of a ticket's facts: the customer's one line of what we have, the numbered
ask with its fill-in block, and the engineers' table of facts, what is missing and what a
message just taught.

The fill-in lines are the `LABELS` of `gateway.intake.facts`, which the intake reads back
from the reply; the summary line is written so that it is never read back as an answer (a
quoted "SDK version: 4.0.6" would undo the customer's "we are on 4.0.7 now"). The hints of
the ask are the templates' (`customer/_ask.*`), for operators to edit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.intake import LABELS, UNKNOWN, Fact, Kind, Source
from gateway.settings import Intake
from gateway.workflow.intake import current_facts, kind_of, missing
from storage.models import Message, Ticket, TicketFact

# How the summary names a fact before its value ("" where the value says what it is:
# "Android 14", "Xiaomi 13", "1 log").
SUMMARY_NAMES = {
    "en": {
        Fact.SDK_VERSION: "SDK",
        Fact.APP_ID: "App ID",
        Fact.CHANNEL: "channel",
        Fact.UID: "user",
        Fact.OCCURRED_AT: "happened",
        Fact.REPRO_STEPS: "steps",
    },
    "zh": {
        Fact.SDK_VERSION: "SDK",
        Fact.APP_ID: "App ID",
        Fact.CHANNEL: "频道",
        Fact.UID: "用户",
        Fact.OCCURRED_AT: "发生于",
        Fact.REPRO_STEPS: "复现步骤",
    },
}
WORDS = {
    "en": {"unknown": "not known", "given": "given", "log": "log", "logs": "logs"},
    "zh": {"unknown": "不清楚", "given": "已提供", "log": "个日志", "logs": "个日志"},
}
SOURCE_ZH = {
    Source.SUBJECT: "主题",
    Source.BODY: "正文",
    Source.ATTACHMENT_NAME: "附件名",
    Source.LOG: "日志",
    Source.ANSWER: "回复",
    Source.ENGINEER: "工程师",
}
KIND_ZH = {
    Kind.CRASH: "崩溃/报错",
    Kind.QUALITY: "音视频质量",
    Kind.HOWTO: "使用咨询",
    Kind.ACCOUNT: "账号/账单",
    Kind.OTHER: "其他",
}


def summary(ticket: Ticket, language: str) -> str:
    """What we have, in one line ("SDK 4.0.6 · Android 14 · Xiaomi 13 · 1 log"); '' when
    the mail gave nothing."""
    parts = []
    known = current_facts(ticket)
    system = known.get(Fact.OS_VERSION)
    for fact, row in sorted(known.items(), key=lambda item: list(Fact).index(item[0])):
        if fact is Fact.PLATFORM and system and system.value.startswith(row.value):
            continue  # "Android 14" says "Android" already
        value = shown_value(ticket, row, language, short=True)
        # A fact the customer does not know is named in full: "Device model not known".
        name = (
            LABELS[fact].said_in(language)
            if row.value == UNKNOWN
            else SUMMARY_NAMES[language].get(fact, "")
        )
        parts.append(f"{name} {value}".strip())
    return " · ".join(parts)


def ask_items(facts: tuple[Fact, ...], language: str) -> list[dict[str, Any]]:
    """The numbered items of an ask, each with its fill-in line ("SDK version: ____")."""
    colon = "：" if language == "zh" else ": "
    return [
        {
            "number": number,
            "fact": fact.value,
            "label": LABELS[fact].said_in(language),
            "blank": f"{LABELS[fact].said_in(language)}{colon}____",
        }
        for number, fact in enumerate(facts, start=1)
    ]


def fact_table(ticket: Ticket, language: str, intake: Intake) -> dict[str, Any]:
    """The engineers' table: the kind, each known or needed fact with its value and where
    it came from, and the labels of those still missing."""
    known = current_facts(ticket)
    needed = missing(ticket, intake)
    rows = [
        {
            "label": LABELS[fact].said_in(language),
            "value": shown_value(ticket, known[fact], language, short=False),
            "source": source_in(known[fact].source, language),
        }
        for fact in Fact
        if fact in known
    ]
    kind = kind_of(ticket)
    return {
        "kind": KIND_ZH[kind] if language == "zh" else kind.value,
        "facts": rows,
        "missing": [LABELS[fact].said_in(language) for fact in needed],
        "complete": ticket.intake_complete,
    }


def source_in(source: str, language: str) -> str:
    """Where a fact was read, in `language`."""
    if language != "zh" or source not in Source.__members__.values():
        return source
    return SOURCE_ZH[Source(source)]


def learned_from(ticket: Ticket, message: Message, language: str) -> list[dict[str, str]]:
    """The facts `message` gave or corrected, each with the value it replaced."""
    before: dict[str, TicketFact] = {}
    learned = []
    for row in ticket.facts:
        if row.message is message:
            earlier = before.get(row.name)
            learned.append(
                {
                    "label": LABELS[Fact(row.name)].said_in(language),
                    "value": shown_value(ticket, row, language, short=False),
                    "was": shown_value(ticket, earlier, language, short=False) if earlier else "",
                }
            )
        before[row.name] = row
    return learned


def shown_value(ticket: Ticket, row: TicketFact, language: str, short: bool) -> str:
    """A fact's value as people read it: logs by file name, steps in brief, times with
    their offset."""
    words = WORDS[language]
    if row.value == UNKNOWN:
        return words["unknown"]
    if row.name == Fact.LOGS:
        names = log_names(ticket, row.value.split())
        count = f"{len(names)} {words['log'] if len(names) == 1 else words['logs']}"
        return count if short else f"{count}: {', '.join(names)}"
    if row.name == Fact.REPRO_STEPS:
        return words["given"] if short else brief(row.value)
    if row.name == Fact.OCCURRED_AT:
        return shown_time(row.value)
    return brief(row.value)


def log_names(ticket: Ticket, sha256s: list[str]) -> list[str]:
    names = {a.sha256: a.filename for m in ticket.messages for a in m.attachments}
    return [names.get(sha, sha[:12]) for sha in sha256s]


def shown_time(value: str) -> str:
    """`2026-11-30T20:30+08:00` as `2026-11-30 20:30 (UTC+08:00)`."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return brief(value)
    offset = moment.strftime("%z")
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return f"{moment:%Y-%m-%d %H:%M} ({zone})"


def brief(text: str, limit: int = 80) -> str:
    """The first line of `text`, cut to `limit` characters."""
    line = " ".join(text.split("\n", 1)[0].split())
    more = len(line) > limit or "\n" in text.strip()
    return line[:limit].rstrip() + ("…" if more else "")
