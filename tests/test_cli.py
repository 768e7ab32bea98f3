"""The `gateway` command as operators and MTAs use it: real processes, real exit codes."""

from __future__ import annotations

import email
import email.policy
import json
import signal
import smtplib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.session import migration_scripts
from tests.conftest import (
    SUPPORT,
    ServeProcess,
    Sink,
    free_port,
    gateway_env,
    load_case,
    run_gateway,
    with_current_schema,
)
from tests.dovecot import PASSWORD as IMAP_PASSWORD
from tests.dovecot import Dovecot, TokenIntrospection


def run_json(env: dict[str, str], *args: str) -> object:
    output = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--json"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    return json.loads(output)


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return with_current_schema(gateway_env(tmp_path / "var", GATEWAY_DATABASE_URL=database_url))


def test_ingest_from_stdin_creates_ticket_and_writes_acknowledgement_to_maildir(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = run_gateway(env, "ingest", stdin=load_case("customer_new.eml"))
    assert "new_ticket ticket #1" in result.stdout
    maildir = tmp_path / "var" / "outbox-maildir" / "new"
    [ack] = list(maildir.iterdir())
    assert b"Subject: [Support #1] Live stream crashes on Pixel 7" in ack.read_bytes()
    assert b"Delivered-To: alice@customer.example" in ack.read_bytes()


def test_ingest_reads_a_file_and_threads_a_reply(env: dict[str, str], tmp_path: Path) -> None:
    first = tmp_path / "first.eml"
    first.write_bytes(load_case("customer_new.eml"))
    run_gateway(env, "ingest", str(first))
    [ticket] = run_json(env, "tickets")  # type: ignore[misc]
    detail = run_json(env, "show", str(ticket["id"]))
    ack_id = next(
        m["message_id"]
        for m in detail["messages"]  # type: ignore[index]
        if m["direction"] == "out"
    )
    reply = tmp_path / "reply.eml"
    reply.write_bytes(load_case("customer_reply.eml", ack_id=ack_id, subject="x"))
    result = run_gateway(env, "ingest", str(reply))
    assert "reply ticket #1 threaded by in-reply-to" in result.stdout


def test_tickets_and_show_print_json_for_programs(env: dict[str, str]) -> None:
    run_gateway(env, "ingest", stdin=load_case("customer_new.eml"))
    [summary] = run_json(env, "tickets")  # type: ignore[misc]
    assert {"id", "status", "subject", "requester", "created_at"} <= set(summary)
    assert summary["status"] == "new" and summary["requester"] == "alice@customer.example"
    detail = run_json(env, "show", "1")
    assert isinstance(detail, dict)
    assert {
        "id",
        "status",
        "priority",
        "subject",
        "requester",
        "assignee",
        "messages",
        "events",
    } <= set(detail)
    inbound, outbound = detail["messages"]
    assert (inbound["direction"], outbound["direction"]) == ("in", "out")
    assert {"message_id", "from", "direction", "text", "attachments"} <= set(inbound)
    names = {a["filename"] for a in inbound["attachments"]}
    assert names == {"screen shot.png", "logcat.txt"}
    assert all(
        {"filename", "content_type", "size", "sha256"} <= set(a) for a in inbound["attachments"]
    )
    created, *learned = detail["events"]
    assert created["type"] == "created" and created["to_status"] == "new"
    assert {event["type"] for event in learned} <= {"fact_learned", "info_requested"}
    assert detail["kind"] in ("crash", "quality", "howto", "account", "other")
    assert isinstance(detail["facts"], dict) and isinstance(detail["missing"], list)
    assert {"type", "at", "actor", "from_status", "to_status"} <= set(created)


def test_tickets_and_show_print_readable_tables(env: dict[str, str]) -> None:
    run_gateway(env, "ingest", stdin=load_case("customer_zh_gbk.eml"))
    listing = subprocess.run(
        [sys.executable, "-m", "gateway", "tickets"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()
    assert listing.splitlines()[0].split()[:3] == ["ID", "STATUS", "PRIORITY"]
    assert "直播推流崩溃" in listing
    shown = subprocess.run(
        [sys.executable, "-m", "gateway", "show", "1"],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()
    assert "Ticket #1: 直播推流崩溃（华为 Mate 60）" in shown
    assert "崩溃日志.txt" in shown


def test_show_unknown_ticket_names_the_problem(env: dict[str, str]) -> None:
    result = run_gateway(env, "show", "42", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "gateway: no ticket #42"


def test_ingest_exits_75_when_the_spool_cannot_be_written(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "var")
    with_current_schema(env)
    (tmp_path / "var" / "spool").write_text("not a directory")
    result = run_gateway(env, "ingest", stdin=load_case("customer_new.eml"), check=False)
    assert result.returncode == 75, result.stderr
    assert "spool" in result.stderr and "Traceback" not in result.stderr


def test_ingest_refuses_an_outlook_msg_file_with_a_reason(env: dict[str, str]) -> None:
    result = run_gateway(
        env, "ingest", stdin=b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, check=False
    )
    assert result.returncode == 65
    assert "Outlook .msg" in result.stderr


def test_bad_setting_is_named(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "var", GATEWAY_SMTP_LISTEN="localhost")
    result = run_gateway(env, "tickets", check=False)
    assert result.returncode == 78
    assert "GATEWAY_SMTP_LISTEN" in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema_that_serve_refuses_to_run_without(
    tmp_path: Path, bare_database_url: str
) -> None:
    env = gateway_env(tmp_path / "var", GATEWAY_DATABASE_URL=bare_database_url)
    newest = migration_scripts().get_current_head()
    for command in ("serve",), ("db", "status"):
        refused = run_gateway(env, *command, check=False)
        assert refused.returncode == 78, refused.stderr
        assert (
            f"gateway: the database schema is at nothing, this gateway needs {newest}: "
            "run `gateway db upgrade` first"
        ) in refused.stderr
    # The operators' commands say where they looked.
    listing = run_gateway(env, "tickets", check=False)
    assert listing.returncode == 78
    assert listing.stderr.startswith("gateway: no database at ")
    assert f"(data dir {tmp_path / 'var'}); run `gateway db upgrade`" in listing.stderr
    assert f"database schema is up to date ({newest})" in run_gateway(env, "db", "upgrade").stdout
    assert run_gateway(env, "db", "status").returncode == 0
    assert (
        "new_ticket ticket #1"
        in run_gateway(env, "ingest", stdin=load_case("customer_new.eml")).stdout
    )


def test_serve_refuses_a_schema_newer_than_itself(env: dict[str, str]) -> None:
    url = env["GATEWAY_DATABASE_URL"] or f"sqlite:///{env['GATEWAY_DATA_DIR']}/gateway.sqlite3"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    result = run_gateway(env, "serve", check=False)
    assert result.returncode == 78
    assert "the database schema is at 9999, newer than this gateway" in result.stderr


def test_quarantined_message_is_listed_and_replayed(env: dict[str, str], tmp_path: Path) -> None:
    # A message with no header fields at all cannot be filed: quarantined, not lost.
    result = run_gateway(env, "ingest", stdin=b"just some words\r\nwithout headers\r\n")
    assert "quarantined" in result.stdout
    listing = run_gateway(env, "quarantine").stdout
    assert "no header fields" in listing
    spool_id = listing.split()[0]
    replay = run_gateway(env, "replay", spool_id, check=False)
    assert replay.returncode == 1
    assert f"{spool_id}: quarantined" in replay.stdout
    assert "1 of 1 replayed message(s) quarantined again" in replay.stderr
    assert run_gateway(env, "quarantine").stdout.split()[0] == spool_id


def test_serve_accepts_mail_and_stops_cleanly_on_sigterm(served: ServeProcess, sink: Sink) -> None:
    with smtplib.SMTP("127.0.0.1", served.port) as smtp:
        smtp.sendmail("alice@customer.example", [SUPPORT], load_case("customer_new.eml"))
    sink.wait_for(1)
    started = time.monotonic()
    assert served.process is not None
    served.process.send_signal(signal.SIGTERM)  # To `serve` alone: it stops its worker.
    assert served.process.wait(20) == 0
    assert time.monotonic() - started < 10


def test_health_is_good_while_serve_runs_and_names_what_is_wrong_after(
    served: ServeProcess, tmp_path: Path
) -> None:
    env, port = served.env, served.port
    healthy = run_gateway(env, "health", check=False)
    assert (healthy.returncode, healthy.stdout) == (0, "healthy\n"), healthy.stderr
    served.stop()
    # Stopped, with a message accepted ten minutes ago that nobody filed.
    queue = tmp_path / "var" / "spool" / "queue"
    received = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    (queue / "0-old.msg").write_text(
        json.dumps(
            {
                "spool_id": "0-old",
                "raw_sha256": "0" * 64,
                "source": "smtp",
                "mail_from": "",
                "recipients": [SUPPORT],
                "received_at": received,
                "size": 1,
            }
        )
        + "\nx"
    )
    unhealthy = run_gateway(env, "health", check=False)
    assert unhealthy.returncode == 1
    assert f"listener 127.0.0.1:{port} does not greet" in unhealthy.stderr
    assert "1 message(s) waiting in the spool, the oldest for 60" in unhealthy.stderr


def maildir_mail_to(maildir: Path, address: str, subject_part: str) -> EmailMessage:
    for path in sorted(maildir.iterdir()):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        if mail["Delivered-To"] == address and subject_part in str(mail["Subject"]):
            return mail
    raise AssertionError(f"no mail to {address} about {subject_part!r} in {maildir}")


def test_resolve_by_mail_then_due_closes_the_ticket_as_of_a_later_time(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "var", GATEWAY_ENGINEERS="eng1@example.com")
    with_current_schema(env)
    run_gateway(env, "ingest", stdin=load_case("customer_new.eml"))
    maildir = tmp_path / "var" / "outbox-maildir" / "new"
    notice = maildir_mail_to(maildir, "eng1@example.com", "New (P3)")
    token_address = notice["Reply-To"].addresses[0].addr_spec
    reply = (
        f"From: eng1@example.com\r\nTo: {token_address}\r\nSubject: Re: ticket\r\n"
        "Message-ID: <eng-reply-1@example.com>\r\n\r\n#resolve\r\nFixed in 5.2.2.\r\n"
    )
    run_gateway(
        env,
        "ingest",
        "--sender",
        "eng1@example.com",
        "--recipient",
        token_address,
        stdin=reply.encode(),
    )
    assert "status resolved" in run_gateway(env, "show", "1").stdout

    assert "auto-closed 0 ticket(s)" in run_gateway(env, "due").stdout
    later = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    assert "auto-closed 1 ticket(s): #1" in run_gateway(env, "due", "--now", later).stdout
    shown = run_gateway(env, "show", "1").stdout
    assert (
        "auto_closed resolved" in shown
        and "closed  by system  (no answer from the customer in 7 days)" in shown
    )
    assert maildir_mail_to(maildir, "alice@customer.example", "Closed")


def test_due_refuses_a_time_it_cannot_read(env: dict[str, str]) -> None:
    result = run_gateway(env, "due", "--now", "next tuesday", check=False)
    assert result.returncode == 2 and "not an ISO 8601 time" in result.stderr


def test_attachment_writes_the_stored_file(env: dict[str, str], tmp_path: Path) -> None:
    run_gateway(env, "ingest", stdin=load_case("customer_new.eml"))
    detail = run_json(env, "show", "1")
    assert isinstance(detail, dict)
    logcat = next(a for a in detail["messages"][0]["attachments"] if a["filename"] == "logcat.txt")
    out = tmp_path / "logcat.txt"
    run_gateway(env, "attachment", logcat["sha256"], "-o", str(out))
    assert out.read_bytes().startswith(b"E/AndroidRuntime: FATAL EXCEPTION")
    missing = run_gateway(env, "attachment", "0" * 64, check=False)
    assert missing.returncode == 1 and "no stored attachment" in missing.stderr


def test_poll_once_reads_the_mailbox_files_it_and_exits(tmp_path: Path, dovecot: Dovecot) -> None:
    password_file = tmp_path / "imap-password"
    password_file.write_text(IMAP_PASSWORD + "\n")
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_IMAP_URL=dovecot.url(password=False),
        GATEWAY_IMAP_PASSWORD_FILE=str(password_file),
        GATEWAY_IMAP_FOLDER_DONE="Processed",
    )
    with_current_schema(env)
    dovecot.append(load_case("customer_new.eml"))
    dovecot.append(load_case("customer_zh_gbk.eml"))
    first = run_gateway(env, "poll", "--once")
    assert "read 2 message(s)" in first.stdout and "filed 2" in first.stdout
    assert "sent 2 mail(s)" in first.stdout
    assert len(run_json(env, "tickets")) == 2  # type: ignore[arg-type]
    assert not dovecot.messages("INBOX") and len(dovecot.messages("Processed")) == 2
    assert "read 0 message(s)" in run_gateway(env, "poll", "--once").stdout


def test_poll_once_with_a_wrong_password_exits_78_naming_the_setting(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    env = gateway_env(
        tmp_path / "var", GATEWAY_IMAP_URL=dovecot.url().replace(IMAP_PASSWORD, "wrong")
    )
    with_current_schema(env)
    result = run_gateway(env, "poll", "--once", check=False)
    assert result.returncode == 78
    assert result.stderr.startswith("gateway: GATEWAY_IMAP_URL: 127.0.0.1 refused the login")


def test_poll_once_against_a_server_that_is_down_exits_75(tmp_path: Path) -> None:
    env = gateway_env(
        tmp_path / "var", GATEWAY_IMAP_URL=f"imap://support:pw@127.0.0.1:{free_port()}/INBOX"
    )
    with_current_schema(env)
    result = run_gateway(env, "poll", "--once", check=False)
    assert result.returncode == 75 and "unavailable" in result.stderr


def test_imap_url_without_a_way_to_log_in_is_refused(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "var", GATEWAY_IMAP_URL="imap://support@127.0.0.1/INBOX")
    result = run_gateway(env, "poll", "--once", check=False)
    assert result.returncode == 78 and "exactly one way to log in" in result.stderr


def test_poll_once_logs_in_with_an_oauth2_token_from_a_command(
    tmp_path: Path, oauth2_dovecot: Dovecot
) -> None:
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_IMAP_URL=oauth2_dovecot.url(password=False),
        GATEWAY_IMAP_OAUTH2_TOKEN_COMMAND=f"echo {TokenIntrospection.VALID_TOKEN}",
    )
    with_current_schema(env)
    oauth2_dovecot.append(load_case("customer_new.eml"))
    assert "read 1 message(s)" in run_gateway(env, "poll", "--once").stdout


def test_poll_once_with_a_refused_oauth2_token_names_the_setting(
    tmp_path: Path, oauth2_dovecot: Dovecot
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("expired-token\n")
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_IMAP_URL=oauth2_dovecot.url(password=False),
        GATEWAY_IMAP_OAUTH2_TOKEN_FILE=str(token_file),
    )
    with_current_schema(env)
    result = run_gateway(env, "poll", "--once", check=False)
    assert result.returncode == 78
    assert "GATEWAY_IMAP_OAUTH2_TOKEN_FILE/GATEWAY_IMAP_OAUTH2_TOKEN_COMMAND" in result.stderr


def test_poll_once_names_a_folder_that_does_not_exist(tmp_path: Path, dovecot: Dovecot) -> None:
    env = gateway_env(tmp_path / "var", GATEWAY_IMAP_URL=dovecot.url("Suport"))
    with_current_schema(env)
    result = run_gateway(env, "poll", "--once", check=False)
    assert result.returncode == 78
    assert "GATEWAY_IMAP_URL: there is no folder 'Suport'" in result.stderr


def test_replay_needs_ids_or_all_and_all_replays_every_one(env: dict[str, str]) -> None:
    headerless = b"no header here, only words\r\n"
    for _ in range(3):
        run_gateway(env, "ingest", stdin=headerless)
    assert len(run_gateway(env, "quarantine").stdout.splitlines()) == 3
    bare = run_gateway(env, "replay", check=False)
    assert bare.returncode == 1 and "or give --all" in bare.stderr
    replayed = run_gateway(env, "replay", "--all", check=False).stdout.splitlines()
    assert len(replayed) == 3 and all(": quarantined no header fields" in line for line in replayed)
