"""Engineers' commands: `#resolve`, `#status waiting`, `#priority P1`, `#assign`, `#escalate`,
`#cc`, `#uncc`, `#merge 12`, `#follow`, `#unfollow`, `#ask logs device`, `#info ok`, `#kb
SLUG`, `#kb new`, `#kb outdated SLUG`, `#note`,
on their own lines at the top of a reply. Pure: no database, no network.

Only the top of the new part of a reply is read, so a command quoted from earlier mail (or a
`#status` line further down in the text) is never a command. Whether a command may be
applied, and to what, is decided later by the workflow.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from gateway.intake.facts import Fact, fact_named
from gateway.phrases import Phrase

STATUSES = ("open", "waiting", "resolved", "closed")
PRIORITIES = ("P1", "P2", "P3", "P4")
# What an engineer may type; `#resolve` is `#status resolved`, `#note` is not a command.
KNOWN = (
    "resolve",
    "status",
    "priority",
    "assign",
    "escalate",
    "cc",
    "uncc",
    "merge",
    "follow",
    "unfollow",
    "ask",
    "info",
    "kb",
    "note",
)


class CommandName(enum.StrEnum):
    """What a well-formed command does."""

    STATUS = "status"
    PRIORITY = "priority"
    ASSIGN = "assign"
    ESCALATE = "escalate"
    # Someone on the customer's side receives the ticket's mail, or stops receiving it.
    CC = "cc"
    UNCC = "uncc"
    # Join this ticket and another: the older one keeps both.
    MERGE = "merge"
    # The sending engineer gets the ticket's mail, or no more of it.
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    # The customer is asked for these facts (the missing ones when none are named).
    ASK = "ask"
    # `#info ok`: the intake is complete, nothing more is asked.
    INFO = "info"
    # The knowledge base: `SLUG` sends the customer an article, `new` drafts one from the
    # ticket, `outdated SLUG [why]` flags one for review.
    KB = "kb"


COMMAND_LINE = re.compile(r"^#([A-Za-z][\w-]*)(?:[ \t]+(.*))?$")
ADDRESS = re.compile(r"^<?([^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)>?$")
TICKET_NUMBER = re.compile(r"^#?\s*(\d{1,12})$")


@dataclass(frozen=True, slots=True)
class Command:
    """One well-formed command; `argument` is normalised (`waiting`, `P1`, an address)."""

    name: CommandName
    argument: str
    line: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A command line that could not be read, and why."""

    line: str
    reason: Phrase


@dataclass(frozen=True, slots=True)
class CommandBlock:
    """What the top of an engineer's reply asks for, and the text that follows it.

    With `note`, `body` is an internal note; otherwise it is the public reply.
    """

    commands: tuple[Command, ...]
    refusals: tuple[Refusal, ...]
    body: str
    note: bool


def read_commands(text: str) -> CommandBlock:
    """The command lines at the top of `text` (blank lines between them allowed)."""
    lines = text.splitlines()
    commands: list[Command] = []
    refusals: list[Refusal] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line:
            continue
        found = COMMAND_LINE.match(line)
        if found is None:
            index -= 1
            break
        name, argument = found.group(1).lower(), (found.group(2) or "").strip()
        if name == "note":
            note = "\n".join([argument, *lines[index:]]).strip()
            return CommandBlock(tuple(commands), tuple(refusals), note, True)
        read = read_command(name, argument, line)
        if isinstance(read, Command):
            commands.append(read)
        else:
            refusals.append(read)
    body = "\n".join(lines[index:]).strip()
    return CommandBlock(tuple(commands), tuple(refusals), body, False)


