"""The operators' side of `gateway`: reading tickets in a pipe, and acting on a ticket whose
engineers left (or that opened while none was configured), as real processes against a
data dir where real mail was filed, with the mail they cause caught by a real sink."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    ALICE,
    ENG1,
    ENG2,
    ENGINEERS,
    LEAD,
    SUPPORT,
    Desk,
    DirectGateway,
    Sink,
    gateway_env,
    load_case,
    run_gateway,
    with_current_schema,
)

ENGINEERS_SETTING = f"{ENG1},{ENG2},{LEAD}:L2:zh"
OPERATOR = f"operator:{pwd.getpwuid(os.getuid()).pw_name}"


@pytest.fixture
def env(tmp_path: Path, database_url: str, sink: Sink) -> dict[str, str]:
    """The CLI's settings for the data dir and database `make_direct_gateway` files into,
    with the engineers configured now and the sink as relay."""
    return gateway_env(
        tmp_path / "var",
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
        GATEWAY_ENGINEERS=ENGINEERS_SETTING,
    )


@pytest.fixture
def unstaffed_desk(make_direct_gateway: Callable[..., DirectGateway], sink: Sink) -> Desk:
    """A desk whose gateway had no engineers configured when mail came in."""
    return Desk(make_direct_gateway(engineers=()), sink)


def cli(
    env: dict[str, str], *args: str, stdin: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`run_gateway`, with what the command printed read as the UTF-8 it is."""
    result = run_gateway(env, *args, stdin=stdin, check=check)
    stdout, stderr = (text.encode("latin-1").decode() for text in (result.stdout, result.stderr))
    return subprocess.CompletedProcess(result.args, result.returncode, stdout, stderr)


def show_json(env: dict[str, str], ticket_id: int) -> dict[str, Any]:
    detail = json.loads(cli(env, "show", str(ticket_id), "--json").stdout)
    assert isinstance(detail, dict)
    return detail


def in_pipe(env: dict[str, str], command: str) -> subprocess.CompletedProcess[bytes]:
    """`command` run by a shell with `pipefail`, so the status is the gateway's own too."""
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        env=env,
        capture_output=True,
        timeout=60,
    )


def gateway_command(*args: str) -> str:
    return " ".join([sys.executable, "-m", "gateway", *args])


def test_ticket_opened_without_engineers_is_notified_and_assigned_from_the_cli(
    unstaffed_desk: Desk,
    make_direct_gateway: Callable[..., DirectGateway],
    env: dict[str, str],
) -> None:
    ticket_id, _ack = unstaffed_desk.open_ticket()
    assert not unstaffed_desk.mails_to(ENG1)

    told = cli(env, "notify", str(ticket_id))
    assert f"ticket #{ticket_id}: new-ticket notice sent again to {ENG1}, {ENG2}" in told.stdout
    notices = {address: unstaffed_desk.wait_mail(address, "New (P3)") for address in (ENG1, ENG2)}
    assert not unstaffed_desk.mails_to(LEAD), "L2 engineers hear of a ticket when escalated"
    tokens = {Desk.reply_to(notice) for notice in notices.values()}
    assert len(tokens) == 2, "each engineer has their own reply token"

    assigned = cli(env, "assign", str(ticket_id), ENG2.upper())
    assert f"assigned to {ENG2}" in assigned.stdout
    assigned_notice = Desk.text(unstaffed_desk.wait_mail(ENG2, "Assigned to you"))
    assert f"{OPERATOR} assigned ticket #{ticket_id} to you" in assigned_notice

    # The token in the re-sent notice is a real one: the engineer acts through it by mail.
    staffed = Desk(make_direct_gateway(engineers=ENGINEERS), unstaffed_desk.sink)
    staffed.engineer_replies(notices[ENG2], ENG2, "#resolve\nFixed in SDK 5.2.2.")
    staffed.wait_mail(ALICE, "Solved — please confirm")
    events = show_json(env, ticket_id)["events"]
    by_operator = [(e["type"], e["detail"]) for e in events if e["actor"] == OPERATOR]
    assert by_operator == [("notified", f"{ENG1}, {ENG2}"), ("assigned", ENG2)]
    assert events[-1]["actor"] == ENG2 and events[-1]["to_status"] == "resolved"


