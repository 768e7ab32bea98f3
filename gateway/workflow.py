"""The ticket state machine and what an inbound message does to a ticket.

`ALLOWED` is the whole state machine; `transition()` is the only place that assigns
`ticket.status`, and every change becomes an `Event` row (who, when, from, to, which message).

Who wrote a message decides what it may do. Only an engineer writing through their own
reply token for this ticket (`Author.ENGINEER`) has commands applied and words relayed to
the customer; a `From:` header alone grants nothing. A customer's answer to a resolved
ticket is read as a confirmation; automatic mail (out-of-office and the like) changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.commands import Command, read_commands
from gateway.config import Engineer
from gateway.confirmation import Confirmation, classify_confirmation
from gateway.errors import InvalidTransition
from gateway.parsing import ParsedAttachment, ParsedMail
from gateway.tokens import plus_part
from storage.blobs import BlobStore
from storage.models import (
    AddressHold,
    Attachment,
    Direction,
    Event,
    Message,
    Participant,
    ParticipantRole,
    Priority,
    Ticket,
    TicketStatus,
)
from storage.rows import insert_as_loaded

S = TicketStatus
ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.WAITING, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.WAITING, S.RESOLVED, S.CLOSED}),
    S.WAITING: frozenset({S.OPEN, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}
# Event types that change the status; each one is announced to the people on the ticket.
STATUS_EVENTS = frozenset({"status_changed", "reopened", "confirmed", "auto_closed"})

UNKNOWN_SENDER = "unknown-sender@invalid"
SYSTEM_ACTOR = "system"


class Author(enum.Enum):
    """Who a message on a ticket is from, as far as the gateway can prove it."""

    CUSTOMER = "customer"
    # An engineer, through their own reply token for this ticket.
    ENGINEER = "engineer"
    # An engineer's address in `From:`, but not through their own token: proves nothing.
    UNVERIFIED_ENGINEER = "unverified_engineer"
    # Someone else writing through an engineer's token (a forwarded notification).
    THIRD_PARTY = "third_party"
    # A mail system reporting that our mail could not be delivered.
    DELIVERY_REPORT = "delivery_report"


@dataclass(frozen=True, slots=True)
class Rules:
    """What the workflow needs from the settings."""

    engineers: tuple[Engineer, ...]
    reopen_window: timedelta
    support_address: str
    # How long an address that bounced for good is not mailed.
    bounce_hold: timedelta = timedelta(days=7)

    def engineer(self, address: str) -> Engineer | None:
        return next((e for e in self.engineers if e.address == address.lower()), None)

    def tier(self, tier: str) -> tuple[Engineer, ...]:
        return tuple(e for e in self.engineers if e.tier == tier)


class CommandRefused(Exception):
    """A well-formed command that does not apply to this ticket now."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One command line of an engineer's message: applied or not, and what or why."""

    line: str
    applied: bool
    outcome: str


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one inbound message did: the notifier's whole input."""

    ticket: Ticket
    message: Message
    author: Author
    new_ticket: bool
    sender: Participant | None
    events: list[Event] = field(default_factory=list)
    # The engineer's words go to the customer.
    relay: bool = False
    # For engineers: one line per command, and why a message was not acted on.
    results: list[CommandResult] = field(default_factory=list)
    refused_because: str = ""
    follow_up_of: Ticket | None = None


def transition(
    session: Session,
    ticket: Ticket,
    to_status: TicketStatus,
    actor: str,
    now: datetime,
    message: Message | None = None,
    event_type: str = "status_changed",
    detail: str = "",
) -> Event:
    """Move `ticket` to `to_status`, or raise `InvalidTransition`; returns the event row."""
    if to_status not in ALLOWED[ticket.status]:
        raise InvalidTransition(
            f"ticket #{ticket.id} cannot go from {ticket.status.value} to {to_status.value}"
        )
    event = Event(
        ticket=ticket,
        type=event_type,
        actor=actor,
        at=now,
        detail=detail,
        from_status=ticket.status,
        to_status=to_status,
        message=message,
    )
    ticket.status = to_status
    ticket.status_changed_at = now
    if event_type == "reopened":
        ticket.reopen_count += 1
    session.add(event)
    return event


