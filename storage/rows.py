"""The writes that bypass the unit of work (plain inserts and deletes), and every hand on
the session's identity map, each behind a named function.

The unit of work's flush does more than the INSERT itself for each new object: it sorts the
session's changes, orders the mappers and syncs foreign keys row by row. A new ticket's rows
only depend on each other, and a queued mail's and a receipt's rows are never read back as
objects while a message is filed, so they are written with plain statements
(`bench/README.md` has what that saves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, bindparam, delete, func, insert, inspect, select, update
from sqlalchemy.orm import Mapper, RelationshipDirection, Session, make_transient_to_detached

from storage.models import (
    AddressHold,
    Base,
    Direction,
    Event,
    Message,
    OutboxMail,
    OutboxState,
    ReceiptOutcome,
    Ticket,
    TicketFact,
)
from storage.models import Receipt as ReceiptTable

# Statements built once: making one costs more than running it.
STORE_OUTGOING = insert(Base.metadata.tables["messages"]).returning(Message.id)
QUEUE_OUTBOX = insert(Base.metadata.tables["outbox"])
RECORD_RECEIPT = insert(Base.metadata.tables["receipts"]).returning(
    Base.metadata.tables["receipts"].c.id
)
# What the loop protection needs to know about one address, in one round trip: a hold on
# it, and the automatic mail (every kind but `not_counted`) it got on this ticket and in
# the last hour.
_HELD = (AddressHold.address == bindparam("address")) & (AddressHold.until > bindparam("now"))
_COUNTED = (OutboxMail.recipient == bindparam("address")) & (
    OutboxMail.kind != bindparam("not_counted")
)
MAIL_ALLOWANCE = select(
    select(AddressHold.reason).where(_HELD).limit(1).scalar_subquery(),
    select(AddressHold.until).where(_HELD).limit(1).scalar_subquery(),
    select(func.count())
    .where(_COUNTED, OutboxMail.ticket_id == bindparam("ticket_id"))
    .scalar_subquery(),
    select(func.count())
    .where(_COUNTED, OutboxMail.created_at > bindparam("since"))
    .scalar_subquery(),
)
# When a notice of one kind last went to one address (RFC 3834 limits acknowledgements).
LAST_MAIL_OF_KIND = select(func.max(OutboxMail.created_at)).where(
    OutboxMail.recipient == bindparam("address"),
    OutboxMail.created_at > bindparam("since"),
    OutboxMail.kind == bindparam("kind"),
)


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered mail to one recipient: its message on the ticket and its outbox row."""

    message_id: str
    from_address: str
    from_name: str
    recipient: str
    subject: str
    text: str
    # To an engineer: never shown to the customer.
    internal: bool
    content: bytes
    created_at: datetime
    # Which notice it is ("acknowledgement", ...).
    kind: str = ""
    # Why the mail cannot be sent (a bug of ours): it is kept as failed, never tried.
    failed_because: str = ""
    # Written by the gateway itself, not a person's words relayed.
    automatic: bool = True


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """The receipt row of one spooled message: what became of it."""

    spool_id: str
    raw_sha256: str
    dedupe_key: str | None
    source: str
    mail_from: str
    recipients: str
    received_at: datetime
    processed_at: datetime
    outcome: ReceiptOutcome
    reason: str
    ticket_id: int | None
    message_pk: int | None


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the loop protection knows of one address now."""

    held_because: str | None
    held_until: datetime | None
    on_ticket: int
    last_hour: int


def add_new_ticket(session: Session, ticket: Ticket, *rows: Base) -> None:
    """Insert a new ticket and its first rows (each after the ones it points to), as if
    they had been loaded: the session tracks later changes to them as usual."""
    insert_as_loaded(session, ticket, *rows)


def assign_ids(session: Session) -> None:
    """Write pending changes, so new rows have their ids (ticket numbers, reply tokens)."""
    session.flush()


def forget_rolled_back(session: Session) -> None:
    """Let go of every object after a savepoint was rolled back.

    A savepoint takes back the rows `insert_as_loaded` wrote but leaves their objects in
    the session, which only forgets objects its own flush inserted; the next row to get
    the same key could not be attached. Everything the session holds is flushed, so
    letting go of all of it loses nothing."""
    session.expunge_all()


def queue_mail(session: Session, ticket: Ticket, mail: OutgoingMail) -> int:
    """Store `mail` as an outgoing message of `ticket` and queue it for delivery; the
    message's row id."""
    session.flush()  # The ticket they point to must exist first.
    connection = session.connection()
    message_pk: int = connection.execute(
        STORE_OUTGOING,
        {
            "ticket_id": ticket.id,
            "direction": Direction.OUT,
            "message_id": mail.message_id,
            "from_address": mail.from_address,
            "from_name": mail.from_name,
            "to_addresses": mail.recipient,
            "subject": mail.subject,
            "text": mail.text,
            "raw_sha256": None,
            "automatic": mail.automatic,
            "internal": mail.internal,
            "created_at": mail.created_at,
        },
    ).scalar_one()
    connection.execute(QUEUE_OUTBOX, outbox_row(mail, ticket.id, message_pk))
    # The ticket's loaded messages no longer list all its mail: threading reads them.
    session.expire(ticket, ["messages"])
    return message_pk


