"""Steps to reproduce: the text of the steps, when the mail says how to make it happen.

Read, in order: a heading ("Steps to reproduce", "Repro steps", "复现步骤", "操作步骤") with
the list or the words after it; a numbered list ("1.", "2)", "①", "第一步", "Step 1:") whose
items mostly do something ("join", "tap", "切换", "进入"); a sentence that chains actions
("first ... then ...", "先…然后…", "A → B → C"). A list of questions, a list of settings
("1. SDK version: 4.0.6") and a heading left empty ("复现步骤：无", "N/A") are no steps.
"""

from __future__ import annotations

import re

from gateway.intake import patterns
from gateway.intake.mentions import Named
from gateway.intake.page import FLAGS, Page, compiled, is_placeholder

MAX_STEPS_CHARS = 2000
MAX_STEP_LINES = 30
HEADING = re.compile(
    rf"^\W{{0,4}}(?:{patterns.STEPS_HEADING.pattern()})\W{{0,3}}?\s?[:\-]?\s?(?P<rest>.*)$", FLAGS
)
ITEM = compiled(
    r"^\s*(?:\(?\d{1,2}[.)、:](?!\d)|step ?\d{1,2}\s?[:.)-]?"
    r"|第[一二三四五六七八九十\d]{1,2}步[:,、]?|[一二三四五六七八九十][、.]|[-*•·]\s)"
    r"\s*(?P<item>\S.*)$"
)
ACTION = compiled(patterns.STEP_ACTIONS.pattern())
SEQUENCE = compiled(patterns.STEP_SEQUENCE)
QUESTION = compiled(r"[?？]\s*$|吗\s*$|^(?:how|what|why|is|are|can|could|does|do)\b")
SETTING = compiled(r"^[^:]{1,30}:\s?\S{1,40}$")
NO_STEPS = compiled(
    r"^(?:none|no|n/?a|unknown|not sure|random(?:ly)?|intermittent|cannot reproduce"
    r"|can't reproduce|无|暂无|没有|偶现|随机|不确定|无法复现|不能复现|待补充)\b"
)


def read_steps(page: Page) -> Named | None:
    """The steps the mail gives, or None."""
    return headed_steps(page) or listed_steps(page) or sentence_steps(page)


def headed_steps(page: Page) -> Named | None:
    for index, line in enumerate(page.lines):
        heading = HEADING.match(line)
        if heading is None:
            continue
        rest = heading.group("rest").strip()
        items = [rest] if rest else []
        items += following_items(page, index + 1, listed=not rest)
        text = "\n".join(items).strip()
        if text and not is_placeholder(text) and not NO_STEPS.match(text):
            return Named(text[:MAX_STEPS_CHARS], index, page.excerpt(index))
    return None


def following_items(page: Page, start: int, *, listed: bool) -> list[str]:
    """The lines under a heading: its list when one starts there, else (with nothing on
    the heading's line) its paragraph, up to a blank line."""
    lines = page.lines[start : start + MAX_STEP_LINES]
    first = next((line for line in lines if line.strip()), "")
    as_list = ITEM.match(first) is not None
    items: list[str] = []
    for line in lines:
        if not line.strip() and not items:
            continue
        if not line.strip() or not (listed or as_list) or (as_list and not ITEM.match(line)):
            break
        items.append(line.strip())
    return items


def listed_steps(page: Page) -> Named | None:
    """The first numbered or bulleted list whose items mostly do something."""
    index = 0
    while index < len(page.lines):
        run = list_run(page, index)
        if len(run) >= 2 and are_steps(run):
            text = "\n".join(line.strip() for line in run)
            return Named(text[:MAX_STEPS_CHARS], index, page.excerpt(index))
        index += max(1, len(run))
    return None


def list_run(page: Page, start: int) -> list[str]:
    run: list[str] = []
    for line in page.lines[start : start + MAX_STEP_LINES]:
        if not ITEM.match(line):
            break
        run.append(line)
    return run


def are_steps(run: list[str]) -> bool:
    items = [found.group("item") for line in run if (found := ITEM.match(line))]
    acting = sum(1 for item in items if ACTION.search(item))
    asking = sum(1 for item in items if QUESTION.search(item) or SETTING.match(item))
    return acting >= 2 and acting * 2 >= len(items) and asking * 2 < len(items)


def sentence_steps(page: Page) -> Named | None:
    for line, _ in page.matches(SEQUENCE):
        text = page.lines[line]
        if len(ACTION.findall(text)) >= 2:
            return Named(text.strip()[:MAX_STEPS_CHARS], line, page.excerpt(line))
    return None
