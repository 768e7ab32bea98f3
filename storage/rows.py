"""New rows written with plain inserts, and kept as ORM objects as if they had been loaded.

The unit of work's flush costs several times the INSERT itself for each new object: it
sorts the session's changes, orders the mappers and syncs foreign keys row by row. A new
ticket's rows (the ticket, its participants, first message, attachments and event) are
written together and only depend on each other, so `insert_as_loaded` writes each with one
statement and then hands the objects to the session, which tracks later changes to them as
usual.

A savepoint rolled back after them takes their rows back but leaves them in the session,
which only forgets objects its own flush inserted: the caller expunges them then, or the
next row to get the same key could not be attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import Insert, Table, insert, inspect
from sqlalchemy.orm import Mapper, RelationshipDirection, Session, make_transient_to_detached

from storage.models import Base


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
        insert(table).returning(*(column for _, column in columns)),
        tuple((key, str(column.key)) for key, column in columns),
        parents,
    )


def insert_as_loaded(session: Session, *objects: Base) -> None:
    """Insert new, never-added `objects` (each after the ones it points to), fill in their
    keys and defaults, and attach them to `session` unchanged, as if just loaded."""
    connection = session.connection()
    for obj in objects:
        state = inspect(obj)
        plan = plan_for(state.mapper)
        loaded = state.dict
        values = {column: loaded[key] for key, column in plan.attributes if key in loaded}
        for key, pairs in plan.parents:
            target = loaded.get(key)
            if target is not None:
                for column, target_key in pairs:
                    values[column] = getattr(target, target_key)
        row = connection.execute(plan.statement, values).one()
        for (key, _), value in zip(plan.attributes, row, strict=True):
            loaded[key] = value
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)
