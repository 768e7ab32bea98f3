"""`gateway report`: the support figures of a period, checked against a small history worked
out by hand. The history is real mail filed through the gateway's stages with a clock moved
by hand: customers write, engineers answer through their reply tokens, give commands alone,
write internal notes, put a ticket on waiting, resolve, reopen; customers say "not fixed",
"thanks" and follow a closed ticket up. Then the figures are read in this process and by the
command (`--json`, plain text, `--html`), and the page is opened in a real headless Chromium.

The team's calendar is the default one: Asia/Shanghai (UTC+8), Mon-Fri 09:00-18:00, China's
holidays (none in November 2026). Targets: P1 1 h / 1 day around the clock; P2 4 business
hours / 3 business days; P3 1 / 5 business days; P4 3 / 10 business days; a business day is
9 hours. All times below are Shanghai times; the period is Mon 2 Nov to Fri 13 Nov 2026.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.clock import Clock
from gateway.errors import UsageError
from gateway.report import (
    AGE_BUCKETS,
    Period,
    age_bucket,
    compute_figures,
    p90,
    period_of,
)
from gateway.report_json import figures_json
from gateway.report_page import date_option
from gateway.service.levels import SenderRule, ServiceLevels
from gateway.settings import Settings
from tests.conftest import (
    ENG1,
    ENG2,
    ENGINEERS,
    CapturedMail,
    Desk,
    DirectGateway,
    Sink,
    gateway_env,
    new_mail,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SINCE, UNTIL = date(2026, 11, 2), date(2026, 11, 13)
# Chromium starts slowly on a loaded machine; a minute is far more than it needs.
CHROMIUM_SECONDS = 60


def cst(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def customer(n: int) -> str:
    return f"c{n}@customer.example"


class History:
    """Mail filed through the gateway, each at a moment set by hand."""

    def __init__(self, desk: Desk, clock: Clock) -> None:
        self.desk, self.clock = desk, clock

    def at(self, moment: datetime) -> None:
        self.clock.fast_forward(moment - self.clock.now())

    def opens(self, moment: datetime, sender: str, subject: str) -> int:
        self.at(moment)
        mail = new_mail(sender, subject, f"{subject}. Can you help?")
        self.desk.customer_writes(mail.as_bytes(), sender=sender)
        return max(ticket.id for ticket in self.desk.gateway.tickets())

    def engineer(self, moment: datetime, ticket_id: int, engineer: str, body: str) -> None:
        self.at(moment)
        self.desk.engineer_replies(self.latest(engineer, ticket_id), engineer, body)

    def customer(self, moment: datetime, ticket_id: int, sender: str, body: str) -> None:
        self.at(moment)
        self.desk.customer_replies(self.latest(sender, ticket_id), body, sender=sender)

    def latest(self, address: str, ticket_id: int) -> CapturedMail:
        """The newest mail to `address` about the ticket: its reply token is theirs."""
        tag = f"[Support #{ticket_id}]"
        return [m for m in self.desk.mails_to(address) if tag in Desk.subject(m)][-1]


def file_history(history: History) -> dict[str, int]:
    """The tickets of the report's tests, by the names the figures below use."""
    h, t = history, {}
    # Every ticket opens as P2 (the sender rule); a command alone sets another priority.
    # Before the period. T8 (P2): never answered, open for more than 30 days at the end.
    t["T8"] = h.opens(cst(10, 12, 10), customer(8), "Dashboard shows no data")
    # T9 (P3): answered, resolved and closed in October; followed up in the period.
    t["T9"] = h.opens(cst(10, 12, 11), customer(9), "Recording fails on iOS")
    h.engineer(cst(10, 12, 11, 5), t["T9"], ENG1, "#priority P3")
    h.engineer(cst(10, 13, 10), t["T9"], ENG1, "#resolve\nFixed on the server side.")
    h.customer(cst(10, 13, 11), t["T9"], customer(9), "Works now, thanks!")
    # T7 (P4): answered in October, waiting on its customer ever since.
    t["T7"] = h.opens(cst(10, 28, 10), customer(7), "Question about billing")
    h.engineer(cst(10, 28, 10, 5), t["T7"], ENG1, "#priority P4")
    h.engineer(cst(10, 28, 11), t["T7"], ENG1, "#status waiting\nWhat is your account id?")
    # The period. T1 (P1): a command alone and an internal note are no response; one public
    # reply resolves it, and the customer confirms.
    t["T1"] = h.opens(cst(11, 2, 10), customer(1), "Live stream down")
    h.engineer(cst(11, 2, 10, 10), t["T1"], ENG1, "#priority P1")
    h.engineer(cst(11, 2, 10, 20), t["T1"], ENG1, "#note Looking at the server logs first.")
    h.engineer(cst(11, 2, 10, 40), t["T1"], ENG1, "#resolve\nFixed in 5.2.2: please update.")
    h.customer(cst(11, 2, 11), t["T1"], customer(1), "Works now, thanks!")
    # T2 (P2): answered, resolved, "not fixed", resolved again.
    t["T2"] = h.opens(cst(11, 2, 17), customer(2), "Echo in calls")
    # T3 (P3): waiting on the customer, resolved, reopened by an engineer, resolved again;
    # a "thanks" that says nothing of the fix, then confirmed.
    t["T3"] = h.opens(cst(11, 3, 9, 30), customer(3), "Cannot log in")
    h.engineer(cst(11, 3, 9, 35), t["T3"], ENG2, "#priority P3")
    h.engineer(cst(11, 3, 10), t["T2"], ENG1, "Please try SDK 5.2.2.")
    h.engineer(cst(11, 3, 11), t["T2"], ENG1, "#resolve\nFixed in 5.2.2.")
    h.engineer(cst(11, 3, 14), t["T3"], ENG2, "#status waiting\nCould you send the log?")
    h.customer(cst(11, 3, 15), t["T2"], customer(2), "Still not working, the same echo.")
    h.customer(cst(11, 4, 10), t["T3"], customer(3), "Here is the log you asked for.")
    # T4 (P3): one public reply resolves it; confirmed.
    t["T4"] = h.opens(cst(11, 4, 11), customer(4), "How do I mute a user?")
    h.engineer(cst(11, 4, 11, 5), t["T4"], ENG1, "#priority P3")
    h.engineer(cst(11, 4, 13), t["T4"], ENG1, "#resolve\nUse muteRemoteAudio(uid).")
    h.customer(cst(11, 4, 14), t["T4"], customer(4), "Works now, thanks!")
    h.engineer(cst(11, 4, 16), t["T2"], ENG1, "#resolve\nThe second fix is in 5.2.3.")
    # T5 (P3): never answered (its engineer's command is no answer).
    t["T5"] = h.opens(cst(11, 5, 10), customer(5), "Video freezes")
    h.engineer(cst(11, 5, 10, 5), t["T5"], ENG1, "#priority P3")
    h.engineer(cst(11, 5, 11), t["T3"], ENG2, "#resolve\nFixed by a configuration change.")
    h.engineer(cst(11, 5, 11, 30), t["T3"], ENG2, "#status open")
    h.engineer(cst(11, 5, 12), t["T3"], ENG2, "#resolve")
    h.customer(cst(11, 6, 10), t["T3"], customer(3), "Thanks, we will test it next week.")
    h.customer(cst(11, 9, 10), t["T3"], customer(3), "Works now, thanks!")
    # T9's customer writes to it 29 days after it closed: T10 (P3) follows it up.
    h.customer(cst(11, 11, 10), t["T9"], customer(9), "It happens again.")
    t["T10"] = max(ticket.id for ticket in history.desk.gateway.tickets())
    h.engineer(cst(11, 11, 10, 5), t["T10"], ENG1, "#priority P3")
    # T6 (P2): answered an hour late.
    t["T6"] = h.opens(cst(11, 13, 9), customer(6), "Screen sharing is blurry")
    h.engineer(cst(11, 13, 14), t["T6"], ENG2, "We are looking into it.")
    # After the period: a new ticket, and T1 reopened and resolved again; none of it counts.
    t["T11"] = h.opens(cst(11, 16, 9, 30), customer(11), "A new question")
    h.customer(cst(11, 16, 10), t["T1"], customer(1), "It is broken again.")
    h.engineer(cst(11, 16, 11), t["T1"], ENG1, "#resolve\nFixed again.")
    return t


