"""The web service in a process of its own, beside the listeners and the workers.

A page is milliseconds of Python; in the listeners' process it would hold their
interpreter lock while a sender waits for its `250`, and pages read at a steady pace cut
the intake by a quarter (`bench/README.md`). So `serve` binds the port itself (a port that
is taken stops it, naming `GATEWAY_HTTP_LISTEN`, exit 78) and hands the socket to a child
process, niced below the workers: when the cores are busy, mail comes first. What the
child reads of `serve`'s own process comes in shared memory (`Beside`). Like a worker, it
is a `Child` of `serve`: it dies with it and is started again should it end.
"""

from __future__ import annotations

import gc
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from gateway.app import build_gateway
from gateway.errors import ConfigError
from gateway.lifeline import Child, become_child
from gateway.setting_values import Endpoint
from gateway.settings import Settings
from gateway.web.server import Beside, WebServer, warn_of_loopback_links

log = logging.getLogger(__name__)

# Below the workers' (5): pages wait for mail to be filed, never the other way round.
WEB_NICENESS = 10
STOP_SECONDS = 10.0
BACKLOG = 128


def bind(endpoint: Endpoint) -> socket.socket:
    """A listening socket on `endpoint`; `ConfigError` naming the setting when it is taken."""
    try:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((endpoint.host, endpoint.port))
        sock.listen(BACKLOG)
    except OSError as exc:
        raise ConfigError(
            f"GATEWAY_HTTP_LISTEN: cannot listen on {endpoint}: {exc.strerror}"
        ) from exc
    return sock


class WebProcess(Child):
    """The web service's process, on the socket `serve` bound for it."""

    name = "web service"
    title = "gateway-web"

    def __init__(self, settings: Settings, sock: socket.socket, beside: Beside) -> None:
        super().__init__()
        self.settings, self.sock, self.beside = settings, sock, beside

    @classmethod
    def bound(cls, settings: Settings, beside: Beside) -> WebProcess | None:
        """The process-to-be with its port bound; None when `GATEWAY_HTTP_LISTEN` is off."""
        web = settings.web
        if web.listen is None:
            return None
        sock = bind(web.listen)
        log.info("HTTP listening on %s (links in mail: %s)", web.listen, web.public_url or "none")
        warn_of_loopback_links(web)
        return cls(settings, sock, beside)

    def target(self) -> Callable[..., None]:
        return run_web

    def arguments(self) -> tuple[Any, ...]:
        return (self.settings, self.sock, self.beside)

    def stop(self) -> None:
        """SIGTERM: the requests in hand are answered; killed if it has not ended in time."""
        if self.alive():
            assert self.process is not None
            self.process.terminate()
        self.wait_to_end(STOP_SECONDS)
        self.sock.close()


def run_web(settings: Settings, sock: socket.socket, beside: Beside) -> None:
    """The web service's process: serve pages until SIGTERM, or until `serve` is gone."""
    stop = threading.Event()
    become_child(WebProcess.title, WEB_NICENESS, lambda _why: stop.set())
    gateway = build_gateway(settings)
    server = WebServer.start(gateway, sock, beside)
    gc.freeze()
    while not stop.wait(1.0):
        pass
    server.stop()
    gateway.engine.dispose()
