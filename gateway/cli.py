"""The `gateway` command: serve, ingest, upgrade the database, read tickets, deliver, replay.

Loads `Settings` once and passes them down. Errors become a one-line message naming the
problem and a sysexits exit code (`ingest` exits 75 on temporary failures so an MTA retries).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.app import (
    Gateway,
    build_gateway,
    locks_dir,
    make_mailbox_reader,
    open_database,
    require_current_schema,
    run_forever,
)
from gateway.clock import Clock
from gateway.config import Endpoint, Settings, load_settings
from gateway.database import database_errors, reading
from gateway.delivery import SmtpRelay
from gateway.display import print_table, print_ticket, ticket_detail, ticket_summary
from gateway.errors import (
    ConfigError,
    DeliveryDeferred,
    DeliveryRejected,
    GatewayError,
    NotFound,
    UsageError,
)
from gateway.spool import IntakeSource
from storage.models import Ticket
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
        return result
    except GatewayError as exc:
        print(f"gateway: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = Commands(parser)
    add_service_commands(commands)
    add_mail_commands(commands)
    add_ticket_commands(commands)
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
    due = commands.add("due", run_due, "run time-based work that is due (auto-close), then exit")
    due.add_argument(
        "--now",
        type=parse_moment,
        default=None,
        metavar="TIME",
        help="act as if it were TIME (ISO 8601, e.g. 2026-12-01T09:00Z)",
    )


def add_ticket_commands(commands: Commands) -> None:
    tickets = commands.add("tickets", run_tickets, "list tickets, newest first")
    tickets.add_argument("--json", action="store_true", help="print JSON for programs")
    show = commands.add("show", run_show, "show one ticket with its messages and events")
    show.add_argument("ticket_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON for programs")
    attachment = commands.add(
        "attachment", run_attachment, "write a stored attachment (or raw message) by its SHA-256"
    )
    attachment.add_argument("sha256", metavar="SHA256")
    attachment.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout"
    )
    commands.add("quarantine", run_quarantine, "list quarantined messages with their reasons")
    replay = commands.add(
        "replay", run_replay, "run quarantined messages through the pipeline again"
    )
    replay.add_argument("spool_ids", nargs="*", metavar="SPOOL_ID", help="which ones")
    replay.add_argument("--all", action="store_true", help="every quarantined message")


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
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
    ticket = f" ticket #{outcome.ticket_id}" if outcome.ticket_id else ""
    print(f"{receipt.spool_id}: {outcome.outcome.value}{ticket} {outcome.reason}".rstrip())
    return 0


def run_poll(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings)
    reader = make_mailbox_reader(gateway)
    if reader is None:
        raise ConfigError("GATEWAY_IMAP_URL is not set: there is no mailbox to poll")
    with reader.alone(locks_dir(settings)) as held:
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
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


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
    print(f"auto-closed {len(closed)} ticket(s): {names}; sent {report.sent} mail(s)")
    return 0


def run_attachment(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings, renders_mail=False)
    try:
        data = gateway.blobs.get(args.sha256.strip().lower())
    except ValueError:
        raise UsageError(f"not a SHA-256 hex digest: {args.sha256!r}") from None
    except FileNotFoundError:
        raise NotFound(f"no stored attachment {args.sha256}") from None
    if args.output is None:
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
    return 0


def run_quarantine(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings, renders_mail=False)
    for receipt, reason in gateway.spool.quarantined():
        print(f"{receipt.spool_id}  {receipt.received_at:%Y-%m-%d %H:%M}  {reason}")
    return 0


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    if bool(args.spool_ids) == args.all:
        raise UsageError("replay: name SPOOL_IDs (see `gateway quarantine`) or give --all")
    gateway = build_gateway(settings)
    wanted = args.spool_ids or [receipt.spool_id for receipt, _ in gateway.spool.quarantined()]
    progress = Progress(len(wanted))
    for spool_id in wanted:
        try:
            receipt = gateway.spool.replay(spool_id)
        except FileNotFoundError:
            raise NotFound(f"no quarantined message {spool_id}") from None
        outcome = gateway.executor.process(receipt)
        progress.clear()
        print(f"{spool_id}: {outcome.outcome.value} {outcome.reason}".rstrip())
        progress.advance()
    progress.clear()
    gateway.dispatcher.deliver_due()
    return 0


class Progress:
    """A progress bar on stderr for long runs, drawn only on a terminal."""

    WIDTH = 30

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.shown = total > 1 and sys.stderr.isatty()

    def advance(self) -> None:
        self.done += 1
        if self.shown:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            sys.stderr.write(f"\r[{bar}] {self.done}/{self.total}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * (self.WIDTH + 30) + "\r")


def run_tickets(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings, renders_mail=False)
    with reading(gateway.sessions) as session:
        tickets = session.scalars(select(Ticket).order_by(Ticket.id.desc())).all()
        rows = [ticket_summary(ticket) for ticket in tickets]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print_table(rows, ["id", "status", "priority", "requester", "created_at", "subject"])
    return 0


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    gateway = build_gateway(settings, renders_mail=False)
    detail = load_ticket_detail(gateway, args.ticket_id)
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
    else:
        print_ticket(detail)
    return 0


def load_ticket_detail(gateway: Gateway, ticket_id: int) -> dict[str, Any]:
    with reading(gateway.sessions) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket #{ticket_id}")
        return ticket_detail(ticket)
