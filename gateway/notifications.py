"""Mail the gateway writes: Jinja2 templates rendered into outbox rows.

`announce()` turns what one message did (an `Applied`) into mail, in the order people
should read it: the acknowledgement or the engineers' notice of a new ticket, the relayed
reply, one mail per status change to the customer and to the engineers on the ticket, and
the acting engineer's command receipt. One message makes one mail per person: a relayed
reply states the status its commands set (with the confirmation links of `resolved`), and
the engineers' notice of a customer's message the status it set, so those people get no
separate status mail for it. Rendering happens inside the caller's transaction, so an event
and its mail are committed together.

Customers read customers' words only, in their language: their own status words (the
templates' `_status_words`), never the trail's details or raw status names, greeted by the
name they go by (`audience.name_of`) or by none.

Templates live in `templates/<recipient>/<event>.<lang>.<txt|html>.j2`; the text template
sets `subject`. Each recipient gets their own copy with a `Reply-To` token bound to them and
this ticket. Whether a mail may go at all is `loops`' to say; how it is built, `composing`'s;
what each template is given, `notice_context`'s. Files are passed on with the type their
bytes show, active ones made safe (`filetypes`); the notice lists those (`made_safe` in the
attachment list, shown by the `_made_safe` template).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from gateway.audience import Audience, name_of
from gateway.composing import display_address, single_line
from gateway.fact_sheet import ask_items, fact_table, learned_from, summary
from gateway.intake import Fact
from gateway.loops import ACKNOWLEDGEMENT, RELAYED_REPLY
from gateway.notice_context import (
    NoticeContext,
    about_people,
    latest_customer_words,
    made_safe_entry,
)
from gateway.outbox import Notice, Outbox
from gateway.rendering import RenderedMail, Templates
from gateway.service.levels import ServiceLevels
from gateway.service_words import engineer_context, promise
from gateway.settings import Intake, Notify, Workflow
from gateway.workflow import STATUS_EVENTS, Applied, Author
from gateway.workflow.intake import note_asked
from storage.blobs import BlobStore
from storage.models import (
    Direction,
    Event,
    EventKind,
    Message,
    Participant,
    Ticket,
)
from storage.rows import assign_ids

log = logging.getLogger(__name__)


class Notifier:
    """Renders notifications and queues them in the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        settings: Notify,
        workflow: Workflow,
        blobs: BlobStore,
        intake: Intake,
        service: ServiceLevels,
    ) -> None:
        self.outbox = outbox
        self.intake = intake
        self.service = service
        self.sender = outbox.sender
        self.settings = settings
        self.workflow = workflow
        self.audience = Audience(workflow.engineers, outbox.sender.address)
        self.context = NoticeContext(outbox.sender, settings, workflow, blobs, self.audience)
        self.templates = Templates(settings.templates_dir)

    # -- what one applied message causes -------------------------------------------------

    def announce(self, session: Session, applied: Applied) -> None:
        """Every mail that `applied` causes, queued in the order people should read them."""
        assign_ids(session)  # Ticket numbers and reply tokens need the new rows' ids.
        told = self.tell_of_message(session, applied)
        for event in applied.events:
            self.announce_event(session, event, applied.message, told)
        if wants_receipt(applied):
            self.send_receipt(session, applied)
        if applied.author is Author.UNVERIFIED_ENGINEER and applied.sender is not None:
            self.send_fresh_notice(session, applied)

    def tell_of_message(self, session: Session, applied: Applied) -> frozenset[str]:
        """The mail that passes the message itself on; the addresses it went to, who were
        told of the status it set with it."""
        change = status_change(applied.events)
        told: list[str] = []
        if applied.new_ticket:
            self.acknowledge(session, applied)
            offered = self.audience.watchers(applied.ticket)
            # The new-ticket notice tells its assignee too: no separate "assigned" mail.
            told += [p.address for p in offered]
            self.tell_engineers(
                session,
                applied.ticket,
                applied.message,
                "new_ticket",
                offered,
                # A new ticket has no later words of the customer to show.
                about_people(applied, self.workflow.max_people_added_per_message)
                | {
                    "latest_words": "",
                    "articles": self.context.articles(applied.suggested, applied.ticket),
                },
            )
        elif applied.author is Author.CUSTOMER and not applied.message.automatic:
            told += self.forward_customer_message(session, applied, change)
        if applied.relay:
            told += self.relay_reply(session, applied, change)
        elif applied.ask and applied.author is Author.ENGINEER:
            told += self.send_ask(session, applied, change)
        return frozenset(told)

    def announce_event(
        self,
        session: Session,
        event: Event,
        cause: Message | None = None,
        told: frozenset[str] = frozenset(),
    ) -> None:
        """The mail one event sends: status changes to everyone (but those `told` of it
        already), the rest to engineers."""
        ticket = event.ticket
        if event.type in STATUS_EVENTS:
            for participant in self.audience.customers(ticket):
                if participant.address not in told:
                    self.tell_customer_status(session, ticket, participant, event)
            for participant in self.audience.watchers(ticket, but=event.actor):
                if participant.address not in told:
                    self.tell_engineer_status(session, ticket, participant, event, cause)
        elif event.type is EventKind.ASSIGNED and event.detail not in (event.actor, *told):
            assignee = [p for p in self.audience.watchers(ticket) if p.address == event.detail]
            self.tell_engineers(
                session, ticket, first_message(ticket), "assigned", assignee, {"actor": event.actor}
            )
        elif event.type is EventKind.ESCALATED:
            chosen = self.audience.specialists(ticket, but=event.actor)
            self.tell_engineers(
                session, ticket, first_message(ticket), "escalated", chosen, {"actor": event.actor}
            )

    # -- customers -------------------------------------------------------------------------

    def acknowledge(self, session: Session, applied: Applied) -> None:
        """The customer's acknowledgement with the ticket number, unless `loops` forbids
        answering the message."""
        ticket, requester = applied.ticket, applied.sender
        why_not = self.outbox.guard.why_no_acknowledgement(
            session, applied.inbound, self.sender.address
        )
        if why_not:
            log.info("ticket #%s: no acknowledgement: %s", ticket.id, why_not)
            return
        assert requester is not None
        context = (
            self.context.customer(ticket, requester)
            | {
                "customer_words": applied.message.text,
                "attachments": applied.message.attachments,
                "follow_up_of": applied.follow_up_of.id if applied.follow_up_of else None,
                "promise": promise(ticket, self.service, self.outbox.clock.now(), ticket.language),
                "articles": self.context.articles(applied.suggested, ticket, requester),
            }
            | self.facts_for_customer(ticket, applied.ask)
        )
        rendered = self.templates.render("customer", "acknowledgement", ticket.language, context)
        thread = (*applied.inbound.mail.references, applied.message.message_id)
        notice = Notice(
            requester, rendered, name_of(ticket, requester), thread, kind=ACKNOWLEDGEMENT
        )
        self.outbox.queue(session, ticket, notice)
        if applied.ask:
            note_asked(session, ticket, applied.ask, applied.inbound.at)

    def facts_for_customer(self, ticket: Ticket, ask: tuple[Fact, ...]) -> dict[str, Any]:
        """What a customer's mail says of the facts: what we have, and what it asks for."""
        return {
            "facts_summary": summary(ticket, ticket.language) if self.intake.enabled else "",
            "ask": ask_items(ask, ticket.language),
        }

    def send_ask(self, session: Session, applied: Applied, change: Event | None) -> list[str]:
        """An engineer's `#ask`, with no words of theirs to carry it, as a mail of its own
        to the customers, with the status `change` the message made; the addresses it went
        to."""
        ticket = applied.ticket
        customers = self.audience.customers(ticket)
        for participant in customers:
            context = self.context.customer(ticket, participant) | {"changed": change is not None}
            context |= self.facts_for_customer(ticket, applied.ask)
            if change is not None:
                context |= self.context.status_news(ticket, participant, change)
            rendered = self.templates.render("customer", "info_request", ticket.language, context)
            notice = Notice(participant, rendered, name_of(ticket, participant))
            self.outbox.queue(session, ticket, notice)
        return [p.address for p in customers]

    def relay_reply(self, session: Session, applied: Applied, change: Event | None) -> list[str]:
        """The engineer's new words and files, from the support address, to the customers,
        with the status `change` the message made; the addresses it went to."""
        ticket, message = applied.ticket, applied.message
        customers = self.audience.customers(ticket)
        files = tuple(self.context.file_of(a) for a in message.attachments)
        made_safe = [
            made_safe_entry(a, file) for a, file in zip(message.attachments, files, strict=True)
        ]
        for participant in customers:
            context = self.context.customer(ticket, participant) | {
                "changed": change is not None,
                "engineer_name": single_line(message.from_name),
                "engineer_address": (
                    message.from_address if self.settings.show_engineer_address else ""
                ),
                "words": message.text,
                "attachments": message.attachments,
                "made_safe": [entry for entry in made_safe if entry["made_safe"]],
                "ask": ask_items(applied.ask, ticket.language),
                "sent_articles": self.context.articles(applied.sent_articles, ticket, participant),
            }
            if change is not None:
                context |= self.context.status_news(ticket, participant, change)
            rendered = self.templates.render("customer", "reply", ticket.language, context)
            to_name = name_of(ticket, participant)
            notice = Notice(participant, rendered, to_name, files=files, kind=RELAYED_REPLY)
            self.outbox.queue(session, ticket, notice)
        return [p.address for p in customers]

    def tell_customer_status(
        self, session: Session, ticket: Ticket, participant: Participant, event: Event
    ) -> None:
        context = self.context.customer(ticket, participant)
        context |= self.context.status_news(ticket, participant, event)
        rendered = self.templates.render("customer", "status_changed", ticket.language, context)
        self.outbox.queue(
            session, ticket, Notice(participant, rendered, name_of(ticket, participant))
        )

    # -- engineers -------------------------------------------------------------------------

    def tell_engineers(
        self,
        session: Session,
        ticket: Ticket,
        message: Message,
        kind: str,
        engineers: Iterable[Participant],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """A ticket notice (new, assigned, escalated) with the customer's words and files;
        `extra` adds to what the template is given."""
        extra = extra or {}
        about_ticket: dict[str, Any] = {
            "customer": display_address(ticket.requester_name, ticket.requester),
            "actor": "",
            "follow_up_of": ticket.follow_up_of,
            "facts": self.facts_for_engineers(ticket),
            "articles": [],
        }
        if "latest_words" not in extra:
            about_ticket["latest_words"] = latest_customer_words(ticket)
        about = about_ticket | extra
        self.pass_on_words(session, ticket, message, kind, engineers, about)

    def tell_engineers_again(
        self, session: Session, ticket: Ticket, engineers: Iterable[Participant]
    ) -> None:
        """The new-ticket notice once more, to `engineers` (an operator's `gateway notify`)."""
        nobody_left_out = {
            "not_added": (),
            "people_limit": self.workflow.max_people_added_per_message,
            "related_to": None,
        }
        message = first_message(ticket)
        self.tell_engineers(session, ticket, message, "new_ticket", engineers, nobody_left_out)

    def forward_customer_message(
        self, session: Session, applied: Applied, change: Event | None
    ) -> list[str]:
        """A customer's new message on the ticket, to the engineers on it, with the status
        `change` it made; the addresses it went to."""
        ticket, message = applied.ticket, applied.message
        about_message = {
            "customer": display_address(message.from_name, message.from_address),
            "change": self.context.status(change) if change is not None else {},
            "facts": self.facts_for_engineers(ticket),
            "learned": {lang: learned_from(ticket, message, lang) for lang in ("en", "zh")},
        } | about_people(applied, self.workflow.max_people_added_per_message)
        watchers = self.audience.watchers(ticket)
        kind = "customer_reply"
        self.pass_on_words(session, ticket, message, kind, watchers, about_message)
        return [p.address for p in watchers]

    def pass_on_words(
        self,
        session: Session,
        ticket: Ticket,
        message: Message,
        kind: str,
        engineers: Iterable[Participant],
        extra: dict[str, Any],
    ) -> None:
        """The customer's words and files of `message`, in a `kind` notice to each of
        `engineers`; the files small enough attached, every one listed. `extra` adds to
        what the template is given, and over it."""
        files, listed = self.context.engineer_files(message.attachments)
        for participant in engineers:
            context = (
                self.context.base(ticket, participant)
                | {"customer_words": message.text, "attachments": listed}
                | extra
            )
            rendered = self.engineer_mail(kind, participant, context)
            self.outbox.queue(session, ticket, Notice(participant, rendered, files=files))

    def tell_engineer_status(
        self,
        session: Session,
        ticket: Ticket,
        participant: Participant,
        event: Event,
        cause: Message | None,
    ) -> None:
        words = cause.text if cause is not None and cause.direction is Direction.IN else ""
        context = (
            self.context.base(ticket, participant)
            | self.context.status(event)
            | {
                "actor": event.actor,
                "actor_role": self.audience.role_of(event.actor),
                "words": "" if cause is not None and cause.internal else words,
            }
        )
        rendered = self.engineer_mail("status_changed", participant, context)
        self.outbox.queue(session, ticket, Notice(participant, rendered))

    def send_receipt(self, session: Session, applied: Applied) -> None:
        """One short mail per engineer's message: what was applied, what was not and why."""
        assert applied.sender is not None
        ticket = applied.ticket
        context = self.context.base(ticket, applied.sender) | {
            "results": applied.results,
            "relayed": applied.relay,
            "note": applied.message.internal and applied.author is Author.ENGINEER,
            "refused_because": applied.refused_because,
        }
        rendered = self.engineer_mail("command_receipt", applied.sender, context)
        self.outbox.queue(session, ticket, Notice(applied.sender, rendered))

    def send_fresh_notice(self, session: Session, applied: Applied) -> None:
        """The ticket's notice, with their own reply address, to an engineer who wrote
        about it without one: a ticket nobody was told of is never out of reach."""
        assert applied.sender is not None
        ticket = applied.ticket
        about = about_people(applied, self.workflow.max_people_added_per_message)
        kind, first = "new_ticket", first_message(ticket)
        self.tell_engineers(session, ticket, first, kind, [applied.sender], about)

    def facts_for_engineers(self, ticket: Ticket) -> dict[str, dict[str, Any]]:
        """The ticket's fact table, in each language engineers read ('' tables when the
        intake is off)."""
        if not self.intake.enabled:
            return {}
        return {lang: fact_table(ticket, lang, self.intake) for lang in ("en", "zh")}

    # -- rendering and queueing ------------------------------------------------------------

    def engineer_mail(
        self, kind: str, participant: Participant, context: dict[str, Any]
    ) -> RenderedMail:
        """An engineer's mail, in the language configured for them, with the ticket's due
        times in their zone."""
        language = self.audience.language_of(participant)
        zone = self.audience.zone_of(participant, self.service.calendar.timezone)
        now = self.outbox.clock.now()
        service = engineer_context(context["ticket"], self.service, zone, now, language)
        return self.templates.render("engineer", kind, language, context | service)


def wants_receipt(applied: Applied) -> bool:
    """An engineer hears what became of their message when it carried commands or was not
    acted on; a plain reply that was relayed needs no receipt."""
    if applied.sender is None or applied.message.automatic:
        return False
    if applied.author is Author.ENGINEER:
        return bool(applied.results)
    return applied.author in (Author.UNVERIFIED_ENGINEER, Author.THIRD_PARTY)


def status_change(events: Sequence[Event]) -> Event | None:
    """The last status change among `events`: the status a message left its ticket in."""
    return next((e for e in reversed(events) if e.type in STATUS_EVENTS), None)


def first_message(ticket: Ticket) -> Message:
    return ticket.messages[0]
