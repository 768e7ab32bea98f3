"""Service levels across time zones, end to end: the priority a customer's words or a sender
rule give, the promise in the acknowledgement, routing to the engineers on shift (on-call for
a P1 at night, the morning digest for the rest, daylight saving in an engineer's zone),
due times in each engineer's zone, warnings and breaches exactly once with escalation, and
the resolution clock paused while waiting on the customer.

The team's calendar is Asia/Shanghai (UTC+8), Mon-Fri 09:00-18:00 with China's holidays.
Wei works Shanghai office hours; Ana works 09:00-17:00 in Los Angeles (01:00-09:00 Shanghai
time in winter, 00:00-08:00 in summer), so nobody on the first line is on shift from 18:00
to 01:00 Shanghai time in winter. Sam (L2) works Singapore nights and is on call; Lee leads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.clock import Clock
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.service.phrasing import due_words, zone_of
from gateway.service_words import due_lines
from gateway.settings import Settings
from storage.models import Event, EventKind, Priority, Ticket, TicketStatus
from tests.conftest import Desk, DirectGateway, Sink, gateway_env, new_mail, run_gateway

# Decisions, on SQLite; the processes racing each other run on PostgreSQL too.
SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHANGHAI = ZoneInfo("Asia/Shanghai")
WEI, ANA, SAM, MAX, LEE = (
    "wei@example.com",
    "ana@example.com",
    "sam@example.com",
    "max@example.com",
    "lee@example.com",
)
CUSTOMER = "dev@bigstream.example"
TEAM_TOML = f"""
[service_levels]
P1 = {{ first_response = "1h", resolution = "1d", hours = "24x7" }}
P2 = {{ first_response = "4h", resolution = "3d", hours = "business" }}

[business_hours]
timezone = "Asia/Shanghai"
week = "Mon-Fri 09:00-18:00"
holidays = "CN"

[[engineers]]
address = "{WEI}"
tier = "L1"
language = "zh"
timezone = "Asia/Shanghai"
shift = "Mon-Fri 09:00-18:00"

[[engineers]]
address = "{ANA}"
tier = "L1"
timezone = "America/Los_Angeles"
shift = "Mon-Fri 09:00-17:00"

[[engineers]]
address = "{SAM}"
tier = "L2"
timezone = "Asia/Singapore"
shift = "Mon-Fri 22:00-06:00"
on_call = true

[[engineers]]
address = "{MAX}"
tier = "L2"
timezone = "Asia/Shanghai"
shift = "Mon-Fri 09:00-18:00"