H = 3600.0
# First response, counted when it came in the period (seconds: calendar, business):
#   T1 P1  Mon 10:00 -> Mon 10:40 (not the command at 10:10, not the note at 10:20)
#          2400, 2400
#   T2 P2  Mon 17:00 -> Tue 10:00: 17 h; business Mon 17-18 + Tue 9-10 = 2 h
#   T3 P3  Tue 09:30 -> Tue 14:00: 4.5 h, all business
#   T4 P3  Wed 11:00 -> Wed 13:00: 2 h, all business
#   T6 P2  Fri 09:00 -> Fri 14:00: 5 h, all business
#   T5, T10 never answered; T7, T9 answered in October.
# all: calendar [2400, 7200, 16200, 18000, 61200] -> median 16200, p90 rank ceil(4.5)=5
#      business [2400, 7200, 7200, 16200, 18000] -> median 7200, p90 18000
FIRST_RESPONSE = {
    "P1": (1, 2400, 2400, 2400, 2400),
    "P2": (2, (17 * H + 5 * H) / 2, 17 * H, (2 * H + 5 * H) / 2, 5 * H),
    "P3": (2, (2 * H + 4.5 * H) / 2, 4.5 * H, (2 * H + 4.5 * H) / 2, 4.5 * H),
    "P4": (0, None, None, None, None),
    "all": (5, 4.5 * H, 17 * H, 2 * H, 5 * H),
}
# Resolution, from creation to the last resolve, counted when that is in the period:
#   T1 P1  Mon 10:00 -> Mon 10:40 (its reopen on 16 Nov is after the period): 2400, 2400
#   T2 P2  Mon 17:00 -> Wed 16:00 (the resolve on Tue 11:00 was undone by "not fixed"):
#          47 h; business Mon 1 + Tue 9 + Wed 7 = 17 h
#   T3 P3  Tue 09:30 -> Thu 12:00 (the engineer's reopen undid Thu 11:00): 50.5 h;
#          business Tue 8.5 + Wed 9 + Thu 3 = 20.5 h
#   T4 P3  Wed 11:00 -> Wed 13:00: 2 h, all business
# all: calendar [2400, 7200, 169200, 181800] -> median 88200, p90 181800
#      business [2400, 7200, 61200, 73800] -> median 34200, p90 73800
RESOLUTION = {
    "P1": (1, 2400, 2400, 2400, 2400),
    "P2": (1, 47 * H, 47 * H, 17 * H, 17 * H),
    "P3": (2, (2 * H + 50.5 * H) / 2, 50.5 * H, (2 * H + 20.5 * H) / 2, 20.5 * H),
    "P4": (0, None, None, None, None),
    "all": (4, (2 * H + 47 * H) / 2, 50.5 * H, (2 * H + 17 * H) / 2, 20.5 * H),
}
# Closed in the period: T1, T4 (one public reply, never reopened) and T3 (two replies, and
# reopened by its engineer). T9 closed in October.
FCR = {"P1": 1.0, "P2": None, "P3": 0.5, "P4": None, "all": 2 / 3}
# Resolved in the period: T1 (P1), T2 (P2), T3 and T4 (P3). Reopened by the customer: T2
# ("not fixed") and T9 (P3, followed up by T10). T3's reopen was its engineer's; T3's
# "thanks, we will test" reopened nothing; T1's reopen came after the period.
REOPEN = {"P1": 0.0, "P2": 1.0, "P3": 0.5, "P4": None, "all": 0.5}
# First response target, met in the period or due in it:
#   T1 P1 due Mon 11:00, met 10:40; T2 P2 due Tue 12:00, met 10:00; T3 P3 due Wed 09:30,
#   met Tue 14:00; T4 P3 due Thu 11:00, met Wed 13:00; T6 P2 due Fri 13:00, met 14:00: missed;
#   T5 P3 due Fri 6 Nov 10:00 and T10 P3 due Thu 12 Nov 10:00, never met: missed.
#   T8 was due in October; T7 and T9 were met then.
# Resolution target: T1 met (due Tue 10:00); T2 met (the round after the reopen, due Fri
#   15:00); T3 met; T4 met; T5 due Thu 12 Nov 10:00 (45 business hours), open: missed.
#   T6 and T10 are due after the period; T7 waits on its customer: its clock is paused.
TARGETS = {
    "first_response": {"P1": (1, 0), "P2": (1, 1), "P3": (2, 2), "P4": (0, 0), "all": (4, 3)},
    "resolution": {"P1": (1, 0), "P2": (1, 0), "P3": (2, 1), "P4": (0, 0), "all": (4, 1)},
}
# Open at the end (Sat 14 Nov 00:00): T5 new 8 d 14 h, T8 new 32 d 14 h, T10 new 2 d 14 h,
# T6 open 15 h, T7 waiting 16 d 14 h. T11 came after the end; T1 and T2 are resolved.
BACKLOG = {
    "new": {"<1d": 0, "1-3d": 1, "3-7d": 0, "7-30d": 1, ">30d": 1},
    "open": {"<1d": 1, "1-3d": 0, "3-7d": 0, "7-30d": 0, ">30d": 0},
    "waiting": {"<1d": 0, "1-3d": 0, "3-7d": 0, "7-30d": 1, ">30d": 0},
}


