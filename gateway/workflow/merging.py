"""`#merge N`: two tickets that are one request become one.

The older ticket survives: the other's messages (with their attachments) and events move to
it, and its people join it (a requester as someone in copy, so a customer's second address
hears of the ticket). The newer one closes, pointing at the survivor; later mail to it,
through its reply tokens or Message-IDs, is filed on the survivor.
"""

from __future__ import annotations

from gateway.errors import CommandRefused
from gateway.phrases import Phrase
from gateway.trail import Filing, find_participant, record, touch
from gateway.workflow.states import S, transition
from storage.models import Event, EventKind, Message, Participant, ParticipantRole, Ticket
from storage.rows import move_trail

# What a person on the merged ticket becomes on the survivor.
ROLE_ON_SURVIVOR = {
    ParticipantRole.REQUESTER: ParticipantRole.CC,
    ParticipantRole.CC: ParticipantRole.CC,
    ParticipantRole.ENGINEER: ParticipantRole.ENGINEER,
    ParticipantRole.COPIED: ParticipantRole.COPIED,
}


def merge(filing: Filing, ticket: Ticket, number: int, message: Message) -> tuple[Phrase, Event]:
    """Merge `ticket` and ticket `number`: the older one keeps both."""
    other = mergeable(filing, ticket, number)
    survivor, merged = (ticket, other) if ticket.id < other.id else (other, ticket)
    join_people(filing, merged, survivor)
    move_trail(filing.session, merged, survivor)
    merged.merged_into = survivor.id
    merged.service_check_at = merged.awaiting_shift_since = None
    touch(merged, filing.inbound.at)
    touch(survivor, filing.inbound.at)
    pointer = f"merged into #{survivor.id}"
    if merged.status is S.CLOSED:
        record(filing, merged, EventKind.MERGED, detail=pointer)
    else:
        transition(filing, merged, S.CLOSED, None, EventKind.MERGED, pointer)
    event = record(filing, survivor, EventKind.MERGED, message, f"#{merged.id} merged into it")
    said = Phrase(
        f"#{merged.id} merged into #{survivor.id}, which now holds both",
        f"#{merged.id} 已合并到 #{survivor.id}，两者的内容都在 #{survivor.id} 中",
    )
    return said, event


def mergeable(filing: Filing, ticket: Ticket, number: int) -> Ticket:
    """The other ticket, locked; `CommandRefused` when it cannot be merged with `ticket`."""
    if number == ticket.id:
        raise CommandRefused(
            Phrase(
                f"this is ticket #{number}; name the other ticket",
                f"这就是工单 #{number}；请写另一个工单的编号",
            )
        )
    other = filing.session.get(Ticket, number, with_for_update=True)
    if other is None:
        raise CommandRefused(Phrase(f"there is no ticket #{number}", f"没有工单 #{number}"))
    if other.merged_into is not None:
        into = other.merged_into
        raise CommandRefused(
            Phrase(
                f"#{number} was merged into #{into}; merge with that",
                f"#{number} 已合并到 #{into}；请与 #{into} 合并",
            )
        )
    return other


def join_people(filing: Filing, merged: Ticket, survivor: Ticket) -> None:
    """Everyone on `merged` is on `survivor` too; one in copy there who is mailed here is
    mailed there from now on."""
    for person in list(merged.participants):
        role = ROLE_ON_SURVIVOR[person.role]
        found = find_participant(survivor, person.address)
        if found is None:
            filing.session.add(Participant(ticket=survivor, address=person.address, role=role))
        elif found.role is ParticipantRole.COPIED and role is not ParticipantRole.COPIED:
            found.role = role
