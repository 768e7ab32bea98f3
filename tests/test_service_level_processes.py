"""Warnings and breaches exactly once while two processes run `gateway due` every second,
on SQLite and PostgreSQL (the team of `test_service_levels.py`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from storage.models import EventKind
from tests.conftest import Sink
from tests.test_service_levels import MAX, WEI, Team, cst, gateway_env_of, team_settings


@pytest.fixture
def team(tmp_path: Path, settings: Settings, sink: Sink) -> Iterator[Team]:
    desk = Team(team_settings(tmp_path, settings), sink, cst(12, 7, 10))
    yield desk
    desk.gateway.stop()


def run_due_loop(env: dict[str, str], start: datetime, end: datetime, step_s: int) -> Any:
    """A process that runs `gateway due` as of every `step_s` seconds from start to end."""
    script = (
        "import sys\n"
        "from datetime import datetime, timedelta\n"
        "from gateway.app import build_gateway\n"
        "from gateway.clock import Clock\n"
        "from gateway.config import load_settings\n"
        "settings = load_settings()\n"
        "moment, end = datetime.fromisoformat(sys.argv[1]), datetime.fromisoformat(sys.argv[2])\n"
        "clock = Clock.at(moment)\n"
        "stages = build_gateway(settings, clock)\n"
        "while clock.now() <= end:\n"
        "    stages.timers.run_due()\n"
        f"    clock.fast_forward(timedelta(seconds={step_s}))\n"
        "stages.dispatcher.deliver_due()\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, start.isoformat(), end.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_warnings_and_breaches_are_sent_once_by_two_processes_running_due_every_second(
    team: Team,
) -> None:
    first = team.customer_writes("Crash", "Priority: P2\nThe app crashes on start.")
    second = team.customer_writes("Echo", "Priority: P2\nEcho in every call.")
    env = gateway_env_of(team)
    # Around the first response's warning (13:00) and breach (14:00), each second.
    half = timedelta(seconds=30)
    windows = [(cst(12, 7, 13) - half, cst(12, 7, 13) + half)]
    windows.append((cst(12, 7, 14) - half, cst(12, 7, 14) + half))
    for start, end in windows:
        loops = [run_due_loop(env, start, end, 1) for _ in range(2)]
        for loop in loops:
            _, errors = loop.communicate(timeout=300)
            assert loop.returncode == 0, errors
    for ticket in (first, second):
        for kind in (EventKind.SLA_WARNING, EventKind.SLA_BREACHED):
            assert len(team.events(ticket.id, kind)) == 1, (ticket.id, kind)
        assert len(team.events(ticket.id, EventKind.ESCALATED)) == 1
    team.gateway.gateway.dispatcher.deliver_due()
    for ticket in (first, second):
        tag = f"[Support #{ticket.id}]"
        warnings = [s for s in team.subjects_to(WEI) if tag in s and "即将超时" in s]
        breaches = [s for s in team.subjects_to(MAX) if tag in s and "Target missed" in s]
        assert (len(warnings), len(breaches)) == (1, 1), ticket.id
