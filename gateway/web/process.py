"""The web service in a process of its own, beside the listeners and the workers.

A page is milliseconds of Python; in the listeners' process it would hold their
interpreter lock while a sender waits for its `250`, and pages read at a steady pace cut
the intake by a quarter (`bench/README.md`). So `serve` binds the port itself (a port that
is taken stops it, naming `GATEWAY_HTTP_LISTEN`, exit 78) and hands the socket to a child
process, niced below the workers: when the cores are busy, mail comes first. What the
child reads of `serve`'s own process comes in shared memory (the listeners' refusals, the
IMAP reader's passes); it rings the workers' doorbells when a page's act queued mail. Like
a worker, it dies with `serve` and is started again by it should it end.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from gateway.app import build_gateway
from gateway.errors import ConfigError
from gateway.imap_inbound import PassState
from gateway.lifeline import die_with_parent
from gateway.refusals import Tally
from gateway.setting_values import Endpoint
from gateway.settings import Settings
from gateway.web.server import Beside, WebServer, warn_of_loopback_links

log = logging.getLogger(__name__)

# Below the workers' (5): pages wait for mail to be filed, never the other way round.
WEB_NICENESS = 10
STOP_SECONDS = 10.0
BACKLOG = 128
# What `ps` and /proc/PID/comm call the process: the fork server's command line is all else.
PROCESS_NAME = b"gateway-web"
PR_SET_NAME = 15


class Bell(Protocol):
    def ring(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Shared:
    """What `serve` hands the web process: shared memory, and the workers' doorbells."""

    refusals: Any
    mailbox: Any | None
    doorbells: Sequence[Bell]

    def beside(self) -> Beside:
        mailbox = None
        if self.mailbox is not None:
            mailbox = PassState()
            mailbox.shared = self.mailbox
        doorbells = self.doorbells

        def wake() -> None:
            for bell in doorbells:
                bell.ring()

        return Beside(Tally(self.refusals), mailbox, wake)


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


class WebProcess:
    """The web service's process, started (and started again) by `serve`."""

    name = "web service"

    def __init__(self, settings: Settings, sock: socket.socket, shared: Shared) -> None:
        self.settings, self.sock, self.shared = settings, sock, shared
        self.context = multiprocessing.get_context("forkserver")
        self.process: BaseProcess | None = None

    @classmethod
    def bound(cls, settings: Settings, shared: Shared) -> WebProcess | None:
        """The process-to-be with its port bound; None when `GATEWAY_HTTP_LISTEN` is off."""
        web = settings.web
        if web.listen is None:
            return None
        sock = bind(web.listen)
        log.info("HTTP listening on %s (links in mail: %s)", web.listen, web.public_url or "none")
        warn_of_loopback_links(web)
        return cls(settings, sock, shared)

    def start(self) -> None:
        if self.process is not None:
            self.process.close()
        self.process = self.context.Process(
            target=run_web,
            args=(self.settings, self.sock, self.shared),
            name="gateway-web",
            daemon=True,
        )
        self.process.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def how_it_ended(self) -> str:
        code = self.process.exitcode if self.process is not None else None
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def stop(self) -> None:
        """SIGTERM: the requests in hand are answered; killed if it has not ended in time."""
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_SECONDS)
            if self.process.is_alive():
                log.error("web service did not stop on SIGTERM; killing it")
                self.process.kill()
                self.process.join()
        self.sock.close()


def run_web(settings: Settings, sock: socket.socket, shared: Shared) -> None:
    """The web service's process: serve pages until SIGTERM, or until `serve` is gone."""
    stop = threading.Event()
    name_this_process(PROCESS_NAME)
    parent = multiprocessing.parent_process()
    assert parent is not None, "run_web runs in a child process"
    die_with_parent(parent.pid or 0, parent.sentinel, stop.set)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    os.nice(WEB_NICENESS)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    gateway = build_gateway(settings)
    server = WebServer.start(gateway, sock, shared.beside())
    gc.freeze()
    while not stop.wait(1.0):
        pass
    server.stop()
    gateway.engine.dispose()


def name_this_process(name: bytes) -> None:
    """Name the process for `ps` and `top`; a process left unnamed is only logged."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
        log.info("could not name the process: errno %d", ctypes.get_errno())
