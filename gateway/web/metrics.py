"""The figures `GET /metrics` gives Prometheus: intake, tickets, notifications, what waits.

Nothing is counted as it happens. Each scrape reads the durable state afresh, through a
collector in a registry of its own (`Figures`), with aggregate queries only:

- The counters read from the database (receipts, tickets, outbox, events) are the
  cluster's: every gateway sharing the database reports the same totals, and they survive
  restarts. Aggregate them across instances with `max`, not `sum`. A replayed quarantined
  message has its receipt rewritten with its new outcome, so a count by outcome may step
  back once; Prometheus takes that as a counter reset.
- The spool's gauges are this host's: each host keeps its own spool.
- Mail refused at the SMTP or LMTP door never reaches the database; the listeners of this
  process tally it (`gateway.refusals`), from zero at each start.

A label's value comes from a fixed set (an enum, or a kind of `QUARANTINE_KINDS`), never
from a ticket number, an address or a reason's text.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Connection, Engine, Select, case, func, or_, select

from gateway.app import Gateway
from gateway.database import briefly
from gateway.errors import DatabaseUnavailable
from gateway.pipeline import NO_SENDER
from gateway.refusals import REFUSED, Refusal, Tally
from gateway.spool import IntakeSource, Spool
from gateway.threader import ThreadMethod
from storage.models import (
    Event,
    EventKind,
    OutboxMail,
    OutboxState,
    ReceiptOutcome,
    Ticket,
    TicketStatus,
)
from storage.models import Receipt as ReceiptRow

log = logging.getLogger(__name__)

# The longest a scrape waits for a lock a writer holds, well within Prometheus's default
# scrape timeout (10 s): past it, the scrape answers without the database's figures.
LOCK_WAIT_MS = 5000

# The kind of a quarantine reason, told from its text as the stages write it (`limits`,
# `spool`, `parsing`, `pipeline`, `errors.internal_error`): SQL LIKE patterns, `%` for any
# text, the first kind that matches wins. A reason none matches is "other".
QUARANTINE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("internal_error", ("internal error:%",)),
    ("mail_loop", ("%: a mail loop",)),
    (
        "too_large",
        (
            "message of % bytes exceeds the limit%",
            "message exceeds the limit%",
            "header larger than the limit%",
        ),
    ),
    (
        "over_limit",
        (
            "% header fields exceed the limit%",
            "header field % exceeds the limit%",
            "MIME parts nested deeper than the limit%",
            "more MIME parts than the limit%",
            "attachment % exceeds the limit%",
        ),
    ),
    (
        "malformed",
        ("message is empty", "% is not an RFC 5322 message", "MIME parts nested too deeply%"),
    ),
    ("no_sender", (NO_SENDER,)),
)
OTHER = "other"
# What a receipt's reason says of a message filed on a ticket (`receipts.Ledger.record`).
THREADED_BY = "threaded by "
KNOWN_SOURCES = frozenset(source.value for source in IntakeSource)
Family = TypeVar("Family", CounterMetricFamily, GaugeMetricFamily)


class Figures:
    """The registry `/metrics` serves: the gateway's durable state, read at each scrape."""

    def __init__(
        self, gateway: Gateway, refusals: Tally = REFUSED, reads: Engine | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(DurableState(gateway, refusals, reads or gateway.engine))

    def exposition(self) -> tuple[bytes, str]:
        """The text format's body and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class DurableState(Collector):
    """Reads the database, this host's spool and the listeners' refusals."""

    def __init__(self, gateway: Gateway, refusals: Tally, reads: Engine) -> None:
        self.gateway = gateway
        self.refusals = refusals
        self.reads = reads

    def collect(self) -> Iterator[Metric]:
        now = self.gateway.clock.now()
        yield from self.database_figures(now)
        yield from spool_figures(self.gateway.spool, now)
        yield refusal_figure(self.refusals.counts())

    def database_figures(self, now: datetime) -> list[Metric]:
        """The database's figures; when it cannot be read, only that it could not, so the
        spool's figures, which matter most then, are still served."""
        try:
            with briefly(self.reads, LOCK_WAIT_MS) as connection:
                figures = [
                    *receipt_figures(connection),
                    *ticket_figures(connection),
                    *outbox_figures(connection, now),
                ]
        except DatabaseUnavailable as exc:
            log.warning("figures without the database: %s", exc.reason)
            return [database_up(False)]
        return [database_up(True), *figures]


# -- the receipts ----------------------------------------------------------------------------


def receipt_figures(connection: Connection) -> list[Metric]:
    """Messages by source, by outcome, by kind of quarantine reason and by threading
    method, from one pass over the receipts."""
    received: Counter[str] = Counter()
    filed: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    threaded: Counter[str] = Counter()
    for source, outcome, kind, method, count in connection.execute(receipt_tally()):
        received[source if source in KNOWN_SOURCES else OTHER] += count
        filed[outcome.value] += count
        if kind:
            quarantined[kind] += count
        if method:
            threaded[method] += count
    return [
        labelled(
            CounterMetricFamily(
                "gateway_messages_received_total",
                "Messages received and filed (each has a receipt), by how they arrived.",
                labels=["source"],
            ),
            zeros(IntakeSource) | received,
        ),
        labelled(
            CounterMetricFamily(
                "gateway_messages_filed_total",
                "Messages filed, by what became of them.",
                labels=["outcome"],
            ),
            zeros(ReceiptOutcome) | filed,
        ),
        labelled(
            CounterMetricFamily(
                "gateway_messages_quarantined_total",
                "Messages set aside with a reason, by the kind of reason.",
                labels=["reason"],
            ),
            dict.fromkeys([kind for kind, _ in QUARANTINE_KINDS] + [OTHER], 0) | quarantined,
        ),
        labelled(
            CounterMetricFamily(
                "gateway_threading_total",
                "Messages filed on tickets, by how their ticket was found (new: none was).",
                labels=["method"],
            ),
            zeros(ThreadMethod) | threaded,
        ),
    ]


def receipt_tally() -> Select[str, ReceiptOutcome, str, str, int]:
    """Receipts counted by source, outcome, quarantine kind and threading method."""
    # Grouped by a subquery's columns, not by the CASE expressions themselves: PostgreSQL
    # cannot tell that a CASE in the select list is the one in GROUP BY when each has
    # bound parameters of its own.
    labelled_rows = select(
        ReceiptRow.source,
        ReceiptRow.outcome,
        quarantine_kind().label("kind"),
        thread_method().label("method"),
    ).subquery()
    columns = labelled_rows.c
    return select(
        columns.source, columns.outcome, columns.kind, columns.method, func.count()
    ).group_by(columns.source, columns.outcome, columns.kind, columns.method)


def quarantine_kind() -> ColumnElement[str]:
    """The kind of a quarantined receipt's reason; "" for any other receipt."""
    kinds = [
        (or_(*(ReceiptRow.reason.like(pattern) for pattern in patterns)), kind)
        for kind, patterns in QUARANTINE_KINDS
    ]
    quarantined = ReceiptRow.outcome == ReceiptOutcome.QUARANTINED
    return case((~quarantined, ""), *kinds, else_=OTHER)


def thread_method() -> ColumnElement[str]:
    """The threading method a filed receipt's reason names; "" for any other receipt."""
    return case(
        *((ReceiptRow.reason == f"{THREADED_BY}{method}", method.value) for method in ThreadMethod),
        else_="",
    )


# -- tickets and the outbox ------------------------------------------------------------------


def ticket_figures(connection: Connection) -> list[Metric]:
    counts = zeros(TicketStatus) | {
        status.value: count
        for status, count in connection.execute(
            select(Ticket.status, func.count()).group_by(Ticket.status)
        )
    }
    return [
        CounterMetricFamily(
            "gateway_tickets_opened_total", "Tickets opened.", value=sum(counts.values())
        ),
        labelled(
            GaugeMetricFamily("gateway_tickets", "Tickets by status now.", labels=["status"]),
            counts,
        ),
    ]


@dataclass(frozen=True, slots=True)
class OutboxTally:
    """The outbox at one moment, read in one grouped query."""

    by_state: dict[OutboxState, int]
    attempts: int
    oldest_pending: datetime | None
    suppressed: int


def read_outbox(connection: Connection) -> OutboxTally:
    rows = connection.execute(
        select(
            OutboxMail.state,
            func.count(),
            func.coalesce(func.sum(OutboxMail.attempts), 0),
            func.min(OutboxMail.created_at),
        ).group_by(OutboxMail.state)
    ).all()
    suppressed = connection.scalar(
        select(func.count()).select_from(Event).where(Event.type == EventKind.MAIL_SUPPRESSED)
    )
    return OutboxTally(
        by_state={state: count for state, count, _, _ in rows},
        attempts=sum(int(attempts) for _, _, attempts, _ in rows),
        oldest_pending=next((o for s, _, _, o in rows if s is OutboxState.PENDING), None),
        suppressed=suppressed or 0,
    )


def outbox_figures(connection: Connection, now: datetime) -> list[Metric]:
    outbox = read_outbox(connection)
    results = {
        "sent": outbox.by_state.get(OutboxState.SENT, 0),
        "failed": outbox.by_state.get(OutboxState.FAILED, 0),
        "suppressed": outbox.suppressed,
    }
    return [
        labelled(
            CounterMetricFamily(
                "gateway_notifications_total",
                "Mail the gateway sent, gave up on, or suppressed (loops and limits).",
                labels=["result"],
            ),
            results,
        ),
        CounterMetricFamily(
            "gateway_delivery_attempts_total",
            "Attempts to hand outbox mail to the relay.",
            value=outbox.attempts,
        ),
        GaugeMetricFamily(
            "gateway_outbox_depth",
            "Mail in the outbox waiting to be sent.",
            value=outbox.by_state.get(OutboxState.PENDING, 0),
        ),
        GaugeMetricFamily(
            "gateway_oldest_pending_outbox_age_seconds",
            "Age of the oldest mail waiting in the outbox; 0 when none waits.",
            value=seconds_since(outbox.oldest_pending, now),
        ),
    ]


# -- this host and this process --------------------------------------------------------------


def spool_figures(spool: Spool, now: datetime) -> list[Metric]:
    depth, oldest = spool.backlog()
    return [
        GaugeMetricFamily(
            "gateway_spool_depth", "Messages waiting in this host's spool.", value=depth
        ),
        GaugeMetricFamily(
            "gateway_oldest_waiting_message_age_seconds",
            "Age of the oldest message in this host's spool not filed yet; 0 when none waits.",
            value=seconds_since(oldest.received_at if oldest else None, now),
        ),
    ]


def refusal_figure(counts: Mapping[Refusal, int]) -> Metric:
    return labelled(
        CounterMetricFamily(
            "gateway_messages_refused_total",
            "Mail this process's SMTP and LMTP listeners refused, by kind, since it started.",
            labels=["reason"],
        ),
        {refusal.value: count for refusal, count in counts.items()},
    )


def database_up(readable: bool) -> Metric:
    return GaugeMetricFamily(
        "gateway_database_up",
        "Whether the database answered this scrape; without it only this host's figures.",
        value=int(readable),
    )


# -- building families -----------------------------------------------------------------------


def labelled(family: Family, values: Mapping[str, int]) -> Family:
    """`family` with one sample for each label value, in order."""
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family


def zeros(members: Iterable[enum.Enum]) -> dict[str, int]:
    """Every value of an enum at 0, so a series exists before its first event."""
    return {str(member.value): 0 for member in members}


def seconds_since(moment: datetime | None, now: datetime) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0