@pytest.fixture
def filed(settings: Settings, sink: Sink) -> Iterator[tuple[DirectGateway, dict[str, int]]]:
    """The history filed; the customers' domain has a P2 sender rule."""
    clock = Clock.at(cst(10, 12, 9))
    service = ServiceLevels(customers=(SenderRule("customer.example", "P2"),))
    gateway = DirectGateway(replace(settings.changed(engineers=ENGINEERS), service=service), clock)
    try:
        yield gateway, file_history(History(Desk(gateway, sink), clock))
    finally:
        gateway.stop()


def check_figures(report: dict[str, Any]) -> None:
    """Every figure of the report against the ones worked out by hand above."""
    for name, expected in (("first_response", FIRST_RESPONSE), ("resolution", RESOLUTION)):
        for key, (count, median, p90_s, b_median, b_p90) in expected.items():
            assert report[name][key] == {
                "count": count,
                "median_s": median,
                "p90_s": p90_s,
                "business_median_s": b_median,
                "business_p90_s": b_p90,
            }, (name, key)
    assert report["fcr_rate"] == pytest.approx(FCR["all"])
    assert report["reopen_rate"] == REOPEN["all"]
    for key in FCR:
        rates = report["rates_by_priority"][key]
        assert rates == {"fcr_rate": pytest.approx(FCR[key]), "reopen_rate": REOPEN[key]}, key
    for target, by_key in TARGETS.items():
        for key, (met, missed) in by_key.items():
            rate = met / (met + missed) if met + missed else None
            tally = report["targets_met"][target][key]
            assert tally == {"met": met, "missed": missed, "rate": pytest.approx(rate)}, key
    backlog = report["backlog"]
    assert backlog["by_status_and_age"] == BACKLOG
    assert backlog["by_status"] == {"new": 3, "open": 1, "waiting": 1}
    assert backlog["by_age"] == {"<1d": 1, "1-3d": 1, "3-7d": 0, "7-30d": 2, ">30d": 1}
    assert report["total_open"] == 5


