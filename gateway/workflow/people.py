"""Who is on a ticket: the people a customer's mail brings in, within a limit, and those an
engineer adds or drops on purpose (`#cc`, `#uncc`).

A message with hundreds of addresses in Cc must not make hundreds of recipients of every
later notice. One message adds at most `Rules.max_people_added` people; the others are
kept as in copy (`ParticipantRole.COPIED`): they may write to the ticket, which hears them,
and they are sent nothing. The engineers' notice names them, and `#cc` adds one.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import CommandRefused
from gateway.inbound import Inbound
from gateway.parsing import ParsedMail
from gateway.phrases import Phrase
from gateway.trail import Filing, add_participant, find_participant, record
from gateway.workflow.states import Rules
from storage.models import Event, EventKind, Message, Participant, ParticipantRole, Ticket

# People over the limit remembered as in copy, per message; the rest are only counted.
MAX_COPIED_KEPT = 500
# Addresses named in the trail's event about people not added.
NAMED_IN_TRAIL = 20
# The roles that receive the ticket's mail on the customer's side.
MAILED_ROLES = (ParticipantRole.REQUESTER, ParticipantRole.CC)


@dataclass(frozen=True, slots=True)
class CopiedPeople:
    """The new people in a message's To and Cc: those added, and those over the limit."""

    added: tuple[str, ...]
    not_added: tuple[str, ...]


def copied_people(inbound: Inbound, ticket: Ticket, rules: Rules) -> CopiedPeople:
    """Who in To and Cc is new to the ticket (never the gateway, an engineer, or someone on
    it already), in the order they were written, split at the limit."""
    known = {p.address for p in ticket.participants if p.role is not ParticipantRole.COPIED}
    known.add(inbound.sender)
    new: list[str] = []
    for address in (*inbound.mail.to_addresses, *inbound.mail.cc_addresses):
        if address not in known and not rules.is_gateway_side(address):
            known.add(address)
            new.append(address)
    limit = rules.max_people_added
    return CopiedPeople(tuple(new[:limit]), tuple(new[limit:]))


def copied_rows(ticket: Ticket, people: CopiedPeople) -> list[Participant]:
    """Participant rows for `people` on `ticket`: mailed if added, else only in copy. One
    already in copy who is now added is mailed from now on."""
    rows = []
    for address in people.added:
        found = find_participant(ticket, address)
        if found is not None:
            found.role = ParticipantRole.CC
        else:
            rows.append(Participant(ticket=ticket, address=address, role=ParticipantRole.CC))
    known = {p.address for p in ticket.participants}
    for address in people.not_added[:MAX_COPIED_KEPT]:
        if address not in known:
            rows.append(Participant(ticket=ticket, address=address, role=ParticipantRole.COPIED))
    return rows


def not_added_detail(people: CopiedPeople, limit: int) -> str:
    """The trail's words for the people a message did not add."""
    named = ", ".join(people.not_added[:NAMED_IN_TRAIL])
    more = len(people.not_added) - NAMED_IN_TRAIL
    named += f" and {more} more" if more > 0 else ""
    return (
        f"{len(people.not_added)} people in copy not added (at most {limit} per message): "
        f"{named}; they are sent nothing until an engineer adds one with #cc ADDRESS"
    )


def add_person(
    filing: Filing, ticket: Ticket, address: str, message: Message, rules: Rules
) -> tuple[Phrase, Event]:
    """`#cc ADDRESS`: the person receives the ticket's mail from now on."""
    if rules.is_gateway_side(address):
        raise CommandRefused(
            Phrase(
                f"{address} is the support address or an engineer's (use #assign)",
                f"{address} 是支持地址或工程师的地址（请用 #assign）",
            )
        )
    found = find_participant(ticket, address)
    if found is not None and found.role is not ParticipantRole.COPIED:
        raise CommandRefused(
            Phrase(f"{address} is already on the ticket", f"{address} 已经在工单上")
        )
    if found is not None:
        found.role = ParticipantRole.CC
    else:
        add_participant(filing.session, ticket, address, ParticipantRole.CC)
    event = record(filing, ticket, EventKind.PARTICIPANT_ADDED, message, address)
    said = Phrase(
        f"{address} added: they receive the ticket's mail",
        f"已加入 {address}：此人将收到本工单的邮件",
    )
    return said, event


def drop_person(
    filing: Filing, ticket: Ticket, address: str, message: Message
) -> tuple[Phrase, Event]:
    """`#uncc ADDRESS`: the person stays in copy (may still write) but is sent nothing."""
    found = find_participant(ticket, address)
    if found is None or found.role not in MAILED_ROLES:
        raise CommandRefused(
            Phrase(
                f"{address} is not among the people the ticket mails",
                f"{address} 不在本工单的收件人中",
            )
        )
    if found.role is ParticipantRole.REQUESTER:
        raise CommandRefused(
            Phrase(
                f"{address} opened the ticket and cannot be dropped",
                f"{address} 是提交工单的人，不能移除",
            )
        )
    found.role = ParticipantRole.COPIED
    event = record(filing, ticket, EventKind.PARTICIPANT_DROPPED, message, address)
    said = Phrase(
        f"{address} dropped: they receive no more mail from this ticket",
        f"已移除 {address}：此人不再收到本工单的邮件",
    )
    return said, event


def remember_names(ticket: Ticket, sender: str, mail: ParsedMail) -> None:
    """Keep the names people go by: the sender's signed name (else their display name, if
    they had none yet), and the display names To and Cc give people who have none yet."""
    named = dict(mail.recipient_names)
    for participant in ticket.participants:
        if participant.address == sender:
            participant.name = mail.signed_name or participant.name or usable(mail.from_name)
        elif not participant.name and participant.address in named:
            participant.name = named[participant.address]


def usable(display_name: str) -> str:
    """A display name fit to greet someone by: not an address, not too long."""
    name = " ".join(display_name.split())
    return "" if "@" in name or len(name) > 80 else name