def record(
    session: Session,
    ticket: Ticket,
    event_type: str,
    actor: str,
    now: datetime,
    message: Message | None = None,
    detail: str = "",
) -> Event:
    """An event that changes no status (a message, an assignment, a priority)."""
    event = Event(
        ticket=ticket, type=event_type, actor=actor, at=now, message=message, detail=detail
    )
    session.add(event)
    return event


def classify_author(
    session: Session, token_participant_id: int | None, sender: str, rules: Rules
) -> Author:
    """Who wrote this, judged by the reply token it came through, never by `From:` alone."""
    through = session.get(Participant, token_participant_id) if token_participant_id else None
    if through is not None and through.role is ParticipantRole.ENGINEER:
        if through.address == sender and rules.engineer(sender) is not None:
            return Author.ENGINEER
        return Author.THIRD_PARTY
    if rules.engineer(sender) is not None:
        return Author.UNVERIFIED_ENGINEER
    return Author.CUSTOMER


def open_ticket(
    session: Session,
    mail: ParsedMail,
    sender: str,
    blobs: BlobStore,
    raw_sha256: str,
    rules: Rules,
    now: datetime,
    follow_up_of: Ticket | None = None,
    *,
    automatic: str,
) -> Applied:
    """A new ticket from `mail`: requester, CCs, the L1 engineers, first message, event."""
    # A follow-up keeps the old ticket's subject, not "Re: [Support #1] Closed: ...".
    subject = follow_up_of.subject if follow_up_of else mail.subject or "(no subject)"
    ticket = Ticket(
        status=TicketStatus.NEW,
        subject=subject[:998],
        requester=sender,
        requester_name=mail.from_name,
        language=mail.language,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        follow_up_of=follow_up_of.id if follow_up_of else None,
    )
    # Built apart from the session and written with plain inserts below: nothing about a
    # new ticket needs the unit of work, which costs several times the inserts.
    requester = Participant(ticket=ticket, address=sender, role=ParticipantRole.REQUESTER)
    for address in mail.cc_addresses:  # A CC field may name one address twice.
        if (
            find_participant(ticket, address) is None
            and rules.engineer(address) is None
            and plus_part(address, rules.support_address) is None
        ):
            Participant(ticket=ticket, address=address, role=ParticipantRole.CC)
    for engineer in rules.tier("L1"):
        if engineer.address != sender and find_participant(ticket, engineer.address) is None:
            Participant(ticket=ticket, address=engineer.address, role=ParticipantRole.ENGINEER)
    # A follow-up is a reply to the old thread: its quoted history belongs to the old ticket.
    text = (mail.reply_text or mail.text) if follow_up_of else mail.text
    message = inbound_message(
        ticket, mail, text, sender, blobs, raw_sha256, now, automatic=automatic
    )
    detail = f"follow-up of #{follow_up_of.id}" if follow_up_of else ""
    created = Event(
        ticket=ticket,
        type="created",
        actor=sender,
        at=now,
        to_status=TicketStatus.NEW,
        message=message,
        detail=detail,
    )
    insert_as_loaded(session, ticket, *ticket.participants, message, *message.attachments, created)
    if follow_up_of is not None:
        # The new ticket's number goes into the old ticket's trail.
        record(session, follow_up_of, "followed_up", sender, now, detail=f"#{ticket.id}")
    return Applied(ticket, message, Author.CUSTOMER, True, requester, follow_up_of=follow_up_of)


