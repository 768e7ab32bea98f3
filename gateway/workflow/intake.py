"""What the intake does to a ticket: the facts its customers' mail gives, kept with their
history; which required facts are still missing; asking for them; `#ask` and `#info ok`.

A fact's value is its latest row (`TicketFact`); a correction adds a row, so the trail keeps
the old value. The first mail decides the report's kind, and with it the facts it needs
(`Intake.required`). The acknowledgement asks for the missing ones once (the notifier notes
it with `note_asked` when that mail goes); after that only an engineer's `#ask` asks again,
and `#info ok` ends the asking for good.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gateway.errors import CommandRefused
from gateway.intake import (
    UNKNOWN,
    Fact,
    Finding,
    Findings,
    Kind,
    missing_facts,
    read_first_mail,
    read_reply,
)
from gateway.phrases import Phrase
from gateway.settings import Intake
from gateway.trail import Filing, record
from storage.models import (
    SYSTEM_ACTOR,
    Event,
    EventKind,
    Message,
    Ticket,
    TicketFact,
)


def learn_from_first_mail(filing: Filing, ticket: Ticket, message: Message) -> list[Event]:
    """The new ticket's kind and facts, read from its first mail; the fact rows are added
    to the ticket, the events that tell of them returned for the caller to insert."""
    findings = filing.first_mail or read_first_mail(filing.inbound.mail.intake_text())
    ticket.kind = findings.kind.value
    events = [learned_event(filing, ticket, message, kind_detail(findings))]
    for finding in findings.facts:
        fact_row(filing, ticket, message, finding, finding.value)
        events.append(learned_event(filing, ticket, message, fact_detail(finding, None)))
    return events


def learn_from_reply(filing: Filing, ticket: Ticket, message: Message) -> list[Event]:
    """The facts a customer's later message gives or corrects (answers to the ask, "we
    are on 4.0.7 now", newly attached logs); one event per fact that changed."""
    text = filing.inbound.mail.intake_text(reply=True, asked=frozenset(asked_on(ticket)))
    known = current_facts(ticket)
    events = []
    for finding in read_reply(text).facts:
        before = known.get(finding.fact)
        value = with_earlier_logs(before, finding)
        if before is not None and before.value == value:
            continue
        filing.session.add(fact_row(filing, ticket, message, finding, value))
        detail = fact_detail(finding, before, value)
        events.append(record(filing, ticket, EventKind.FACT_LEARNED, message, detail))
    return events


def asked_on(ticket: Ticket) -> set[Fact]:
    """Every fact the customer has been asked for on this ticket."""
    return set(asked_in([e for e in ticket.events if e.type is EventKind.INFO_REQUESTED]))


def fact_row(
    filing: Filing, ticket: Ticket, message: Message, finding: Finding, value: str
) -> TicketFact:
    return TicketFact(
        ticket=ticket,
        name=finding.fact.value,
        value=value,
        source=finding.source.value,
        excerpt=finding.excerpt[:500],
        message=message,
        learned_at=filing.inbound.at,
    )


def learned_event(filing: Filing, ticket: Ticket, message: Message, detail: str) -> Event:
    """A `fact_learned` event of a new ticket, built for its plain insert."""
    inbound = filing.inbound
    return Event(
        ticket=ticket,
        type=EventKind.FACT_LEARNED,
        actor=inbound.sender,
        at=inbound.at,
        message=message,
        detail=detail,
    )


def with_earlier_logs(before: TicketFact | None, finding: Finding) -> str:
    """A finding's value to keep: logs add to the ones already attached; any other fact
    replaces its value."""
    if finding.fact is not Fact.LOGS or before is None or before.value == UNKNOWN:
        return finding.value
    earlier = before.value.split()
    return " ".join([*earlier, *(sha for sha in finding.value.split() if sha not in earlier)])


def kind_detail(findings: Findings) -> str:
    said = f" (from “{findings.kind_excerpt}”)" if findings.kind_excerpt else ""
    return f"kind = {findings.kind.value}{said}"


