"""How much CPU one `gateway due` round takes with many open tickets.

Writes N open tickets (default 100,000) straight into a fresh SQLite database (or the
PostgreSQL one `--database-url` names), each with a created event and its service-level
clocks as the gateway keeps them, their next checks spread over the coming weeks, and
`--due` of them (default 50) with a warning due now. Then runs the timers' round as
`gateway due` does and prints the process CPU time and the wall time of the round, and what
it did. The target: under one second of CPU for 100,000 open tickets.

    .venv/bin/python bench/due.py --tickets 100000 --due 50
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from gateway.app import build_gateway  # noqa: E402
from gateway.clock import Clock  # noqa: E402
from gateway.setting_values import Engineer  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from storage.models import Event, EventKind, Priority, Ticket, TicketStatus  # noqa: E402
from storage.session import upgrade_schema  # noqa: E402

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # Mon 13:00 Shanghai
BATCH = 5_000


def ticket_rows(count: int, due: int, seed: int) -> list[dict[str, object]]:
    """Open tickets created over the last weeks; `due` of them with a check due now."""
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        created = NOW - timedelta(minutes=rng.randrange(1, 60 * 24 * 20))
        check = (
            NOW - timedelta(seconds=1)
            if number < due
            else NOW + timedelta(minutes=rng.randrange(1, 60 * 24 * 30))
        )
        rows.append(
            {
                "status": rng.choice((TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.WAITING)),
                "priority": rng.choice(list(Priority)),
                "subject": f"Ticket {number}",
                "requester": f"customer{number}@example.org",
                "status_changed_at": created,
                "created_at": created,
                "updated_at": created,
                "response_due": check,
                "service_check_at": check,
            }
        )
    return rows


def fill(settings: Settings, count: int, due: int) -> None:
    gateway = build_gateway(settings, Clock.at(NOW))
    rows = ticket_rows(count, due, seed=7)
    with gateway.sessions.begin() as session:
        for start in range(0, count, BATCH):
            batch = rows[start : start + BATCH]
            ids = session.scalars(insert(Ticket).returning(Ticket.id), batch).all()
            events = [
                {
                    "ticket_id": ticket_id,
                    "type": EventKind.CREATED,
                    "at": row["created_at"],
                    "actor": row["requester"],
                    "to_status": TicketStatus.NEW,
                    "detail": "",
                }
                for ticket_id, row in zip(ids, batch, strict=True)
            ]
            session.execute(insert(Event), events)
    gateway.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=50)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings().changed(
            data_dir=Path(folder),
            database_url=args.database_url,
            secret="bench",
            engineers=(Engineer("eng1@example.com"), Engineer("eng2@example.com", "L2")),
        )
        upgrade_schema(settings.effective_database_url)
        started = time.perf_counter()
        fill(settings, args.tickets, args.due)
        print(f"{args.tickets} open tickets written in {time.perf_counter() - started:.1f} s")
        gateway = build_gateway(settings, Clock.at(NOW))
        cpu, wall = time.process_time(), time.perf_counter()
        gateway.timers.run_due()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        work = gateway.timers.deadline_work
        print(
            f"due round: {cpu:.3f} s CPU, {wall:.3f} s wall; "
            f"{work.warnings} warnings, {work.breaches} breaches, {work.digests} digests"
        )
        cpu = time.process_time()
        gateway.timers.run_due()
        print(f"next round, nothing due: {time.process_time() - cpu:.3f} s CPU")
        gateway.engine.dispose()


if __name__ == "__main__":
    main()
