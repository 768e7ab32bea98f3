"""Reading a first mail, or a reply to our ask, for the facts a report needs.

`read_first_mail` reads the subject and the whole text (quoted and forwarded parts too: a
colleague's forward carries the customer's words), the names of the attached files and
the logs among them. The customer's words come first: a fact in the text (or in a log
pasted into it, for the system and device its lines name) wins over the same fact in an
attached log, a log fills what the text lacks, and a file's name what both lack. A
platform is the exception: a framework wins over the system it runs on, so a Flutter log
wins over "Android" in the text, though not over "Unity" there. The order is text
framework, log framework, a system named in the text, one implied there (by a system
version, a device, a browser), the system a log names, a file's name. When the text tells
no kind of report, the files' names may ("crash.ips"), and else an attached log that
shows a crash ("Terminating app due to uncaught exception").

`read_reply` reads a reply to our ask: the fill-in block's answers (`answers`), then the
free sentences of the reply's own new text ("we are on 4.0.7 now", "机型是小米13"), then
newly attached logs; an answer wins over a sentence, a sentence over a log. Its kind
stays OTHER: the ticket has one already.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.intake.answers import read_answers
from gateway.intake.facts import UNKNOWN, Fact, Finding, Findings, Kind, MailText, Source
from gateway.intake.identifiers import read_labelled
from gateway.intake.kinds import crash_in_logs, read_kind
from gateway.intake.logs import LOG_LINE, MIN_LOG_LINES, LogReading, facts_in, read_logs
from gateway.intake.mentions import (
    FRAMEWORKS,
    Named,
    platform_of_system,
    read_device,
    read_platform,
    read_system,
)
from gateway.intake.occurrence import read_occurrence
from gateway.intake.page import MAX_TEXT_CHARS, Page, lower, page_from, page_of
from gateway.intake.steps import read_steps
from gateway.intake.urgency import read_urgency
from gateway.intake.versions import read_sdk_version

QUOTED = re.compile(r"^[ \t]*>")
# What only a log's own lines state; the text's readers know the other facts' forms better
# ("Flutter SDK 3.16" is no SDK version of ours, "audio channel: 2" no channel).
PASTED_FACTS = (Fact.OS_VERSION, Fact.DEVICE)
# What the lines of a log pasted into the text may give, as those of an attached log do.
PASTED_LOG_FACTS = (Fact.SDK_VERSION, Fact.OS_VERSION, Fact.DEVICE, Fact.CHANNEL, Fact.UID)
# A log writes its version and the channel it joins near its start: a paste is read for
# them this far.
PASTED_LOG_CHARS = 16 * 1024
# Words only a pasted log, crash report or tombstone has; without them none is read.
PASTED_MARKERS = (
    "fingerprint",
    "ro.build",
    "ro.product",
    "hardware model",
    "os version:",
    "os_version",
)


@dataclass(frozen=True, slots=True)
class Said:
    """What a page states (its platform only when named outright), and the platform it
    only implies."""

    facts: dict[Fact, Finding]
    implied: Finding | None


def read_first_mail(mail: MailText) -> Findings:
    """The facts and the kind of a customer's first mail."""
    prose, pasted = set_apart_pasted_log(mail.text)
    page = page_of(mail.subject, prose)
    logs = read_logs(mail.files)
    names = names_page(mail)
    said, named = text_facts(page, mail.sent_at, pasted), name_facts(names)
    facts = merged(said.facts, by_fact(logs.facts), named)
    facts[Fact.PLATFORM] = platform_of(said, logs, named)
    kind, excerpt = read_kind(page)
    if kind is Kind.OTHER and names.lines:
        kind, excerpt = read_kind(names)
    texts = (pasted, *(log.text() for log in logs.logs))
    if kind is Kind.OTHER and (excerpt := crash_in_logs(texts)):
        kind = Kind.CRASH
    urgency = read_urgency(mail.subject, mail.text)
    return Findings(ordered(facts, logs), kind, excerpt, urgency)


def read_reply(mail: MailText) -> Findings:
    """The facts a reply to our ask gives; its kind is OTHER."""
    answers = by_fact(read_answers(mail.text, mail.reply_text, mail.sent_at, mail.asked))
    prose, pasted = set_apart_pasted_log(own_words(mail))
    said = text_facts(page_of("", prose), mail.sent_at, pasted)
    logs = read_logs(mail.files)
    facts = merged(answers, said.facts, by_fact(logs.facts))
    facts[Fact.PLATFORM] = (
        answers.get(Fact.PLATFORM) or answered_platform(answers) or platform_of(said, logs, {})
    )
    return Findings(ordered(facts, logs))


def answered_platform(answers: Mapping[Fact, Finding]) -> Finding | None:
    """The platform an answered system version or device implies ("安卓13", "iPhone 14")."""
    for fact in (Fact.OS_VERSION, Fact.DEVICE):
        found = answers.get(fact)
        if found is None or found.value == UNKNOWN:
            continue
        page = page_from([found.value])
        implied = implied_platform(read_system(page), read_platform(page)[1])
        if implied:
            return Finding(Fact.PLATFORM, implied.value, Source.ANSWER, found.excerpt)
    return None


def own_words(mail: MailText) -> str:
    """The reply's new text without quoted lines (the parser has cut its quoted history)."""
    return "\n".join(line for line in mail.reply_text.splitlines() if not QUOTED.match(line))


# -- the readers ----------------------------------------------------------------------------


