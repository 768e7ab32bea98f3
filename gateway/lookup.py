"""The commands that read what the gateway holds, for operators: tickets (filtered), one
ticket's conversation and trail, a stored file by its SHA-256 or a unique prefix of it,
and the quarantine, which `replay` runs through the pipeline again.

They open the data the settings name and no other: run from a directory with no database,
they say which data dir and database they looked at (`open_existing`) instead of creating
an empty one there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import make_url

from gateway.app import Gateway, build_gateway
from gateway.database import check_database_url, database_errors, reading
from gateway.display import (
    clock_detail,
    minute,
    print_table,
    print_ticket,
    shorten,
    ticket_detail,
    ticket_summary,
)
from gateway.errors import CannotCreate, ConfigError, NotFound, UsageError
from gateway.parsing import read_headline
from gateway.receipts import Outcome
from gateway.settings import Settings
from gateway.spool import Receipt
from gateway.workflow.service import clocks_of, read_history
from storage.blobs import BlobStore, write_durably
from storage.models import ParticipantRole, ReceiptOutcome, Ticket, TicketStatus
from storage.session import make_engine, schema_revisions

# What `--assignee` takes for tickets nobody is assigned to.
UNASSIGNED = "none"


def open_existing(settings: Settings, renders_mail: bool = True) -> Gateway:
    """The gateway over the database the settings name; `ConfigError` naming the data dir
    and the database when no schema is there (a command run from another directory)."""
    url = settings.effective_database_url
    check_data_dir_could_be_made(settings)
    check_database_url(url)
    if not has_schema(url):
        raise ConfigError(
            f"no database at {database_place(url)} (data dir {settings.data_dir.resolve()}); "
            "run `gateway db upgrade` or set GATEWAY_DATA_DIR"
        )
    return build_gateway(settings, renders_mail=renders_mail)


def check_data_dir_could_be_made(settings: Settings) -> None:
    """`CannotCreate` when the data directory neither is one nor could be made: a file
    in its place or on its way (read-only commands create nothing, but say why)."""
    path = settings.data_dir
    blocking = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise CannotCreate(
            f"GATEWAY_DATA_DIR: cannot create or write to {path}: {blocking} is not a directory"
        )


def has_schema(url: str) -> bool:
    """Whether the database at `url` exists with a schema; a missing SQLite file is not
    created by asking."""
    database = make_url(url).database
    if url.startswith("sqlite") and database and not Path(database).exists():
        return False
    engine = make_engine(url)
    try:
        with database_errors():
            current, _newest = schema_revisions(engine)
    finally:
        engine.dispose()
    return current is not None


def database_place(url: str) -> str:
    """Where the database is, as an operator finds it: a SQLite file's full path, else the
    URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).resolve())
    return parsed.render_as_string(hide_password=True)


def run_tickets(settings: Settings, args: argparse.Namespace) -> int:
    gateway = open_existing(settings, renders_mail=False)
    with reading(gateway.sessions) as session:
        tickets = session.scalars(ticket_query(args)).all()
        rows = [ticket_summary(ticket) for ticket in tickets]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print_table(
        rows, ["id", "status", "priority", "assignee", "requester", "created_at", "subject"]
    )
    return 0


def ticket_query(args: argparse.Namespace) -> Select[Ticket]:
    """Newest first, narrowed by `--status`, `--assignee`, `--requester`, `--limit`."""
    query = select(Ticket).order_by(Ticket.id.desc())
    if args.status:
        query = query.where(Ticket.status == TicketStatus(args.status))
    if args.assignee == UNASSIGNED:
        query = query.where(Ticket.assignee.is_(None))
    elif args.assignee:
        query = query.where(Ticket.assignee == args.assignee.lower())
    if args.requester:
        query = query.where(Ticket.requester == args.requester.lower())
    return query.limit(args.limit) if args.limit else query


def run_show(settings: Settings, args: argparse.Namespace) -> int:
    gateway = open_existing(settings, renders_mail=False)
    detail = load_ticket_detail(gateway, args.ticket_id, settings)
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
    else:
        print_ticket(detail, full=args.full)
    return 0


def load_ticket_detail(gateway: Gateway, ticket_id: int, settings: Settings) -> dict[str, Any]:
    """The ticket as `show` prints it, its service-level clocks as of the gateway's clock."""
    with reading(gateway.sessions) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"no ticket #{ticket_id}")
        history, _ = read_history(session, ticket_id)
        clocks = clocks_of(history, ticket, settings.service) if history else ()
        now = gateway.clock.now()
        return ticket_detail(ticket, settings.intake) | {
            "status_url": requester_link(gateway, ticket),
            "priority_reason": ticket.priority_reason,
            "sla": {clock.name: clock_detail(clock, now) for clock in clocks},
        }


def requester_link(gateway: Gateway, ticket: Ticket) -> str:
    """The requester's own link to the ticket's status page ("" with no web service)."""
    sender = gateway.executor.pipeline.notifier.sender
    requester = next(
        (p for p in ticket.participants if p.role is ParticipantRole.REQUESTER),
        None,
    )
    return sender.status_url(ticket, requester) if requester is not None else ""


