"""The executor only makes filing faster: with batches, savepoints and parsing ahead turned
off, the corpus makes the same tickets, mail and events, and the same receipts."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from gateway.errors import MessageRefused
from gateway.parse_ahead import ParserProcess
from storage.models import Event, Message, OutboxMail, Participant, Receipt, Ticket
from tests.conftest import ENGINEERS, SUPPORT, DirectGateway
from tests.test_corpus import Entry, load_manifest

# Filed twice over: once on SQLite is enough to compare the two ways.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SENDER = "corpus-sender@customer.example"
SPOOL_ID = re.compile(r"\b[0-9a-f]{16}-[0-9a-f]{12}-[0-9a-f]{6}\b")


def spool_corpus(direct: DirectGateway, entries: list[Entry]) -> int:
    """Every message of the corpus in the spool, in path order, none filed yet."""
    spooled = 0
    for entry in entries:
        try:
            direct.gateway.spool.accept(entry.raw, SENDER, [SUPPORT], "smtp")
            spooled += 1
        except MessageRefused:
            continue
    return spooled


def what_was_made(direct: DirectGateway) -> dict[str, list[Any]]:
    """Tickets, participants, messages, events, mail and receipts, without what differs by
    chance between two runs (Message-IDs and MIME boundaries of our mail, spool ids, times)."""
    with direct.session() as session:

        def rows(model: Any, *columns: Any) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in session.execute(select(*columns).order_by(model.id))]

        made = {
            "tickets": rows(
                Ticket,
                Ticket.id,
                Ticket.status,
                Ticket.priority,
                Ticket.subject,
                Ticket.requester,
                Ticket.requester_name,
                Ticket.language,
                Ticket.assignee,
                Ticket.tier,
                Ticket.reopen_count,
                Ticket.follow_up_of,
            ),
            "participants": rows(
                Participant, Participant.ticket_id, Participant.address, Participant.role
            ),
            "messages": rows(
                Message,
                Message.ticket_id,
                Message.direction,
                Message.from_address,
                Message.to_addresses,
                Message.subject,
                Message.text,
                Message.raw_sha256,
                Message.automatic,
                Message.internal,
            ),
            "events": rows(
                Event,
                Event.ticket_id,
                Event.type,
                Event.actor,
                Event.from_status,
                Event.to_status,
                Event.detail,
            ),
            "mail": [mail_summary(content) for (content,) in rows(OutboxMail, OutboxMail.content)],
            # In spool order: a batch records its quarantined messages after it commits.
            "receipts": [
                (outcome, SPOOL_ID.sub("<spool id>", reason), ticket_id)
                for outcome, reason, ticket_id in session.execute(
                    select(Receipt.outcome, Receipt.reason, Receipt.ticket_id).order_by(
                        Receipt.spool_id
                    )
                )
            ],
        }
    return made


def mail_summary(content: bytes) -> tuple[str, ...]:
    mail = email.message_from_bytes(content, policy=email.policy.default)
    body = mail.get_body(("plain",))
    text = body.get_content() if body is not None else ""  # type: ignore[attr-defined]
    return (
        str(mail["To"]),
        str(mail["Reply-To"]),
        str(mail["Subject"]),
        str(mail["Auto-Submitted"]),
        str(text),
        ",".join(str(part.get_filename()) for part in mail.iter_attachments()),
    )


def test_filing_one_by_one_makes_what_batches_make(
    make_direct_gateway: Callable[..., DirectGateway],
) -> None:
    entries = [entry for entry in load_manifest() if entry.kind == "message"]
    batched = make_direct_gateway(engineers=ENGINEERS)
    one_by_one = make_direct_gateway(
        engineers=ENGINEERS,
        batch_filing=False,
        data_dir=batched.settings.data_dir.parent / "one-by-one",
    )
    assert spool_corpus(batched, entries) == spool_corpus(one_by_one, entries) > 300

    parser = ParserProcess(batched.gateway.spool, batched.settings.limits)
    try:
        batched_outcomes = batched.gateway.executor.drain(parser)
    finally:
        parser.close()
    single_outcomes = one_by_one.gateway.executor.drain()

    assert len(batched_outcomes) == len(single_outcomes) > 300
    assert [(o.outcome, o.ticket_id) for o in batched_outcomes] == [
        (o.outcome, o.ticket_id) for o in single_outcomes
    ]
    made, made_alone = what_was_made(batched), what_was_made(one_by_one)
    assert made.keys() == made_alone.keys()
    for kind in made:
        assert made[kind] == made_alone[kind], kind
    assert len(made["tickets"]) > 100 and len(made["mail"]) > 100
