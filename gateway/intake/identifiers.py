"""App ID, channel and user ID: values the customer labels ("App ID: …", "appid=…",
"频道名：…", "in channel live_room_88", "uid 1001"), taken as written.

A value follows its label after ":", "=", "is", "是" or a space; after a space alone it
needs a digit, "_" or "-", so "the channel is full" and "user id will be" give none. "audio
channel" and "声道" are not a call's channel; placeholders ("xxxx", "your_app_id") are no
value. An App ID has a digit in it.
"""

from __future__ import annotations

import re

from gateway.intake import patterns
from gateway.intake.facts import Fact
from gateway.intake.mentions import Named
from gateway.intake.page import FLAGS, Page, Spot, is_placeholder, lower, search

LABELLED = {
    fact: search(
        rf"(?P<label>{words.pattern()})(?P<separator>{patterns.VALUE_SEPARATOR})"
        rf"(?P<value>{patterns.LABELLED_VALUE})(?![a-z0-9_\-])"
    )
    for fact, words in patterns.LABELLED.items()
}
NOT_A_CHANNEL = re.compile(patterns.NOT_A_CHANNEL, FLAGS)
VALUE_WORD = re.compile(rf"(?:{patterns.VALUE_WORDS})", FLAGS)
EXPLICIT = re.compile(patterns.EXPLICIT_SEPARATOR, FLAGS)


def read_labelled(page: Page, fact: Fact) -> Named | None:
    """The first value labelled as `fact` (App ID, channel or user ID), or None."""
    for spot in page.matches(LABELLED[fact]):
        value = spot.written("value").rstrip(".,;:!")
        before = page.folded_line(spot.line)[: spot.span()[0]]
        separator = spot.found.group("separator")
        if is_value(value, separator, fact) and not (
            fact is Fact.CHANNEL and (NOT_A_CHANNEL.search(before) or an_address(spot, separator))
        ):
            return Named(value, spot.line, spot.excerpt())
    return None


def an_address(spot: Spot, separator: str) -> bool:
    """ "Room 1203, Building 5": a bare "room" and a number, with no separator, is where a
    signature's office is, not a channel."""
    return spot.found.group("label").strip() == "room" and not EXPLICIT.search(separator)


def is_value(value: str, separator: str, fact: Fact) -> bool:
    if is_placeholder(value) or VALUE_WORD.fullmatch(lower(value)):
        return False
    if fact is Fact.APP_ID and not re.search(r"\d", value):
        return False
    if fact is Fact.UID and value == "0":
        return False  # uid 0: the SDK assigns one, no user is named
    return EXPLICIT.search(separator) is not None or re.search(r"[\d_\-]", value) is not None


def value_in(text: str) -> str | None:
    """A labelled answer's value as written: its first word, without quotes."""
    words = text.strip().strip("\"'“”`").split()
    return words[0].strip("\"'“”`,;") if words else None
