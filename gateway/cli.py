"""The `gateway` command: serve, ingest, upgrade the database, read tickets, deliver, replay.

Loads `Settings` once and passes them down. Errors become a one-line message naming the
problem and a sysexits exit code (`ingest` exits 75 on temporary failures so an MTA retries).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from gateway.app import (
    Gateway,
    build_gateway,
    make_mailbox_reader,
    open_database,
    require_current_schema,
)
from gateway.blob_moves import run_blobs
from gateway.clock import Clock
from gateway.config import load_settings
from gateway.database import database_errors
from gateway.delivery import SmtpRelay
from gateway.errors import (
    ConfigError,
    DeliveryDeferred,
    DeliveryRejected,
    GatewayError,
    InputMissing,
)
from gateway.kb_commands import run_kb
from gateway.lookup import (
    UNASSIGNED,
    outcome_line,
    run_attachment,
    run_quarantine,
    run_replay,
    run_show,
    run_tickets,
)
from gateway.operators import (
    run_assign,
    run_links,
    run_login_link,
    run_note,
    run_notify,
    run_status,
)
from gateway.report_page import date_option, run_report
from gateway.setting_values import Endpoint
from gateway.settings import Settings
from gateway.spool import IntakeSource
from storage.models import TicketStatus
from storage.session import upgrade_schema

HEALTH_TIMEOUT_SECONDS = 5.0
# A worker files a message in well under a second; minutes of backlog mean none is running.
SPOOL_STUCK_SECONDS = 300.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosmtpd logs every SMTP command at INFO; alembic its context on every start.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        with database_errors():
            result: int = args.run(settings, args)
        sys.stdout.flush()
        return result
    except GatewayError as exc:
        print(f"gateway: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return reader_went_away()


def reader_went_away() -> int:
    """The program reading our output (`head`, a pager) stopped: that ends the command
    quietly, as it ends `cat`. What is still buffered goes nowhere, not into a traceback
    at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = Commands(parser)
    add_service_commands(commands)
    add_mail_commands(commands)
    add_ticket_commands(commands)
    add_operator_commands(commands)
    add_report_command(commands)
    return parser


Command = Callable[[Settings, argparse.Namespace], int]