def queue_unticketed(session: Session, mail: OutgoingMail) -> None:
    """Queue `mail`, which is about no ticket (a digest to the operators): an outbox row
    only, with no message on any ticket."""
    session.connection().execute(QUEUE_OUTBOX, outbox_row(mail, None, None))


def outbox_row(mail: OutgoingMail, ticket_id: int | None, message_pk: int | None) -> dict[str, Any]:
    """The outbox row of `mail`, of the ticket and outgoing message it belongs to (none
    for mail about no ticket): due now, or failed already when it cannot go."""
    return {
        "ticket_id": ticket_id,
        "message_pk": message_pk,
        "mail_from": mail.from_address,
        "recipient": mail.recipient,
        "kind": mail.kind,
        "content": mail.content,
        "state": OutboxState.FAILED if mail.failed_because else OutboxState.PENDING,
        "attempts": 0,
        "next_attempt_at": mail.created_at,
        "last_error": mail.failed_because,
        "created_at": mail.created_at,
        "sent_at": None,
    }


def record_receipt(session: Session, record: ReceiptRecord) -> int:
    """Write the receipt row; its id. The ticket and message it points to must be written
    already (`assign_ids`)."""
    values = {name: getattr(record, name) for name in ReceiptRecord.__dataclass_fields__}
    row_id: int = session.connection().execute(RECORD_RECEIPT, values).scalar_one()
    return row_id


def forget_receipt(session: Session, receipt_id: int) -> None:
    """Delete a receipt row: a message replayed from quarantine is filed afresh."""
    session.execute(delete(ReceiptTable).where(ReceiptTable.id == receipt_id))


def forget_receipts_of(session: Session, spool_id: str) -> None:
    """Delete the receipt rows of one spool entry, before it is recorded again."""
    session.execute(delete(ReceiptTable).where(ReceiptTable.spool_id == spool_id))


def mail_allowance(
    session: Session, address: str, ticket_id: int, now: datetime, not_counted: str
) -> Allowance:
    """A hold on `address`, and how much mail it got on the ticket and lately, not counting
    mail of the kind `not_counted`."""
    # Run on the connection: it reads plain columns, so the ORM's execution path would
    # only add cost; the outbox rows it counts are written the same way.
    session.flush()
    row = (
        session.connection()
        .execute(
            MAIL_ALLOWANCE,
            {
                "address": address,
                "now": now,
                "ticket_id": ticket_id,
                "since": now - timedelta(hours=1),
                "not_counted": not_counted,
            },
        )
        .one()
    )
    return Allowance(*row)


