"""The knowledge base's article pages (`/kb/<slug>`), and their "This solved it" button.

A page shows an article while its file in `GATEWAY_KB_DIR` reads as published and the index
has it published too; a draft, a file that is gone or does not read, and a slug that names
no file are the site's usual 404. The body is the article's Markdown made safe
(`article_html`), rendered once per version of the file.

The links in an acknowledgement's suggestions carry the customer's status token (`?t=`).
When it opens its ticket as on the status page and the article, or its translation, was
suggested to that ticket, the first such visit joins the ticket's trail (`article_opened`,
which `gateway kb list` counts), and while the ticket is `SOLVABLE` the page offers "This
solved it": the customer's confirmation, as a reply saying so would be. It closes the
ticket as confirmed, names the article that solved it, refreshes the clocks and tells
everyone on the ticket, in one transaction. Any other token shows the article alone.

A visit is decided on a read; only the first one writes. A GET must not wait on the
workers or fail with the database: when the note cannot be written promptly the article
is shown without it, and the next visit writes it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from gateway.errors import ConfigError, DatabaseUnavailable
from gateway.knowledge import Article, article_by_slug, read_article
from gateway.knowledge.articles import SLUG
from gateway.links import StatusLink, read_status_token, status_token
from gateway.trail import Acting, record
from gateway.web.article_html import article_html
from gateway.web.site import Section, Visit
from gateway.web.status_page import StatusPages
from gateway.workflow.articles import SOLVABLE, close_as_solved, was_suggested
from gateway.workflow.service import refresh_clocks
from storage.models import EventKind, Ticket

log = logging.getLogger(__name__)

# Versions of article files kept rendered; an old version falls out as others are read.
CACHED_ARTICLES = 256
# How long a visit's note waits for the workers' write lock before the page goes without it.
VISIT_WAIT_MS = 1000


@dataclass(frozen=True, slots=True)
class ShownArticle:
    """An article as its file reads, and its body as the page's HTML."""

    article: Article
    html: str


@dataclass(frozen=True, slots=True)
class FromTicket:
    """A visit through the link of a ticket the article was suggested to, as read."""

    tag: str
    # Whether an earlier visit is on the ticket's trail already.
    opened: bool
    # Whether the customer may say the article solved it.
    solvable: bool


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
        link = read_status_token(self.gateway.secret, visit.request.args.get("t", ""))
        with self.reads() as session:
            shown = self.published(session, slug)
            from_ticket = self.from_ticket(session, link, slug) if link else None
        if link and from_ticket and not from_ticket.opened:
            self.note_visit(link, slug)
        solvable = from_ticket if from_ticket and from_ticket.solvable else None
        context = self.page_context(visit, shown, solvable)
        body = self.pages.render("article", shown.article.lang, context)
        return Response(body, 200, mimetype="text/html")

    def published(self, session: Session, slug: str) -> ShownArticle:
        """The article of `slug` as its file says now, when both the file and the index
        have it published; `NotFound` for anything else."""
        directory = self.gateway.settings.knowledge.directory
        if directory is None or not is_slug(slug):
            raise NotFound()
        try:
            shown = shown_article(directory / f"{slug}.md")
        except (ConfigError, OSError):
            raise NotFound() from None
        row = article_by_slug(session, slug)
        if not shown.article.published or row is None or row.status != "published":
            raise NotFound()
        return shown

    def from_ticket(self, session: Session, link: StatusLink, slug: str) -> FromTicket | None:
        """The visit of a customer whose link opens their ticket now, when the article
        was suggested to it; None for any other."""
        try:
            ticket, _ = self.status_pages.open_link(session, link)
        except NotFound:
            return None
        if not was_suggested(ticket, slug):
            return None
        tag = self.notifier.sender.tag(ticket)
        return FromTicket(tag, already_opened(ticket, slug), ticket.status in SOLVABLE)

    def note_visit(self, link: StatusLink, slug: str) -> None:
        """The visit on the ticket's trail, once per article."""
        try:
            with self.status_pages.customer_act(link, VISIT_WAIT_MS) as (act, ticket, _):
                if not already_opened(ticket, slug):
                    record(act, ticket, EventKind.ARTICLE_OPENED, None, slug)
        except NotFound:
            return  # The link stopped opening the ticket since the read.
        except DatabaseUnavailable as exc:
            log.warning("ticket #%d: article %s opened, not noted: %s", link.ticket_id, slug, exc)

    def page_context(
        self, visit: Visit, shown: ShownArticle, solvable: FromTicket | None
    ) -> dict[str, Any]:
        article = shown.article
        context: dict[str, Any] = {
            "page_lang": article.lang,
            "slug": article.slug,
            "title": article.title,
            "body": Markup(shown.html),
            "support_name": self.gateway.settings.mailbox.name,
            "solved_form": None,
        }
        if solvable is not None:
            context["solved_form"] = {
                "token": visit.request.args["t"],
                "csrf": visit.csrf,
                "tag": solvable.tag,
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


def shown_article(path: Path) -> ShownArticle:
    """The article in `path` and its HTML, read and rendered once per version of the file
    (its modification time, size and inode: an editor that saves by renaming makes a new
    inode)."""
    version = path.stat()
    return rendered_article(path, version.st_mtime_ns, version.st_size, version.st_ino)


@functools.lru_cache(maxsize=CACHED_ARTICLES)
def rendered_article(path: Path, mtime_ns: int, size: int, inode: int) -> ShownArticle:
    """The file's version is the cache's key; the file is read as it is now."""
    article = read_article(path)
    return ShownArticle(article, article_html(article.body))


def already_opened(ticket: Ticket, slug: str) -> bool:
    return any(e.type is EventKind.ARTICLE_OPENED and e.detail == slug for e in ticket.events)
