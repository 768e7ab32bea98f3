"""What a customer's mail does: a new ticket, a follow-up of a closed one, a confirmation
that closes or reopens, or simply words added to the ticket.

Only someone already on the customer's side of a ticket changes its status or brings in the
people they copy; automatic mail (out-of-office and the like) changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.confirmation import Confirmation, classify_confirmation
from gateway.inbound import Inbound
from gateway.intake import read_first_mail
from gateway.trail import (
    Filing,
    find_participant,
    inbound_message,
    record,
    store_inbound,
)
from gateway.workflow.articles import solved_by_article
from gateway.workflow.intake import first_ask, learn_from_first_mail, learn_from_reply
from gateway.workflow.people import CopiedPeople, copied_people, copied_rows, not_added_detail
from gateway.workflow.routing import assign_new, least_loaded, offer, route
from gateway.workflow.service import first_priority, start_clocks
from gateway.workflow.states import Applied, Author, Rules, S, transition
from storage.models import (
    Event,
    EventKind,
    Message,
    Participant,
    ParticipantRole,
    Priority,
    Ticket,
    TicketStatus,
)
from storage.rows import add_new_ticket


def open_ticket(
    filing: Filing,
    rules: Rules,
    follow_up_of: Ticket | None = None,
    related_to: Ticket | None = None,
) -> Applied:
    """A new ticket from the message: requester, the people in copy, the L1 engineers, the
    first message and its events."""
    inbound, mail = filing.inbound, filing.inbound.mail
    if rules.intake.enabled and filing.first_mail is None:
        # Read once for the facts and the priority, unless the parser read it ahead.
        filing = replace(filing, first_mail=read_first_mail(mail.intake_text()))
    # Built apart from the session and written with plain inserts (`storage/rows.py`):
    # nothing about a new ticket needs the unit of work.
    ticket = new_ticket(inbound, follow_up_of)
    requester = Participant(ticket=ticket, address=inbound.sender, role=ParticipantRole.REQUESTER)
    people = copied_people(inbound, ticket, rules)
    copied_rows(ticket, people)
    # A follow-up is a reply to the old thread: its quoted history belongs to the old ticket.
    text = (mail.reply_text or mail.text) if follow_up_of else mail.text
    message = inbound_message(filing, ticket, text)
    detail = f"follow-up of #{follow_up_of.id}" if follow_up_of else ""
    events = [new_event(filing, ticket, EventKind.CREATED, message, detail)]
    events += serve(filing, ticket, message, rules)
    events += first_notes(filing, ticket, message, people, related_to, rules)
    if rules.intake.enabled:
        events += learn_from_first_mail(filing, ticket, message)
    rows = (*ticket.participants, message, *message.attachments, *ticket.facts, *events)
    add_new_ticket(filing.session, ticket, *rows)
    if follow_up_of is not None:
        # The new ticket's number goes into the old ticket's trail.
        record(filing, follow_up_of, EventKind.FOLLOWED_UP, detail=f"#{ticket.id}")
    if related_to is not None:
        about = f"#{ticket.id}, from {inbound.sender}, who is not on this ticket, refers to it"
        record(filing, related_to, EventKind.RELATED, detail=about)
    return Applied(
        inbound,
        ticket,
        message,
        Author.CUSTOMER,
        sender=requester,
        new_ticket=True,
        follow_up_of=follow_up_of,
        not_added=people.not_added,
        related_to=related_to,
        ask=first_ask(ticket, rules.intake),
    )


def new_event(
    filing: Filing, ticket: Ticket, kind: EventKind, message: Message, detail: str = ""
) -> Event:
    """An event of a ticket being opened, built for its plain insert."""
    inbound = filing.inbound
    to_status = TicketStatus.NEW if kind is EventKind.CREATED else None
    return Event(
        ticket=ticket,
        type=kind,
        actor=inbound.sender,
        at=inbound.at,
        to_status=to_status,
        message=message,
        detail=detail,
    )


def first_notes(
    filing: Filing,
    ticket: Ticket,
    message: Message,
    people: CopiedPeople,
    related_to: Ticket | None,
    rules: Rules,
) -> list[Event]:
    """What the trail of a new ticket says besides its opening: whom it did not add,
    which ticket it refers to, where its sender's address came from, what was broken in
    its structure."""
    events = []
    if people.not_added:
        detail = not_added_detail(people, rules.max_people_added)
        events.append(new_event(filing, ticket, EventKind.PEOPLE_NOT_ADDED, message, detail))
    if related_to is not None:
        detail = (
            f"related to #{related_to.id}: the sender referred to it but is not on it, "
            "so this is a ticket of its own (#merge joins them)"
        )
        events.append(new_event(filing, ticket, EventKind.RELATED, message, detail))
    if filing.inbound.sender_source:
        detail = sender_source_detail(filing.inbound)
        events.append(new_event(filing, ticket, EventKind.SENDER_NOT_FROM, message, detail))
    if broken := filing.inbound.mail.structure_broken:
        events.append(new_event(filing, ticket, EventKind.STRUCTURE_BROKEN, message, broken))
    return events


def sender_source_detail(inbound: Inbound) -> str:
    """The trail's words for a sender read from elsewhere than `From:`."""
    return (
        f"filed under the {inbound.sender_source} address {inbound.sender}: "
        "the message has no usable From address"
    )


