"""The customers' side of the web service: a ticket's status page, its "Fixed" / "Not fixed"
buttons, and its files.

A status link opens its ticket for its participant while: its signature holds, its version
is the ticket's (`gateway links revoke` raises that), the participant is still one of the
ticket's customers, and the ticket has not been closed longer than
`GATEWAY_LINKS_DAYS_AFTER_CLOSE`. Anything else is the same 404 as a link that never was.

An answer on the page is the customer's confirmation, as their mail would be: "Fixed" closes
a resolved ticket, "Not fixed" reopens it; what they wrote with it is their message on the
ticket, which the engineers' mail carries. The trail names them as its actor, the clocks
are refreshed and everyone on the ticket gets the usual mail, in one transaction. It is
taken only while the ticket is resolved.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import astuple
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect, send_file
from werkzeug.wrappers import Response

from gateway.app import Gateway
from gateway.database import transaction
from gateway.fact_sheet import summary
from gateway.filetypes import HEAD_OCTETS, forwarded
from gateway.links import (
    StatusLink,
    download_token,
    read_download_token,
    read_status_token,
    status_token,
)
from gateway.trail import Acting
from gateway.web.pages import zone_of_offset
from gateway.web.public_trail import (
    LINK_HOLDERS,
    Reader,
    public_files,
    public_messages,
    standing,
    trail,
    whole_ticket,
)
from gateway.web.site import Section, Visit
from gateway.workflow.service import refresh_clocks
from gateway.workflow.states import transition
from storage.blobs import open_blob
from storage.models import (
    Attachment,
    Direction,
    EventKind,
    Message,
    Participant,
    Ticket,
    TicketStatus,
)

log = logging.getLogger(__name__)

# What a customer may write with "Not fixed", for the engineers.
MAX_NOTE_CHARS = 2000
ANSWERS = {
    "fixed": (TicketStatus.CLOSED, EventKind.CONFIRMED, "the customer confirmed it is fixed"),
    "not_fixed": (TicketStatus.OPEN, EventKind.REOPENED, "the customer says it is not fixed"),
}


class StatusPages(Section):
    """Status pages, answers and downloads for holders of status links."""

    def open_link(self, session: Session, link: StatusLink | None) -> tuple[Ticket, Participant]:
        """The ticket and participant a link opens now; `NotFound` for any other link."""
        if link is None:
            raise NotFound()
        ticket = whole_ticket(session, link.ticket_id)
        participant = session.get(Participant, link.participant_id)
        if (
            ticket is None
            or participant is None
            or participant.ticket_id != ticket.id
            or participant.role not in LINK_HOLDERS
            or ticket.links_version != link.version
            or self.expired(ticket)
        ):
            raise NotFound()
        return ticket, participant

    def survivor_link(self, session: Session, ticket: Ticket, reader: Participant) -> str:
        """For a merged ticket, the reader's own link to the ticket it went into; "" when
        they are not a customer of that one."""
        survivor = ticket
        while survivor.merged_into is not None:
            survivor = session.get_one(Ticket, survivor.merged_into)
        holder = next(
            (
                p
                for p in survivor.participants
                if p.address == reader.address and p.role in LINK_HOLDERS
            ),
            None,
        )
        return self.notifier.sender.status_url(survivor, holder) if holder else ""

    def expired(self, ticket: Ticket) -> bool:
        lifetime = timedelta(days=self.gateway.settings.web.links_days_after_close)
        closed = ticket.status is TicketStatus.CLOSED
        return closed and self.gateway.clock.now() - ticket.status_changed_at > lifetime

    def status_page(self, visit: Visit, token: str) -> Response:
        link = read_status_token(self.gateway.secret, token)
        with self.reads() as session:
            ticket, participant = self.open_link(session, link)
            assert link is not None
            if ticket.merged_into is not None:
                moved = self.survivor_link(session, ticket, participant)
                if moved:
                    return redirect(moved.removeprefix(self.gateway.settings.web.public_url), 303)
            body = self.pages.render(
                "ticket", ticket.language, self.page_context(visit, ticket, participant, link)
            )
        return Response(body, 200, mimetype="text/html")

    def page_context(
        self, visit: Visit, ticket: Ticket, participant: Participant, link: StatusLink
    ) -> dict[str, Any]:
        settings, now = self.gateway.settings, self.gateway.clock.now()
        zone = zone_of_offset(ticket.customer_utc_offset, self.rules.service.calendar.zone)
        reader = Reader(participant, zone)
        messages = public_messages(ticket)
        return {
            "page_lang": ticket.language,
            "ticket": {"id": ticket.id, "subject": ticket.subject},
            "tag": self.notifier.sender.tag(ticket),
            "support_name": settings.mailbox.name,
            "support_address": settings.mailbox.address,
            "standing": standing(ticket, reader, (settings.workflow, settings.intake), now),
            "facts": summary(ticket, ticket.language) if settings.intake.enabled else "",
            "trail": trail(ticket, messages, reader, settings.mailbox.name),
            "file_urls": self.file_urls(messages, link, now),
            "csrf": visit.csrf,
            "token": visit.arguments["token"],
            "auto_close_days": f"{settings.workflow.auto_close_days:g}",
        }

    def file_urls(self, messages: list[Message], link: StatusLink, now: datetime) -> dict[int, str]:
        secret = self.gateway.secret
        return {
            file_id: f"/f/{download_token(secret, link, file_id, now)}"
            for file_id in public_files(messages)
        }

    def answer(self, visit: Visit, token: str) -> Response:
        """The customer's "Fixed" or "Not fixed"; back to the page, which shows what it did.
        What they wrote with it joins the trail as their message, as a reply would."""
        chosen = ANSWERS.get(visit.request.form.get("answer", ""))
        link = read_status_token(self.gateway.secret, token)
        if chosen is None or link is None:
            raise NotFound()
        to_status, kind, why = chosen
        note = visit.request.form.get("note", "").replace("\r\n", "\n").strip()
        page = self.page_path(link)
        with self.customer_act(link) as (act, ticket, participant):
            if ticket.status is not TicketStatus.RESOLVED:
                return redirect(page, 303)
            words = self.note_message(ticket, participant, note[:MAX_NOTE_CHARS], act.at)
            event = transition(act, ticket, to_status, words, kind, f"{why}, on the status page")
            refresh_clocks(act.session, ticket, self.rules.service)
            self.notifier.announce_event(act.session, event, words)
        self.wake()
        log.info("ticket #%d: %s on the status page", ticket.id, kind.value)
        return redirect(page, 303)

    @contextlib.contextmanager
    def customer_act(
        self, link: StatusLink, wait_ms: int | None = None
    ) -> Iterator[tuple[Acting, Ticket, Participant]]:
        """In one write transaction: the link's participant acting on its ticket, the ticket
        locked; `NotFound` for a link that does not open it now. With `wait_ms`, another
        writer's lock is waited for that long at most, not `LOCK_WAIT_MS`."""
        with transaction(self.gateway.sessions, wait_ms) as session:
            # Locked first, then read: what the act sees is what the row has now. The link's
            # own ticket is locked even when merged (`locked_ticket` would take the one it
            # went into): a merged ticket is closed, and its page leads on.
            session.get(Ticket, link.ticket_id, with_for_update=True)
            ticket, participant = self.open_link(session, link)
            yield (
                Acting(session, participant.address, self.gateway.clock.now()),
                ticket,
                participant,
            )

    def page_path(self, link: StatusLink) -> str:
        """The link's status page, as a path of this site."""
        return f"/t/{status_token(self.gateway.secret, *astuple(link))}"

    def note_message(
        self, ticket: Ticket, participant: Participant, note: str, at: datetime
    ) -> Message | None:
        """What the customer wrote beside their answer, as their message on the ticket."""
        if not note:
            return None
        domain = self.gateway.settings.mailbox.address.rpartition("@")[2]
        return Message(
            ticket=ticket,
            direction=Direction.IN,
            message_id=f"status-page.{uuid.uuid4().hex}@{domain}",
            from_address=participant.address,
            from_name=participant.name,
            subject=ticket.subject,
            text=note,
            created_at=at,
        )

    def download(self, visit: Visit, token: str) -> Response:
        link = read_download_token(self.gateway.secret, token, self.gateway.clock.now())
        with self.reads() as session:
            ticket, _ = self.open_link(session, link.page if link else None)
            assert link is not None
            attachment = public_files(public_messages(ticket)).get(link.attachment_id)
            if attachment is None:
                raise NotFound()
            return file_response(visit, self.gateway, attachment)


def file_response(visit: Visit, gateway: Gateway, attachment: Attachment) -> Response:
    """The file as a download, named and typed as mail passes it on (an active file made
    safe: `filetypes`); a browser never shows it as a page (`attachment`, and a sandbox
    should one try)."""
    try:
        stored = open_blob(gateway.blobs, attachment.sha256)
    except FileNotFoundError:
        raise NotFound() from None
    try:
        head = stored.peek(HEAD_OCTETS)[:HEAD_OCTETS]
        sent = forwarded(attachment.filename or "file", attachment.content_type, head)
    except BaseException:
        stored.close()
        raise
    response = send_file(
        stored,
        visit.request.environ,
        mimetype=safe_type(sent.content_type),
        as_attachment=True,
        download_name=sent.filename,
        conditional=False,
        etag=False,
        max_age=None,
    )
    response.content_length = attachment.size
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def safe_type(content_type: str) -> str:
    """The stored type when it is a plain `type/subtype`, else `application/octet-stream`."""
    kind = content_type.split(";")[0].strip().lower()
    main, slash, sub = kind.partition("/")
    plain = slash and main.isascii() and sub.isascii() and all(c not in kind for c in ' "\\')
    return kind if plain and main and sub else "application/octet-stream"
