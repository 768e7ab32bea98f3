"""What a customer's mail does: a new ticket, a follow-up of a closed one, a confirmation
that closes or reopens, or simply words added to the ticket.

Only someone already on the customer's side of a ticket changes its status or brings in the
people they copy; automatic mail (out-of-office and the like) changes nothing.
"""

from __future__ import annotations

from gateway.confirmation import Confirmation, classify_confirmation
from gateway.inbound import Inbound
from gateway.trail import (
    Filing,
    add_participant,
    find_participant,
    inbound_message,
    note_broken_structure,
    record,
    store_inbound,
)
from gateway.workflow.states import Applied, Author, Rules, S, transition
from storage.models import (
    Event,
    EventKind,
    Message,
    Participant,
    ParticipantRole,
    Ticket,
    TicketStatus,
)
from storage.rows import add_new_ticket


def open_ticket(filing: Filing, rules: Rules, follow_up_of: Ticket | None = None) -> Applied:
    """A new ticket from the message: requester, CCs, the L1 engineers, first message, event."""
    inbound, mail = filing.inbound, filing.inbound.mail
    # Built apart from the session and written with plain inserts (`storage/rows.py`):
    # nothing about a new ticket needs the unit of work.
    ticket = new_ticket(inbound, follow_up_of)
    requester = Participant(ticket=ticket, address=inbound.sender, role=ParticipantRole.REQUESTER)
    add_first_participants(ticket, inbound, rules)
    # A follow-up is a reply to the old thread: its quoted history belongs to the old ticket.
    text = (mail.reply_text or mail.text) if follow_up_of else mail.text
    message = inbound_message(filing, ticket, text)
    created = Event(
        ticket=ticket,
        type=EventKind.CREATED,
        actor=inbound.sender,
        at=inbound.at,
        to_status=TicketStatus.NEW,
        message=message,
        detail=f"follow-up of #{follow_up_of.id}" if follow_up_of else "",
    )
    rows = (*ticket.participants, message, *message.attachments, created)
    add_new_ticket(filing.session, ticket, *rows)
    note_broken_structure(filing, ticket, message)
    if follow_up_of is not None:
        # The new ticket's number goes into the old ticket's trail.
        record(filing, follow_up_of, EventKind.FOLLOWED_UP, detail=f"#{ticket.id}")
    return Applied(
        inbound,
        ticket,
        message,
        Author.CUSTOMER,
        sender=requester,
        new_ticket=True,
        follow_up_of=follow_up_of,
    )


def new_ticket(inbound: Inbound, follow_up_of: Ticket | None) -> Ticket:
    """The ticket row a message opens; a follow-up keeps the old ticket's subject, not
    "Re: [Support #1] Closed: ..."."""
    mail, now = inbound.mail, inbound.at
    subject = follow_up_of.subject if follow_up_of else mail.subject or "(no subject)"
    return Ticket(
        status=TicketStatus.NEW,
        subject=subject[:998],
        requester=inbound.sender,
        requester_name=mail.from_name,
        language=mail.language,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        follow_up_of=follow_up_of.id if follow_up_of else None,
    )


def add_first_participants(ticket: Ticket, inbound: Inbound, rules: Rules) -> None:
    """The people the customer copied, and the L1 engineers, on a new ticket."""
    for address in inbound.mail.cc_addresses:  # A CC field may name one address twice.
        if find_participant(ticket, address) is None and not rules.is_gateway_side(address):
            Participant(ticket=ticket, address=address, role=ParticipantRole.CC)
    for engineer in rules.tier("L1"):
        if (
            engineer.address != inbound.sender
            and find_participant(ticket, engineer.address) is None
        ):
            Participant(ticket=ticket, address=engineer.address, role=ParticipantRole.ENGINEER)


def apply_customer_message(filing: Filing, ticket: Ticket, rules: Rules) -> Applied:
    """A customer's message: confirms, reopens, or simply joins the ticket.

    Only someone already on the customer's side of the ticket changes its status or brings
    in the people they copy. Anyone else who threads onto it (by quoting a Message-ID) is
    heard by the engineers but never added, so no ticket mail goes to them.
    """
    inbound = filing.inbound
    text = inbound.mail.reply_text or inbound.mail.text
    message = store_inbound(filing, ticket, text)
    on_ticket = find_participant(ticket, inbound.sender)
    if inbound.automatic:
        # An out-of-office reply or a bounce is kept, but never confirms, reopens or closes.
        event = record(filing, ticket, EventKind.AUTOMATIC_REPLY, message, inbound.automatic)
    elif on_ticket is None:
        event = record(
            filing, ticket, EventKind.MESSAGE_ADDED, message, "from someone not on the ticket"
        )
    else:
        add_copied_people(filing, ticket, rules)
        event = customer_event(filing, ticket, text, message)
    return Applied(inbound, ticket, message, Author.CUSTOMER, sender=on_ticket, events=(event,))


def customer_event(filing: Filing, ticket: Ticket, text: str, message: Message) -> Event:
    """What a customer's words do to the ticket's status, given the status it is in."""
    if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return read_confirmation(filing, ticket, text, message)
    if ticket.status is TicketStatus.WAITING:
        return transition(filing, ticket, S.OPEN, message, detail="the customer replied")
    return record(filing, ticket, EventKind.MESSAGE_ADDED, message)


def add_copied_people(filing: Filing, ticket: Ticket, rules: Rules) -> None:
    """People a customer copies become CCs of the ticket (never the gateway or engineers)."""
    mail = filing.inbound.mail
    for address in (*mail.to_addresses, *mail.cc_addresses):
        if not rules.is_gateway_side(address) and find_participant(ticket, address) is None:
            add_participant(filing.session, ticket, address, ParticipantRole.CC)


def read_confirmation(filing: Filing, ticket: Ticket, text: str, message: Message) -> Event:
    """The customer's answer to "is it fixed?": fixed closes; anything else reopens.

    A closed ticket reads its answers the same way, so a late "works now, thanks" (after
    auto-close, or a second click on the "fixed" link) leaves it closed.
    """
    answer = classify_confirmation(text, filing.inbound.mail.subject)
    if answer is Confirmation.FIXED and ticket.status is TicketStatus.CLOSED:
        return record(
            filing,
            ticket,
            EventKind.MESSAGE_ADDED,
            message,
            "the customer confirmed it is fixed; it stays closed",
        )
    if answer is Confirmation.FIXED:
        return transition(
            filing,
            ticket,
            S.CLOSED,
            message,
            EventKind.CONFIRMED,
            "the customer confirmed it is fixed",
        )
    why = (
        "the customer says it is not fixed"
        if answer is Confirmation.NOT_FIXED
        else "the customer wrote again without confirming the fix"
    )
    return transition(filing, ticket, S.OPEN, message, EventKind.REOPENED, why)
