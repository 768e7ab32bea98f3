"""Guided intake end to end: the facts a first mail gives, the one ask for what is missing,
the answers a reply brings, and the engineers' `#ask` and `#info ok`, on SQLite and
PostgreSQL, through the stages in this process and through real SMTP."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from gateway.intake import Fact
from storage.models import Event, EventKind, Ticket, TicketFact
from tests.conftest import (
    ALICE,
    ENG1,
    ENGINEERS,
    CapturedMail,
    Desk,
    DirectGateway,
    RunningGateway,
    Sink,
    gateway_env,
    new_mail,
)

SDK_LOG = (
    "[2026-11-30 20:31:02.120][I][sdk] sdk version: 4.0.6 build 1234\n"
    "[2026-11-30 20:31:02.123][I][rtc] joinChannel channel=live_88 uid=100234\n"
    "[2026-11-30 20:31:05.551][E][video] encoder stalled, restarting\n"
) * 40
COMPLETE_REPORT = """Hi,

Our app crashes when the host switches camera during a live stream.

SDK version: 4.0.6
Platform: Android
OS: Android 14
Device: Xiaomi 13

Steps to reproduce:
1. Start a live stream as host
2. Tap "switch camera" twice
3. The app crashes within a second

The SDK log is attached.

Thanks,
Wei
"""
PARTIAL_REPORT = """Hello,

The pusher crashes on Android 14 with SDK 4.0.6 as soon as we start the stream.
Can you help?

Dave
"""
PARTIAL_REPORT_ZH = """你好，

我们的 App 集成 SDK 4.0.6 后，在 Android 14 上一开播就闪退，请帮忙看看。

谢谢
"""


def report(
    subject: str, body: str, sender: str = ALICE, files: tuple[tuple[str, bytes], ...] = ()
) -> EmailMessage:
    mail = new_mail(sender, subject, body)
    mail["Date"] = "Mon, 30 Nov 2026 21:04:05 +0800"
    for name, data in files:
        mail.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return mail


def facts_of(desk: Desk, ticket_id: int) -> dict[str, list[str]]:
    """Each fact's values, oldest first."""
    with desk.gateway.session() as session:
        rows = session.scalars(
            select(TicketFact).where(TicketFact.ticket_id == ticket_id).order_by(TicketFact.id)
        ).all()
        history: dict[str, list[str]] = {}
        for row in rows:
            history.setdefault(row.name, []).append(row.value)
        return history


def events_of(desk: Desk, ticket_id: int, kind: EventKind) -> list[Event]:
    with desk.gateway.session() as session:
        return list(
            session.scalars(
                select(Event).where(Event.ticket_id == ticket_id, Event.type == kind)
            ).all()
        )


def shown(desk: Desk, ticket_id: int, *extra: str) -> Any:
    """`gateway show ID --json` for the desk's database."""
    return json.loads(show(desk, str(ticket_id), "--json", *extra))


def show(desk: Desk, *arguments: str) -> str:
    """What `gateway show` prints for the desk's database (`NAME=value` sets a variable)."""
    settings = desk.gateway.settings
    variables = dict(pair.split("=", 1) for pair in arguments if "=" in pair)
    env = gateway_env(
        settings.data_dir, GATEWAY_DATABASE_URL=settings.effective_database_url, **variables
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "show", *(a for a in arguments if "=" not in a)],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
        text=True,
    )
    return done.stdout


def ask_lines(mail: CapturedMail) -> list[str]:
    """The fill-in lines of a mail: label, colon, blank."""
    return [line for line in Desk.text(mail).splitlines() if line.rstrip().endswith("____")]


# -- a first mail --------------------------------------------------------------------------


