"""The column types every table uses: times in UTC on every backend, text made storable
on every backend, and enums stored by their readable value."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import DateTime, Enum, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect

from storage.text import storable


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them without an offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def fit_for_column(value: str, limit: int | None, max_bytes: int | None = None) -> str:
    """`value` as every backend takes it. PostgreSQL refuses NUL characters, text that is
    not valid UTF-8 (lone surrogates) and values longer than their column, where SQLite
    takes all three; mail that got `250` must never be lost to that difference."""
    value = storable(value)
    if limit is not None and len(value) > limit:
        value = value[:limit]
    if max_bytes is not None and len(value.encode()) > max_bytes:
        value = value.encode()[:max_bytes].decode(errors="ignore")
    return value


class BoundedString(TypeDecorator[str]):
    """A `String(length)` whose values are made storable (see `fit_for_column`) before every
    insert, update and comparison, so a lookup matches what was stored. `max_bytes` keeps
    an indexed value under PostgreSQL's B-tree entry limit (about 2.7 kB)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int, max_bytes: int | None = None) -> None:
        super().__init__(length)
        self.limit = length
        self.max_bytes = max_bytes

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else fit_for_column(value, self.limit, self.max_bytes)


class StorableText(TypeDecorator[str]):
    """Unbounded `Text`, made storable before it is written."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else fit_for_column(value, None)


def readable_enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    # Store the readable value ("open"), not the member name ("OPEN").
    return Enum(
        cls,
        values_callable=lambda members: [m.value for m in members],
        length=length,
        native_enum=False,
        validate_strings=True,
    )
