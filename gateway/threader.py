"""Which ticket a message belongs to.

In order: a valid reply token in a recipient address; then `In-Reply-To` and `References`
against every Message-ID the gateway stored or sent; for a delivery status notification,
the Message-ID of the message it returns, if we sent it; then a subject tag `[Support #123]`.
Anything else opens a new ticket.

Message-IDs and tags are easy to quote or copy, so they only let in someone already on the
ticket (a participant, someone in copy of its mail, an engineer). Anyone else who refers to
it gets a new ticket of their own, related to that one (`ThreadMatch.related_to`); a
delivery report is not anyone's words, and goes to the ticket whose mail it returns.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.bounces import returned_ticket
from gateway.inbound import Inbound
from gateway.parsing import ParsedMail
from gateway.tokens import read_token, token_in_address
from storage.models import Message, Participant, Ticket


class ThreadMethod(enum.StrEnum):
    """How a message's ticket was found; receipts record it ("threaded by token")."""

    TOKEN = "token"
    IN_REPLY_TO = "in-reply-to"
    REFERENCES = "references"
    RETURNED_MESSAGE = "returned-message"
    SUBJECT_TAG = "subject-tag"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """The ticket a message joins (None: a new one), how it was found, and via whose token."""

    ticket_id: int | None
    method: ThreadMethod
    participant_id: int | None = None
    # For a new ticket: the ticket its sender referred to but is not on.
    related_to: int | None = None

    @property
    def token_participant_id(self) -> int | None:
        """Whose reply token the message came through: only a token proves who wrote."""
        return self.participant_id if self.method is ThreadMethod.TOKEN else None


NEW_TICKET = ThreadMatch(None, ThreadMethod.NEW)


@dataclass(frozen=True, slots=True)
class ThreadRules:
    """What finding a ticket needs from the settings."""

    secret: bytes
    support_address: str
    subject_tag: str
    engineer_addresses: frozenset[str] = frozenset()


def subject_tag_pattern(tag: str) -> re.Pattern[str]:
    return re.compile(rf"\[\s*{re.escape(tag)}\s*#\s*(\d{{1,12}})\s*\]", re.IGNORECASE)


def find_ticket(session: Session, inbound: Inbound, rules: ThreadRules) -> ThreadMatch:
    """Decide which ticket `inbound` belongs to; see the module docstring for the order."""
    mail = inbound.mail
    token = match_token(session, inbound.recipients, rules)
    if token is not None:
        return token
    if mail.is_bounce:
        return match_headers(session, mail) or match_returned(session, mail) or NEW_TICKET
    referred = match_headers(session, mail) or match_subject_tag(session, mail, rules.subject_tag)
    if referred is None:
        return NEW_TICKET
    assert referred.ticket_id is not None
    if is_on_ticket(session, referred.ticket_id, inbound.sender, rules.engineer_addresses):
        return referred
    return ThreadMatch(None, ThreadMethod.NEW, related_to=referred.ticket_id)


def is_on_ticket(session: Session, ticket_id: int, sender: str, engineers: frozenset[str]) -> bool:
    """Whether `sender` may join the ticket without a token: an engineer, or someone on it
    (in any role, those in copy of its mail too)."""
    if sender in engineers:
        return True
    found = session.scalars(
        select(Participant.id)
        .where(Participant.ticket_id == ticket_id, Participant.address == sender)
        .limit(1)
    ).first()
    return found is not None


def match_token(
    session: Session, recipients: Iterable[str], rules: ThreadRules
) -> ThreadMatch | None:
    for address in recipients:
        text = token_in_address(address, rules.support_address)
        token = read_token(rules.secret, text) if text else None
        if token is None:
            continue
        participant = session.get(Participant, token.participant_id)
        if participant is not None and participant.ticket_id == token.ticket_id:
            return ThreadMatch(token.ticket_id, ThreadMethod.TOKEN, participant.id)
    return None


def match_headers(session: Session, mail: ParsedMail) -> ThreadMatch | None:
    # In-Reply-To names the direct parent; References is oldest first, so read it backwards.
    candidates = [(ThreadMethod.IN_REPLY_TO, m) for m in mail.in_reply_to]
    candidates += [(ThreadMethod.REFERENCES, m) for m in reversed(mail.references)]
    for method, message_id in candidates:
        if message_id == mail.message_id:
            continue
        ticket_id = session.scalars(
            select(Message.ticket_id).where(Message.message_id == message_id).limit(1)
        ).first()
        if ticket_id is not None:
            return ThreadMatch(ticket_id, method)
    return None


def match_returned(session: Session, mail: ParsedMail) -> ThreadMatch | None:
    """A bounce of one of our own mails belongs to that mail's ticket."""
    ticket_id = returned_ticket(session, mail)
    return ThreadMatch(ticket_id, ThreadMethod.RETURNED_MESSAGE) if ticket_id else None


def match_subject_tag(session: Session, mail: ParsedMail, subject_tag: str) -> ThreadMatch | None:
    found = subject_tag_pattern(subject_tag).search(mail.subject)
    if found is None:
        return None
    ticket = session.get(Ticket, int(found.group(1)))
    return ThreadMatch(ticket.id, ThreadMethod.SUBJECT_TAG) if ticket is not None else None