def test_status_from_the_cli_goes_through_the_state_machine_and_tells_the_customer(
    unstaffed_desk: Desk, env: dict[str, str]
) -> None:
    ticket_id, _ack = unstaffed_desk.open_ticket()
    resolved = cli(env, "status", str(ticket_id), "resolved")
    assert f"ticket #{ticket_id}: status new → resolved" in resolved.stdout
    asked = Desk.text(unstaffed_desk.wait_mail(ALICE, "Solved — please confirm"))
    assert "after your reply" not in asked

    sent_before = len(unstaffed_desk.sink.received)
    refused = cli(env, "status", str(ticket_id), "new", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"gateway: ticket #{ticket_id} cannot go from resolved to new"
    again = cli(env, "status", str(ticket_id), "resolved", check=False)
    assert (again.returncode, again.stderr.strip()) == (
        1,
        "gateway: the ticket is already resolved",
    )
    reopened = cli(env, "status", str(ticket_id), "open")
    assert "status resolved → open" in reopened.stdout
    reopen_mail = Desk.text(unstaffed_desk.wait_mail(ALICE, "Open again"))
    assert "after your reply" not in reopen_mail, "the operator is not the customer"
    assert len(unstaffed_desk.sink.received) == sent_before + 1

    detail = show_json(env, ticket_id)
    changes = [
        (e["from_status"], e["to_status"], e["actor"]) for e in detail["events"] if e["to_status"]
    ]
    assert changes[1:] == [("new", "resolved", OPERATOR), ("resolved", "open", OPERATOR)]
    assert detail["reopen_count"] == 1


def test_operator_refusals_name_the_problem_and_change_nothing(
    unstaffed_desk: Desk, env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    ticket_id, _ack = unstaffed_desk.open_ticket()
    events_before = show_json(env, ticket_id)["events"]
    for args, code, message in [
        (("assign", str(ticket_id), "stranger@example.org"), 1, "is not one of the configured"),
        (("assign", "99", ENG1), 1, "gateway: no ticket #99"),
        (("status", "99", "open"), 1, "gateway: no ticket #99"),
        (("note", str(ticket_id), "   "), 1, "gateway: note: the note is empty"),
        (("status", str(ticket_id), "done"), 2, "invalid choice: 'done'"),
    ]:
        result = cli(env, *args, check=False)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    nobody = gateway_env(tmp_path / "var", GATEWAY_DATABASE_URL=database_url)
    unstaffed = cli(nobody, "notify", str(ticket_id), check=False)
    assert unstaffed.returncode == 78
    assert "no L1 engineers are configured (GATEWAY_ENGINEERS)" in unstaffed.stderr
    assert show_json(env, ticket_id)["events"] == events_before
    assert not unstaffed_desk.mails_to(ENG1)


def test_note_from_the_cli_is_on_the_trail_and_mailed_to_nobody(
    unstaffed_desk: Desk, env: dict[str, str]
) -> None:
    unstaffed_desk.customer_writes(load_case("customer_zh_gbk.eml"), sender="wangwei@customer.cn")
    [ticket] = unstaffed_desk.gateway.tickets()
    sent_before = len(unstaffed_desk.sink.received)
    result = cli(env, "note", str(ticket.id), "已电话联系客户，", "明天复测")
    assert f"ticket #{ticket.id}: internal note added; sent 0 mail(s)" in result.stdout
    [note] = [e for e in show_json(env, ticket.id)["events"] if e["type"] == "note_added"]
    assert (note["actor"], note["detail"]) == (OPERATOR, "已电话联系客户， 明天复测")
    assert (
        f"note_added  by {OPERATOR}  (已电话联系客户， 明天复测)"
        in cli(env, "show", str(ticket.id)).stdout
    )
    assert len(unstaffed_desk.sink.received) == sent_before


def test_show_prints_the_conversation_and_collapses_our_notices(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink, env: dict[str, str]
) -> None:
    desk = Desk(make_direct_gateway(engineers=ENGINEERS), sink)
    ticket_id, _ack = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, "Which SDK build exactly? 请告诉我们版本号。")
    compact = cli(env, "show", str(ticket_id)).stdout
    full = cli(env, "show", str(ticket_id), "--full").stdout
    detail = show_json(env, ticket_id)

    assert "our app crashes as soon as the pusher starts" in compact
    assert "Which SDK build exactly? 请告诉我们版本号。" in compact
    outbound = [m for m in detail["messages"] if m["direction"] == "out"]
    one_liners = [line for line in compact.splitlines() if line.startswith("  -> ")]
    assert len(one_liners) == len(outbound) >= 3
    assert any(f"to {ENG1}  [Support #{ticket_id}] New (P3)" in line for line in one_liners)
    # An engineer's notice carries the command help; only --full shows its words.
    assert "#escalate" not in compact and "#escalate" in full
    for message in detail["messages"]:
        if message["direction"] == "in":
            assert f"raw message sha256 {message['raw_sha256'][:12]}…" in compact
    assert len(full.splitlines()) > len(compact.splitlines())


def test_attachment_takes_the_unique_prefix_that_show_prints(
    unstaffed_desk: Desk, env: dict[str, str], tmp_path: Path
) -> None:
    mail = EmailMessage()
    mail["From"] = ALICE
    mail["To"] = SUPPORT
    mail["Subject"] = "Seventeen logs 十七个日志"
    mail.set_content("All the device logs.")
    # Seventeen files: two of them share a first hex digit, whatever their digests are.
    for n in range(17):
        mail.add_attachment(
            f"log {n}\n".encode(), maintype="text", subtype="plain", filename=f"log{n}.txt"
        )
    unstaffed_desk.customer_writes(mail.as_bytes())
    [ticket] = unstaffed_desk.gateway.tickets()
    first = show_json(env, ticket.id)["messages"][0]
    digests = [a["sha256"] for a in first["attachments"]] + [first["raw_sha256"]]

    raw = subprocess.run(
        [sys.executable, "-m", "gateway", "attachment", first["raw_sha256"][:12] + "…"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    assert hashlib.sha256(raw).hexdigest() == first["raw_sha256"]
    log = next(a for a in first["attachments"] if a["filename"] == "log7.txt")
    out = tmp_path / "log7.txt"
    cli(env, "attachment", log["sha256"][:10].upper(), "-o", str(out))
    assert out.read_bytes() == b"log 7\n"

    shared = next(d[0] for d in digests if sum(o.startswith(d[0]) for o in digests) > 1)
    ambiguous = cli(env, "attachment", shared, check=False)
    assert ambiguous.returncode == 1 and "give more digits" in ambiguous.stderr
    unknown_prefix = next(
        p * 12 for p in "0123456789abcdef" if not any(d.startswith(p * 12) for d in digests)
    )
    unknown = cli(env, "attachment", unknown_prefix, check=False)
    assert unknown.returncode == 1
    assert (
        unknown.stderr.strip() == f"gateway: no stored attachment or raw message {unknown_prefix}"
    )
    not_hex = cli(env, "attachment", "logcat.txt", check=False)
    assert not_hex.returncode == 1 and "not a SHA-256 or a prefix of one" in not_hex.stderr


def test_commands_that_print_end_quietly_when_the_reader_stops(
    unstaffed_desk: Desk, env: dict[str, str]
) -> None:
    big = EmailMessage()
    big["From"] = ALICE
    big["To"] = SUPPORT
    big["Subject"] = "A big log"
    big.set_content("Here is the whole log.")
    big.add_attachment(os.urandom(2_000_000), maintype="application", subtype="octet-stream")
    unstaffed_desk.customer_writes(big.as_bytes())
    unstaffed_desk.customer_writes(load_case("customer_zh_gbk.eml"), sender="wangwei@customer.cn")
    [blob] = show_json(env, 1)["messages"][0]["attachments"]
    for command in (
        gateway_command("tickets") + " | head -1",
        gateway_command("tickets", "--json") + " | head -c 1",
        gateway_command("show", "1", "--full") + " | head -0",
        gateway_command("attachment", blob["sha256"][:12]) + " | head -c 100",
    ):
        piped = in_pipe(env, command)
        assert (piped.returncode, piped.stderr) == (0, b""), command
    first_line = in_pipe(env, gateway_command("tickets") + " | head -1").stdout.decode()
    assert first_line.split()[:3] == ["ID", "STATUS", "PRIORITY"]


def test_tickets_are_filtered_by_status_assignee_requester_and_limited(
    unstaffed_desk: Desk, env: dict[str, str]
) -> None:
    unstaffed_desk.customer_writes(load_case("customer_new.eml"))
    unstaffed_desk.customer_writes(load_case("customer_zh_gbk.eml"), sender="wangwei@customer.cn")
    unstaffed_desk.customer_writes(
        load_case("customer_zh_gbk.eml").replace(b"Message-ID: <", b"Message-ID: <again-"),
        sender="wangwei@customer.cn",
    )
    cli(env, "assign", "2", ENG1)
    cli(env, "status", "3", "waiting")

    def ids(*args: str) -> list[int]:
        rows = json.loads(cli(env, "tickets", "--json", *args).stdout)
        return [row["id"] for row in rows]

    assert ids() == [3, 2, 1]
    assert ids("--status", "waiting") == [3]
    assert ids("--status", "new") == [2, 1]
    assert ids("--assignee", ENG1) == [2]
    assert ids("--assignee", "none") == [3, 1]
    assert ids("--requester", "WangWei@customer.cn") == [3, 2]
    assert ids("--requester", "wangwei@customer.cn", "--status", "new") == [2]
    assert ids("--limit", "2") == [3, 2]
    assert ids("--status", "closed") == []
    assert cli(env, "tickets", "--status", "closed").stdout == "no tickets\n"
    refused = cli(env, "tickets", "--limit", "0", check=False)
    assert refused.returncode == 2 and "not a positive whole number" in refused.stderr


def test_quarantine_lists_sender_subject_and_reason_and_replay_reports_tickets(
    tmp_path: Path, database_url: str
) -> None:
    strict = gateway_env(
        tmp_path / "var", GATEWAY_DATABASE_URL=database_url, GATEWAY_MAX_MIME_PARTS="2"
    )
    with_current_schema(strict)
    assert cli(strict, "quarantine").stdout == "the quarantine is empty\n"
    assert json.loads(cli(strict, "quarantine", "--json").stdout) == []
    for case in ("customer_new.eml", "customer_zh_gbk.eml"):
        cli(strict, "ingest", stdin=load_case(case))
    listing = cli(strict, "quarantine").stdout
    entries = json.loads(cli(strict, "quarantine", "--json").stdout)
    assert [(e["sender"], e["subject"]) for e in entries] == [
        (ALICE, "Live stream crashes on Pixel 7 when starting the pusher"),
        ("wangwei@customer.cn", "直播推流崩溃（华为 Mate 60）"),
    ]
    assert all("MIME parts" in e["reason"] for e in entries)
    for entry, line in zip(entries, listing.splitlines(), strict=True):
        assert line.startswith(entry["spool_id"]) and entry["sender"] in line
        assert entry["reason"] in line and entry["subject"][:20] in line

    again = cli(strict, "replay", entries[0]["spool_id"], check=False)
    assert again.returncode == 1
    assert f"{entries[0]['spool_id']}: quarantined" in again.stdout
    assert "1 of 1 replayed message(s) quarantined again" in again.stderr

    relaxed = strict | {"GATEWAY_MAX_MIME_PARTS": "500"}
    replayed = cli(relaxed, "replay", "--all").stdout.splitlines()
    assert replayed == [
        f"{entries[0]['spool_id']}: new_ticket ticket #1 threaded by new",
        f"{entries[1]['spool_id']}: new_ticket ticket #2 threaded by new",
    ]
    assert cli(relaxed, "quarantine").stdout == "the quarantine is empty\n"


def test_ingest_exits_66_naming_a_file_it_cannot_read(tmp_path: Path) -> None:
    env = with_current_schema(gateway_env(tmp_path / "var"))
    missing = tmp_path / "no such message.eml"
    for path in (missing, tmp_path):
        result = cli(env, "ingest", str(path), check=False)
        assert result.returncode == 66, result.stderr
        assert result.stderr.startswith(f"gateway: cannot read {path}: ")
        assert "Traceback" not in result.stderr
    assert cli(env, "quarantine").stdout == "the quarantine is empty\n"


@pytest.mark.parametrize("command", [("tickets",), ("show", "1"), ("assign", "1", ENG1)])
def test_a_command_run_where_there_is_no_database_says_where_it_looked(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    env = gateway_env(tmp_path / "unused")
    del env["GATEWAY_DATA_DIR"]
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *command],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert result.stderr.strip() == (
        f"gateway: no database at {elsewhere}/var/gateway.sqlite3 (data dir {elsewhere}/var); "
        "run `gateway db upgrade` or set GATEWAY_DATA_DIR"
    )
    assert list(elsewhere.iterdir()) == [], "nothing is created where the command ran"


def test_an_act_on_a_merged_ticket_is_the_survivors(
    make_direct_gateway: Callable[..., DirectGateway], sink: Sink, env: dict[str, str]
) -> None:
    desk = Desk(make_direct_gateway(engineers=ENGINEERS), sink)
    older, ack = desk.open_ticket()
    second = desk.reply(ack, "alice.home@mail.example", "Same crash, from home.")
    second.replace_header("To", SUPPORT)  # Written anew to the support address.
    desk.gateway.send(second, sender="alice.home@mail.example")
    newer = desk.gateway.tickets()[1].id
    desk.engineer_replies(desk.wait_mail(ENG1, f"[Support #{newer}] New"), ENG1, f"#merge {older}")
    done = cli(env, "status", str(newer), "waiting")
    assert f"merged into #{older}: acting on #{older}" in done.stderr
    assert show_json(env, older)["status"] == "waiting"
    assert show_json(env, newer)["status"] == "closed"
