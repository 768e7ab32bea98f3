"""Tickets as `gateway tickets` and `gateway show` print them: tables and a readable trail
for people, the same facts as JSON for programs.

`show` prints the conversation the customer sees (their messages and the engineers' public
replies, in full) and collapses the rest, our own notices and internal or automatic
messages, to one line each; `--full` prints every message's words and every event's whole
detail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.intake import UNKNOWN, Fact
from gateway.service.clocks import TargetClock
from gateway.settings import Intake
from gateway.workflow.articles import suggested_to
from gateway.workflow.intake import current_facts, missing
from storage.models import Attachment, Event, EventKind, Message, Ticket, TicketFact


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "status": ticket.status.value,
        "priority": ticket.priority.value,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "tier": ticket.tier,
        "reopen_count": ticket.reopen_count,
        "follow_up_of": ticket.follow_up_of,
        "merged_into": ticket.merged_into,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
    }


def ticket_detail(ticket: Ticket, intake: Intake) -> dict[str, Any]:
    """A ticket with its facts, participants, messages (oldest first) and events."""
    return (
        ticket_summary(ticket)
        | {
            "language": ticket.language,
            "kind": ticket.kind,
            "facts": {fact.value: fact_value(row) for fact, row in current_facts(ticket).items()},
            "missing": [fact.value for fact in missing(ticket, intake)],
            "fact_history": [fact_detail(row) for row in ticket.facts],
            "participants": [
                {"address": p.address, "role": p.role.value} for p in ticket.participants
            ],
            "messages": [message_detail(message) for message in ticket.messages],
            "events": [event_detail(event) for event in ticket.events],
        }
        | article_detail(ticket)
    )


def article_detail(ticket: Ticket) -> dict[str, Any]:
    """The knowledge-base articles suggested on the ticket, and the one that solved it."""
    suggested = suggested_to(ticket)
    solved = [e.detail for e in ticket.events if e.type is EventKind.SOLVED_BY_ARTICLE]
    return {"suggested_articles": suggested, "solved_by_article": solved[-1] if solved else None}


def clock_detail(clock: TargetClock, now: datetime) -> dict[str, Any]:
    """A service-level clock for programs: due (None while paused), met, breached, paused."""
    return {
        "due": iso(clock.due) if clock.due else None,
        "met_at": iso(clock.met_at) if clock.met_at else None,
        "breached": clock.breached(now),
        "paused": clock.paused,
        "round": clock.round,
    }


def fact_value(row: TicketFact) -> str | list[str]:
    """A fact's value for programs: logs as a list of SHA-256s, the rest as text."""
    return row.value.split() if row.name == Fact.LOGS and row.value != UNKNOWN else row.value


def fact_detail(row: TicketFact) -> dict[str, Any]:
    return {
        "name": row.name,
        "value": fact_value(row),
        "source": row.source,
        "excerpt": row.excerpt,
        "at": iso(row.learned_at),
    }


def message_detail(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "from": message.from_address,
        "to": message.to_addresses,
        "direction": message.direction.value,
        "subject": message.subject,
        "at": iso(message.created_at),
        "automatic": message.automatic,
        "internal": message.internal,
        "text": message.text,
        "raw_sha256": message.raw_sha256,
        "attachments": [attachment_detail(attachment) for attachment in message.attachments],
    }


def attachment_detail(attachment: Attachment) -> dict[str, Any]:
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "content_id": attachment.content_id,
        "inline": attachment.inline,
    }