def report_env(gateway: DirectGateway) -> dict[str, str]:
    """The command's environment: the same data; no engineers configured, so an engineer's
    reopen is known by the engineers on the ticket."""
    settings = gateway.settings
    return gateway_env(settings.data_dir, GATEWAY_DATABASE_URL=settings.database_url)


def run_report(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_figures_of_a_period_match_those_worked_out_by_hand(
    filed: tuple[DirectGateway, dict[str, int]],
) -> None:
    gateway, tickets = filed
    assert len(tickets) == 11
    settings = gateway.settings
    period = period_of(SINCE, UNTIL, gateway.gateway.clock.now(), SHANGHAI)
    assert period == Period(cst(11, 2, 0), cst(11, 14, 0))
    with gateway.session() as session:
        figures = compute_figures(session, settings.service, period, ["eng1@example.com"])
    report = figures_json(figures)
    check_figures(report)
    assert report["period"] == {
        "since": "2026-11-01T16:00:00+00:00",
        "until": "2026-11-13T16:00:00+00:00",
    }

    # The command reads the same figures, with the dates in the team's zone.
    printed = json.loads(
        run_report(report_env(gateway), "--since", "2026-11-02", "--until", "2026-11-13", "--json")
    )
    assert printed == json.loads(json.dumps(report))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_report_prints_tables_and_writes_a_page_chromium_renders(
    filed: tuple[DirectGateway, dict[str, int]], tmp_path: Path
) -> None:
    gateway, _ = filed
    env = report_env(gateway)
    text = run_report(env, "--since", "2026-11-02", "--until", "2026-11-13")
    lines = text.splitlines()
    assert lines[0] == "Support figures, 2 Nov 2026 – 13 Nov 2026"
    assert row(lines, "First response", "all") == ["5", "4 h 30 min", "17 h", "2 h", "5 h"]
    assert row(lines, "Resolution", "P2") == ["1", "1 d 23 h", "1 d 23 h", "17 h", "17 h"]
    assert row(lines, "Rates", "all") == ["67% (2 of 3)", "50% (2 of 4)"]
    assert row(lines, "Targets", "P3") == ["50% (2 of 4)", "67% (2 of 3)"]
    assert row(lines, "Backlog (5 open)", "new") == ["0", "1", "0", "1", "1", "3"]

    page = tmp_path / "figures.html"
    run_report(env, "--since", "2026-11-02", "--until", "2026-11-13", "--html", str(page))
    html = page.read_text("utf-8")
    assert "<title>Support figures, 2 Nov 2026 – 13 Nov 2026</title>" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "Dashboard shows no data" not in html  # No ticket's subject.
    chromium = chromium_path()
    dom = run_chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.count("<svg") >= 3
    assert "Targets met" in dom and "Backlog by status and age" in dom
    shot = tmp_path / "figures.png"
    run_chromium(
        chromium, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()
    )
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    assert len(pixels) > 200, "the page rendered almost blank"
    # The charts themselves: the first-response median bars and the first-contact gauge.
    assert (0x25, 0x63, 0xEB) in pixels and (0x16, 0xA3, 0x4A) in pixels


def row(lines: list[str], title: str, key: str) -> list[str]:
    """The cells of one row of the titled table, split on runs of two spaces or more."""
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    [found] = [line for line in lines[start + 1 : end] if line.split()[0] == key]
    return [cell.strip() for cell in found.split("  ") if cell.strip()][1:]


def chromium_path() -> str:
    """Debian's Chromium; its absence fails the test, as a missing database server does."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    return found


def run_chromium(chromium: str, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def read_png(data: bytes) -> tuple[int, int, set[tuple[int, ...]]]:
    """Width, height and the distinct RGB colours of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    idat = b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IDAT":
            idat += body
        chunks.setdefault(kind, body)
        offset += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    channels = 3 if colour_type == 2 else 4
    rows = unfiltered(zlib.decompress(idat), width * channels, channels)
    colours = {tuple(line[x : x + 3]) for line in rows for x in range(0, len(line), channels)}
    return width, height, colours


def unfiltered(raw: bytes, stride: int, step: int) -> list[bytes]:
    """The scanlines of a PNG image, each filter undone (PNG spec, section 9)."""
    rows: list[bytes] = []
    previous = bytearray(stride)
    for start in range(0, len(raw), stride + 1):
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            line[i] = (line[i] + predictor(kind, left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def predictor(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    estimate = left + up - corner
    near = min((abs(estimate - left), 0), (abs(estimate - up), 1), (abs(estimate - corner), 2))
    return (left, up, corner)[near[1]]


def test_p90_is_the_nearest_rank() -> None:
    assert p90([float(n) for n in range(1, 21)]) == 18.0  # rank ceil(18.0) = 18
    assert p90([float(n) for n in range(1, 12)]) == 10.0  # rank ceil(9.9) = 10
    assert p90([5.0, 1.0]) == 5.0 and p90([7.0]) == 7.0 and p90([]) is None


def test_ages_fall_into_their_buckets() -> None:
    day = 86400.0
    cases = [(0.0, "<1d"), (day - 1, "<1d"), (day, "1-3d"), (3 * day, "3-7d")]
    cases += [(7 * day, "7-30d"), (30 * day - 1, "7-30d"), (30 * day, ">30d")]
    assert [age_bucket(seconds) for seconds, _ in cases] == [name for _, name in cases]
    assert [name for name, _ in AGE_BUCKETS] == ["<1d", "1-3d", "3-7d", "7-30d", ">30d"]


def test_period_defaults_to_thirty_days_and_never_reaches_past_now() -> None:
    now = datetime(2026, 12, 5, 8, 30, tzinfo=UTC)
    assert period_of(None, None, now, SHANGHAI) == Period(now - timedelta(days=30), now)
    assert period_of(date(2026, 12, 1), date(2026, 12, 31), now, SHANGHAI).until == now
    given = period_of(
        datetime(2026, 11, 2, 9, 0), datetime(2026, 11, 3, 1, 0, tzinfo=UTC), now, SHANGHAI
    )
    assert given == Period(cst(11, 2, 9), datetime(2026, 11, 3, 1, 0, tzinfo=UTC))
    with pytest.raises(UsageError):
        period_of(date(2026, 11, 5), date(2026, 11, 4), now, SHANGHAI)
    assert date_option("2026-11-02") == date(2026, 11, 2)
    assert date_option("2026-11-02T09:00Z") == datetime(2026, 11, 2, 9, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="not an ISO date or time"):
        date_option("last week")
