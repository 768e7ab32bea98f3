"""The facts an engineer needs before starting on a report, and what the intake says of them.

A fact is read from a mail (`extraction`), from an attached log (`logs`) or from a reply to
the ask (`answers`), each time as a `Finding`: its value, where it was read and the words it
came from. Which facts a report needs depends on its `Kind`; operators may change that per
kind (`GATEWAY_INTAKE_REQUIRED_<KIND>`). Pure: no database, no network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.intake.urgency import Urgency
from gateway.phrases import Phrase


class Fact(enum.StrEnum):
    """One fact of a report, by the name operators, tests and `gateway show` use."""

    SDK_VERSION = "sdk_version"
    PLATFORM = "platform"
    OS_VERSION = "os_version"
    DEVICE = "device"
    APP_ID = "app_id"
    CHANNEL = "channel"
    UID = "uid"
    OCCURRED_AT = "occurred_at"
    REPRO_STEPS = "repro_steps"
    LOGS = "logs"


class Kind(enum.StrEnum):
    """What a report is about, which decides the facts it needs."""

    # Crashes, freezes, errors.
    CRASH = "crash"
    # Audio or video quality in a call or a stream.
    QUALITY = "quality"
    # Questions: how to, whether it supports.
    HOWTO = "howto"
    # Billing, accounts, contracts.
    ACCOUNT = "account"
    OTHER = "other"


class Source(enum.StrEnum):
    """Where a fact was read."""

    SUBJECT = "subject"
    BODY = "body"
    ATTACHMENT_NAME = "attachment name"
    LOG = "log"
    # A line of the fill-in block the customer answered.
    ANSWER = "answer"
    # An engineer's `#info ok` or an operator.
    ENGINEER = "engineer"


# A customer's "不知道", "unknown", "n/a": the fact is answered, its value unknown.
UNKNOWN = "unknown"

_CRASH = (
    Fact.SDK_VERSION,
    Fact.PLATFORM,
    Fact.OS_VERSION,
    Fact.DEVICE,
    Fact.REPRO_STEPS,
    Fact.LOGS,
)
DEFAULT_REQUIRED: dict[Kind, tuple[Fact, ...]] = {
    Kind.CRASH: _CRASH,
    Kind.QUALITY: (*_CRASH, Fact.APP_ID, Fact.CHANNEL, Fact.UID, Fact.OCCURRED_AT),
    Kind.HOWTO: (Fact.SDK_VERSION, Fact.PLATFORM),
    Kind.ACCOUNT: (),
    Kind.OTHER: (),
}

# How each fact is named to people: in the summary, the ask and its fill-in block, whose
# lines ("SDK version: ____") `answers` reads back in either language.
LABELS: dict[Fact, Phrase] = {
    Fact.SDK_VERSION: Phrase("SDK version", "SDK 版本"),
    Fact.PLATFORM: Phrase("Platform", "平台"),
    Fact.OS_VERSION: Phrase("OS version", "系统版本"),
    Fact.DEVICE: Phrase("Device model", "设备型号"),
    Fact.APP_ID: Phrase("App ID", "App ID"),
    Fact.CHANNEL: Phrase("Channel name", "频道名"),
    Fact.UID: Phrase("User ID", "用户 ID"),
    Fact.OCCURRED_AT: Phrase("When it happened (with time zone)", "发生时间（含时区）"),
    Fact.REPRO_STEPS: Phrase("Steps to reproduce", "复现步骤"),
    Fact.LOGS: Phrase("SDK log", "SDK 日志"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact as read: its value (`UNKNOWN` when the customer said they do not know),
    where, and the words it came from (at most a line or two, for the trail)."""

    fact: Fact
    value: str
    source: Source
    excerpt: str


@dataclass(frozen=True, slots=True)
class File:
    """An attached file as the intake reads it."""

    name: str
    content_type: str
    data: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class MailText:
    """What the intake reads of one message."""

    subject: str
    # The whole text; for a reply, with the quoted history.
    text: str
    # The new part of a reply ("" for a first mail: read `text`).
    reply_text: str
    files: tuple[File, ...]
    # The mail's Date, to resolve "yesterday 20:30"; None when it has none.
    sent_at: datetime | None
    # The facts the customer was asked for on the ticket: a filled-in line in a reply's
    # quoted part counts only for these (any other is their first mail quoted back).
    asked: frozenset[Fact] = frozenset()


@dataclass(frozen=True, slots=True)
class Findings:
    """What one message told: its facts (at most one finding per fact, logs being one
    finding whose value is the space-separated SHA-256s) and, for a first mail, its kind."""

    facts: tuple[Finding, ...]
    kind: Kind = Kind.OTHER
    # The words the kind was read from ("" when nothing pointed anywhere: OTHER).
    kind_excerpt: str = ""
    # The priority a first mail's words ask for (`urgency`); read with the facts, so that
    # the parser process reads it ahead too.
    urgency: Urgency | None = None

    def value(self, fact: Fact) -> str | None:
        return next((f.value for f in self.facts if f.fact is fact), None)


# The words an engineer may use for a fact in `#ask` (and an operator in the settings),
# besides its name.
ALIASES: dict[str, Fact] = {
    "sdk": Fact.SDK_VERSION,
    "version": Fact.SDK_VERSION,
    "版本": Fact.SDK_VERSION,
    "os": Fact.OS_VERSION,
    "system": Fact.OS_VERSION,
    "系统": Fact.OS_VERSION,
    "device": Fact.DEVICE,
    "devices": Fact.DEVICE,
    "model": Fact.DEVICE,
    "机型": Fact.DEVICE,
    "设备": Fact.DEVICE,
    "平台": Fact.PLATFORM,
    "appid": Fact.APP_ID,
    "app-id": Fact.APP_ID,
    "channel-name": Fact.CHANNEL,
    "频道": Fact.CHANNEL,
    "user": Fact.UID,
    "user-id": Fact.UID,
    "userid": Fact.UID,
    "time": Fact.OCCURRED_AT,
    "when": Fact.OCCURRED_AT,
    "时间": Fact.OCCURRED_AT,
    "steps": Fact.REPRO_STEPS,
    "repro": Fact.REPRO_STEPS,
    "步骤": Fact.REPRO_STEPS,
    "log": Fact.LOGS,
    "日志": Fact.LOGS,
}


def fact_named(word: str) -> Fact | None:
    """The fact a word names: its own name or an alias, in any case."""
    word = word.strip().lower()
    if word in Fact.__members__.values():
        return Fact(word)
    return ALIASES.get(word)


def missing_facts(required: tuple[Fact, ...], known: set[Fact]) -> tuple[Fact, ...]:
    """The required facts not yet known, in the order they are asked for."""
    return tuple(fact for fact in required if fact not in known)
