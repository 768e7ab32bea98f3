"""Quoting: the new part of a reply, without the quoted history and signature below it.

email_reply_parser knows "On ... wrote:" and signatures; the lines that open quoted history
in other clients and languages are found here first.
"""

from __future__ import annotations

import re

from email_reply_parser import EmailReplyParser

# Lines that open quoted history in replies from Outlook, Foxmail, QQ, NetEase and others,
# which email_reply_parser (written for "On ... wrote:") does not know.
QUOTE_HEADERS = re.compile(
    r"^\s*(?:"
    # The separator at the top of the gateway's own notifications to engineers.
    r"(?:>\s*)*##-.*-##"
    r"|-{2,}\s*(?:Original Message|Forwarded message|原始邮件|原始郵件|转发的邮件)\s*-{2,}"
    r"|_{10,}"
    r"|(?:From|发件人|寄件者|發件人)\s*[:：].*"
    r"|在.{2,80}(?:写道|寫道)\s*[:：]"
    r"|On .{2,200}wrote:"
    r")\s*$",
    re.IGNORECASE,
)
# "On <date>, <name> wrote:" in the languages clients write it in; phones wrap it over lines
# (Android: `02.04.2012 14:20 пользователь "bob" <` / `bob@example.com> написал:`).
ATTRIBUTION_START = re.compile(
    r"^\s*(?:(?:On|Am|Le|El|Il|Op|Em|W dniu)\s|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b)"
)
ATTRIBUTION_END = re.compile(
    r"(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|napisał|написала?|写道|寫道)"
    r"\s*[:：]\s*$",
    re.IGNORECASE,
)
ATTRIBUTION_LINES = 3


def extract_reply(text: str) -> str:
    """The new part of a reply: quoted history and signature removed."""
    lines = text.splitlines()
    start = quoted_history_start(lines)
    if start is not None:
        lines = lines[:start]
    visible = EmailReplyParser.parse_reply("\n".join(lines))
    return str(visible).strip()


def quoted_history_start(lines: list[str]) -> int | None:
    """The index of the line that introduces quoted history, if one does."""
    for index, line in enumerate(lines):
        if index == 0:
            continue
        if QUOTE_HEADERS.match(line):
            return index
        if ATTRIBUTION_START.match(line):
            attribution = lines[index : index + ATTRIBUTION_LINES]
            for end, following in enumerate(attribution):
                if not following.strip():
                    break
                if ATTRIBUTION_END.search(following):
                    if len(" ".join(attribution[: end + 1])) <= 300:
                        return index
                    break
    return None