def run_attachment(settings: Settings, args: argparse.Namespace) -> int:
    gateway = open_existing(settings, renders_mail=False)
    digest = stored_digest(gateway, args.sha256.strip().lower())
    pieces = stored_pieces(gateway.blobs, digest)
    if args.output is None:
        sys.stdout.buffer.writelines(pieces)
    else:
        write_whole(Path(args.output), pieces)
    return 0


def stored_pieces(blobs: BlobStore, digest: str) -> Iterator[bytes]:
    """The stored file a chunk at a time; `NotFound` when part of it is missing."""
    try:
        yield from blobs.chunks(digest)
    except FileNotFoundError as exc:
        # The database store says which chunk is missing; the folder, that the file is.
        detail = str(exc) if exc.strerror is None else f"{digest}: {exc.strerror}"
        raise NotFound(f"cannot read the stored file: {detail}") from None


def write_whole(path: Path, pieces: Iterator[bytes]) -> None:
    """Write `pieces` to `path` whole or not at all: into a temporary file beside it, renamed
    over it once complete. A device or a pipe (`-o /dev/stdout`) is written to as it is."""
    if path.exists() and not path.is_file():
        with path.open("wb") as output:
            output.writelines(pieces)
        return
    write_durably(path.resolve(), pieces)


def stored_digest(gateway: Gateway, prefix: str) -> str:
    """The one stored file's SHA-256 that begins with `prefix` (as `show` prints it)."""
    try:
        found = gateway.blobs.starting_with(prefix.rstrip("…"))
    except ValueError:
        raise UsageError(f"not a SHA-256 or a prefix of one: {prefix!r}") from None
    if not found:
        raise NotFound(f"no stored attachment or raw message {prefix}")
    if len(found) > 1:
        shown = ", ".join(digest[:16] for digest in found[:5])
        raise UsageError(
            f"{prefix} is the start of {len(found)} stored files ({shown}…): give more digits"
        )
    return found[0]


def run_quarantine(settings: Settings, args: argparse.Namespace) -> int:
    gateway = open_existing(settings, renders_mail=False)
    entries = [
        quarantine_entry(gateway, receipt, reason)
        for receipt, reason in gateway.spool.quarantined()
    ]
    if args.json:
        print(json.dumps(entries, ensure_ascii=False, indent=2))
    elif not entries:
        print("the quarantine is empty")
    else:
        for entry in entries:
            print(quarantine_line(entry))
    return 0


def quarantine_line(entry: dict[str, Any]) -> str:
    subject = shorten(entry["subject"], 50) if entry["subject"] else "(no subject)"
    return (
        f"{entry['spool_id']}  {minute(entry['received_at'])}  {entry['sender'] or '-'}  "
        f"“{subject}”  {entry['reason']}"
    )


def quarantine_entry(gateway: Gateway, receipt: Receipt, reason: str) -> dict[str, Any]:
    """A quarantined message as the listing shows it: who sent it, about what, and why it
    could not be filed; the envelope sender stands in for a From it lacks."""
    try:
        sender, subject = read_headline(gateway.spool.raw(receipt))
    except FileNotFoundError:
        sender, subject = "", ""
    return {
        "spool_id": receipt.spool_id,
        "received_at": receipt.received_at.isoformat(),
        "sender": sender or receipt.mail_from or "",
        "subject": subject,
        "reason": reason,
        "raw_sha256": receipt.raw_sha256,
    }


def run_replay(settings: Settings, args: argparse.Namespace) -> int:
    if bool(args.spool_ids) == args.all:
        raise UsageError("replay: name SPOOL_IDs (see `gateway quarantine`) or give --all")
    gateway = open_existing(settings)
    wanted = args.spool_ids or [receipt.spool_id for receipt, _ in gateway.spool.quarantined()]
    progress = Progress(len(wanted))
    again = 0
    for spool_id in wanted:
        try:
            receipt = gateway.spool.replay(spool_id)
        except FileNotFoundError:
            raise NotFound(f"no quarantined message {spool_id}") from None
        outcome = gateway.executor.process(receipt)
        again += outcome.outcome is ReceiptOutcome.QUARANTINED
        progress.clear()
        print(outcome_line(outcome))
        progress.advance()
    progress.clear()
    gateway.dispatcher.deliver_due()
    if again:
        print(
            f"gateway: {again} of {len(wanted)} replayed message(s) quarantined again; "
            "see `gateway quarantine`",
            file=sys.stderr,
        )
    return 1 if again else 0


def outcome_line(outcome: Outcome) -> str:
    """What became of one message, with the ticket it made or joined."""
    ticket = f" ticket #{outcome.ticket_id}" if outcome.ticket_id else ""
    return f"{outcome.spool_id}: {outcome.outcome.value}{ticket} {outcome.reason}".rstrip()


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
