"""The support figures as people read them, and the `gateway report` command that prints them:
tables in plain text, the same figures as JSON for programs, or a page a lead would rather
look at than read (`--html`), with the charts drawn as inline SVG.

The charts are laid out here, as rectangles, rings and labels with their coordinates; the
operators' template `templates/report/report.html.j2` turns them into markup, escaping every
text, so the page needs no script, font or file from anywhere else.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from gateway.database import reading
from gateway.knowledge.usage import ArticleFigures
from gateway.lookup import open_existing
from gateway.report import (
    AGE_BUCKETS,
    ALL,
    PRIORITY_KEYS,
    TARGETS,
    Backlog,
    Durations,
    Figures,
    Period,
    Rates,
    Tally,
    compute_figures,
    day_or_moment,
    period_of,
)
from gateway.report_json import figures_json
from gateway.service.phrasing import span_words
from gateway.settings import SOURCE_ROOT, Settings

TEMPLATE = "report/report.html.j2"
TARGET_NAMES = {"first_response": "first response", "resolution": "resolution"}
# Older tickets in hotter colours.
AGE_COLOURS = ("#a7f3d0", "#fde68a", "#fdba74", "#f87171", "#991b1b")
# Colours dark enough to need light words on them.
DARK = frozenset({"#991b1b"})
TRACK = "#e5e7eb"


# -- the command -----------------------------------------------------------------------------


def date_option(text: str) -> date | datetime:
    """`--since`/`--until`: an ISO date or time, or argparse's error naming the option."""
    try:
        return day_or_moment(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    gateway = open_existing(settings, renders_mail=False)
    zone = settings.service.calendar.zone
    period = period_of(args.since, args.until, gateway.clock.now(), zone)
    engineers = [engineer.address for engineer in settings.workflow.engineers]
    with reading(gateway.sessions) as session:
        figures = compute_figures(session, settings.service, period, engineers)
    if args.json:
        print(json.dumps(figures_json(figures), indent=2))
    elif args.html:
        Path(args.html).write_text(render_page(figures, zone, settings), "utf-8")
        print(f"wrote {args.html}")
    else:
        print("\n".join(text_lines(figures, zone)))
    return 0


# -- words and tables ------------------------------------------------------------------------


def period_words(period: Period, zone: tzinfo) -> str:
    """The period in the team's zone: whole days as days, else to the minute."""
    since, until = period.since.astimezone(zone), period.until.astimezone(zone)
    if since.time() == until.time() == time():
        last = until - timedelta(days=1)
        return f"{since.day} {since:%b %Y} – {last.day} {last:%b %Y}"
    return f"{since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} ({zone})"


def seconds_words(seconds: float | None, business: bool = False) -> str:
    """A duration as "2 h 10 min"; business time in hours, its days being shorter."""
    return "-" if seconds is None else span_words(seconds, "en", whole_days=not business)


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def duration_rows(per_key: Mapping[str, Durations]) -> list[list[str]]:
    """A table of durations: a header, then one row per priority key."""
    header = ["", "count", "median", "p90", "business median", "business p90"]
    return [header] + [
        [
            key,
            str(d.count),
            seconds_words(d.median_s),
            seconds_words(d.p90_s),
            seconds_words(d.business_median_s, business=True),
            seconds_words(d.business_p90_s, business=True),
        ]
        for key, d in per_key.items()
    ]


def rate_rows(per_key: Mapping[str, Rates]) -> list[list[str]]:
    header = ["", "first-contact resolution", "reopen rate"]
    rows = [
        [key, part_words(r.first_contact, r.closed), part_words(r.reopened, r.resolved)]
        for key, r in per_key.items()
    ]
    return [header, *rows]


def part_words(part: int, whole: int) -> str:
    """A share with what it is of: "67% (2 of 3)"."""
    return f"{part / whole:.0%} ({part} of {whole})" if whole else "-"


def tally_words(tally: Tally) -> str:
    return part_words(tally.met, tally.met + tally.missed)


def target_rows(targets: Mapping[str, Mapping[str, Tally]]) -> list[list[str]]:
    header = ["", *(f"{TARGET_NAMES[name]} met" for name in TARGETS)]
    rows = [[key, *(tally_words(targets[name][key]) for name in TARGETS)] for key in PRIORITY_KEYS]
    return [header, *rows]


def backlog_rows(backlog: Backlog) -> list[list[str]]:
    buckets = [name for name, _ in AGE_BUCKETS]
    rows = [
        [status, *(str(ages[b]) for b in buckets), str(backlog.by_status[status])]
        for status, ages in backlog.by_status_and_age.items()
    ]
    total = ["total", *(str(backlog.by_age[b]) for b in buckets), str(backlog.total)]
    return [["", *buckets, "total"], *rows, total]


def aligned(title: str, rows: list[list[str]]) -> list[str]:
    """A titled table in columns: the title over the first column's header."""
    rows = [[title, *rows[0][1:]], *rows[1:]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def text_lines(figures: Figures, zone: tzinfo) -> list[str]:
    """The report as plain text, one table per section."""
    backlog = figures.backlog
    return [
        f"Support figures, {period_words(figures.period, zone)}",
        "",
        *aligned("First response", duration_rows(figures.first_response)),
        "",
        *aligned("Resolution", duration_rows(figures.resolution)),
        "",
        *aligned("Rates", rate_rows(figures.rates)),
        "",
        *aligned("Targets", target_rows(figures.targets_met)),
        "",
        *aligned(f"Backlog ({backlog.total} open)", backlog_rows(backlog)),
        "",
        *article_lines(figures.articles),
    ]


def article_lines(articles: ArticleFigures) -> list[str]:
    """The knowledge base's part: solved by an article, suggestions opened, and the
    articles suggested most without solving anything."""
    opened = part_words(articles.tickets_opened, articles.tickets_suggested)
    lines = [
        "Knowledge base",
        f"  tickets solved by an article  {articles.tickets_solved}",
        f"  suggestions opened            {opened} of the tickets given suggestions",
    ]
    if articles.never_solving:
        lines.append("  most suggested without solving anything:")
        lines += [f"    {slug} ({times}x)" for slug, times in articles.never_solving]
    return lines


# -- charts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    # What a pointer resting on it shows.
    tip: str = ""


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    # Its CSS class in the template.
    kind: str = "value"


@dataclass(frozen=True, slots=True)
class Ring:
    """A gauge: a ring filled clockwise to `share` of its circumference."""

    cx: float
    cy: float
    r: float
    share: float
    colour: str

    @property
    def circumference(self) -> float:
        return 2 * math.pi * self.r

    @property
    def dash(self) -> float:
        return self.share * self.circumference


@dataclass(frozen=True, slots=True)
class Chart:
    """One SVG picture: what it shows (its accessible name), its size and its shapes."""

    title: str
    width: int
    height: int
    rects: tuple[Rect, ...] = ()
    labels: tuple[Label, ...] = ()
    rings: tuple[Ring, ...] = ()


@dataclass(frozen=True, slots=True)
class Colours:
    """A duration chart's two bars."""

    median: str
    p90: str


Shapes = tuple[list[Rect], list[Label]]
WIDTH = 500
# The height of a line of the charts' small words.
LINE = 13.0
# The duration charts' bars stand on `BASE` and reach up to `TOP` at the longest p90.
TOP, BASE = 52.0, 240.0
# The horizontal bars (targets, backlog) start at `TRACK_X` and are at most this long.
TRACK_X, TRACK_LENGTH = 130.0, 260.0


def legend(y: float, entries: tuple[tuple[str, str], ...], step: float = 90) -> Shapes:
    """Colour keys in a row, each named."""
    keys = [Rect(12 + step * i, y, 11, 11, colour) for i, (_, colour) in enumerate(entries)]
    names = [
        Label(28 + step * i, y + 10, name, "start", "axis") for i, (name, _) in enumerate(entries)
    ]
    return keys, names


def duration_chart(title: str, per_key: Mapping[str, Durations], colours: Colours) -> Chart:
    """Median and p90 (calendar time) side by side for each priority, on one scale."""
    longest = max((d.p90_s or 0.0 for d in per_key.values()), default=0.0) or 1.0
    rects, labels = legend(10, (("median", colours.median), ("p90", colours.p90)))
    group = (WIDTH - 20) / len(per_key)
    for index, (key, d) in enumerate(per_key.items()):
        left = 10 + index * group
        labels.append(Label(left + group / 2, BASE + 20, f"{key} ({d.count})", kind="axis"))
        median = column(left + group * 0.08, group * 0.4, d.median_s, longest, colours.median)
        p90 = column(left + group * 0.52, group * 0.4, d.p90_s, longest, colours.p90)
        rects += [median[0], p90[0]]
        labels += [lifted(median[1], p90[1]), p90[1]]
    rects.append(Rect(10, BASE, WIDTH - 20, 1, "#9ca3af"))
    return Chart(title, WIDTH, int(BASE) + 32, tuple(rects), tuple(labels))


def column(
    x: float, width: float, seconds: float | None, longest: float, fill: str
) -> tuple[Rect, Label]:
    """One bar of a duration chart and the words above it."""
    tall = 0.0 if seconds is None else (BASE - TOP) * seconds / longest
    words = seconds_words(seconds)
    bar = Rect(x, BASE - tall, width, tall, fill, words)
    return bar, Label(x + width / 2, BASE - tall - 5, words, kind="small")


def lifted(label: Label, beside: Label) -> Label:
    """The median's words a line higher when they would run into the p90's beside them."""
    if abs(label.y - beside.y) >= LINE:
        return label
    return Label(label.x, min(label.y, beside.y) - LINE, label.text, label.anchor, label.kind)


def rate_colour(rate: float | None) -> str:
    """Green from 90 %, amber from 70 %, red below."""
    if rate is None:
        return TRACK
    return "#16a34a" if rate >= 0.9 else "#f59e0b" if rate >= 0.7 else "#dc2626"


def targets_chart(targets: Mapping[str, Mapping[str, Tally]]) -> Chart:
    """For each priority and target, a track filled to the share met."""
    rects: list[Rect] = []
    labels: list[Label] = []
    rows = [(key, name) for key in PRIORITY_KEYS for name in TARGETS]
    for index, (key, name) in enumerate(rows):
        y = 10 + index * 24 + (index // len(TARGETS)) * 10
        tally = targets[name][key]
        filled = TRACK_LENGTH * (tally.rate or 0.0)
        rects += [
            Rect(TRACK_X, y, TRACK_LENGTH, 16, TRACK),
            Rect(TRACK_X, y, filled, 16, rate_colour(tally.rate), tally_words(tally)),
        ]
        labels += [
            Label(TRACK_X - 8, y + 12, f"{key} {TARGET_NAMES[name]}", "end", "axis"),
            Label(TRACK_X + TRACK_LENGTH + 8, y + 12, tally_words(tally), "start", "axis"),
        ]
    height = 20 + len(rows) * 24 + len(PRIORITY_KEYS) * 10
    return Chart("Targets met", WIDTH, height, tuple(rects), tuple(labels))


def gauge(title: str, rate: float | None, words: str, colour: str) -> Chart:
    """A big number in a ring filled to it."""
    ring = Ring(90, 80, 58, rate or 0.0, colour)
    labels = (Label(90, 92, percent(rate), kind="big"), Label(90, 172, words, kind="axis"))
    return Chart(title, 180, 184, labels=labels, rings=(ring,))


def backlog_chart(backlog: Backlog) -> Chart:
    """One bar per status, stacked by age, the oldest hottest."""
    most = max(backlog.by_status.values(), default=0) or 1
    entries = tuple(
        (name, colour) for (name, _), colour in zip(AGE_BUCKETS, AGE_COLOURS, strict=True)
    )
    rects, labels = legend(10, entries, step=80)
    for row, (status, ages) in enumerate(backlog.by_status_and_age.items()):
        y = 40 + row * 40
        more_rects, more_labels = stack(ages, y, TRACK_LENGTH / most)
        rects += more_rects
        labels += [*more_labels, Label(TRACK_X - 8, y + 17, status, "end", "axis")]
        total = backlog.by_status[status]
        labels.append(
            Label(TRACK_X + TRACK_LENGTH * total / most + 8, y + 17, str(total), "start", "axis")
        )
    return Chart(
        "Backlog by status and age",
        WIDTH,
        40 + 40 * len(backlog.by_status),
        tuple(rects),
        tuple(labels),
    )


def stack(ages: Mapping[str, int], y: float, per_ticket: float) -> Shapes:
    """One status's bar: a segment per age bucket that holds tickets."""
    rects: list[Rect] = []
    labels: list[Label] = []
    x = TRACK_X
    for (bucket, _), colour in zip(AGE_BUCKETS, AGE_COLOURS, strict=True):
        count = ages[bucket]
        if count:
            rects.append(Rect(x, y, per_ticket * count, 26, colour, f"{bucket}: {count}"))
            kind = "inbar dark" if colour in DARK else "inbar"
            labels.append(Label(x + per_ticket * count / 2, y + 18, str(count), kind=kind))
        x += per_ticket * count
    return rects, labels


# -- the page --------------------------------------------------------------------------------


def page_context(figures: Figures, zone: tzinfo) -> dict[str, Any]:
    """What the page template is given: its title, charts and tables, all as text and
    shapes."""
    return {
        "title": f"Support figures, {period_words(figures.period, zone)}",
        "zone": str(zone),
        "gauges": gauges(figures.rates[ALL]),
        "total_open": figures.backlog.total,
        "charts": charts(figures),
        "tables": [
            ("First response", duration_rows(figures.first_response)),
            ("Resolution", duration_rows(figures.resolution)),
            ("Rates", rate_rows(figures.rates)),
            ("Targets", target_rows(figures.targets_met)),
            ("Backlog", backlog_rows(figures.backlog)),
        ],
    }


def gauges(rates: Rates) -> list[Chart]:
    fcr = f"{rates.first_contact} of {rates.closed} closed"
    reopened = f"{rates.reopened} of {rates.resolved} resolved"
    return [
        gauge("First-contact resolution", rates.fcr_rate, fcr, "#16a34a"),
        gauge("Reopen rate", rates.reopen_rate, reopened, "#f97316"),
    ]


def charts(figures: Figures) -> list[Chart]:
    response = Colours("#2563eb", "#93c5fd")
    resolution = Colours("#7c3aed", "#c4b5fd")
    return [
        duration_chart("First response, median and p90", figures.first_response, response),
        duration_chart("Resolution, median and p90", figures.resolution, resolution),
        targets_chart(figures.targets_met),
        backlog_chart(figures.backlog),
    ]


def render_page(figures: Figures, zone: tzinfo, settings: Settings) -> str:
    """The page, from the operators' template folder, else the one this checkout ships."""
    folders = [settings.notify.templates_dir, SOURCE_ROOT / "templates"]
    environment = Environment(
        loader=FileSystemLoader(folders), autoescape=True, undefined=StrictUndefined
    )
    return environment.get_template(TEMPLATE).render(page_context(figures, zone))
