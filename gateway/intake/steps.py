"""Steps to reproduce: the text of the steps, when the mail says how to make it happen.

Read, in order: a heading ("Steps to reproduce", "Repro steps", "复现步骤", "操作步骤") with
the list or the words after it; a numbered list ("1.", "2)", "①", "第一步", "Step 1:") whose
items mostly do something ("join", "tap", "切换", "进入"); a sentence that chains actions
("first ... then ...", "先…然后…", "A → B → C"). A list of questions, a list of settings
("1. SDK version: 4.0.6") and a heading left empty ("复现步骤：无", "N/A") are no steps.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.intake import patterns
from gateway.intake.mentions import Named
from gateway.intake.page import Page, compiled, excerpt_of, is_placeholder, search

MAX_STEPS_CHARS = 2000
MAX_STEP_LINES = 30
HEADING = search(
    # A heading ends its line or is followed by a colon, a comma or a dash: "Steps we tried"
    # and "Reproduce rate: 100%" are no headings.
    rf"^[^\w\n]{{0,4}}(?:{patterns.STEPS_HEADING.pattern()})[】\])）*]{{0,2}}"
    r"(?:[ \t]*[:,\-][ \t]*|[ \t]*$)(?P<rest>.*)$",
    words=("step", "repro", "复现", "重现", "步骤"),
)
ITEM = search(
    r"^[ \t]*(?:\(?\d{1,2}[.)、:](?!\d)|step ?\d{1,2}[ \t]?[:.)-]?"
    r"|第[一二三四五六七八九十\d]{1,2}步[:,、]?|[一二三四五六七八九十][、.]|[-*•·][ \t])"
    r"[ \t]*(?P<item>\S.*)$"
)
# An action's word after an article or a possessive is a noun: "for the launch", "our call".
ACTION = compiled(rf"(?<!the )(?<!our )(?<!your )(?:{patterns.STEP_ACTIONS.pattern()})")
SEQUENCE = search(patterns.STEP_SEQUENCE)
# Items that ask, that state a setting ("SDK version: 4.0.6") or that tell what was tried:
# a list of them is no steps.
QUESTION = compiled(
    r"[?？][ \t]*$|吗[ \t]*$|^(?:how|what|why|is|are|can|could|does|do)\b"
    r"|^(?:we |i )?(?:have |had )?tried\b|^(?:我们)?(?:尝试|试过|试了)"
)
SETTING = compiled(r"^[^:]{1,30}:")
FIELD = compiled(r"^[^\w\n]{0,2}[^:\n]{1,20}?[^\w\n]{0,2}:[ \t]*(?:\S.{0,40})?$")
# Chinese words end at punctuation or the line's end: "偶现，暂时没找到规律", not "无线耳机".
NO_STEPS = compiled(
    r"^(?:none|no|n/?a|unknown|not sure|random(?:ly)?|intermittent|cannot reproduce"
    r"|can't reproduce)\b|^(?:无|暂无|没有|偶现|随机|不确定|无法复现|不能复现|待补充)"
    r"(?=$|[\s,.;:!，。；：！(（])"
)


def read_steps(page: Page) -> Named | None:
    """The steps the mail gives, or None."""
    return headed_steps(page) or listed_steps(page) or sentence_steps(page)


def headed_steps(page: Page) -> Named | None:
    for spot in page.matches(HEADING):
        rest = spot.written("rest").strip()
        items = [rest] if rest else []
        items += following_items(page, spot.line + 1, listed=not rest)
        text = "\n".join(items).strip()
        if text and not is_placeholder(text) and not NO_STEPS.match(text.lower()):
            return Named(text[:MAX_STEPS_CHARS], spot.line, excerpt_of(text))
    return None


def following_items(page: Page, start: int, *, listed: bool) -> list[str]:
    """The lines under a heading: its list when one starts there, else (with nothing on
    the heading's line) its paragraph, up to a blank line."""
    numbers = range(start, min(start + MAX_STEP_LINES, len(page.lines)))
    first = next((n for n in numbers if page.lines[n].strip()), None)
    as_list = first is not None and is_item(page, first)
    items: list[str] = []
    for number in numbers:
        line = page.lines[number].strip()
        if not line and not items:
            continue
        if not line or not (listed or as_list) or (as_list and not is_item(page, number)):
            break
        if not as_list and FIELD.match(page.folded_line(number)):
            break  # the form's next field ("【日志】：", "SDK log:"): the heading was left empty
        items.append(line)
    return items


def is_item(page: Page, line: int) -> bool:
    return ITEM.pattern.match(page.folded_line(line)) is not None


def listed_steps(page: Page) -> Named | None:
    """The first numbered or bulleted list whose items mostly do something."""
    for run in item_runs(page):
        if len(run) >= 2 and are_steps(page, run):
            text = "\n".join(page.lines[line].strip() for line in run)
            return Named(text[:MAX_STEPS_CHARS], run[0], excerpt_of(text))
    return None


def item_runs(page: Page) -> Iterator[list[int]]:
    """Runs of list items on consecutive lines, by their line numbers."""
    run: list[int] = []
    for spot in page.matches(ITEM):
        if run and (spot.line != run[-1] + 1 or len(run) >= MAX_STEP_LINES):
            yield run
            run = []
        run.append(spot.line)
    if run:
        yield run


def are_steps(page: Page, run: list[int]) -> bool:
    items = [found.group("item") for n in run if (found := ITEM.pattern.match(page.folded_line(n)))]
    acting = sum(1 for item in items if ACTION.search(item))
    asking = sum(1 for item in items if QUESTION.search(item) or SETTING.match(item))
    return acting >= 2 and acting * 2 >= len(items) and asking * 2 < len(items)


def sentence_steps(page: Page) -> Named | None:
    for spot in page.matches(SEQUENCE):
        if len(ACTION.findall(page.folded_line(spot.line))) >= 2:
            text = page.lines[spot.line].strip()
            return Named(text[:MAX_STEPS_CHARS], spot.line, spot.excerpt())
    return None
