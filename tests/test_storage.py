"""The column types keep what PostgreSQL refuses out of every insert and comparison, on
both databases alike, whatever the stage above them let through."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Direction, Event, EventKind, Message, Ticket, TicketStatus
from storage.session import make_engine, upgrade_schema


def test_nul_surrogates_and_overlong_values_are_stored_and_found_again(
    tmp_path: Path, database_url: str
) -> None:
    url = database_url or f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade_schema(url)
    engine = make_engine(url)
    long_id = "é" * 1500 + "@customer.example"  # 3,000 bytes: over the B-tree entry limit
    try:
        with Session(engine) as session, session.begin():
            now = datetime.now(UTC)
            ticket = Ticket(
                status=TicketStatus.NEW,
                subject="s" * 2000,
                requester="alice@customer.example",
                status_changed_at=now,
                created_at=now,
                updated_at=now,
            )
            session.add_all(
                [
                    ticket,
                    Message(
                        ticket=ticket,
                        direction=Direction.IN,
                        message_id=long_id,
                        from_address="alice@customer.example",
                        text="nul \x00 here",
                        created_at=now,
                    ),
                    Event(
                        ticket=ticket,
                        type=EventKind.NOTE_ADDED,
                        actor="a" * 400,
                        at=now,
                        detail="undecoded \udcff byte",
                    ),
                ]
            )
        with Session(engine) as session:
            found = session.scalars(select(Message).where(Message.message_id == long_id)).one()
            stored = session.scalars(select(Ticket)).one()
            event = session.scalars(select(Event)).one()
            assert found.text == "nul  here"
            assert len(found.message_id.encode()) <= 2000
            assert len(stored.subject) == 998
            assert (len(event.actor), event.detail) == (320, "undecoded \ufffd byte")
    finally:
        engine.dispose()
