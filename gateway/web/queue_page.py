"""The engineers' side of the web service: signing in by a link mailed to their own
address, the queue of open tickets, and a ticket as engineers see it. It reads; work still
happens by mail.

Only configured engineers get in, checked again at every request (one who leaves the team
is out at once). A sign-in link lives 30 minutes and opens a page whose button signs in
(a GET signs nobody in: mail scanners follow links); the session cookie lives 12 hours.
Asking for a link answers the same whoever asks, and mails an engineer at most one link
every `SIGN_IN_MAIL_EVERY`.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from gateway.app import Gateway
from gateway.database import transaction
from gateway.links import (
    SESSION_LIFETIME,
    SIGN_IN_LIFETIME,
    address_token,
    read_address_token,
)
from gateway.web.pages import moment
from gateway.web.public_trail import whole_ticket
from gateway.web.site import Section, Visit
from gateway.web.status_page import file_response
from storage.models import (
    OPEN_STATUSES,
    Attachment,
    Direction,
    Message,
    OutboxMail,
    Priority,
    Ticket,
    TicketStatus,
)

log = logging.getLogger(__name__)

SESSION_COOKIE = "gateway_session"
SIGN_IN_KIND = "sign_in"
SIGN_IN_MAIL_EVERY = SIGN_IN_LIFETIME / 6
SIGN_IN_MINUTES = int(SIGN_IN_LIFETIME.total_seconds() // 60)
FILTERS = ("all", "mine", "unassigned", "waiting")
PRIORITY_ORDER = {priority: rank for rank, priority in enumerate(Priority)}


def sign_in_link(gateway: Gateway, address: str, now: datetime) -> str:
    token = address_token(gateway.secret, "sign-in", address, now + SIGN_IN_LIFETIME)
    return f"{gateway.settings.web.public_url}/sign-in/{token}"


class EngineerPages(Section):
    """Sign-in, the queue and the engineers' view of a ticket."""

    def engineer_of(self, visit: Visit) -> str | None:
        """The signed-in engineer's address, while they are one of the team."""
        token = visit.request.cookies.get(SESSION_COOKIE, "")
        now = self.gateway.clock.now()
        address = read_address_token(self.gateway.secret, "session", token, now)
        return address if address and self.rules.engineer(address) else None

    def page(self, visit: Visit, name: str, context: dict[str, Any], status: int = 200) -> Response:
        """The page in the engineer's language (English before we know who they are)."""
        engineer = self.rules.engineer(context.get("me", ""))
        language = engineer.language if engineer else "en"
        body = self.pages.render(
            name,
            language,
            context | {"csrf": visit.csrf, "page_lang": language, "minutes": SIGN_IN_MINUTES},
        )
        return Response(body, status, mimetype="text/html")

    def zone_of(self, address: str) -> ZoneInfo:
        """The engineer's own time zone, else the team's."""
        engineer = self.rules.engineer(address)
        if engineer and engineer.timezone:
            return ZoneInfo(engineer.timezone)
        return self.rules.service.calendar.zone

    # -- signing in ----------------------------------------------------------------------

    def sign_in_form(self, visit: Visit) -> Response:
        return self.page(visit, "sign_in", {"step": "ask"})

    def send_sign_in(self, visit: Visit) -> Response:
        """Mail a sign-in link to the address given, when it is an engineer's."""
        address = visit.request.form.get("address", "").strip().lower()
        if self.rules.engineer(address) is not None:
            # Beside the answer, which takes as long whoever asks: it does not tell who
            # is an engineer.
            threading.Thread(target=self.mail_sign_in, args=(address,), daemon=True).start()
        return self.page(visit, "sign_in", {"step": "sent"})

    def mail_sign_in(self, address: str) -> None:
        try:
            self.queue_sign_in(address)
        except Exception:  # In a thread of its own: logged here or nowhere.
            log.exception("web: the sign-in mail to %s could not be queued", address)

    def queue_sign_in(self, address: str) -> None:
        now = self.gateway.clock.now()
        with transaction(self.gateway.sessions) as session:
            if recently_mailed(session, address, now):
                return
            engineer = self.rules.engineer(address)
            language = engineer.language if engineer else "en"
            context = {
                "link": sign_in_link(self.gateway, address, now),
                "minutes": SIGN_IN_MINUTES,
                "support_name": self.gateway.settings.mailbox.name,
            }
            rendered = self.notifier.templates.render("engineer", "sign_in", language, context)
            self.notifier.outbox.queue_unticketed(session, address, rendered, SIGN_IN_KIND)
        self.wake()

    def sign_in_page(self, visit: Visit, token: str) -> Response:
        address = self.signing_in(token)
        if address is None:
            return self.page(visit, "sign_in", {"step": "expired"}, 404)
        return self.page(visit, "sign_in", {"step": "confirm", "address": address, "me": address})

    def sign_in(self, visit: Visit, token: str) -> Response:
        address = self.signing_in(token)
        if address is None:
            return self.page(visit, "sign_in", {"step": "expired"}, 404)
        until = self.gateway.clock.now() + SESSION_LIFETIME
        session_token = address_token(self.gateway.secret, "session", address, until)
        response = redirect("/queue", 303)
        visit.set_cookie(
            SESSION_COOKIE, session_token, int(SESSION_LIFETIME.total_seconds()), "Lax"
        )
        log.info("web: %s signed in", address)
        return response

    def signing_in(self, token: str) -> str | None:
        """The engineer a sign-in link is for, while it lives and they are one."""
        now = self.gateway.clock.now()
        address = read_address_token(self.gateway.secret, "sign-in", token, now)
        return address if address and self.rules.engineer(address) else None

    def sign_out(self, visit: Visit) -> Response:
        visit.set_cookie(SESSION_COOKIE, "", 0, "Lax")
        return redirect("/sign-in", 303)

    # -- reading -------------------------------------------------------------------------

    def queue(self, visit: Visit) -> Response:
        me = self.engineer_of(visit)
        if me is None:
            return redirect("/sign-in", 303)
        shown = visit.request.args.get("show", "all")
        shown = shown if shown in FILTERS else "all"
        with self.reads() as session:
            rows = queue_rows(session, me, shown, self.rules.engineer_addresses)
        zone = self.zone_of(me)
        now = self.gateway.clock.now()
        engineer = self.rules.engineer(me)
        language = engineer.language if engineer else "en"
        tickets = [queue_entry(row, zone, now, language) for row in rows]
        return self.page(visit, "queue", {"me": me, "shown": shown, "tickets": tickets})

    def engineer_ticket(self, visit: Visit, ticket_id: int) -> Response:
        me = self.engineer_of(visit)
        if me is None:
            return redirect("/sign-in", 303)
        zone = self.zone_of(me)
        with self.reads() as session:
            ticket = whole_ticket(session, ticket_id)
            if ticket is None:
                raise NotFound()
            context = {"me": me, "ticket": ticket, "trail": engineer_trail(ticket, zone)}
            return self.page(visit, "engineer_ticket", context)

    def engineer_file(self, visit: Visit, attachment_id: int) -> Response:
        if self.engineer_of(visit) is None:
            raise NotFound()
        with self.reads() as session:
            attachment = session.get(Attachment, attachment_id)
            if attachment is None:
                raise NotFound()
            return file_response(visit, self.gateway, attachment)