def read_command(name: str, argument: str, line: str) -> Command | Refusal:
    """One command line checked for its form; its effect is checked by the workflow."""
    if name == "resolve":
        return (
            Command(CommandName.STATUS, "resolved", line)
            if not argument
            else Refusal(line, Phrase("#resolve takes no argument", "#resolve 不带参数"))
        )
    if name in ("escalate", "follow", "unfollow"):
        if argument:
            return Refusal(line, Phrase(f"#{name} takes no argument", f"#{name} 不带参数"))
        return Command(CommandName(name), "", line)
    if name == "status":
        status = argument.lower()
        if status not in STATUSES:
            return Refusal(
                line,
                Phrase(
                    f"#status needs one of: {', '.join(STATUSES)}",
                    f"#status 需要以下之一：{', '.join(STATUSES)}",
                ),
            )
        return Command(CommandName.STATUS, status, line)
    if name == "priority":
        priority = argument.upper()
        priority = f"P{priority}" if priority in ("1", "2", "3", "4") else priority
        if priority not in PRIORITIES:
            return Refusal(
                line,
                Phrase(
                    f"#priority needs one of: {', '.join(PRIORITIES)}",
                    f"#priority 需要以下之一：{', '.join(PRIORITIES)}",
                ),
            )
        return Command(CommandName.PRIORITY, priority, line)
    if name in ("assign", "cc", "uncc"):
        address = ADDRESS.match(argument)
        if address is None:
            whose = "an engineer's" if name == "assign" else "one person's"
            whose_zh = "一位工程师的" if name == "assign" else "一个人的"
            return Refusal(
                line, Phrase(f"#{name} needs {whose} address", f"#{name} 需要{whose_zh}邮件地址")
            )
        return Command(CommandName(name), address.group(1).lower(), line)
    if name == "merge":
        number = TICKET_NUMBER.match(argument)
        if number is None:
            return Refusal(
                line,
                Phrase(
                    "#merge needs the other ticket's number, as in #merge 12",
                    "#merge 需要另一个工单的编号，例如 #merge 12",
                ),
            )
        return Command(CommandName.MERGE, str(int(number.group(1))), line)
    if name in ("ask", "info"):
        return read_intake_command(name, argument, line)
    if name == "kb":
        return read_kb_command(argument, line)
    known = ", ".join("#" + k for k in KNOWN)
    return Refusal(
        line, Phrase(f"unknown command; known: {known}", f"未知命令；可用的命令：{known}")
    )


def read_intake_command(name: str, argument: str, line: str) -> Command | Refusal:
    """`#ask NAME...` (fact names or their aliases, as in `#ask device logs`) and
    `#info ok`."""
    if name == "info":
        if argument.lower() != "ok":
            return Refusal(
                line, Phrase("#info takes ok, as in #info ok", "#info 需要 ok，例如 #info ok")
            )
        return Command(CommandName.INFO, "ok", line)
    words = argument.replace(",", " ").replace("，", " ").split()
    facts = [fact_named(word) for word in words]
    if None in facts:
        unknown = ", ".join(word for word, fact in zip(words, facts, strict=True) if fact is None)
        known = ", ".join(Fact)
        return Refusal(
            line,
            Phrase(
                f"#ask does not know {unknown}; it knows: {known}",
                f"#ask 不认识 {unknown}；可用的名称：{known}",
            ),
        )
    named = dict.fromkeys(fact for fact in facts if fact is not None)
    return Command(CommandName.ASK, " ".join(named), line)


# An article's slug: its file's name in the knowledge base's folder, without `.md`.
ARTICLE_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")


def read_kb_command(argument: str, line: str) -> Command | Refusal:
    """`#kb SLUG`, `#kb new` and `#kb outdated SLUG [why]`, normalised to `SLUG`, `new` and
    `outdated SLUG why`."""
    words = argument.split(maxsplit=2)
    usage = Phrase(
        "#kb needs an article's slug, new, or outdated and a slug, as in #kb outdated SLUG",
        "#kb 需要文章的 slug、new，或 outdated 加 slug，例如 #kb outdated SLUG",
    )
    if not words:
        return Refusal(line, usage)
    first = words[0].lower()
    if first == "new" and len(words) == 1:
        return Command(CommandName.KB, "new", line)
    if first == "outdated" and len(words) >= 2 and ARTICLE_SLUG.fullmatch(words[1].lower()):
        return Command(CommandName.KB, " ".join(["outdated", words[1].lower(), *words[2:]]), line)
    if len(words) == 1 and ARTICLE_SLUG.fullmatch(first) and first not in ("new", "outdated"):
        return Command(CommandName.KB, first, line)
    return Refusal(line, usage)
