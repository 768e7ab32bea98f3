"""The intake: the facts a report gives, read from its mail and attached logs.

Pure: no database, no network. `facts` names them and says which a kind of report needs;
`extraction` reads a first mail or a reply; `logs` tells which attachments are logs and
reads the facts in them, with `unpacking` reading text and archives within bounds;
`answers` reads a reply to the ask; `patterns` is the table of words and patterns each
fact is read by, per language, with `devices` and `kind_words` (what a report is about)
kept apart for their length. The readers of one fact or two each have a module:
`versions` (the SDK version), `mentions` (platform, system version, device), `identifiers`
(App ID, channel, user ID), `occurrence` (when it happened, with `zones`), `steps` (steps
to reproduce) and `kinds` (what a report is about), all reading a `page`: the mail's text
made ready, matched line by line.
"""

from gateway.intake.extraction import read_first_mail, read_reply
from gateway.intake.facts import (
    DEFAULT_REQUIRED,
    LABELS,
    UNKNOWN,
    Fact,
    File,
    Finding,
    Findings,
    Kind,
    MailText,
    Source,
    fact_named,
    missing_facts,
)

__all__ = [
    "DEFAULT_REQUIRED",
    "LABELS",
    "UNKNOWN",
    "Fact",
    "File",
    "Finding",
    "Findings",
    "Kind",
    "MailText",
    "Source",
    "fact_named",
    "missing_facts",
    "read_first_mail",
    "read_reply",
]