def recently_mailed(session: Session, address: str, now: datetime) -> bool:
    return bool(
        session.scalar(
            select(func.count(OutboxMail.id)).where(
                OutboxMail.recipient == address,
                OutboxMail.kind == SIGN_IN_KIND,
                OutboxMail.created_at > now - SIGN_IN_MAIL_EVERY,
            )
        )
    )


def queue_rows(session: Session, me: str, shown: str, engineers: frozenset[str]) -> list[Any]:
    """The open tickets `shown` asks for, with when their customers last wrote."""
    last_words = (
        select(Message.ticket_id, func.max(Message.created_at).label("at"))
        .where(Message.direction == Direction.IN, ~Message.internal, ~Message.automatic)
        .where(Message.from_address.not_in(engineers or {""}))
        .where(Message.ticket_id.in_(select(Ticket.id).where(Ticket.status.in_(OPEN_STATUSES))))
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(Ticket, last_words.c.at)
        .outerjoin(last_words, last_words.c.ticket_id == Ticket.id)
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into.is_(None))
    )
    if shown == "mine":
        query = query.where(Ticket.assignee == me)
    elif shown == "unassigned":
        query = query.where(Ticket.assignee.is_(None))
    elif shown == "waiting":
        query = query.where(Ticket.status == TicketStatus.WAITING)
    rows = list(session.execute(query).all())
    rows.sort(key=lambda row: (PRIORITY_ORDER[row[0].priority], row[0].created_at))
    return rows


def queue_entry(row: Any, zone: Any, now: datetime, language: str) -> dict[str, Any]:
    ticket, last_words_at = row
    return {
        "id": ticket.id,
        "subject": ticket.subject,
        "priority": ticket.priority.value,
        "status": ticket.status.value,
        "assignee": ticket.assignee or "",
        "requester": ticket.requester,
        "age": age_words(now - ticket.created_at, language),
        "created": moment(ticket.created_at, zone),
        "last_words": moment(last_words_at, zone),
        "response_due": moment(ticket.response_due if ticket.responded_at is None else None, zone),
    }


AGE_UNITS = {"en": ("min", "h", "d"), "zh": ("分钟", "小时", "天")}


def age_words(age: timedelta, language: str) -> str:
    minute, hour, day = AGE_UNITS.get(language, AGE_UNITS["en"])
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} {minute}"
    if minutes < 48 * 60:
        return f"{minutes // 60} {hour}"
    return f"{minutes // (24 * 60)} {day}"


def engineer_trail(ticket: Ticket, zone: Any) -> list[dict[str, Any]]:
    """Every message and event of the ticket, internal ones marked, oldest first."""
    entries = [
        (m.created_at, 0, m.id, {"kind": "message", "message": m, "at": moment(m.created_at, zone)})
        for m in ticket.messages
    ]
    entries += [
        (e.at, 1, e.id, {"kind": "event", "event": e, "at": moment(e.at, zone)})
        for e in ticket.events
    ]
    return [entry for *_, entry in sorted(entries, key=lambda item: item[:3])]
