"""Serving the web service: waitress in a thread of `gateway serve`, beside the listeners.

Waitress is a production WSGI server in pure Python: a fixed pool of threads, bounded
request sizes, slow clients buffered by its event loop rather than holding a thread. It
runs in the listeners' process, where the door's refusals are counted, so `/metrics` sees
them; the database and the spool it reads are shared with the workers. A port that is
taken stops `serve` at start, naming `GATEWAY_HTTP_LISTEN` (exit 78).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waitress.server import create_server
from werkzeug.wrappers import Response

from gateway.app import Gateway
from gateway.errors import ConfigError
from gateway.imap_inbound import MailboxReader
from gateway.web.metrics import Figures
from gateway.web.pages import Pages
from gateway.web.queue_page import EngineerPages
from gateway.web.readiness import readiness
from gateway.web.site import Site, Visit, static
from gateway.web.status_page import StatusPages

log = logging.getLogger(__name__)

# Requests served at once; pages take milliseconds, so a few threads go a long way.
THREADS = 4
STOP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Operations:
    """What operators and their monitoring read: liveness, readiness, figures."""

    gateway: Gateway
    mailbox: MailboxReader | None
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


def build_site(gateway: Gateway, mailbox: MailboxReader | None, wake: Callable[[], None]) -> Site:
    pages = Pages(gateway.settings.notify.templates_dir)
    handlers = Handlers(
        Operations(gateway, mailbox, Figures(gateway)),
        StatusPages(gateway, pages, wake),
        EngineerPages(gateway, pages, wake),
    )
    secure = gateway.settings.web.public_url.startswith("https://")
    return Site(handlers, pages, gateway.secret, secure)


class WebServer:
    """The web service, listening, in a thread of its own."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @classmethod
    def start(
        cls, gateway: Gateway, mailbox: MailboxReader | None, wake: Callable[[], None]
    ) -> WebServer | None:
        """Listening on `GATEWAY_HTTP_LISTEN`; None when that is off."""
        endpoint = gateway.settings.web.listen
        if endpoint is None:
            return None
        site = build_site(gateway, mailbox, wake)
        try:
            server = create_server(
                site, host=endpoint.host, port=endpoint.port, threads=THREADS, ident="gateway"
            )
        except OSError as exc:
            raise ConfigError(
                f"GATEWAY_HTTP_LISTEN: cannot listen on {endpoint}: {exc.strerror}"
            ) from exc
        thread = threading.Thread(target=server.run, name="web", daemon=True)
        thread.start()
        log.info("HTTP listening on %s (links in mail: %s)", endpoint, public_url(gateway))
        return cls(server, thread)

    def stop(self) -> None:
        """Close the listening socket and every connection; requests in hand finish first."""
        self.server.task_dispatcher.shutdown(timeout=STOP_SECONDS)
        for channel in list(self.server._map.values()):
            channel.close()
        self.thread.join(STOP_SECONDS)


def public_url(gateway: Gateway) -> str:
    return gateway.settings.web.public_url or "none"