def test_a_complete_report_is_summed_up_and_nothing_is_asked(direct_desk: Desk) -> None:
    direct_desk.customer_writes(
        report("Crash on camera switch", COMPLETE_REPORT, files=(("sdk.log", SDK_LOG.encode()),))
    )
    ack = direct_desk.wait_mail(ALICE, "Crash on camera switch")
    text = Desk.text(ack)
    assert "What we have:" in text
    summary = next(line for line in text.splitlines() if line.startswith("What we have:"))
    for value in ("4.0.6", "Android 14", "Xiaomi 13", "1 log"):
        assert value in summary
    assert ask_lines(ack) == []
    ticket = direct_desk.only_ticket()
    assert ticket.kind == "crash"
    assert ticket.info_requested_at is None
    detail = shown(direct_desk, ticket.id)
    assert detail["kind"] == "crash"
    assert detail["missing"] == []
    assert detail["facts"]["sdk_version"] == "4.0.6"
    assert detail["facts"]["os_version"] == "Android 14"
    assert detail["facts"]["device"] == "Xiaomi 13"
    assert "switch camera" in detail["facts"]["repro_steps"]
    assert detail["facts"]["logs"] == [ack_attachment_sha(direct_desk, ticket.id, "sdk.log")]
    assert events_of(direct_desk, ticket.id, EventKind.INFO_REQUESTED) == []
    table = show(direct_desk, str(ticket.id))
    assert "Facts (kind crash):" in table and "  missing: nothing" in table
    assert "  device       Xiaomi 13" in table
    learned = {
        e.detail.split(" ")[0] for e in events_of(direct_desk, ticket.id, EventKind.FACT_LEARNED)
    }
    assert {"kind", "sdk_version", "platform", "os_version", "device", "logs"} <= learned


def ack_attachment_sha(desk: Desk, ticket_id: int, name: str) -> str:
    with desk.gateway.session() as session:
        ticket = session.get_one(Ticket, ticket_id)
        return next(a.sha256 for m in ticket.messages for a in m.attachments if a.filename == name)