def new_ticket(inbound: Inbound, follow_up_of: Ticket | None) -> Ticket:
    """The ticket row a message opens; a follow-up keeps the old ticket's subject, not
    "Re: [Support #1] Closed: ..."."""
    mail, now = inbound.mail, inbound.at
    return Ticket(
        status=TicketStatus.NEW,
        priority=Priority.P3,
        subject=follow_up_of.subject if follow_up_of else ticket_subject(mail.subject),
        requester=inbound.sender,
        requester_name=mail.from_name,
        language=mail.language,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        follow_up_of=follow_up_of.id if follow_up_of else None,
    )


def ticket_subject(mail_subject: str) -> str:
    """A new ticket's subject: its first mail's, as much of it as a subject keeps."""
    return (mail_subject or "(no subject)")[:998]


def serve(filing: Filing, ticket: Ticket, message: Message, rules: Rules) -> list[Event]:
    """The service a new ticket gets: its priority, the engineers on shift it goes to (or
    the shift it waits for), its assignee, and its clocks started."""
    events = []
    if (priority := first_priority(filing, ticket, rules.service)) is not None:
        priority.message = message
        events.append(priority)
    inbound = filing.inbound
    routing = route(rules.roster, ticket.priority, inbound.at, inbound.sender)
    offer(ticket, routing.offered)
    if routing.waits:
        ticket.awaiting_shift_since = inbound.at
    if rules.service.assign == "least_loaded" and routing.first_line:
        chosen = least_loaded(filing.session, routing.offered)
        events.append(assign_new(filing, ticket, chosen, message))
    sent_at = inbound.mail.sent_at
    offset = sent_at.utcoffset() if sent_at is not None else None
    if offset is not None:
        ticket.customer_utc_offset = int(offset.total_seconds() // 60)
    start_clocks(ticket, rules.service)
    return events


def apply_customer_message(filing: Filing, ticket: Ticket, rules: Rules) -> Applied:
    """A customer's message: confirms, reopens, or simply joins the ticket.

    Only someone on the customer's side of the ticket changes its status or brings in the
    people they copy. Someone in copy but not mailed (`COPIED`) is heard by the engineers,
    and changes nothing.
    """
    inbound = filing.inbound
    text = inbound.mail.reply_text or inbound.mail.text
    message = store_inbound(filing, ticket, text)
    on_ticket = find_participant(ticket, inbound.sender)
    not_added: tuple[str, ...] = ()
    if inbound.automatic:
        # An out-of-office reply or a bounce is kept, but never confirms, reopens or closes.
        events = [record(filing, ticket, EventKind.AUTOMATIC_REPLY, message, inbound.automatic)]
    elif on_ticket is None or on_ticket.role is ParticipantRole.COPIED:
        why = (
            "from someone in copy, who is sent nothing"
            if on_ticket
            else "from someone not on the ticket"
        )
        events = [record(filing, ticket, EventKind.MESSAGE_ADDED, message, why)]
        on_ticket = None
    else:
        events, not_added = bring_in_copied(filing, ticket, message, rules)
        if rules.intake.enabled:
            events += learn_from_reply(filing, ticket, message)
        events += solved_by_article(filing, ticket, text, message) or [
            customer_event(filing, ticket, text, message)
        ]
    if inbound.sender_source:
        detail = sender_source_detail(inbound)
        events.append(record(filing, ticket, EventKind.SENDER_NOT_FROM, message, detail))
    return Applied(
        inbound,
        ticket,
        message,
        Author.CUSTOMER,
        sender=on_ticket,
        events=tuple(events),
        not_added=not_added,
    )


def bring_in_copied(
    filing: Filing, ticket: Ticket, message: Message, rules: Rules
) -> tuple[list[Event], tuple[str, ...]]:
    """The people a customer copies join the ticket, within the limit; the trail's event
    about those who did not, and who they are."""
    people = copied_people(filing.inbound, ticket, rules)
    filing.session.add_all(copied_rows(ticket, people))
    if not people.not_added:
        return [], ()
    detail = not_added_detail(people, rules.max_people_added)
    return [record(filing, ticket, EventKind.PEOPLE_NOT_ADDED, message, detail)], people.not_added


def customer_event(filing: Filing, ticket: Ticket, text: str, message: Message) -> Event:
    """What a customer's words do to the ticket's status, given the status it is in."""
    if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return read_confirmation(filing, ticket, text, message)
    if ticket.status is TicketStatus.WAITING:
        return transition(filing, ticket, S.OPEN, message, detail="the customer replied")
    return record(filing, ticket, EventKind.MESSAGE_ADDED, message)


def read_confirmation(filing: Filing, ticket: Ticket, text: str, message: Message) -> Event:
    """The customer's answer to "is it fixed?": fixed closes; not fixed, a new question or a
    new problem reopens; an answer that says neither yet ("thanks, will test tomorrow")
    changes nothing.

    A closed ticket reads its answers the same way, so a late "works now, thanks" (after
    auto-close, or a second click on the "fixed" link) leaves it closed.
    """
    answer = classify_confirmation(text, filing.inbound.mail.subject)
    if answer is Confirmation.NEITHER:
        # Auto-close counts on from the resolve, as if nothing had been said.
        why = (
            "the customer answered without saying whether it is fixed; "
            f"it stays {ticket.status.value}"
        )
        return record(filing, ticket, EventKind.MESSAGE_ADDED, message, why)
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
        else "the customer asked something new or reported a new problem"
    )
    return transition(filing, ticket, S.OPEN, message, EventKind.REOPENED, why)
