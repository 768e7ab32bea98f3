"""Serving the web service: waitress on a socket `serve` has bound (`gateway.web.process`).

Waitress is a production WSGI server in pure Python: a fixed pool of threads, bounded
request sizes, slow clients buffered by its event loop rather than holding a thread.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from waitress.server import create_server
from werkzeug.wrappers import Response

from gateway.app import Gateway
from gateway.imap_inbound import PassState
from gateway.refusals import Tally
from gateway.settings import Web
from gateway.web.article_page import ArticlePages
from gateway.web.metrics import Figures
from gateway.web.pages import Pages
from gateway.web.queue_page import EngineerPages
from gateway.web.readiness import readiness
from gateway.web.site import MAX_FORM_BYTES, Site, Visit, static
from gateway.web.status_page import StatusPages
from storage.session import make_engine, make_session_factory

log = logging.getLogger(__name__)

# Requests served at once; pages take milliseconds, so a few threads go a long way.
THREADS = 4
STOP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Operations:
    """What operators and their monitoring read: liveness, readiness, figures."""

    gateway: Gateway
    mailbox: PassState | None
    figures: Figures

    def healthz(self, visit: Visit) -> Response:
        return Response("ok\n", 200, mimetype="text/plain")

    def readyz(self, visit: Visit) -> Response:
        ready = readiness(self.gateway, self.mailbox)
        return Response(ready.as_json(), 200 if ready.ok else 503, mimetype="application/json")

    def metrics(self, visit: Visit) -> Response:
        body, content_type = self.figures.exposition()
        return Response(body, 200, content_type=content_type)

    def static(self, visit: Visit, name: str) -> Response:
        return static(name)


class Handlers:
    """Each route's handler, by endpoint name, from the part of the service it belongs to."""

    def __init__(self, *parts: object) -> None:
        self.parts = parts

    def __getattr__(self, endpoint: str) -> Any:
        for part in self.parts:
            if hasattr(part, endpoint):
                return getattr(part, endpoint)
        raise AttributeError(endpoint)


class Bell(Protocol):
    def ring(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Beside:
    """What the web service reads of `serve`'s own process, in shared memory (the
    listeners' refusals, the IMAP reader's passes), and the workers' doorbells, which it
    rings when a page's act queued mail."""

    refusals: Tally
    mailbox: PassState | None = None
    doorbells: Sequence[Bell] = ()

    def wake(self) -> None:
        for bell in self.doorbells:
            bell.ring()


def build_site(gateway: Gateway, beside: Beside) -> Site:
    pages = Pages(gateway.settings.notify.templates_dir)
    # Pages read without taking SQLite's write lock from the workers; acts write as usual.
    reads = make_engine(gateway.settings.effective_database_url, reads_only=True)
    status_pages = StatusPages(gateway, pages, beside.wake, make_session_factory(reads))
    handlers = Handlers(
        Operations(gateway, beside.mailbox, Figures(gateway, beside.refusals, reads)),
        status_pages,
        ArticlePages(status_pages),
        EngineerPages(gateway, pages, beside.wake, make_session_factory(reads)),
    )
    secure = gateway.settings.web.public_url.startswith("https://")
    return Site(handlers, pages, gateway.secret, secure)


class WebServer:
    """The web service, listening, in a thread of its own."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @classmethod
    def start(cls, gateway: Gateway, sock: socket.socket, beside: Beside) -> WebServer:
        """Serving on `sock`, already bound, in a thread of its own."""
        server = create_server(
            build_site(gateway, beside),
            sockets=[sock],
            threads=THREADS,
            ident="gateway",
            # Refused before it is stored, not after: no form is larger.
            max_request_body_size=MAX_FORM_BYTES,
        )
        thread = threading.Thread(target=server.run, name="web", daemon=True)
        thread.start()
        return cls(server, thread)

    def stop(self) -> None:
        """Stop taking connections, let the requests in hand finish and their answers go
        out (up to `STOP_SECONDS`), then close what is left."""
        self.server.accepting = False
        self.server.del_channel()
        self.server.socket.close()
        self.server.task_dispatcher.shutdown(timeout=STOP_SECONDS)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and any(
            getattr(channel, "total_outbufs_len", 0) for channel in list(self.server._map.values())
        ):
            time.sleep(0.05)
        for channel in list(self.server._map.values()):
            channel.close()
        self.thread.join(STOP_SECONDS)


def warn_of_loopback_links(web: Web) -> None:
    """Links to 127.0.0.1 in mail reach no customer: said once, at start, when the service
    listens beyond this machine."""
    host = urlsplit(web.public_url).hostname or ""
    if web.listen and not is_loopback(web.listen.host) and is_loopback(host):
        log.warning(
            "GATEWAY_PUBLIC_URL is %s: the links in customers' mail point at this machine "
            "itself; set it to the address customers reach the service at",
            web.public_url,
        )


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class TokenRedaction(logging.Filter):
    """Keeps the tokens in a path (status, download and sign-in links) and in an article
    link's query (`?t=`) out of the log, in whatever the server logs about a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = TOKEN_IN_PATH.sub(r"\1…", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


TOKEN_IN_PATH = re.compile(r"(/(?:t|f|sign-in)/|[?&]t=)[^\s/?&#\"']+")
logging.getLogger("waitress").addFilter(TokenRedaction())
