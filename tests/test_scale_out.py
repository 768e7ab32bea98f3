"""Several gateway processes on one database, each with a data directory of its own:
every message filed once, every notification sent once, time-based work done once, and the
race for one message settled by the database's unique constraint.

The multi-process test runs real `gateway serve` processes on a real PostgreSQL server; the
others run on both databases.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session

from gateway.app import Gateway, build_gateway
from gateway.settings import Settings
from storage.models import (
    Event,
    OutboxMail,
    OutboxState,
    Participant,
    ParticipantRole,
    ReceiptOutcome,
    SharedSecret,
    StoredBlob,
    Ticket,
    TicketStatus,
)
from storage.models import Receipt as ReceiptRow
from tests.conftest import (
    SUPPORT,
    RunningGateway,
    Sink,
    run_gateway,
    serving_hosts,
    wait_until,
)
from tests.postgres import PostgresServer
from tests.schema import current_schema
from tests.test_faults import customer_mail

MESSAGES = 300
# Messages each delivered to both gateways at the same moment, as two MX hosts may.
TWINS = 20
CLIENTS = 8


# Each host listens on an address of its own, as on two machines.
HOSTS = ("127.0.0.2", "127.0.0.3")


@dataclass
class Replicas:
    """Two `gateway serve` hosts sharing a PostgreSQL database and nothing on disk."""

    ports: tuple[int, int]
    url: str
    data_dirs: tuple[Path, Path]
    sink: Sink

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return list(zip(HOSTS, self.ports, strict=True))

    def query(self, statement: Any) -> list[Any]:
        engine = create_engine(self.url)
        try:
            with Session(engine) as session:
                return list(session.execute(statement).all())
        finally:
            engine.dispose()


@pytest.fixture
def replicas(tmp_path: Path, sink: Sink, postgres: PostgresServer) -> Iterator[Replicas]:
    url = postgres.empty_database()
    try:
        with serving_hosts(
            tmp_path,
            HOSTS,
            GATEWAY_DATABASE_URL=url,
            GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
            GATEWAY_LMTP_LISTEN="off",
            GATEWAY_DELIVERY_BACKOFF_SECONDS="0.2",
        ) as processes:
            for process in processes:
                del process.env["GATEWAY_SECRET"]  # Both must find the one key the first made.
            # Both upgrade at once, as replicas started together do; one migrates, one waits.
            upgrades = [
                threading.Thread(target=run_gateway, args=(process.env, "db", "upgrade"))
                for process in processes
            ]
            for upgrade in upgrades:
                upgrade.start()
            for upgrade in upgrades:
                upgrade.join(60)
            # Started together, so both race to create the reply-token key.
            starting = [threading.Thread(target=process.start) for process in processes]
            for thread in starting:
                thread.start()
            for thread in starting:
                thread.join(60)
            first, second = processes
            data_dirs = (Path(first.env["GATEWAY_DATA_DIR"]), Path(second.env["GATEWAY_DATA_DIR"]))
            yield Replicas((first.port, second.port), url, data_dirs, sink)
    finally:
        postgres.drop(url)


def report(number: int) -> bytes:
    """A new problem report, each from a customer of its own (so no cap on automatic mail
    to one address holds an acknowledgement back)."""
    return customer_mail(number, sender=f"customer{number}@customer.example")


Address = tuple[str, int]


def send_all(jobs: list[tuple[Address, bytes]], failures: list[str]) -> None:
    """Send each (host, message) over one connection per host, as a client MTA does."""
    connections: dict[Address, smtplib.SMTP] = {}
    try:
        for address, raw in jobs:
            if address not in connections:
                connections[address] = smtplib.SMTP(*address, timeout=30)
            refused = connections[address].sendmail("client@customer.example", [SUPPORT], raw)
            if refused:
                failures.append(repr(refused))
    except smtplib.SMTPException as exc:
        failures.append(repr(exc))
    finally:
        for connection in connections.values():
            connection.quit()


def send_together(
    address: Address, raw: bytes, start: threading.Barrier, failures: list[str]
) -> None:
    start.wait()
    send_all([(address, raw)], failures)


def send_twins(numbers: range, addresses: list[Address], failures: list[str]) -> None:
    """Each message to both gateways, the two sends released together."""
    for number in numbers:
        start = threading.Barrier(2)
        pair = [
            threading.Thread(target=send_together, args=(address, report(number), start, failures))
            for address in addresses
        ]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join(60)


@pytest.mark.postgres
def test_two_gateways_on_one_database_file_each_message_once_and_mail_each_notice_once(
    replicas: Replicas,
) -> None:
    failures: list[str] = []
    jobs = [(replicas.addresses[number % 2], report(number)) for number in range(MESSAGES)]
    clients = [
        threading.Thread(target=send_all, args=(jobs[i::CLIENTS], failures)) for i in range(CLIENTS)
    ]
    clients.append(
        threading.Thread(
            target=send_twins,
            args=(range(MESSAGES, MESSAGES + TWINS), replicas.addresses, failures),
        )
    )
    started = time.monotonic()
    for client in clients:
        client.start()
    for client in clients:
        client.join(180)
    assert not failures, failures
    total = MESSAGES + TWINS

    def tickets() -> int:
        return int(replicas.query(select(func.count()).select_from(Ticket))[0][0])

    wait_until(
        lambda: tickets() >= total and len(replicas.sink.received) >= total,
        120,
        f"{total} tickets and acknowledgements",
    )
    time.sleep(1.0)  # Anything sent twice would arrive now.
    seconds = time.monotonic() - started

    subjects = Counter(subject for (subject,) in replicas.query(select(Ticket.subject)))
    assert subjects == Counter({f"Fault case {n:04d}": 1 for n in range(total)})
    numbers = sorted(number for (number,) in replicas.query(select(Ticket.id)))
    assert len(set(numbers)) == total and numbers[-1] < 2 * total, numbers[-10:]
    outcomes = Counter(outcome for (outcome,) in replicas.query(select(ReceiptRow.outcome)))
    assert outcomes == {ReceiptOutcome.NEW_TICKET: total, ReceiptOutcome.DUPLICATE: TWINS}
    # One acknowledgement per customer message, whichever gateway sent it.
    answered = Counter(str(mail.message["In-Reply-To"]) for mail in replicas.sink.received)
    assert answered == Counter({f"<fault-{n}@customer.example>": 1 for n in range(total)})
    states = Counter(state for (state,) in replicas.query(select(OutboxMail.state)))
    assert states == {OutboxState.SENT: total}
    assert_nothing_shared_on_disk(replicas, total)
    assert_reply_tokens_work_on_either_gateway(replicas)
    print(
        f"\ntwo gateways: {MESSAGES} messages split between them and {TWINS} sent to both: "
        f"{total} tickets, {outcomes[ReceiptOutcome.DUPLICATE]} duplicates, "
        f"{len(replicas.sink.received)} acknowledgements in {seconds:.1f}s"
    )


def token_only_reply(customer: str, reply_to: str, number: int) -> bytes:
    """A reply that only its reply token can thread: no In-Reply-To, no subject tag."""
    return (
        f"From: {customer}\r\nTo: {reply_to}\r\nSubject: still broken\r\n"
        f"Message-ID: <token-reply-{number}@customer.example>\r\n\r\n"
        "Still crashes after the update.\r\n"
    ).encode()


def assert_reply_tokens_work_on_either_gateway(replicas: Replicas) -> None:
    """Both gateways made one key file between them, so a token one of them mailed is
    good at the other."""
    acknowledgements = replicas.sink.received[:10]
    for number, mail in enumerate(acknowledgements):
        reply_to = str(mail.message["Reply-To"].addresses[0].addr_spec)
        [customer] = mail.recipients
        with smtplib.SMTP(*replicas.addresses[number % 2], timeout=30) as client:
            client.sendmail(customer, [reply_to], token_only_reply(customer, reply_to, number))

    def replies() -> list[Any]:
        return replicas.query(
            select(ReceiptRow.outcome, ReceiptRow.reason).where(
                ReceiptRow.outcome == ReceiptOutcome.REPLY
            )
        )

    wait_until(lambda: len(replies()) >= len(acknowledgements), 30, "the token replies")
    assert {tuple(row) for row in replies()} == {(ReceiptOutcome.REPLY, "threaded by token")}
    secrets = replicas.query(select(SharedSecret.name))
    assert len(secrets) == 1, "both gateways sign with the one key the first of them made"


def assert_nothing_shared_on_disk(replicas: Replicas, messages: int) -> None:
    """Each host's spool is empty and keeps nothing else: every raw message is in the
    database, once per SHA-256 (a message sent to both hosts is one blob)."""
    for data_dir in replicas.data_dirs:
        assert not list((data_dir / "spool" / "quarantine").iterdir())
        assert not list((data_dir / "spool" / "queue").iterdir())
        assert not (data_dir / "blobs").exists() and not (data_dir / "secret.key").exists()
    [(blobs,)] = replicas.query(select(func.count()).select_from(StoredBlob))
    assert blobs == messages


# -- in one process, two gateways' stages: the races made to happen ----------------------------


@pytest.fixture
def two_gateways(settings: Settings) -> Iterator[tuple[Gateway, Gateway]]:
    """Two sets of stages, each with its own engine and data directory, on one database."""
    settings = settings.changed(relay=None)
    current_schema(settings.effective_database_url)
    other_host = settings.changed(
        data_dir=settings.data_dir.parent / "host-2",
        database_url=settings.effective_database_url,
    )
    first, second = build_gateway(settings), build_gateway(other_host)
    yield first, second
    first.engine.dispose()
    second.engine.dispose()


def hold_commit_until_the_other_begins(first: Gateway, second: Gateway) -> threading.Event:
    """Make `first`'s filing transactions wait at commit until `second` has begun filing
    and had half a second to reach its insert: the window a read-then-write check misses.
    (Filing is what reads the receipts; keeping a blob is a transaction of its own. On
    SQLite filing begins with BEGIN IMMEDIATE, which waits there for the first's commit: one
    writer at a time settles the race before the unique constraint does.) The event returned
    is set once a commit was held so: without it the two did not overlap."""
    second_began, held = threading.Event(), threading.Event()

    @event.listens_for(second.engine, "before_cursor_execute")
    def began(connection: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "receipts" in statement or statement.startswith("BEGIN"):
            second_began.set()

    @event.listens_for(first.engine, "before_cursor_execute")
    def filing(connection: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if "receipts" in statement:
            connection.info["filing"] = True

    @event.listens_for(first.engine, "commit")
    def committing(connection: Any) -> None:
        if connection.info.pop("filing", False) and second_began.wait(5):
            time.sleep(0.5)
            held.set()

    return held


def test_one_message_filed_by_two_gateways_at_once_makes_one_ticket(
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    first, second = two_gateways
    raw = customer_mail(1)
    # The message arrived twice (two MX hosts), so it has two queue entries.
    receipts = [
        gateway.spool.accept(raw, "alice@customer.example", [SUPPORT], "smtp")
        for gateway in (first, second)
    ]
    held = hold_commit_until_the_other_begins(first, second)
    outcomes: dict[str, Any] = {}

    def file(gateway: Gateway, name: str, receipt: Any) -> None:
        for _ in range(20):  # Waits in the spool while the database is busy, as drain does.
            try:
                outcomes[name] = gateway.executor.process(receipt)
                return
            except Exception as exc:  # DatabaseUnavailable: SQLite's snapshot went stale.
                outcomes[name] = exc
                time.sleep(0.1)

    workers = [
        threading.Thread(target=file, args=(first, "first", receipts[0])),
        threading.Thread(target=file, args=(second, "second", receipts[1])),
    ]
    workers[0].start()
    time.sleep(0.2)  # The first is inside its transaction when the second starts.
    workers[1].start()
    for worker in workers:
        worker.join(30)

    assert held.is_set(), "the first gateway's commit was never held for the second"
    assert outcomes["first"].outcome is ReceiptOutcome.NEW_TICKET, outcomes
    assert outcomes["second"].outcome is ReceiptOutcome.DUPLICATE, outcomes
    assert outcomes["second"].ticket_id == outcomes["first"].ticket_id
    with first.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(OutboxMail)) == 1
    assert not first.spool.pending()
    assert not first.spool.quarantined()


def resolved_tickets(gateway: Gateway, count: int, resolved_at: datetime) -> list[int]:
    with gateway.sessions.begin() as session:
        tickets = [
            Ticket(
                status=TicketStatus.RESOLVED,
                subject=f"Crash {n}",
                requester=f"customer{n}@customer.example",
                status_changed_at=resolved_at,
                created_at=resolved_at,
                updated_at=resolved_at,
            )
            for n in range(count)
        ]
        session.add_all(tickets)
        session.flush()
        session.add_all(
            Participant(
                ticket_id=ticket.id, address=ticket.requester, role=ParticipantRole.REQUESTER
            )
            for ticket in tickets
        )
        return [ticket.id for ticket in tickets]


def test_auto_close_run_by_two_gateways_at_once_closes_each_ticket_once(
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    first, second = two_gateways
    now = datetime.now(UTC)
    ids = resolved_tickets(first, 30, now - timedelta(days=8))
    start = threading.Barrier(2)
    closed: dict[str, list[int]] = {}

    def run(gateway: Gateway, name: str) -> None:
        start.wait()
        closed[name] = []
        # A round ends early when the database is busy (SQLite: the other's write made this
        # one's snapshot stale); the next round does the rest, as the worker's timer does.
        for _ in range(20):
            if not (done := gateway.timers.run_due()) and not gateway.timers.overdue(now):
                return
            closed[name] += done

    workers = [
        threading.Thread(target=run, args=(gateway, name))
        for gateway, name in ((first, "first"), (second, "second"))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert sorted(closed["first"] + closed["second"]) == ids
    with first.sessions() as session:
        events = Counter(
            session.scalars(select(Event.ticket_id).where(Event.type == "auto_closed")).all()
        )
        notices = Counter(session.scalars(select(OutboxMail.ticket_id)).all())
        statuses = set(session.scalars(select(Ticket.status)).all())
    assert events == Counter(ids)
    assert notices == Counter(ids)
    assert statuses == {TicketStatus.CLOSED}


def test_two_worker_processes_beside_one_listener_file_each_message_once(
    make_gateway: Callable[..., RunningGateway],
    sink: Sink,
) -> None:
    gateway = make_gateway(workers=2)
    for number in range(40):
        gateway.send(report(number))
    sink.wait_for(40, timeout=30)
    gateway.wait_idle()
    outcomes = Counter(receipt.outcome for receipt in gateway.receipts())
    assert outcomes == {ReceiptOutcome.NEW_TICKET: 40}
    assert sorted(ticket.subject for ticket in gateway.tickets()) == [
        f"Fault case {n:04d}" for n in range(40)
    ]
    answered = Counter(str(mail.message["In-Reply-To"]) for mail in sink.received)
    assert answered == Counter({f"<fault-{n}@customer.example>": 1 for n in range(40)})
