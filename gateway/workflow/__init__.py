"""The workflow: what an inbound message does to a ticket.

Who wrote a message decides what it may do (`classify_author`): only an engineer writing
through their own reply token for this ticket has commands applied and words relayed to the
customer (`engineers`); a customer's mail opens, confirms, reopens or joins a ticket
(`customers`); a message to a ticket closed longer than the reopen window opens a follow-up.
Every status change goes through the state machine in `states`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.inbound import Inbound
from gateway.threader import ThreadMatch
from gateway.trail import Filing
from gateway.workflow.customers import apply_customer_message, open_ticket
from gateway.workflow.engineers import apply_engineer_message, keep_unverified
from gateway.workflow.people import remember_names
from gateway.workflow.service import refresh_clocks, touches_clocks
from gateway.workflow.states import (
    ALLOWED,
    STATUS_EVENTS,
    Applied,
    Author,
    CommandResult,
    Rules,
    close_if_unanswered,
    transition,
)
from storage.models import Participant, ParticipantRole, Ticket, TicketStatus

__all__ = [
    "ALLOWED",
    "STATUS_EVENTS",
    "Applied",
    "Author",
    "CommandResult",
    "Rules",
    "apply",
    "close_if_unanswered",
    "locked_ticket",
    "transition",
]


def apply(filing: Filing, match: ThreadMatch, rules: Rules) -> Applied:
    """What the filing's message does: a new ticket, or a change to the one it joins; the
    ticket's service-level clocks follow, and the people on it are then known by the names
    the message gives them."""
    applied = file_message(filing, match, rules)
    if not applied.new_ticket and touches_clocks(applied.events):
        refresh_clocks(filing.session, applied.ticket, rules.service)
    if not filing.inbound.automatic:
        remember_names(applied.ticket, filing.inbound.sender, filing.inbound.mail)
    return applied


def file_message(filing: Filing, match: ThreadMatch, rules: Rules) -> Applied:
    """The new ticket the message opens, or what it does to the one it joins."""
    if match.ticket_id is None:
        related = filing.session.get(Ticket, match.related_to) if match.related_to else None
        return open_ticket(filing, rules, related_to=related)
    ticket = locked_ticket(filing.session, match.ticket_id)
    author = classify_author(filing, match.token_participant_id, rules)
    while wants_follow_up(ticket, filing.inbound, author, rules):
        follow_up = latest_follow_up(filing.session, ticket)
        if follow_up is None:
            return open_ticket(filing, rules, follow_up_of=ticket)
        ticket = follow_up  # Later replies to the old thread join its follow-up.
    return apply_to_ticket(filing, ticket, author, match.token_participant_id, rules)


def locked_ticket(session: Session, ticket_id: int) -> Ticket:
    """The ticket, or the one it was merged into, locked so that a timer or another process
    cannot change it under this message."""
    ticket = session.get_one(Ticket, ticket_id, with_for_update=True)
    while ticket.merged_into is not None:
        ticket = session.get_one(Ticket, ticket.merged_into, with_for_update=True)
    return ticket


def classify_author(filing: Filing, token_participant_id: int | None, rules: Rules) -> Author:
    """Who wrote this, judged by the reply token it came through, never by `From:` alone."""
    sender = filing.inbound.sender
    through = (
        filing.session.get(Participant, token_participant_id) if token_participant_id else None
    )
    if through is not None and through.role is ParticipantRole.ENGINEER:
        if through.address == sender and rules.engineer(sender) is not None:
            return Author.ENGINEER
        return Author.THIRD_PARTY
    if rules.engineer(sender) is not None:
        return Author.UNVERIFIED_ENGINEER
    return Author.CUSTOMER


def wants_follow_up(ticket: Ticket, inbound: Inbound, author: Author, rules: Rules) -> bool:
    """A customer writing to a ticket closed longer than the reopen window starts a new one."""
    return (
        author is Author.CUSTOMER
        and not inbound.automatic
        and ticket.status is TicketStatus.CLOSED
        and inbound.at - ticket.status_changed_at > rules.reopen_window
    )


def latest_follow_up(session: Session, ticket: Ticket) -> Ticket | None:
    return session.scalars(
        select(Ticket).where(Ticket.follow_up_of == ticket.id).order_by(Ticket.id.desc()).limit(1)
    ).first()


def apply_to_ticket(
    filing: Filing, ticket: Ticket, author: Author, token_participant_id: int | None, rules: Rules
) -> Applied:
    """What a message on an existing ticket does, by who wrote it."""
    if author is Author.ENGINEER:
        assert token_participant_id is not None
        through = filing.session.get_one(Participant, token_participant_id)
        return apply_engineer_message(filing, ticket, through, rules)
    if author is Author.CUSTOMER:
        return apply_customer_message(filing, ticket, rules)
    return keep_unverified(filing, ticket, author, rules)