[[engineers]]
address = "{LEE}"
tier = "lead"
timezone = "Asia/Shanghai"
shift = "Mon-Fri 09:00-18:00"
"""


def cst(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# Where every team's clock starts unless told: Monday 7 December 2026, 10:00 in Shanghai.
MONDAY_10 = datetime(2026, 12, 7, 10, tzinfo=SHANGHAI)


def team_settings(tmp_path: Path, base: Settings, extra_toml: str = "") -> Settings:
    """`base` with the team of the module docstring, read from a real `gateway.toml`."""
    path = tmp_path / "gateway.toml"
    path.write_text(TEAM_TOML + extra_toml, encoding="utf-8")
    loaded = load_settings({}, path)
    return replace(base, service=loaded.service, workflow=loaded.workflow)


class Team:
    """The desk with the team, its clock set by hand."""

    def __init__(self, settings: Settings, sink: Sink, start: datetime) -> None:
        self.clock = Clock.at(start)
        self.gateway = DirectGateway(settings, self.clock)
        self.desk = Desk(self.gateway, sink)

    def at(self, moment: datetime) -> None:
        self.clock.fast_forward(moment - self.clock.now())

    def customer_writes(
        self, subject: str, body: str, sender: str = CUSTOMER, date: str = ""
    ) -> Ticket:
        headers = {"Date": date} if date else {}
        mail = new_mail(sender, subject, body, headers=headers)
        self.desk.customer_writes(mail.as_bytes(), sender=sender)
        return max(self.gateway.tickets(), key=lambda ticket: ticket.id)

    def ticket(self, ticket_id: int) -> Ticket:
        return self.desk.ticket(ticket_id)

    def events(self, ticket_id: int, kind: EventKind) -> list[Event]:
        with self.gateway.session() as session:
            return list(
                session.scalars(
                    select(Event).where(Event.ticket_id == ticket_id, Event.type == kind)
                )
            )

    def due(self, moment: datetime) -> None:
        self.at(moment)
        self.gateway.due_at(moment)

    def subjects_to(self, address: str) -> list[str]:
        return [Desk.subject(mail) for mail in self.desk.mails_to(address)]


@pytest.fixture
def make_team(tmp_path: Path, settings: Settings, sink: Sink) -> Iterator[Callable[..., Team]]:
    """Teams with more in their `gateway.toml`, their clocks starting at `start`."""
    started: list[Team] = []

    def start(extra_toml: str = "", start: datetime = MONDAY_10) -> Team:
        started.append(Team(team_settings(tmp_path, settings, extra_toml), sink, start))
        return started[-1]

    yield start
    for team in started:
        team.gateway.stop()


@pytest.fixture
def team(make_team: Callable[..., Team]) -> Team:
    return make_team()


# -- the customer's words and the promise ---------------------------------------------------


@SQLITE
@pytest.mark.parametrize(
    ("subject", "body", "priority", "words"),
    [
        ("Streams fail", "Priority: P1\nAll our viewers see a black screen.", "P1", "Priority: P1"),
        ("推流失败", "优先级：紧急\n所有观众都黑屏。", "P1", "优先级：紧急"),
        ("Urgent", "Production is down for all users since 10:00.", "P1", "production is down"),
        ("线上事故", "线上事故，直播间全部用户无法进入。", "P1", "线上事故"),
        ("SDK question", "This bug is blocking our release on Friday.", "P2", "blocking"),
    ],
)
def test_customer_words_set_the_priority_and_the_ticket_records_them(
    team: Team, subject: str, body: str, priority: str, words: str
) -> None:
    ticket = team.customer_writes(subject, body, sender="dev@small.example")
    assert ticket.priority.value == priority
    assert words.lower() in ticket.priority_reason.lower()
    [event] = team.events(ticket.id, EventKind.PRIORITY_CHANGED)
    assert event.detail.startswith(f"P3 → {priority}")


@SQLITE
def test_a_sender_rule_raises_the_priority_but_never_lowers_the_customers_own(
    make_team: Callable[..., Team],
) -> None:
    rules = '\n[customers]\n"bigstream.example" = { priority = "P2" }\n'
    team = make_team(rules)
    plain = team.customer_writes("Question", "How do I enable beauty filters?")
    assert plain.priority.value == "P2"
    assert "sender rule for bigstream.example" in plain.priority_reason
    outage = team.customer_writes("Down", "Production is down for all users.")
    assert outage.priority.value == "P1"
    other = team.customer_writes("Question", "How do I mute?", sender="x@other.example")
    assert other.priority.value == "P3" and other.priority_reason == ""


@SQLITE
def test_the_acknowledgement_states_the_promise_in_the_customers_time(team: Team) -> None:
    # Mon 7 Dec 10:00 Shanghai is 09:00 in Jakarta (+0700): a P2 is answered within four
    # business hours, by 14:00 Shanghai time, 13:00 the customer's time.
    team.customer_writes(
        "Black screen",
        "Priority: P2\nBlack screen after switching the camera.",
        date="Mon, 07 Dec 2026 09:00:00 +0700",
    )
    ack = " ".join(Desk.text(team.desk.wait_mail(CUSTOMER, "Black screen")).split())
    assert "We answer P2 requests within 4 business hours (by 13:00 your time)." in ack


@SQLITE
def test_a_chinese_acknowledgement_states_the_promise_in_chinese(team: Team) -> None:
    # Fri 11 Dec 17:00 Shanghai: a P3 (one business day, 9 hours) is due Mon 14 Dec 17:00.
    team.at(cst(12, 11, 17))
    team.customer_writes(
        "推流问题", "你好，安卓推流偶尔卡顿，怎么排查？", date="Fri, 11 Dec 2026 17:00:00 +0800"
    )
    ack = Desk.text(team.desk.wait_mail(CUSTOMER, "推流问题"))
    assert "P3 级请求我们会在 1 个工作日内答复（您当地时间 12月14日周一 17:00 前）。" in ack


@SQLITE
def test_without_a_date_the_promise_names_the_teams_zone(team: Team) -> None:
    mail = new_mail(CUSTOMER, "No date", "How do I mute a user?")
    del mail["Date"]
    team.desk.customer_writes(mail.as_bytes(), sender=CUSTOMER)
    ack = " ".join(Desk.text(team.desk.wait_mail(CUSTOMER, "No date")).split())
    # Mon 10:00 + 9 business hours = Tue 10:00 Shanghai.
    assert "(by Tue 8 Dec 10:00 Asia/Shanghai time)" in ack


# -- routing by shift ---------------------------------------------------------------------


@SQLITE
def test_a_ticket_in_office_hours_goes_to_the_l1s_on_shift_only(team: Team) -> None:
    ticket = team.customer_writes("Echo", "We hear echo in calls.")
    assert ticket.awaiting_shift_since is None
    assert any("新工单（P3）" in s for s in team.subjects_to(WEI))
    assert team.subjects_to(ANA) == []  # 18:00 in Los Angeles: off shift


@SQLITE
def test_a_p1_at_night_goes_to_on_call_at_once_and_a_p3_waits_for_the_morning_digest(
    team: Team,
) -> None:
    team.at(cst(12, 8, 20))  # Tue 20:00 Shanghai, 04:00 in Los Angeles: no L1 on shift
    p1 = team.customer_writes("Outage", "Production is down for all users.")
    p3 = team.customer_writes("Docs", "Where are the docs for the beauty filter?")
    assert any("New (P1)" in s for s in team.subjects_to(SAM))
    assert team.subjects_to(WEI) == [] and team.subjects_to(ANA) == []
    assert team.ticket(p1.id).awaiting_shift_since is None
    assert team.ticket(p3.id).awaiting_shift_since == cst(12, 8, 20)
    team.due(cst(12, 8, 23))  # still nobody on the first line
    assert team.subjects_to(ANA) == []
    # Ana's shift starts Tue 09:00 in Los Angeles, Wed 01:00 in Shanghai.
    team.due(cst(12, 9, 1, 0))
    team.due(cst(12, 9, 1, 1))
    digests = [s for s in team.subjects_to(ANA) if "Your shift starts" in s]
    assert digests == ["Your shift starts: 1 new ticket waited for you"]
    digest = Desk.text(team.desk.wait_mail(ANA, "Your shift starts"))
    assert f"[Support #{p3.id}] P3: Docs" in digest and "reply to: support+" in digest
    assert team.ticket(p3.id).awaiting_shift_since is None
    assert len(team.events(p3.id, EventKind.DIGEST_SENT)) == 1
    assert team.subjects_to(WEI) == []  # Wei starts at 09:00 and gets no second digest


@SQLITE
def test_an_engineers_shift_follows_daylight_saving_in_their_own_zone(
    make_team: Callable[..., Team],
) -> None:
    # 00:30 Shanghai on a Tuesday is 09:30 Monday in Los Angeles in July (PDT, UTC-7), but
    # 08:30 in December (PST, UTC-8): Ana is on shift for the first and not the second.
    team = make_team(start=cst(7, 14, 0, 30))
    summer = team.customer_writes("Summer", "How do I set the bitrate?")
    assert team.ticket(summer.id).awaiting_shift_since is None
    assert any("New (P3)" in s for s in team.subjects_to(ANA))
    team.at(cst(12, 8, 0, 30))
    winter = team.customer_writes("Winter", "How do I set the frame rate?")
    assert team.ticket(winter.id).awaiting_shift_since is not None


@SQLITE
def test_least_loaded_assigns_the_l1_on_shift_with_the_fewest_open_tickets(
    make_team: Callable[..., Team],
) -> None:
    extra = '\n[routing]\nassign = "least_loaded"\n\n[[engineers]]\naddress = "kim@example.com"\n'
    team = make_team(extra)
    first = team.customer_writes("One", "How do I mute?")
    second = team.customer_writes("Two", "How do I unmute?")
    third = team.customer_writes("Three", "How do I kick a user?")
    # Wei (first configured) gets the first, Kim (always on shift) the second, then Wei.
    assert [team.ticket(t.id).assignee for t in (first, second, third)] == [
        WEI,
        "kim@example.com",
        WEI,
    ]
    [assigned] = team.events(first.id, EventKind.ASSIGNED)
    assert assigned.actor == "system" and assigned.detail == WEI
    assert not [s for s in team.subjects_to(WEI) if "ssigned" in s]  # the notice says it


@SQLITE
def test_engineers_mail_shows_due_times_in_their_own_zone(team: Team) -> None:
    team.at(cst(12, 9, 2))  # Wed 02:00 Shanghai, Tue 10:00 in Los Angeles
    team.customer_writes("Crash", "Priority: P2\nThe app crashes on start.")
    notice = Desk.text(team.desk.wait_mail(ANA, "New (P2)"))
    # 4 business hours from Wed 02:00: 09:00-13:00 Shanghai, 21:00 Tuesday in Los Angeles.
    assert "Reply due 21:00 PST, 4 h of business time left" in notice


# -- warnings, breaches, escalation -------------------------------------------------------


@SQLITE
def test_warning_then_breach_escalates_to_l2_on_shift_and_tells_the_leads(team: Team) -> None:
    ticket = team.customer_writes("Crash", "Priority: P2\nThe app crashes on start.")
    # Opened Mon 10:00: the first reply is due 14:00, its warning at 13:00 (75%).
    team.due(cst(12, 7, 12, 59))
    assert team.events(ticket.id, EventKind.SLA_WARNING) == []
    team.due(cst(12, 7, 13, 0))
    [warning] = team.events(ticket.id, EventKind.SLA_WARNING)
    assert warning.detail.startswith("first_response round 0: P2 75% of the target used")
    assert [s for s in team.subjects_to(WEI) if "即将超时" in s]
    team.due(cst(12, 7, 14, 0))
    [breach] = team.events(ticket.id, EventKind.SLA_BREACHED)
    assert "escalated to max@example.com" in breach.detail
    assert team.ticket(ticket.id).tier == "L2"
    assert [s for s in team.subjects_to(MAX) if "Target missed (P2, first reply)" in s]
    assert [s for s in team.subjects_to(LEE) if "Target missed" in s]
    assert team.subjects_to(SAM) == []


@SQLITE
def test_a_p1_breach_at_night_escalates_to_on_call(team: Team) -> None:
    team.at(cst(12, 8, 20))
    ticket = team.customer_writes("Outage", "Production is down for all users.")
    team.due(cst(12, 8, 21, 1))  # one hour around the clock
    [breach] = team.events(ticket.id, EventKind.SLA_BREACHED)
    assert "escalated to sam@example.com" in breach.detail
    assert [s for s in team.subjects_to(SAM) if "Target missed (P1" in s]


@SQLITE
def test_a_public_reply_stops_the_first_response_clock_a_note_does_not(team: Team) -> None:
    ticket = team.customer_writes("Crash", "Priority: P2\nThe app crashes on start.")
    notice = team.desk.wait_mail(WEI, "新工单（P2）")
    team.at(cst(12, 7, 11))
    team.desk.engineer_replies(notice, WEI, "#note looking into it")
    assert team.ticket(ticket.id).responded_at is None
    team.at(cst(12, 7, 11, 30))
    team.desk.engineer_replies(notice, WEI, "Which SDK version do you use?")
    assert team.ticket(ticket.id).responded_at == cst(12, 7, 11, 30)
    team.due(cst(12, 7, 15))
    assert [e.detail[:14] for e in team.events(ticket.id, EventKind.SLA_BREACHED)] == []


# -- waiting pauses the resolution clock --------------------------------------------------


@SQLITE
def test_waiting_pauses_the_resolution_clock_and_the_customers_reply_resumes_it(
    team: Team, tmp_path: Path
) -> None:
    ticket = team.customer_writes("Crash", "Priority: P2\nThe app crashes on start.")
    # P2 resolution: 3 business days of 9 h = 27 h from Mon 10:00: due Thu 10:00.
    assert team.ticket(ticket.id).resolution_due == cst(12, 10, 10)
    notice = team.desk.wait_mail(WEI, "新工单（P2）")
    team.at(cst(12, 7, 12))  # 2 h used; 25 h left
    team.desk.engineer_replies(notice, WEI, "#status waiting\nPlease send the log.")
    paused = team.ticket(ticket.id)
    assert paused.status.value == "waiting"
    assert paused.resolution_paused and paused.resolution_due is None
    team.due(cst(12, 11, 12))  # long past the first due time: nothing breaches while paused
    assert team.events(ticket.id, EventKind.SLA_BREACHED) == []
    ack = team.desk.wait_mail(CUSTOMER, "Crash")
    team.at(cst(12, 14, 9))  # Monday 09:00, 25 h left: Mon 9 h, Tue 9 h, Wed 7 h → Wed 16:00
    team.desk.customer_replies(ack, "Here is the log.", sender=CUSTOMER)
    resumed = team.ticket(ticket.id)
    assert resumed.status.value == "open" and not resumed.resolution_paused
    assert resumed.resolution_due == cst(12, 16, 16)
    shown = json.loads(run_gateway(gateway_env_of(team), "show", str(ticket.id), "--json").stdout)
    assert shown["priority_reason"].startswith("the customer's words")
    resolution = shown["sla"]["resolution"]
    assert resolution == {
        "due": cst(12, 16, 16).astimezone(ZoneInfo("UTC")).isoformat(),
        "met_at": None,
        # `show` reads the wall clock: past the due time, the target is missed.
        "breached": datetime.now(UTC) >= cst(12, 16, 16),
        "paused": False,
        "round": 0,
    }
    assert shown["sla"]["first_response"]["met_at"] is not None


def gateway_env_of(team: Team) -> dict[str, str]:
    """The environment `gateway` commands of this desk run with."""
    settings = team.gateway.settings
    return gateway_env(
        settings.data_dir,
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_CONFIG=str(settings.data_dir.parent / "gateway.toml"),
        GATEWAY_RELAY=str(settings.delivery.relay),
    )


# -- exactly once with two processes, on SQLite and PostgreSQL -----------------------------


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


# -- the settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[business_hours]\ntimezone = "Mars/Olympus"\n', "business_hours.timezone"),
        ('[business_hours]\nweek = "Mon-Fry 09:00-18:00"\n', "business_hours.week"),
        ('[business_hours]\nholidays = "XX"\n', "business_hours.holidays"),
        ('[business_hours]\nextra_holidays = ["2027-02-30"]\n', "extra_holidays"),
        ('[service_levels]\nP2 = { first_response = "4 hours" }\n', "P2.first_response"),
        ('[service_levels]\nP5 = { first_response = "4h" }\n', "P5"),
        ('[service_levels]\nP1 = { hours = "nights" }\n', "P1.hours"),
        ('[routing]\nassign = "random"\n', "routing.assign"),
        ('[customers]\n"x.example" = { priority = "urgent" }\n', "customers.x.example"),
        ('[[engineers]]\naddress = "a@x.example"\nshift = "Mon 9-18"\n', "engineers[1].shift"),
        ('[[engineers]]\naddress = "a@x.example"\ntimezone = "PST"\n', "engineers[1].timezone"),
        ('[[engineers]]\naddress = "a@x.example"\ntier = "L3"\n', "tier of a@x.example"),
        ('[[engineers]]\naddress = "a@x.example"\non_call = "yes"\n', "on_call"),
        ('[[engineers]]\ntier = "L1"\n', "needs an address"),
    ],
)
def test_a_bad_service_setting_is_refused_naming_its_key(
    tmp_path: Path, toml: str, named: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings({}, path)
    assert named in str(refused.value)


def test_gateway_engineers_extends_the_engineers_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(TEAM_TOML, encoding="utf-8")
    env = {"GATEWAY_ENGINEERS": f"{WEI}:L2:en,new@example.com"}
    engineers = {e.address: e for e in load_settings(env, path).workflow.engineers}
    # The file's table stands for an address both name; the environment adds the rest.
    assert engineers[WEI].tier == "L1" and engineers[WEI].language == "zh"
    assert engineers[WEI].timezone == "Asia/Shanghai"
    assert engineers[WEI].shift is not None
    assert engineers["new@example.com"].shift is None
    assert engineers[SAM].on_call and engineers[LEE].tier == "lead"


def test_the_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    service = load_settings({}).service
    assert service.calendar.timezone == "Asia/Shanghai" and service.assign == "none"
    targets = {
        name: (str(t.first_response), str(t.resolution), t.hours) for name, t in service.targets
    }
    assert targets == {
        "P1": ("1h", "1d", "24x7"),
        "P2": ("4h", "3d", "business"),
        "P3": ("1d", "5d", "business"),
        "P4": ("3d", "10d", "business"),
    }


# -- what a review found ------------------------------------------------------------------


@SQLITE
def test_a_merge_leaves_due_working_and_the_survivors_clocks_its_own(team: Team) -> None:
    first = team.customer_writes("Crash", "Priority: P2\nThe app crashes on start.")
    second = team.customer_writes("Crash again", "Priority: P2\nStill crashing.")
    team.at(cst(12, 7, 11))
    second_notice = team.desk.wait_mail(WEI, f"[Support #{second.id}]")
    team.desk.engineer_replies(second_notice, WEI, "#status waiting\nWhich device?")
    first_notice = team.desk.wait_mail(WEI, f"[Support #{first.id}]")
    team.desk.engineer_replies(first_notice, WEI, f"#merge {second.id}")
    team.desk.engineer_replies(first_notice, WEI, "We are looking at it.")
    survivor = team.ticket(first.id)
    assert survivor.status.value == "open" and not survivor.resolution_paused
    assert survivor.resolution_due == cst(12, 10, 10)
    assert team.ticket(second.id).service_check_at is None
    team.due(cst(12, 10, 10))  # the survivor's resolution breaches; nothing crashes
    assert [e.detail[:18] for e in team.events(first.id, EventKind.SLA_BREACHED)] == [
        "resolution round 0"
    ]


@SQLITE
def test_closing_a_resolved_ticket_by_command_is_no_reopen(team: Team) -> None:
    ticket = team.customer_writes("Crash", "The app crashes on start.")
    notice = team.desk.wait_mail(WEI, "新工单（P3）")
    team.desk.engineer_replies(notice, WEI, "#resolve\nFixed in 5.2.2.")
    team.desk.engineer_replies(notice, WEI, "#status closed")
    closed = team.ticket(ticket.id)
    assert closed.status.value == "closed" and closed.reopen_count == 0
    assert team.events(ticket.id, EventKind.REOPENED) == []


@SQLITE
def test_a_ticket_closed_while_it_waited_for_a_shift_is_in_no_digest(team: Team) -> None:
    team.at(cst(12, 8, 20))
    waiting = team.customer_writes("Docs", "Where are the docs for the beauty filter?")
    team.at(cst(12, 8, 21))
    run_gateway(gateway_env_of(team), "status", str(waiting.id), "closed")
    assert team.ticket(waiting.id).awaiting_shift_since is None
    team.due(cst(12, 9, 1, 1))
    assert [s for s in team.subjects_to(ANA) if "Your shift starts" in s] == []


@SQLITE
def test_a_raised_priority_past_its_due_time_sends_the_breach_alone_once(team: Team) -> None:
    ticket = team.customer_writes("Crash", "The app crashes on start.")  # P3 at Mon 10:00
    team.due(cst(12, 7, 15))
    assert team.events(ticket.id, EventKind.SLA_WARNING) == []
    notice = team.desk.wait_mail(WEI, "新工单（P3）")
    team.at(cst(12, 7, 15))
    team.desk.engineer_replies(notice, WEI, "#priority P1")  # P1: one hour from 10:00
    for minute in (1, 2, 3):
        team.due(cst(12, 7, 15, minute))
    assert team.events(ticket.id, EventKind.SLA_WARNING) == []
    [breach] = team.events(ticket.id, EventKind.SLA_BREACHED)
    assert breach.detail.startswith("first_response round 0: P1 target passed")
    # Nothing is left due in the past, or every later round would look at it again: next
    # is the resolution's warning, at 75% of a day around the clock from 10:00.
    assert team.ticket(ticket.id).service_check_at == cst(12, 8, 4)


def test_due_times_name_the_zone_as_its_readers_do() -> None:
    moment = datetime(2026, 12, 7, 5, tzinfo=ZoneInfo("UTC"))
    now = moment
    assert due_words(moment, ZoneInfo("America/Los_Angeles"), now, "zh") == "21:00 PST"
    assert due_words(moment, ZoneInfo("Asia/Shanghai"), now, "zh") == "13:00 北京时间"
    assert due_words(moment, zone_of(utc_offset_minutes=330), now, "en") == "10:30 UTC+05:30"
    assert due_words(moment, zone_of(utc_offset_minutes=-210), now, "en") == "01:30 UTC-03:30"
    assert due_words(moment, ZoneInfo("Asia/Dubai"), now, "en") == "09:00 UTC+04"


@SQLITE
def test_a_target_of_days_and_hours_is_promised_in_business_hours(
    make_team: Callable[..., Team],
) -> None:
    extra = '\n[service_levels.P3]\nfirst_response = "1d4h"\n'
    team = make_team(extra)
    team.customer_writes("Question", "How do I mute?", date="Mon, 07 Dec 2026 10:00:00 +0800")
    ack = " ".join(Desk.text(team.desk.wait_mail(CUSTOMER, "Question")).split())
    # 13 business hours from Mon 10:00: Mon 8 h, Tue 5 h → Tue 14:00.
    assert "within 13 business hours (by Tue 8 Dec 14:00 your time)" in ack


def test_due_lines_read_as_sentences_in_both_languages() -> None:
    ticket = Ticket(
        status=TicketStatus.NEW,
        priority=Priority.P2,
        response_due=cst(12, 7, 14),
        resolution_due=cst(12, 10, 10),
        resolution_paused=False,
    )
    service = load_settings({}).service
    late = cst(12, 7, 16)  # two business hours past the reply's due time
    assert due_lines(ticket, service, "Asia/Shanghai", late, "en") == [
        "Reply was due 14:00 CST, 2 h overdue (business time)",
        "Resolution due Thu 10 Dec 10:00 CST, 21 h of business time left",
    ]
    assert due_lines(ticket, service, "Asia/Shanghai", late, "zh") == [
        "首次回复已于 14:00 北京时间到期，已超出 2 小时（工作时间）",
        "解决截止 12月10日周四 10:00 北京时间，剩余 21 小时工作时间",
    ]