def apply_to_ticket(
    session: Session,
    ticket: Ticket,
    author: Author,
    mail: ParsedMail,
    sender: str,
    token_participant_id: int | None,
    blobs: BlobStore,
    raw_sha256: str,
    rules: Rules,
    now: datetime,
    *,
    automatic: str,
) -> Applied:
    """What a message on an existing ticket does, by who wrote it; `automatic` says why a
    machine wrote it ('' when a person did)."""
    if author is Author.ENGINEER:
        assert token_participant_id is not None
        through = session.get_one(Participant, token_participant_id)
        return apply_engineer_message(
            session, ticket, mail, through, blobs, raw_sha256, rules, now, automatic=automatic
        )
    if author is Author.CUSTOMER:
        return apply_customer_message(
            session, ticket, mail, sender, blobs, raw_sha256, rules, now, automatic=automatic
        )
    return keep_unverified(
        session, ticket, author, mail, sender, blobs, raw_sha256, rules, now, automatic=automatic
    )


def wants_follow_up(
    ticket: Ticket, author: Author, rules: Rules, now: datetime, *, automatic: str
) -> bool:
    """A customer writing to a ticket closed longer than the reopen window starts a new one."""
    return (
        author is Author.CUSTOMER
        and not automatic
        and ticket.status is TicketStatus.CLOSED
        and now - ticket.status_changed_at > rules.reopen_window
    )


def record_bounce(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    sender: str,
    blobs: BlobStore,
    raw_sha256: str,
    rules: Rules,
    now: datetime,
    *,
    automatic: str,
) -> Applied:
    """A delivery report about mail of this ticket: kept on it, and the ticket's addresses
    that failed for good are held. Only the ticket's own participants are held, so a forged
    bounce cannot silence anyone else."""
    message = store_inbound(
        session,
        ticket,
        mail,
        mail.text,
        sender,
        blobs,
        raw_sha256,
        now,
        internal=True,
        automatic=automatic,
    )
    on_ticket = {p.address for p in ticket.participants}
    failed_recipients = mail.report.failed_recipients if mail.report else ()
    failed = [address for address in failed_recipients if address in on_ticket]
    until = now + rules.bounce_hold
    for address in failed:
        hold_address(session, address, ticket, until, f"bounced permanently (ticket #{ticket.id})")
    detail = (
        f"permanent failure for {', '.join(failed)}; not mailed until {until:%Y-%m-%d}"
        if failed
        else "a delivery report with no permanent failure of ours"
    )
    applied = Applied(ticket, message, Author.DELIVERY_REPORT, False, None)
    applied.events.append(record(session, ticket, "bounced", sender, now, message, detail))
    return applied


def hold_address(
    session: Session, address: str, ticket: Ticket, until: datetime, reason: str
) -> None:
    hold = session.scalars(select(AddressHold).where(AddressHold.address == address)).first()
    if hold is None:
        session.add(AddressHold(address=address, until=until, reason=reason, ticket_id=ticket.id))
    else:
        hold.until, hold.reason, hold.ticket_id = max(hold.until, until), reason, ticket.id


def apply_customer_message(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    sender: str,
    blobs: BlobStore,
    raw_sha256: str,
    rules: Rules,
    now: datetime,
    *,
    automatic: str,
) -> Applied:
    """A customer's message: confirms, reopens, or simply joins the ticket.

    Only someone already on the customer's side of the ticket changes its status or brings
    in the people they copy. Anyone else who threads onto it (by quoting a Message-ID) is
    heard by the engineers but never added, so no ticket mail goes to them.
    """
    text = mail.reply_text or mail.text
    message = store_inbound(
        session, ticket, mail, text, sender, blobs, raw_sha256, now, automatic=automatic
    )
    on_ticket = find_participant(ticket, sender)
    applied = Applied(ticket, message, Author.CUSTOMER, False, on_ticket)
    if automatic:
        # An out-of-office reply or a bounce is kept, but never confirms, reopens or closes.
        applied.events.append(
            record(session, ticket, "automatic_reply", sender, now, message, automatic)
        )
    elif on_ticket is None:
        applied.events.append(
            record(
                session,
                ticket,
                "message_added",
                sender,
                now,
                message,
                "from someone not on the ticket",
            )
        )
    else:
        add_copied_people(session, ticket, mail, rules)
        applied.events.append(customer_event(session, ticket, mail, text, sender, message, now))
    return applied