def set_apart_pasted_log(text: str) -> tuple[str, str]:
    """The customer's own words, and the log lines pasted among them (runs of at least
    `MIN_LOG_LINES` log lines): a log's timestamps and numbers are not the customer telling
    when or which version, and reading a long paste line by line for every fact would cost
    more than the rest of the filing."""
    lines = text[:MAX_TEXT_CHARS].splitlines()
    logged = [LOG_LINE.match(line) is not None for line in lines]
    pasted = pasted_runs(logged)
    # A run leaves one blank line: the paragraphs around it stay apart.
    prose = "\n".join(
        "" if in_run else line
        for index, (line, in_run) in enumerate(zip(lines, pasted, strict=True))
        if not (in_run and index and pasted[index - 1])
    )
    log = "\n".join(line for line, in_run in zip(lines, pasted, strict=True) if in_run)
    return prose, log


def pasted_runs(logged: list[bool]) -> list[bool]:
    """Which lines belong to a run of at least `MIN_LOG_LINES` log lines in a row."""
    runs = [False] * len(logged)
    start = 0
    for index in range(len(logged) + 1):
        if index < len(logged) and logged[index]:
            continue
        if index - start >= MIN_LOG_LINES:
            runs[start:index] = [True] * (index - start)
        start = index + 1
    return runs


def text_facts(page: Page, sent_at: datetime | None, pasted: str = "") -> Said:
    """Each fact as the page states it, and as the log pasted among its lines names the
    system and the device."""
    outright, implied = read_platform(page)
    system = read_system(page, outright.value if outright else None)
    named = {
        Fact.SDK_VERSION: read_sdk_version(page),
        Fact.PLATFORM: outright,
        Fact.OS_VERSION: system,
        Fact.DEVICE: read_device(page),
        Fact.APP_ID: read_labelled(page, Fact.APP_ID),
        Fact.CHANNEL: read_labelled(page, Fact.CHANNEL),
        Fact.UID: read_labelled(page, Fact.UID),
        Fact.OCCURRED_AT: read_occurrence(page, sent_at),
        Fact.REPRO_STEPS: read_steps(page),
    }
    facts = {
        fact: Finding(fact, found.value, page.source(found.line), found.excerpt)
        for fact, found in named.items()
        if found is not None
    }
    facts = {**pasted_facts(page, pasted), **facts}
    return Said(facts, finding(page, Fact.PLATFORM, implied_platform(system, implied)))


def pasted_facts(page: Page, pasted: str) -> dict[Fact, Finding]:
    """What a log pasted into the text states: its log lines as an attached log's are read
    ("sdk version: 4.0.6", the channel joined), and report lines among the text's own
    ("Build fingerprint: …", "Hardware Model: iPhone15,2") for the system and device. The
    text's own words come after what its sentences say."""
    head = pasted[:PASTED_LOG_CHARS]
    found = {
        finding.fact: Finding(finding.fact, finding.value, Source.BODY, finding.excerpt)
        for finding in facts_in(head, lower(head), PASTED_LOG_FACTS)
    }
    if any(marker in page.folded for marker in PASTED_MARKERS):
        for finding in facts_in(page.joined, page.folded, PASTED_FACTS):
            found[finding.fact] = Finding(finding.fact, finding.value, Source.BODY, finding.excerpt)
    return found


def implied_platform(system: Named | None, implied: Named | None) -> Named | None:
    """The platform of the system version named, else of a device or a browser."""
    platform = platform_of_system(system.value) if system else None
    if system and platform:
        return Named(platform, system.line, system.excerpt)
    return implied


def finding(page: Page, fact: Fact, named: Named | None) -> Finding | None:
    if named is None:
        return None
    return Finding(fact, named.value, page.source(named.line), named.excerpt)


def names_page(mail: MailText) -> Page:
    """The attached files' names, one a line, their "_" read as spaces."""
    return page_from([file.name.replace("_", " ") for file in mail.files])


def name_facts(names: Page) -> dict[Fact, Finding]:
    if not names.lines:
        return {}
    outright, implied = read_platform(names)
    read = {
        Fact.SDK_VERSION: read_sdk_version(names),
        Fact.PLATFORM: outright or implied,
        Fact.OS_VERSION: read_system(names),
        Fact.DEVICE: read_device(names),
    }
    return {
        fact: Finding(fact, found.value, Source.ATTACHMENT_NAME, found.excerpt)
        for fact, found in read.items()
        if found is not None
    }


# -- putting them together ------------------------------------------------------------------


def by_fact(findings: Iterable[Finding]) -> dict[Fact, Finding]:
    return {found.fact: found for found in findings}


def merged(*sources: Mapping[Fact, Finding]) -> dict[Fact, Finding | None]:
    """Each fact from the first source that has it."""
    facts: dict[Fact, Finding | None] = {}
    for source in reversed(sources):
        facts.update(source)
    return facts


def platform_of(said: Said, logs: LogReading, names: Mapping[Fact, Finding]) -> Finding | None:
    """Text framework, log framework, text system, text implied, log system, file name."""
    text, logged = said.facts.get(Fact.PLATFORM), by_fact(logs.facts).get(Fact.PLATFORM)
    order = (
        text if text and text.value in FRAMEWORKS else None,
        logged if logged and logged.value in FRAMEWORKS else None,
        text,
        said.implied,
        logged,
        names.get(Fact.PLATFORM),
    )
    return next((found for found in order if found is not None), None)


def ordered(facts: dict[Fact, Finding | None], logs: LogReading) -> tuple[Finding, ...]:
    """The findings in the order of `Fact`, the logs as one."""
    facts[Fact.LOGS] = logs.finding() or facts.get(Fact.LOGS)
    return tuple(found for fact in Fact if (found := facts.get(fact)) is not None)