def test_a_report_missing_facts_is_asked_once_for_only_those(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    lines = ask_lines(ack)
    assert lines == ["Device model: ____", "Steps to reproduce: ____", "SDK log: ____"]
    text = Desk.text(ack)
    assert "1. Device model" in text and "3. SDK log" in text
    assert "/sdcard/Android/data/" in text  # where the log is
    html = ack.message.get_body(("html",))
    assert html is not None
    assert "/sdcard/Android/data/&lt;your app&gt;/files/" in str(html.get_content())  # type: ignore[attr-defined]
    ticket = direct_desk.only_ticket()
    assert ticket.info_requested_at is not None
    [asked] = events_of(direct_desk, ticket.id, EventKind.INFO_REQUESTED)
    assert asked.detail == "device repro_steps logs"
    assert shown(direct_desk, ticket.id)["missing"] == ["device", "repro_steps", "logs"]
    assert "  missing: device, repro_steps, logs" in show(direct_desk, str(ticket.id))
    # The operator's settings decide what is missing, as they decide what is asked.
    fewer = shown(direct_desk, ticket.id, "GATEWAY_INTAKE_REQUIRED_CRASH=logs")
    assert fewer["missing"] == ["logs"]
    notice = direct_desk.wait_mail(ENG1, "New (P3)")
    notice_text = Desk.text(notice)
    table = notice_text.split("> ", 1)[0]
    assert "Kind: crash" in table
    assert "4.0.6" in table and "Android 14" in table
    assert "Missing: Device model, Steps to reproduce, SDK log" in table
    assert "\n\n\n" not in notice_text.replace("\r\n", "\n")  # one blank line between parts


def test_a_chinese_report_is_asked_in_chinese(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("开播闪退", PARTIAL_REPORT_ZH))
    ack = direct_desk.wait_mail(ALICE, "开播闪退")
    assert ask_lines(ack) == ["设备型号：____", "复现步骤：____", "SDK 日志：____"]
    text = Desk.text(ack)
    assert "我们已了解：" in text and "请补充以下信息" in text
    assert "Device model" not in text


def test_the_answers_in_a_reply_fill_in_the_facts(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    ticket_id = direct_desk.only_ticket().id
    answer = direct_desk.reply(
        ack,
        ALICE,
        "Device model: Pixel 8\nSteps to reproduce: open the app, tap Go Live\nSDK log: attached",
        attachment=("pusher.log", SDK_LOG.encode()),
    )
    direct_desk.gateway.send(answer, recipients=[Desk.reply_to(ack)], sender=ALICE)
    detail = shown(direct_desk, ticket_id)
    assert detail["missing"] == []
    assert detail["facts"]["device"] == "Pixel 8"
    assert "Go Live" in detail["facts"]["repro_steps"]
    assert len(detail["facts"]["logs"]) == 1
    forwarded = direct_desk.wait_mail(ENG1, "Re: ")
    assert "Learned from this message:" in Desk.text(forwarded)
    assert "Device model: Pixel 8" in Desk.text(forwarded)
    # Asked once: the reply is not answered with another ask.
    assert all(ask_lines(mail) == [] for mail in direct_desk.mails_to(ALICE)[1:])
    assert len(events_of(direct_desk, ticket_id, EventKind.INFO_REQUESTED)) == 1


def test_unknown_is_an_answer_and_nothing_is_asked_again(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    ticket_id = direct_desk.only_ticket().id
    direct_desk.customer_replies(ack, "Device model: unknown\nSteps to reproduce: n/a")
    facts = facts_of(direct_desk, ticket_id)
    assert facts["device"] == ["unknown"] and facts["repro_steps"] == ["unknown"]
    assert shown(direct_desk, ticket_id)["missing"] == ["logs"]
    direct_desk.customer_replies(ack, "Any news?")
    assert len(events_of(direct_desk, ticket_id, EventKind.INFO_REQUESTED)) == 1
    assert all(ask_lines(mail) == [] for mail in direct_desk.mails_to(ALICE)[1:])


def test_a_corrected_fact_keeps_its_old_value_in_the_trail(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    ticket_id = direct_desk.only_ticket().id
    direct_desk.customer_replies(ack, "Sorry, we are on SDK 4.0.7 now, same crash.")
    assert facts_of(direct_desk, ticket_id)["sdk_version"] == ["4.0.6", "4.0.7"]
    assert shown(direct_desk, ticket_id)["facts"]["sdk_version"] == "4.0.7"
    learned = [e.detail for e in events_of(direct_desk, ticket_id, EventKind.FACT_LEARNED)]
    assert any("4.0.6 → 4.0.7" in detail for detail in learned)


# -- the engineers' commands ---------------------------------------------------------------


def test_ask_sends_the_customer_a_list_of_just_those_facts(direct_desk: Desk) -> None:
    direct_desk.customer_writes(
        report("Crash on camera switch", COMPLETE_REPORT, files=(("sdk.log", SDK_LOG.encode()),))
    )
    notice = direct_desk.wait_mail(ENG1, "New (P3)")
    ticket_id = direct_desk.only_ticket().id
    direct_desk.engineer_replies(notice, ENG1, "#ask app_id channel")
    mail = direct_desk.wait_mail(ALICE, "Re: ")
    assert ask_lines(mail) == ["App ID: ____", "Channel name: ____"]
    receipt = direct_desk.wait_mail(ENG1, "Your commands")
    assert "the customer is asked for: app_id channel" in Desk.text(receipt)
    [asked] = events_of(direct_desk, ticket_id, EventKind.INFO_REQUESTED)
    assert asked.actor == ENG1 and asked.detail == "app_id channel"


def test_ask_with_words_travels_in_the_engineers_reply(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    notice = direct_desk.wait_mail(ENG1, "New (P3)")
    direct_desk.engineer_replies(notice, ENG1, "#ask logs\nCould you send the log of a crash?")
    mails = direct_desk.mails_to(ALICE)
    assert len(mails) == 2, [Desk.subject(m) for m in mails]
    reply = mails[1]
    assert "Could you send the log of a crash?" in Desk.text(reply)
    assert ask_lines(reply) == ["SDK log: ____"]
    assert Desk.subject(mails[0]) == Desk.subject(ack)


def test_info_ok_ends_the_asking(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    notice = direct_desk.wait_mail(ENG1, "New (P3)")
    ticket_id = direct_desk.only_ticket().id
    direct_desk.engineer_replies(notice, ENG1, "#info ok")
    assert shown(direct_desk, ticket_id)["missing"] == []
    assert direct_desk.ticket(ticket_id).intake_complete
    receipt = direct_desk.wait_mail(ENG1, "Your commands")
    assert "intake complete" in Desk.text(receipt)
    direct_desk.engineer_replies(notice, ENG1, "#info ok")
    second = direct_desk.wait_mail(ENG1, "Your commands", count=2)
    assert "already complete" in Desk.text(second)
    direct_desk.engineer_replies(notice, ENG1, "#ask")
    third = direct_desk.wait_mail(ENG1, "Your commands", count=3)
    assert "nothing is missing" in Desk.text(third)


def test_unknown_names_in_ask_are_refused_with_the_known_ones(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    notice = direct_desk.wait_mail(ENG1, "New (P3)")
    direct_desk.engineer_replies(notice, ENG1, "#ask colour logs")
    receipt = direct_desk.wait_mail(ENG1, "Your commands")
    assert "#ask does not know colour" in Desk.text(receipt)
    assert len(direct_desk.mails_to(ALICE)) == 1


# -- settings --------------------------------------------------------------------------------


def test_intake_off_acknowledges_as_before(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    desk = Desk(make_direct_gateway(engineers=ENGINEERS, intake=False), sink)
    desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = desk.wait_mail(ALICE, "Pusher crashes")
    assert "What we have" not in Desk.text(ack)
    assert ask_lines(ack) == []
    ticket = desk.only_ticket()
    assert facts_of(desk, ticket.id) == {}
    notice = desk.wait_mail(ENG1, "New (P3)")
    assert "Kind:" not in Desk.text(notice)


def test_the_required_facts_of_a_kind_are_the_operators_to_set(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink
) -> None:
    direct = make_direct_gateway(engineers=ENGINEERS, intake_required_crash=(Fact.LOGS,))
    desk = Desk(direct, sink)
    desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    assert ask_lines(desk.wait_mail(ALICE, "Pusher crashes")) == ["SDK log: ____"]


# -- bad input -------------------------------------------------------------------------------


def zip_bomb() -> bytes:
    """A small zip whose one member expands to 1 GiB of zeros."""
    buffer = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("sdk.log", "w", force_zip64=True) as member,
    ):
        for _ in range(1024):
            member.write(chunk)
    return buffer.getvalue()


def test_hostile_logs_are_kept_and_the_ticket_is_filed(direct_desk: Desk) -> None:
    bomb = zip_bomb()
    files = (
        ("logs.zip", bomb),
        ("broken.zip", bomb[: len(bomb) // 2]),
        ("garbage.log", bytes(range(256)) * 4000),
        ("utf16.log", "SDK version: 4.0.6\n".encode("utf-16")),
    )
    started = time.monotonic()
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT, files=files))
    elapsed = time.monotonic() - started
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    ticket = direct_desk.only_ticket()
    detail = shown(direct_desk, ticket.id)
    stored = {a["filename"]: a["size"] for m in detail["messages"] for a in m["attachments"]}
    assert stored["logs.zip"] == len(bomb) and stored["garbage.log"] == 256 * 4000
    assert "Pusher crashes" in Desk.subject(ack)
    assert elapsed < 30, elapsed  # bounded: 1 GiB is never expanded


# -- over real SMTP --------------------------------------------------------------------------


def test_the_intake_over_smtp(served_desk: Desk) -> None:
    gateway = served_desk.gateway
    assert isinstance(gateway, RunningGateway)
    served_desk.customer_writes(report("开播闪退", PARTIAL_REPORT_ZH).as_bytes())
    ack = served_desk.wait_mail(ALICE, "开播闪退")
    assert ask_lines(ack) == ["设备型号：____", "复现步骤：____", "SDK 日志：____"]
    ticket_id = served_desk.only_ticket().id
    answer = served_desk.reply(
        ack,
        ALICE,
        "设备型号：小米13\n复现步骤：打开App，点开播\nSDK 日志：见附件",
        attachment=("sdk.log", SDK_LOG.encode()),
    )
    gateway.send(answer, recipients=[Desk.reply_to(ack)], sender=ALICE)
    forwarded = served_desk.wait_mail(ENG1, "Re: ")
    assert "Device model: 小米13" in Desk.text(forwarded)
    gateway.wait_idle()
    detail = shown(served_desk, ticket_id)
    assert detail["missing"] == []
    assert detail["facts"]["device"] == "小米13"


def test_an_answer_with_a_new_question_reaches_the_engineers(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Pusher crashes")
    direct_desk.customer_replies(
        ack, "Device model: Pixel 8\n\nAlso, does the SDK support HEVC encoding on iOS?"
    )
    forwarded = direct_desk.wait_mail(ENG1, "Re: ")
    assert "does the SDK support HEVC encoding on iOS?" in Desk.text(forwarded)
    ticket_id = direct_desk.only_ticket().id
    assert facts_of(direct_desk, ticket_id)["device"] == ["Pixel 8"]


def test_a_first_mail_quoted_back_does_not_undo_a_correction(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Crash on camera switch", COMPLETE_REPORT))
    ack = direct_desk.wait_mail(ALICE, "Crash on camera switch")
    ticket_id = direct_desk.only_ticket().id
    # The acknowledgement quotes "SDK version: 4.0.6"; the reply quotes the acknowledgement.
    direct_desk.customer_replies(ack, "We upgraded to SDK 4.0.8 and it still crashes.")
    assert facts_of(direct_desk, ticket_id)["sdk_version"] == ["4.0.6", "4.0.8"]


def test_a_merge_brings_the_facts_the_survivor_lacks(direct_desk: Desk) -> None:
    direct_desk.customer_writes(report("Pusher crashes", PARTIAL_REPORT))
    notice = direct_desk.wait_mail(ENG1, "New (P3)")
    direct_desk.customer_writes(
        report("Same crash, more details", COMPLETE_REPORT.replace("4.0.6", "4.0.7")),
        sender="bob@customer.example",
    )
    first, second = sorted(t.id for t in direct_desk.gateway.tickets())
    second_notice = direct_desk.wait_mail(ENG1, "Same crash")
    direct_desk.engineer_replies(second_notice, ENG1, f"#merge {first}")
    facts = facts_of(direct_desk, first)
    assert facts["sdk_version"] == ["4.0.6"]  # the survivor's own value stays
    assert facts["device"] == ["Xiaomi 13"]  # what it lacked came with the merge
    assert "Missing: Device model" in Desk.text(notice)


def test_a_date_no_client_writes_still_files_the_report(direct_desk: Desk) -> None:
    mail = report("Crash since yesterday", "It crashed yesterday at 20:30 on SDK 4.0.6.")
    mail.replace_header("Date", "Fri, 31 Dec 9999 23:59:59 +2359")
    direct_desk.customer_writes(mail)
    direct_desk.wait_mail(ALICE, "Crash since yesterday")
    detail = shown(direct_desk, direct_desk.only_ticket().id)
    assert detail["facts"]["sdk_version"] == "4.0.6"
    assert "occurred_at" not in detail["facts"]
