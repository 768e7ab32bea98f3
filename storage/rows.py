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

from functools import cache

from sqlalchemy import Insert, Table, insert, inspect
from sqlalchemy.orm import RelationshipDirection, Session, make_transient_to_detached

from storage.models import Base


@cache
def insert_returning_all(table: Table) -> Insert:
    return insert(table).returning(*table.c)


def insert_as_loaded(session: Session, *objects: Base) -> None:
    """Insert new, never-added `objects` (each after the ones it points to), fill in their
    keys and defaults, and attach them to `session` unchanged, as if just loaded."""
    connection = session.connection()
    for obj in objects:
        state = inspect(obj)
        mapper = state.mapper
        values = {prop.columns[0].key: state.dict[prop.key] for prop in mapper.column_attrs
                  if prop.key in state.dict}
        # The foreign keys a flush would copy from the objects this one points to.
        for relationship in mapper.relationships:
            target = state.dict.get(relationship.key)
            if relationship.direction is RelationshipDirection.MANYTOONE and target is not None:
                target_mapper = relationship.mapper
                for local, remote in relationship.local_remote_pairs:
                    values[str(local.key)] = getattr(
                        target, target_mapper.get_property_by_column(remote).key)
        row = connection.execute(insert_returning_all(mapper.local_table), values).one()
        for prop in mapper.column_attrs:
            state.dict[prop.key] = row._mapping[prop.columns[0]]
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)