def fact_detail(finding: Finding, before: TicketFact | None, value: str | None = None) -> str:
    """The trail's words for a fact learned, or corrected with its old value."""
    value = finding.value if value is None else value
    change = f"{before.value} → {value}" if before is not None else value
    where = f"the {finding.source.value}"
    said = f": “{finding.excerpt}”" if finding.excerpt else ""
    return f"{finding.fact.value} = {change} (from {where}{said})"


# -- what is known, what is missing -------------------------------------------------------


def current_facts(ticket: Ticket) -> dict[Fact, TicketFact]:
    """Each fact's latest row (rows of names no longer known are left out)."""
    known: dict[Fact, TicketFact] = {}
    for row in ticket.facts:
        if row.name in Fact.__members__.values():
            known[Fact(row.name)] = row
    return known


def known_value(ticket: Ticket, fact: Fact) -> str | None:
    """A fact's value, or None when it is not known (or the customer said "unknown")."""
    row = current_facts(ticket).get(fact)
    return known(row.value if row is not None else None)


def known(value: str | None) -> str | None:
    """`value`, or None when it is none or the customer said "unknown"."""
    return value if value != UNKNOWN else None


def kind_of(ticket: Ticket) -> Kind:
    return Kind(ticket.kind) if ticket.kind in Kind.__members__.values() else Kind.OTHER


def missing(ticket: Ticket, intake: Intake) -> tuple[Fact, ...]:
    """The required facts of the ticket's kind not yet known; none once an engineer said
    the intake is complete."""
    if ticket.intake_complete:
        return ()
    return missing_facts(intake.required(kind_of(ticket)), set(current_facts(ticket)))


def first_ask(ticket: Ticket, intake: Intake) -> tuple[Fact, ...]:
    """What the acknowledgement of a new ticket asks for: the missing facts, unless the
    intake is off or this ticket was asked before."""
    if not intake.enabled or ticket.info_requested_at is not None:
        return ()
    return missing(ticket, intake)


def note_asked(session: Session, ticket: Ticket, facts: tuple[Fact, ...], at: datetime) -> None:
    """The acknowledgement asked the customer for `facts`: never again automatically."""
    ticket.info_requested_at = at
    names = " ".join(fact.value for fact in facts)
    event = Event(
        ticket=ticket, type=EventKind.INFO_REQUESTED, actor=SYSTEM_ACTOR, at=at, detail=names
    )
    session.add(event)


# -- the engineers' commands ---------------------------------------------------------------


def ask(
    filing: Filing, ticket: Ticket, facts: tuple[Fact, ...], message: Message, intake: Intake
) -> tuple[Phrase, Event]:
    """`#ask NAME...`: the customer is asked for these facts (for the missing ones when
    none are named); the event names what was asked."""
    asked = facts or missing(ticket, intake)
    if not asked:
        raise CommandRefused(
            Phrase(
                "nothing is missing: name what to ask for, as in #ask logs device",
                "没有缺少的信息：请写明要问什么，例如 #ask logs device",
            )
        )
    if ticket.info_requested_at is None:
        ticket.info_requested_at = filing.inbound.at
    names = " ".join(fact.value for fact in asked)
    event = record(filing, ticket, EventKind.INFO_REQUESTED, message, names)
    return Phrase(f"the customer is asked for: {names}", f"已向客户询问：{names}"), event


def asked_in(events: list[Event]) -> tuple[Fact, ...]:
    """The facts the `info_requested` events among `events` name, each once."""
    names = (
        name for e in events if e.type is EventKind.INFO_REQUESTED for name in e.detail.split()
    )
    return tuple(dict.fromkeys(Fact(name) for name in names))


def complete(filing: Filing, ticket: Ticket, message: Message) -> tuple[Phrase, Event]:
    """`#info ok`: the intake is complete; nothing is missing or asked for any more."""
    if ticket.intake_complete:
        raise CommandRefused(Phrase("the intake is already complete", "信息收集已经标记为完整"))
    ticket.intake_complete = True
    event = record(filing, ticket, EventKind.INTAKE_COMPLETED, message, "by command")
    said = Phrase("intake complete: nothing more will be asked", "信息收集完成：不再询问客户")
    return said, event