def customer_event(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    text: str,
    sender: str,
    message: Message,
    now: datetime,
) -> Event:
    """What a customer's words do to the ticket's status, given the status it is in."""
    if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return read_confirmation(session, ticket, mail, text, sender, message, now)
    if ticket.status is TicketStatus.WAITING:
        return transition(
            session, ticket, S.OPEN, sender, now, message, detail="the customer replied"
        )
    return record(session, ticket, "message_added", sender, now, message)


def add_copied_people(session: Session, ticket: Ticket, mail: ParsedMail, rules: Rules) -> None:
    """People a customer copies become CCs of the ticket (never the gateway or engineers)."""
    for address in (*mail.to_addresses, *mail.cc_addresses):
        gateway_side = (
            plus_part(address, rules.support_address) is not None
            or rules.engineer(address) is not None
        )
        if not gateway_side and find_participant(ticket, address) is None:
            add_participant(session, ticket, address, ParticipantRole.CC)


def read_confirmation(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    text: str,
    sender: str,
    message: Message,
    now: datetime,
) -> Event:
    """The customer's answer to "is it fixed?": fixed closes; anything else reopens.

    A closed ticket reads its answers the same way, so a late "works now, thanks" (after
    auto-close, or a second click on the "fixed" link) leaves it closed.
    """
    answer = classify_confirmation(text, mail.subject)
    if answer is Confirmation.FIXED and ticket.status is TicketStatus.CLOSED:
        return record(
            session,
            ticket,
            "message_added",
            sender,
            now,
            message,
            "the customer confirmed it is fixed; it stays closed",
        )
    if answer is Confirmation.FIXED:
        return transition(
            session,
            ticket,
            S.CLOSED,
            sender,
            now,
            message,
            "confirmed",
            "the customer confirmed it is fixed",
        )
    why = (
        "the customer says it is not fixed"
        if answer is Confirmation.NOT_FIXED
        else "the customer wrote again without confirming the fix"
    )
    return transition(session, ticket, S.OPEN, sender, now, message, "reopened", why)


def keep_unverified(
    session: Session,
    ticket: Ticket,
    author: Author,
    mail: ParsedMail,
    sender: str,
    blobs: BlobStore,
    raw_sha256: str,
    rules: Rules,
    now: datetime,
    *,
    automatic: str,
) -> Applied:
    """Kept on the ticket as an internal message; nothing applied, nothing relayed.

    When the sender is a configured engineer, their receipt goes to that engineer's real
    address with their own reply token, so a forger learns nothing and the engineer can act.
    """
    block = read_commands(mail.reply_text or mail.text)
    message = store_inbound(
        session,
        ticket,
        mail,
        mail.reply_text or mail.text,
        sender,
        blobs,
        raw_sha256,
        now,
        internal=True,
        automatic=automatic,
    )
    if author is Author.UNVERIFIED_ENGINEER:
        why = (
            f"it did not come through your own reply address for ticket #{ticket.id}; "
            "reply to the ticket's notification to act on it"
        )
    else:
        why = "it came through another engineer's reply address"
    engineer = (
        engineer_participant(session, ticket, sender)
        if rules.engineer(sender) is not None
        else None
    )
    refused = [] if automatic else [CommandResult(c.line, False, why) for c in block.commands]
    applied = Applied(
        ticket, message, author, False, engineer, results=refused, refused_because=why
    )
    applied.events.append(
        record(
            session, ticket, "unverified_message", sender, now, message, f"{author.value}: {why}"
        )
    )
    return applied