class Commands:
    """The subcommands of `gateway`, each with the function that runs it."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.group = parser.add_subparsers(required=True, metavar="COMMAND")

    def add(self, name: str, run: Command, text: str) -> argparse.ArgumentParser:
        sub = self.group.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        return sub


def add_service_commands(commands: Commands) -> None:
    commands.add("serve", run_serve, "run the listeners and workers until SIGTERM/SIGINT")
    commands.add(
        "health",
        run_health,
        "exit 0 when the database is current, every listener greets and the spool is moving; "
        "else non-zero, naming the problem (for container health checks)",
    )
    database = commands.add(
        "db",
        run_db,
        "the database schema: `db upgrade` creates or upgrades it, `db status` tells where it "
        "stands",
    )
    database.add_argument(
        "action", choices=("upgrade", "status"), metavar="ACTION", help="upgrade | status"
    )


def add_mail_commands(commands: Commands) -> None:
    ingest = commands.add(
        "ingest", run_ingest, "accept one message from a file or stdin (MTA pipe)"
    )
    ingest.add_argument("file", nargs="?", help="message file; stdin when omitted")
    ingest.add_argument(
        "--sender", default=None, help="envelope sender, if the MTA passes it ('' for a bounce)"
    )
    ingest.add_argument(
        "--recipient",
        action="append",
        default=[],
        help="envelope recipient (repeatable); the support address by default",
    )
    poll = commands.add(
        "poll",
        run_poll,
        "read new mail from the IMAP mailbox (GATEWAY_IMAP_URL), file it and send what it causes",
    )
    poll.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="one pass, then exit (for cron); `serve` reads the mailbox continuously",
    )
    commands.add("process", run_process, "file every message waiting in the spool, then exit")
    commands.add("deliver", run_deliver, "send every outbox mail that is due, then exit")
    due = commands.add(
        "due",
        run_due,
        "run time-based work that is due (auto-close, service-level warnings and breaches, "
        "shift digests), then exit",
    )
    due.add_argument(
        "--now",
        type=parse_moment,
        default=None,
        metavar="TIME",
        help="act as if it were TIME (ISO 8601, e.g. 2026-12-01T09:00Z)",
    )


def add_ticket_commands(commands: Commands) -> None:
    tickets = commands.add("tickets", run_tickets, "list tickets, newest first")
    tickets.add_argument("--status", choices=[status.value for status in TicketStatus])
    tickets.add_argument(
        "--assignee", metavar="ADDRESS", help=f"assigned to ADDRESS ('{UNASSIGNED}': to nobody)"
    )
    tickets.add_argument("--requester", metavar="ADDRESS", help="opened by ADDRESS")
    tickets.add_argument("--limit", type=positive_number, metavar="N", help="the newest N")
    tickets.add_argument("--json", action="store_true", help="print JSON for programs")
    show = commands.add(
        "show",
        run_show,
        "show one ticket: the customer's conversation, our notices one line each, the trail",
    )
    show.add_argument("ticket_id", type=int, metavar="ID")
    show.add_argument("--full", action="store_true", help="every message and detail in full")
    show.add_argument("--json", action="store_true", help="print JSON for programs")
    attachment = commands.add(
        "attachment",
        run_attachment,
        "write a stored attachment (or raw message) by its SHA-256 or a unique start of it",
    )
    attachment.add_argument("sha256", metavar="SHA256")
    attachment.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout"
    )
    quarantine = commands.add(
        "quarantine", run_quarantine, "list quarantined messages: sender, subject, reason"
    )
    quarantine.add_argument("--json", action="store_true", help="print JSON for programs")
    replay = commands.add(
        "replay", run_replay, "run quarantined messages through the pipeline again"
    )
    replay.add_argument("spool_ids", nargs="*", metavar="SPOOL_ID", help="which ones")
    replay.add_argument("--all", action="store_true", help="every quarantined message")


def add_operator_commands(commands: Commands) -> None:
    assign = commands.add(
        "assign", run_assign, "assign a ticket to a configured engineer, who is told"
    )
    assign.add_argument("ticket_id", type=int, metavar="ID")
    assign.add_argument("address", metavar="ADDRESS")
    notify = commands.add(
        "notify",
        run_notify,
        "send the new-ticket notice again to the ticket's engineers (none: the L1 engineers)",
    )
    notify.add_argument("ticket_id", type=int, metavar="ID")
    note = commands.add("note", run_note, "add an internal note to a ticket's trail")
    note.add_argument("ticket_id", type=int, metavar="ID")
    note.add_argument("text", nargs="+", metavar="TEXT")
    status = commands.add(
        "status", run_status, "change a ticket's status; the customer is told as usual"
    )
    status.add_argument("ticket_id", type=int, metavar="ID")
    status.add_argument("status", choices=[status.value for status in TicketStatus])
    links = commands.add(
        "links",
        run_links,
        "`links revoke ID`: every link to the ticket's status page and files stops working",
    )
    links.add_argument("action", choices=("revoke",), metavar="ACTION", help="revoke")
    links.add_argument("ticket_id", type=int, metavar="ID")
    login_link = commands.add(
        "login-link", run_login_link, "print a sign-in link to the engineers' queue (/queue)"
    )
    login_link.add_argument("address", metavar="ADDRESS", help="a configured engineer's address")
    blobs = commands.add(
        "blobs",
        run_blobs,
        "`blobs migrate`: move the raw messages and files kept in the data directory into "
        "the database (resumable; each SHA-256 checked)",
    )
    blobs.add_argument("action", choices=("migrate",), metavar="ACTION", help="migrate")
    kb = commands.add(
        "kb",
        run_kb,
        "the knowledge base (GATEWAY_KB_DIR): `kb index` its articles, `kb search QUESTION` "
        "as a new ticket would, `kb list` them with how often each was suggested and solved",
    )
    kb.add_argument(
        "action",
        choices=("index", "search", "list"),
        metavar="ACTION",
        help="index, search or list",
    )
    kb.add_argument("query", nargs="*", help="for search: the question")
    kb.add_argument("--lang", choices=("en", "zh"), help="the asker's language")
    kb.add_argument("--platform", help="the asker's platform (Android, iOS, Web, ...)")
    kb.add_argument("--sdk-version", help="the asker's SDK version, as in 4.1.2")
    kb.add_argument("--limit", type=positive_number, default=10, help="at most this many")
    kb.add_argument("--json", action="store_true", help="print JSON")


def add_report_command(commands: Commands) -> None:
    report = commands.add(
        "report",
        run_report,
        "how support is doing over a period: first response and resolution times, "
        "first-contact resolution, reopens, targets met and the backlog, per priority",
    )
    report.add_argument(
        "--since",
        type=date_option,
        metavar="DATE",
        help="from DATE (ISO date or time, in the team's zone unless it says); "
        "default: 30 days before the end",
    )
    report.add_argument(
        "--until",
        type=date_option,
        metavar="DATE",
        help="up to DATE (a date: to the end of that day); default: now",
    )
    output = report.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON for programs")
    output.add_argument("--html", metavar="FILE", help="write a page with charts to FILE")


def positive_number(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    # Here: the listeners and the web service take a tenth of a second to import, which
    # every other command, run by an MTA or cron at each message or minute, would pay.
    from gateway.serving import run_forever

    run_forever(build_gateway(settings))
    return 0


def run_db(settings: Settings, args: argparse.Namespace) -> int:
    engine = open_database(settings)
    if args.action == "upgrade":
        upgrade_schema(settings.effective_database_url)
    try:
        revision = require_current_schema(engine)
    finally:
        engine.dispose()
    print(
        f"database schema is up to date ({revision}) at "
        f"{engine.url.render_as_string(hide_password=True)}"
    )
    return 0


def run_health(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings, renders_mail=False)
    problems = [
        problem
        for problem in (
            *(
                listener_problem(endpoint)
                for endpoint in (settings.listen.smtp, settings.listen.lmtp)
                if endpoint
            ),
            spool_problem(gateway),
        )
        if problem
    ]
    gateway.engine.dispose()
    for problem in problems:
        print(f"gateway: unhealthy: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("healthy")
    return 0


def listener_problem(endpoint: Endpoint) -> str:
    """Why the listener at `endpoint` is not answering as it should; "" when it is."""
    host = "127.0.0.1" if endpoint.host in ("0.0.0.0", "::", "") else endpoint.host
    try:
        SmtpRelay(host, endpoint.port, HEALTH_TIMEOUT_SECONDS, "listener").greet()
    except (DeliveryDeferred, DeliveryRejected) as exc:
        return exc.reason
    return ""


def spool_problem(gateway: Gateway) -> str:
    """Mail waiting long in the spool means no worker is filing it."""
    waiting, oldest = gateway.spool.backlog()
    if oldest is None:
        return ""
    age = (gateway.clock.now() - oldest.received_at).total_seconds()
    if age <= SPOOL_STUCK_SECONDS:
        return ""
    return f"{waiting} message(s) waiting in the spool, the oldest for {age:.0f}s"


def run_ingest(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings)
    raw = read_input(args.file)
    recipients = args.recipient or [settings.mailbox.address]
    receipt = gateway.spool.accept(raw, args.sender, recipients, IntakeSource.INGEST)
    outcome = gateway.executor.process(receipt)
    gateway.dispatcher.deliver_due()
    print(outcome_line(outcome))
    return 0


def run_poll(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings)
    reader = make_mailbox_reader(gateway)
    if reader is None:
        raise ConfigError("GATEWAY_IMAP_URL is not set: there is no mailbox to poll")
    with reader.alone(gateway.locks) as held:
        if not held:
            print(f"another gateway is reading {reader.account}; nothing to do")
            return 0
        read = reader.poll_once()
    filed = gateway.executor.drain()
    report = gateway.dispatcher.deliver_due()
    print(
        f"read {read} message(s) from {reader.account}; filed {len(filed)}; "
        f"sent {report.sent} mail(s)"
    )
    return 0


def read_input(path: str | None) -> bytes:
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise InputMissing(f"cannot read {path}: {exc.strerror}") from None


def run_process(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings)
    for outcome in gateway.executor.drain():
        print(f"{outcome.spool_id}: {outcome.outcome.value} {outcome.reason}".rstrip())
    return 0


def run_deliver(settings: Settings, args: argparse.Namespace) -> int:
    report = build_gateway(settings).dispatcher.deliver_due()
    print(f"sent {report.sent}, to retry {report.retried}, failed {report.failed}")
    return 0


def parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_due(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings, Clock.at(args.now) if args.now else None)
    closed = gateway.timers.run_due()
    report = gateway.dispatcher.deliver_due()
    names = ", ".join(f"#{ticket_id}" for ticket_id in closed) or "none"
    work = gateway.timers.deadline_work
    print(
        f"auto-closed {len(closed)} ticket(s): {names}; warnings {work.warnings}, "
        f"breaches {work.breaches}, shift digests {work.digests}; sent {report.sent} mail(s)"
    )
    return 0
