"""What an operator does to a ticket from the command line: assign it, tell its engineers
of it again, add an internal note, change its status.

For a ticket whose engineers have left, or one opened while none was configured. Each act
goes through the workflow and notification code an engineer's `#command` by mail goes
through, is recorded in the ticket's trail with the operator as its actor
(`operator:<login name>`, `storage.models.OPERATOR_ACTOR`), and is written in one
transaction with the mail it causes, which is sent before the command returns. An act the
workflow refuses changes nothing and sends nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pwd
from collections.abc import Callable, Iterator

from sqlalchemy.orm import Session

from gateway.app import Gateway
from gateway.database import transaction
from gateway.errors import ConfigError, NotFound, UsageError
from gateway.lookup import open_existing
from gateway.notifications import Notifier
from gateway.settings import Settings
from gateway.trail import Acting, engineer_participant, record
from gateway.workflow import Rules, locked_ticket
from gateway.workflow.engineers import assign, set_status
from gateway.workflow.service import refresh_clocks
from storage.models import OPERATOR_ACTOR, EventKind, Participant, Ticket, TicketStatus
from storage.rows import assign_ids

log = logging.getLogger(__name__)


def operator_name() -> str:
    """`operator:<login name>` of the user running the command, from the system's user
    database (not from the environment, which anyone can set); `operator` when it has no
    name for them (a container's bare uid)."""
    try:
        return f"{OPERATOR_ACTOR}:{pwd.getpwuid(os.getuid()).pw_name}"
    except KeyError:
        return OPERATOR_ACTOR


class Operator:
    """Acts on tickets as one operator, through the gateway's workflow and notifier."""

    def __init__(self, gateway: Gateway, actor: str) -> None:
        self.gateway = gateway
        self.actor = actor
        self.rules: Rules = gateway.executor.pipeline.rules
        self.notifier: Notifier = gateway.executor.pipeline.notifier

    @contextlib.contextmanager
    def acting_on(
        self, ticket_id: int, follow_merge: bool = True
    ) -> Iterator[tuple[Acting, Ticket]]:
        """The ticket, locked, in a transaction that commits the act with its mail. As mail
        to a merged ticket is, an act on one is the survivor's, unless the act is about that
        very ticket (`follow_merge` false)."""
        with transaction(self.gateway.sessions) as session:
            ticket = session.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise NotFound(f"no ticket #{ticket_id}")
            if follow_merge:
                ticket = locked_ticket(session, ticket_id)
            if ticket.id != ticket_id:
                merged = (ticket_id, ticket.id, ticket.id)
                log.warning("ticket #%d was merged into #%d: acting on #%d", *merged)
            yield Acting(session, self.actor, self.gateway.clock.now()), ticket

    def assign(self, ticket_id: int, address: str) -> str:
        """Assign to a configured engineer, who gets the usual assigned notice."""
        with self.acting_on(ticket_id) as (act, ticket):
            outcome, event = assign(act, ticket, address.strip().lower(), None, self.rules)
            assign_ids(act.session)  # The new participant's reply token needs its id.
            self.notifier.announce_event(act.session, event)
        return str(outcome)

    def set_status(self, ticket_id: int, status: TicketStatus) -> str:
        """Through the state machine; the customer and the engineers get the usual mail."""
        with self.acting_on(ticket_id) as (act, ticket):
            outcome, event = set_status(act, ticket, status, None)
            refresh_clocks(act.session, ticket, self.rules.service)
            self.notifier.announce_event(act.session, event)
        return str(outcome)

    def note(self, ticket_id: int, text: str) -> str:
        """An internal note on the trail; nobody is mailed."""
        if not text.strip():
            raise UsageError("note: the note is empty")
        with self.acting_on(ticket_id) as (act, ticket):
            record(act, ticket, EventKind.NOTE_ADDED, None, text.strip())
        return "internal note added"

    def notify(self, ticket_id: int) -> str:
        """The new-ticket notice again, each engineer with their own reply token: to the
        ticket's engineers, or to the L1 engineers when it has none."""
        with self.acting_on(ticket_id) as (act, ticket):
            engineers = self.engineers_to_tell(act.session, ticket)
            assign_ids(act.session)
            self.notifier.tell_engineers_again(act.session, ticket, engineers)
            names = ", ".join(engineer.address for engineer in engineers)
            record(act, ticket, EventKind.NOTIFIED, None, names)
        return f"new-ticket notice sent again to {names}"

    def revoke_links(self, ticket_id: int) -> str:
        """Every status and download link of this very ticket stops working (of a merged
        one too, whose old links would lead on to the ticket it went into); mail from now
        on carries new ones."""
        with self.acting_on(ticket_id, follow_merge=False) as (act, ticket):
            ticket.links_version += 1
            record(act, ticket, EventKind.LINKS_REVOKED, None, f"version {ticket.links_version}")
        return "every link to its pages revoked; the next mail carries new ones"

    def engineers_to_tell(self, session: Session, ticket: Ticket) -> list[Participant]:
        watching = self.notifier.audience.watchers(ticket)
        if watching:
            return watching
        first_line = self.rules.tier("L1")
        if not first_line:
            raise ConfigError(
                f"ticket #{ticket.id} has no engineers and no L1 engineers are configured "
                "(GATEWAY_ENGINEERS)"
            )
        return [engineer_participant(session, ticket, e.address) for e in first_line]


def run_assign(settings: Settings, args: argparse.Namespace) -> int:
    return act(
        settings, args.ticket_id, lambda operator: operator.assign(args.ticket_id, args.address)
    )


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    status = TicketStatus(args.status)
    return act(
        settings, args.ticket_id, lambda operator: operator.set_status(args.ticket_id, status)
    )


def run_note(settings: Settings, args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    return act(settings, args.ticket_id, lambda operator: operator.note(args.ticket_id, text))


def run_notify(settings: Settings, args: argparse.Namespace) -> int:
    return act(settings, args.ticket_id, lambda operator: operator.notify(args.ticket_id))


def run_links(settings: Settings, args: argparse.Namespace) -> int:
    return act(settings, args.ticket_id, lambda operator: operator.revoke_links(args.ticket_id))


def run_login_link(settings: Settings, args: argparse.Namespace) -> int:
    """Print a sign-in link to the engineers' queue for a configured engineer."""
    address = args.address.strip().lower()
    gateway = open_existing(settings, renders_mail=False)
    if gateway.executor.pipeline.rules.engineer(address) is None:
        raise UsageError(f"login-link: {address} is not a configured engineer (GATEWAY_ENGINEERS)")
    if not settings.web.public_url:
        raise ConfigError("GATEWAY_PUBLIC_URL: is off, so there is no address to link to")
    # Here: the web service takes a tenth of a second to import, which the other commands
    # would pay.
    from gateway.web.queue_page import sign_in_link

    print(sign_in_link(gateway, address, gateway.clock.now()))
    return 0


def act(settings: Settings, ticket_id: int, deed: Callable[[Operator], str]) -> int:
    """Do `deed` as the operator running the command, then send the mail it caused."""
    gateway = open_existing(settings)
    outcome = deed(Operator(gateway, operator_name()))
    report = gateway.dispatcher.deliver_due()
    print(f"ticket #{ticket_id}: {outcome}; sent {report.sent} mail(s)")
    return 0