def apply_engineer_message(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    engineer: Participant,
    blobs: BlobStore,
    raw_sha256: str,
    rules: Rules,
    now: datetime,
    *,
    automatic: str,
) -> Applied:
    """An authenticated engineer's reply: its commands, its note or public words."""
    if automatic:
        message = store_inbound(
            session,
            ticket,
            mail,
            mail.text,
            engineer.address,
            blobs,
            raw_sha256,
            now,
            internal=True,
            automatic=automatic,
        )
        applied = Applied(ticket, message, Author.ENGINEER, False, engineer)
        applied.events.append(
            record(session, ticket, "automatic_reply", engineer.address, now, message, automatic)
        )
        return applied
    # Only the new part: without one, falling back to the whole text would relay the quoted
    # notification (other engineers' addresses, the command help) to the customer.
    block = read_commands(mail.reply_text)
    message = store_inbound(
        session,
        ticket,
        mail,
        block.body,
        engineer.address,
        blobs,
        raw_sha256,
        now,
        internal=block.note,
        automatic=automatic,
    )
    relay = not block.note and bool(block.body or message.attachments)
    applied = Applied(ticket, message, Author.ENGINEER, False, engineer, relay=relay)
    applied.events.append(
        record(
            session,
            ticket,
            "note_added" if block.note else "replied",
            engineer.address,
            now,
            message,
        )
    )
    for command in block.commands:
        applied.results.append(apply_command(session, ticket, command, applied, rules, now))
    applied.results.extend(CommandResult(r.line, False, r.reason) for r in block.refusals)
    if block.note:
        applied.results.append(CommandResult("#note", True, "kept as an internal note"))
    if applied.relay and not any(c.name == "status" for c in block.commands):
        start_work_on_reply(session, ticket, applied, now)
    return applied


def start_work_on_reply(session: Session, ticket: Ticket, applied: Applied, now: datetime) -> None:
    """An engineer's public reply puts a new or waiting ticket into work."""
    if ticket.status in (S.NEW, S.WAITING):
        applied.events.append(
            transition(
                session,
                ticket,
                S.OPEN,
                applied.message.from_address,
                now,
                applied.message,
                detail="an engineer replied",
            )
        )


def apply_command(
    session: Session,
    ticket: Ticket,
    command: Command,
    applied: Applied,
    rules: Rules,
    now: datetime,
) -> CommandResult:
    """Apply one command for the engineer who sent `applied.message`."""
    try:
        if command.name == "status":
            outcome = set_status(session, ticket, TicketStatus(command.argument), applied, now)
        elif command.name == "priority":
            outcome = set_priority(session, ticket, Priority(command.argument), applied, now)
        elif command.name == "assign":
            outcome = assign(session, ticket, command.argument, applied, rules, now)
        else:
            outcome = escalate(session, ticket, applied, rules, now)
    except InvalidTransition as exc:
        return CommandResult(command.line, False, exc.reason)
    except CommandRefused as exc:
        return CommandResult(command.line, False, str(exc))
    return CommandResult(command.line, True, outcome)


def set_status(
    session: Session, ticket: Ticket, status: TicketStatus, applied: Applied, now: datetime
) -> str:
    if ticket.status is status:
        raise CommandRefused(f"the ticket is already {status.value}")
    before = ticket.status
    event_type = "reopened" if before in (S.RESOLVED, S.CLOSED) else "status_changed"
    applied.events.append(
        transition(
            session,
            ticket,
            status,
            applied.message.from_address,
            now,
            applied.message,
            event_type,
            "by command",
        )
    )
    return f"status {before.value} → {status.value}"


def set_priority(
    session: Session, ticket: Ticket, priority: Priority, applied: Applied, now: datetime
) -> str:
    if ticket.priority is priority:
        raise CommandRefused(f"the priority is already {priority.value}")
    change = f"{ticket.priority.value} → {priority.value}"
    ticket.priority = priority
    applied.events.append(
        record(
            session,
            ticket,
            "priority_changed",
            applied.message.from_address,
            now,
            applied.message,
            change,
        )
    )
    return f"priority {change}"