def move_trail(session: Session, merged: Ticket, survivor: Ticket) -> None:
    """Move every message (with its attachments) and event of `merged` to `survivor` (each
    event remembering the ticket it happened on), and the facts `survivor` does not know
    yet, with their history."""
    session.flush()
    session.execute(
        update(Message)
        .where(Message.ticket_id == merged.id)
        .values(ticket_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Event)
        .where(Event.ticket_id == merged.id)
        .values(ticket_id=survivor.id, moved_from=func.coalesce(Event.moved_from, merged.id))
        .execution_options(synchronize_session=False)
    )
    known = select(TicketFact.name).where(TicketFact.ticket_id == survivor.id)
    session.execute(
        update(TicketFact)
        .where(TicketFact.ticket_id == merged.id, TicketFact.name.not_in(known))
        .values(ticket_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    # Loaded rows still name the old ticket: read them again when next asked.
    session.expire_all()


def last_mail_of_kind(
    session: Session, address: str, kind: str, since: datetime
) -> datetime | None:
    """When the latest notice of `kind` was queued for `address` after `since`, if one was."""
    session.flush()  # Run on the connection, as `mail_allowance` is, for the same reason.
    parameters = {"address": address, "kind": kind, "since": since}
    latest: datetime | None = session.connection().execute(LAST_MAIL_OF_KIND, parameters).scalar()
    return latest


@dataclass(frozen=True, slots=True)
class InsertPlan:
    """What inserting one mapped class takes, worked out once per class, not per row."""

    # INSERT ... RETURNING every mapped column, in the order of `attributes`.
    statement: Insert
    # (attribute, column) for each mapped column.
    attributes: tuple[tuple[str, str], ...]
    # (relationship, ((local column, the target's attribute), ...)) for each many-to-one:
    # the foreign keys a flush would copy from the objects this one points to.
    parents: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


@cache
def plan_for(mapper: Mapper[Base]) -> InsertPlan:
    columns = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs]
    parents = tuple(
        (
            relationship.key,
            tuple(
                (str(local.key), relationship.mapper.get_property_by_column(remote).key)
                for local, remote in relationship.local_remote_pairs
            ),
        )
        for relationship in mapper.relationships
        if relationship.direction is RelationshipDirection.MANYTOONE
    )
    table = mapper.local_table
    assert isinstance(table, Table)
    return InsertPlan(
        insert(table).returning(*(column for _, column in columns), sort_by_parameter_order=True),
        tuple((key, str(column.key)) for key, column in columns),
        parents,
    )


def insert_as_loaded(session: Session, *objects: Base) -> None:
    """Insert new, never-added `objects` (each after the ones it points to), fill in their
    keys and defaults, and attach them to `session` unchanged, as if just loaded. Rows of
    one table in a row go in one statement."""
    connection = session.connection()
    for run in runs_of_one_table(objects):
        plan = plan_for(inspect(run[0]).mapper)
        rows = connection.execute(plan.statement, [row_values(obj, plan) for obj in run]).all()
        for obj, row in zip(run, rows, strict=True):
            loaded = inspect(obj).dict
            for (key, _), value in zip(plan.attributes, row, strict=True):
                loaded[key] = value
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)


def runs_of_one_table(objects: tuple[Base, ...]) -> list[list[Base]]:
    """`objects` in runs of the same class and the same columns set, in order."""
    runs: list[list[Base]] = []
    for obj in objects:
        if runs and type(runs[-1][0]) is type(obj) and set_columns(runs[-1][0]) == set_columns(obj):
            runs[-1].append(obj)
        else:
            runs.append([obj])
    return runs


def set_columns(obj: Base) -> frozenset[str]:
    return frozenset(inspect(obj).dict)


def row_values(obj: Base, plan: InsertPlan) -> dict[str, Any]:
    """The column values of `obj`, with the keys of the rows it points to."""
    loaded = inspect(obj).dict
    values = {column: loaded[key] for key, column in plan.attributes if key in loaded}
    for key, pairs in plan.parents:
        target = loaded.get(key)
        if target is not None:
            for column, target_key in pairs:
                values[column] = getattr(target, target_key)
    return values