def event_detail(event: Event) -> dict[str, Any]:
    return {
        "type": event.type.value,
        "at": iso(event.at),
        "actor": event.actor,
        "from_status": event.from_status.value if event.from_status else None,
        "to_status": event.to_status.value if event.to_status else None,
        "detail": event.detail,
    }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("no tickets")
        return
    cells = [
        [shorten(str(row[c] if row[c] is not None else "-"), 40) for c in columns] for row in rows
    ]
    for row in cells:
        row[columns.index("created_at")] = row[columns.index("created_at")][:16].replace("T", " ")
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_ticket(detail: dict[str, Any], full: bool = False) -> None:
    print(f"Ticket #{detail['id']}: {detail['subject']}")
    print(
        f"  status {detail['status']}, priority {detail['priority']}, tier {detail['tier']}, "
        f"requester {detail['requester']}, assignee {detail['assignee'] or '-'}"
    )
    follow_up = f", follow-up of #{detail['follow_up_of']}" if detail["follow_up_of"] else ""
    follow_up += f", merged into #{detail['merged_into']}" if detail["merged_into"] else ""
    print(f"  created {detail['created_at']}, reopened {detail['reopen_count']} time(s){follow_up}")
    print_service(detail)
    print_facts(detail)
    print("\nMessages:")
    for message in detail["messages"]:
        if full or in_conversation(message):
            print_message(message, full)
        else:
            print_message_line(message)
    print("\nEvents:")
    for event in detail["events"]:
        print_event(event, full)


def print_service(detail: dict[str, Any]) -> None:
    """Where the priority came from, and each service-level clock in a line."""
    if detail.get("priority_reason"):
        print(f"  priority from {detail['priority_reason']}")
    for name, clock in detail.get("sla", {}).items():
        state = "paused" if clock["paused"] else f"due {clock['due']}"
        met = f", met {clock['met_at']}" if clock["met_at"] else ""
        late = ", BREACHED" if clock["breached"] else ""
        print(f"  {name.replace('_', ' ')}: {state}{met}{late}")


def print_facts(detail: dict[str, Any]) -> None:
    """The facts as a small table, and those still missing."""
    print(f"\nFacts (kind {detail['kind']}):")
    for name, value in detail["facts"].items():
        shown = " ".join(value) if isinstance(value, list) else " ".join(value.split())
        print(f"  {name.ljust(12)} {shorten(shown, 100)}")
    print(f"  missing: {', '.join(detail['missing']) or 'nothing'}")


def in_conversation(message: dict[str, Any]) -> bool:
    """What the customer sees in words: mail from people, not ours, internal or automatic."""
    return message["direction"] == "in" and not message["internal"] and not message["automatic"]


def print_message(message: dict[str, Any], full: bool) -> None:
    arrow = "<-" if message["direction"] == "in" else "->"
    marks = "".join(f" [{m}]" for m in ("internal", "automatic") if message[m])
    print(f"  {arrow} {message['at']}  {message['from']}  {message['subject']}{marks}")
    if message["raw_sha256"]:
        print(f"       raw message sha256 {message['raw_sha256'][:12]}…")
    lines = message["text"].splitlines()
    for line in lines if full else lines[:12]:
        print(f"       | {line}")
    for attachment in message["attachments"]:
        print(
            f"       + {attachment['filename']} ({attachment['content_type']}, "
            f"{attachment['size']} bytes, sha256 {attachment['sha256'][:12]}…)"
        )


def print_message_line(message: dict[str, Any]) -> None:
    """One line: when, to whom (ours) or from whom, the subject, and what kind it is."""
    at = minute(message["at"])
    if message["direction"] == "out":
        print(f"  -> {at}  to {message['to']}  {shorten(message['subject'], 60)}")
        return
    kind = "internal" if message["internal"] else "automatic"
    raw = f"  raw {message['raw_sha256'][:12]}…" if message["raw_sha256"] else ""
    print(f"  <- {at}  {message['from']}  {shorten(message['subject'], 60)} [{kind}]{raw}")


def print_event(event: dict[str, Any], full: bool) -> None:
    change = ""
    if event["to_status"]:
        change = f" {event['from_status'] or '∅'} → {event['to_status']}"
    # Compact, every event stays one line, a multi-line note too.
    detail = event["detail"] if full else " ".join(event["detail"].split())
    why = f"  ({detail})" if detail else ""
    at = event["at"] if full else minute(event["at"])
    print(f"  {at}  {event['type']}{change}  by {event['actor']}{why}")


def minute(moment: str) -> str:
    """An ISO 8601 time to the minute, as a person reads it."""
    return moment[:16].replace("T", " ")
