"""Delivery status notifications (bounces): the one home of what they do.

`parsing` reads a bounce (whether a message is one, the addresses that failed for good, the
Message-IDs of the message it returns); everything after that is here. A bounce never
opens a ticket and is never answered (`loops` marks it automatic). One that returns a
message of ours belongs to that message's ticket (`returned_ticket`, which the threader
asks); it is kept there as an internal message, and those of the ticket's addresses that
failed for good are held: not mailed until the hold ends (`loops` reads the holds). Only
the ticket's own participants are held, so a forged bounce cannot silence anyone else. A
bounce about no message of ours changes nothing and is only recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.parsing import ParsedMail
from gateway.trail import Filing, record, store_inbound
from storage.models import AddressHold, Direction, EventKind, Message, Ticket


def returned_ticket(session: Session, mail: ParsedMail) -> int | None:
    """The ticket of the message of ours a bounce returns, if it returns one."""
    if mail.report is None or not mail.report.returned_message_ids:
        return None
    return session.scalars(
        select(Message.ticket_id)
        .where(
            Message.message_id.in_(mail.report.returned_message_ids),
            Message.direction == Direction.OUT,
        )
        .limit(1)
    ).first()


def file_bounce(filing: Filing, ticket_id: int | None, hold: timedelta) -> Message | None:
    """Keep a bounce on the ticket whose mail it returns and hold the addresses that
    failed; the message it became, or None when it is about no ticket of ours."""
    if ticket_id is None:
        return None
    # Locked, so a timer or another process cannot change it under this message.
    ticket = filing.session.get_one(Ticket, ticket_id, with_for_update=True)
    message = store_inbound(filing, ticket, filing.inbound.mail.text, internal=True)
    held = hold_failed_addresses(filing, ticket, hold)
    until = filing.inbound.at + hold
    detail = (
        f"permanent failure for {', '.join(held)}; not mailed until {until:%Y-%m-%d}"
        if held
        else "a delivery report with no permanent failure of ours"
    )
    record(filing, ticket, EventKind.BOUNCED, message, detail)
    return message


def hold_failed_addresses(filing: Filing, ticket: Ticket, hold: timedelta) -> list[str]:
    """Hold the ticket's addresses the bounce reports as failing for good; those held."""
    report = filing.inbound.mail.report
    on_ticket = {p.address for p in ticket.participants}
    failed = [a for a in (report.failed_recipients if report else ()) if a in on_ticket]
    for address in failed:
        hold_address(filing.session, address, ticket.id, filing.inbound.at, hold)
    return failed


def hold_address(
    session: Session, address: str, ticket_id: int, now: datetime, hold: timedelta
) -> None:
    """Mail to `address` waits until `now + hold`; a longer hold already there stays."""
    until = now + hold
    reason = f"bounced permanently (ticket #{ticket_id})"
    found = session.scalars(select(AddressHold).where(AddressHold.address == address)).first()
    if found is None:
        session.add(
            AddressHold(
                address=address, until=until, reason=reason, ticket_id=ticket_id, created_at=now
            )
        )
    else:
        found.until, found.reason, found.ticket_id = max(found.until, until), reason, ticket_id
