"""The knowledge base's article pages (`/kb/<slug>`), and their "This solved it" button.

A page shows an article while its file in `GATEWAY_KB_DIR` reads as published and the index
has it published too; a draft, a file that is gone or does not read, and a slug that names
no file are the site's usual 404. The body is the article's Markdown made safe
(`article_html`).

The links in an acknowledgement's suggestions carry the customer's status token (`?t=`).
When it opens its ticket as on the status page and the article, or its translation, was
suggested to that ticket, the visit joins the ticket's trail, once per article
(`article_opened`, which `gateway kb list` counts), and while the ticket is `SOLVABLE` the
page offers "This solved it": the customer's confirmation, as a reply saying so would be.
It closes the ticket as confirmed, names the article that solved it, refreshes the clocks
and tells everyone on the ticket, in one transaction. Any other token shows the article
alone.
"""

from __future__ import annotations

import logging
from dataclasses import astuple
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from gateway.database import transaction
from gateway.errors import ConfigError
from gateway.knowledge import Article, published_article, read_article
from gateway.knowledge.articles import SLUG
from gateway.links import StatusLink, read_status_token, status_token
from gateway.trail import Acting, record
from gateway.web.article_html import article_html
from gateway.web.site import Section, Visit
from gateway.web.status_page import StatusPages
from gateway.workflow import locked_ticket
from gateway.workflow.articles import SOLVABLE, close_as_solved, was_suggested
from gateway.workflow.service import refresh_clocks
from storage.models import EventKind, Participant, Ticket

log = logging.getLogger(__name__)


class ArticlePages(Section):
    """Article pages for anyone with their link, and "This solved it" for the customers
    they were suggested to; status links are read as the status pages read them."""

    def __init__(self, status_pages: StatusPages) -> None:
        super().__init__(
            status_pages.gateway, status_pages.pages, status_pages.wake, status_pages.reads
        )
        self.status_pages = status_pages

    def kb_article(self, visit: Visit, slug: str) -> Response:
        """The article, with the button when its reader may say it solved their ticket."""
        with self.reads() as session:
            article = self.published(session, slug)
        link = read_status_token(self.gateway.secret, visit.request.args.get("t", ""))
        solvable = self.opened_from_ticket(link, article) if link else None
        context = self.page_context(visit, article, solvable)
        body = self.pages.render("article", article.lang, context)
        return Response(body, 200, mimetype="text/html")

    def published(self, session: Session, slug: str) -> Article:
        """The article of `slug` as its file says now, when both the file and the index
        have it published; `NotFound` for anything else."""
        directory = self.gateway.settings.knowledge.directory
        if directory is None or not is_slug(slug):
            raise NotFound()
        try:
            article = read_article(directory / f"{slug}.md")
        except (ConfigError, OSError):
            raise NotFound() from None
        row = published_article(session, slug)
        if not article.published or row is None or row.slug != slug:
            raise NotFound()
        return article

    def opened_from_ticket(self, link: StatusLink, article: Article) -> Ticket | None:
        """The visit of a customer the article was suggested to, on their ticket's trail
        once; their ticket while they may still say it solved it."""
        with transaction(self.gateway.sessions) as session:
            found = self.suggested_ticket(session, link, article)
            if found is None:
                return None
            ticket, participant = found
            if not already_opened(ticket, article.slug):
                act = Acting(session, participant.address, self.gateway.clock.now())
                record(act, ticket, EventKind.ARTICLE_OPENED, None, article.slug)
            return ticket if ticket.status in SOLVABLE else None

    def suggested_ticket(
        self, session: Session, link: StatusLink, article: Article
    ) -> tuple[Ticket, Participant] | None:
        """The link's ticket, locked, and its participant, when the link opens it now and
        the article was suggested to it; None otherwise."""
        ticket = locked_ticket(session, link.ticket_id)
        try:
            found, participant = self.status_pages.open_link(session, link)
        except NotFound:
            return None
        if found.id != ticket.id or not was_suggested(ticket, article.slug):
            return None
        return ticket, participant

    def page_context(self, visit: Visit, article: Article, ticket: Ticket | None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "page_lang": article.lang,
            "slug": article.slug,
            "title": article.title,
            "body": Markup(article_html(article.body)),
            "support_name": self.gateway.settings.mailbox.name,
            "solved_form": None,
        }
        if ticket is not None:
            context["solved_form"] = {
                "token": visit.request.args["t"],
                "csrf": visit.csrf,
                "tag": self.notifier.sender.tag(ticket),
            }
        return context

    def kb_solved(self, visit: Visit, slug: str) -> Response:
        """The customer's "This solved it": their ticket closed as confirmed, and on to
        their status page, which shows it; back to the article for anything else."""
        link = read_status_token(self.gateway.secret, visit.request.form.get("t", ""))
        if link is None or not is_slug(slug):
            raise NotFound()
        back = f"/kb/{slug}?t={status_token(self.gateway.secret, *astuple(link))}"
        try:
            with self.reads() as session:
                self.published(session, slug)
        except NotFound:
            return redirect(back, 303)
        with self.status_pages.customer_act(link) as (act, ticket, _):
            if ticket.status not in SOLVABLE or not was_suggested(ticket, slug):
                return redirect(back, 303)
            self.close_ticket(act, ticket, slug)
        self.wake()
        log.info("ticket #%d: solved by article %s, on its page", link.ticket_id, slug)
        return redirect(self.status_pages.page_path(link), 303)

    def close_ticket(self, act: Acting, ticket: Ticket, slug: str) -> None:
        why = f"the customer says article {slug} solved it, on its page"
        status_change, *_ = close_as_solved(act, ticket, slug, None, why)
        refresh_clocks(act.session, ticket, self.rules.service)
        self.notifier.announce_event(act.session, status_change, None)


def is_slug(slug: str) -> bool:
    """A file name of the article folder, and nothing that could reach beyond it (its
    length is `read_article`'s to refuse)."""
    return bool(SLUG.fullmatch(slug)) and ".." not in slug


def already_opened(ticket: Ticket, slug: str) -> bool:
    return any(e.type is EventKind.ARTICLE_OPENED and e.detail == slug for e in ticket.events)