def assign(
    session: Session, ticket: Ticket, address: str, applied: Applied, rules: Rules, now: datetime
) -> str:
    if rules.engineer(address) is None:
        raise CommandRefused(f"{address} is not one of the configured engineers")
    if ticket.assignee == address:
        raise CommandRefused(f"the ticket is already assigned to {address}")
    ticket.assignee = address
    engineer_participant(session, ticket, address)
    applied.events.append(
        record(
            session, ticket, "assigned", applied.message.from_address, now, applied.message, address
        )
    )
    return f"assigned to {address}"


def escalate(
    session: Session, ticket: Ticket, applied: Applied, rules: Rules, now: datetime
) -> str:
    specialists = rules.tier("L2")
    if not specialists:
        raise CommandRefused("no L2 engineers are configured (GATEWAY_ENGINEERS address:L2)")
    if ticket.tier == "L2":
        raise CommandRefused("the ticket is already escalated to L2")
    ticket.tier = "L2"
    for engineer in specialists:
        engineer_participant(session, ticket, engineer.address)
    names = ", ".join(e.address for e in specialists)
    applied.events.append(
        record(
            session, ticket, "escalated", applied.message.from_address, now, applied.message, names
        )
    )
    return f"escalated to L2 ({names})"


def close_if_unanswered(
    session: Session, ticket: Ticket, now: datetime, after: timedelta
) -> Event | None:
    """Close a resolved ticket whose customer has not answered within `after`."""
    if ticket.status is not S.RESOLVED or now - ticket.status_changed_at < after:
        return None
    days = after.total_seconds() / 86400
    return transition(
        session,
        ticket,
        S.CLOSED,
        SYSTEM_ACTOR,
        now,
        None,
        "auto_closed",
        f"no answer from the customer in {days:g} days",
    )


def engineer_participant(session: Session, ticket: Ticket, address: str) -> Participant:
    """The engineer's participant row on the ticket (their reply token is bound to it)."""
    return find_participant(ticket, address) or add_participant(
        session, ticket, address, ParticipantRole.ENGINEER
    )


def find_participant(ticket: Ticket, address: str) -> Participant | None:
    return next((p for p in ticket.participants if p.address == address), None)


def add_participant(
    session: Session, ticket: Ticket, address: str, role: ParticipantRole
) -> Participant:
    participant = Participant(ticket=ticket, address=address, role=role)
    session.add(participant)
    return participant


def store_inbound(
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    text: str,
    sender: str,
    blobs: BlobStore,
    raw_sha256: str,
    now: datetime,
    internal: bool = False,
    *,
    automatic: str,
) -> Message:
    message = inbound_message(
        ticket, mail, text, sender, blobs, raw_sha256, now, internal, automatic=automatic
    )
    session.add(message)
    return message


def inbound_message(
    ticket: Ticket,
    mail: ParsedMail,
    text: str,
    sender: str,
    blobs: BlobStore,
    raw_sha256: str,
    now: datetime,
    internal: bool = False,
    *,
    automatic: str,
) -> Message:
    """The message row for `mail` on `ticket`, its attachments' bytes stored."""
    return Message(
        ticket=ticket,
        direction=Direction.IN,
        message_id=mail.message_id,
        from_address=sender,
        from_name=mail.from_name,
        to_addresses=", ".join(mail.to_addresses + mail.cc_addresses)[:4000],
        subject=mail.subject[:998],
        text=text,
        raw_sha256=raw_sha256,
        automatic=bool(automatic),
        internal=internal,
        created_at=now,
        # Set here, even when empty, so reading it later costs no query.
        attachments=[store_attachment(attachment, blobs) for attachment in mail.attachments],
    )


def store_attachment(attachment: ParsedAttachment, blobs: BlobStore) -> Attachment:
    return Attachment(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=len(attachment.data),
        sha256=blobs.put(attachment.data),
        content_id=attachment.content_id,
        inline=attachment.inline,
    )
