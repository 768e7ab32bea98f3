"""Running the gateway that `gateway.app` builds: `serve()`, its worker processes, signals.

`serve()` runs the SMTP/LMTP listeners in an event loop (spooling in threads), the IMAP
intake in a thread when a mailbox is configured, the web service in a process of its own
(`gateway.web`), and worker processes (`GATEWAY_WORKERS`)
that file spooled mail (spool → tickets → outbox), run time-based work that has fallen due
(auto-close) and deliver the outbox, until it is asked to stop. Each worker has a child
process that parses its next batch while it files the current one. Anything a crash
interrupts is picked up again from the spool.

Stopping. `serve`'s own stop (SIGTERM or SIGINT to it) asks each worker to finish its round
(file what waits, run due timers, deliver) and exit, and waits up to `WORKER_STOP_SECONDS`
before it sends the worker SIGTERM. SIGTERM to a worker makes it stop now: it files the
batch in hand, gives back the rest (it waits in the spool, the outbox in the database) and
exits; `serve`, if it is still running, starts a new worker within a second, as it does
for a worker that dies any other way. No child outlives `serve`: a worker whose `serve` is
gone (killed with SIGKILL, say) stops as on SIGTERM and is ended if it has not within a
second (`gateway.lifeline`); its parser child, the fork server and the resource tracker
follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from gateway.app import Gateway, build_gateway, make_mailbox_reader
from gateway.blob_moves import count_not_moved
from gateway.database import database_errors
from gateway.errors import ConfigError, DatabaseUnavailable
from gateway.hosts import HostLocks
from gateway.imap_inbound import MailboxReader
from gateway.kb_watch import KnowledgeWatch
from gateway.lifeline import Child, become_child
from gateway.parse_ahead import Parser, ParseResult, Results
from gateway.refusals import REFUSED
from gateway.settings import Settings
from gateway.smtp_inbound import SupportHandler, smtp_factory
from gateway.spool import IntakeSource, Receipt
from gateway.web import Beside, WebProcess

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
# When the cores are busy, the listeners come first: a sender waits for its `250`, while
# spooled mail can wait a moment for the worker.
WORKER_NICENESS = 5
WORKER_STOP_SECONDS = 30.0
IMAP_STOP_SECONDS = 45.0
# How often the worker looks for time-based work (auto-close) that has fallen due.
TIMERS_EVERY_SECONDS = 60.0


async def serve(
    gateway: Gateway, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> None:
    """Run listeners, and the worker processes, until `stop` is set (or SIGTERM/SIGINT)."""
    stop = stop or asyncio.Event()
    install_signal_handlers(stop)
    if removed := gateway.spool.sweep():
        log.info("removed %d temporary file(s) left by a killed process", removed)
    workers = [WorkerProcess(gateway.settings) for _ in range(gateway.settings.workers)]

    def wake_workers() -> None:
        for worker in workers:
            worker.doorbell.ring()

    reader = make_mailbox_reader(gateway, wake_workers)
    beside = Beside(
        REFUSED, reader.state if reader else None, [worker.doorbell for worker in workers]
    )
    # First, so that a taken port stops `serve` before any process starts.
    web = WebProcess.bound(gateway.settings, beside)
    children: list[Child] = [*workers, *([web] if web else [])]
    for child in children:
        child.start()
    knowledge = await asyncio.to_thread(KnowledgeWatch.start, gateway)
    servers = await start_listeners(gateway, wake_workers)
    mailbox = MailboxThread.start(reader, gateway.locks)
    notice = asyncio.create_task(tell_of_blobs_not_moved(gateway))
    watchdog = asyncio.create_task(keep_workers_alive(children, stop))
    # What starting made lives as long as the process: kept out of the collector's full
    # rounds, which otherwise stall a page or a `250` for tens of milliseconds now and then.
    gc.freeze()
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping: closing listeners, finishing work in progress")
    notice.cancel()
    for server in servers:
        server.close()
        await server.wait_closed()
    await asyncio.to_thread(mailbox.stop)
    await asyncio.to_thread(knowledge.stop)
    await watchdog
    if web is not None:
        await asyncio.to_thread(web.stop)
    await asyncio.gather(*(asyncio.to_thread(worker.stop) for worker in workers))
    gateway.engine.dispose()


async def tell_of_blobs_not_moved(gateway: Gateway) -> None:
    """Log how many blobs are still read from the folder `gateway blobs migrate` empties.
    Counting walks the whole folder and asks the database about each blob, so it runs in
    a thread once the listeners are up: mail is not kept waiting for it."""
    try:
        with database_errors():
            waiting = await asyncio.to_thread(count_not_moved, gateway.blobs)
    except (DatabaseUnavailable, OSError) as exc:
        log.warning("cannot count the blobs still to move into the database: %s", exc)
        return
    if waiting:
        log.warning(
            "%d blob(s) are still read from %s: move them into the database with "
            "`gateway blobs migrate`",
            waiting,
            gateway.settings.blob_directory,
        )


@dataclass(frozen=True, slots=True)
class MailboxThread:
    """The IMAP intake, blocking on its server in a thread of its own beside the listeners."""

    thread: threading.Thread | None
    stopping: threading.Event

    @classmethod
    def start(cls, reader: MailboxReader | None, locks: HostLocks) -> MailboxThread:
        stopping = threading.Event()
        if reader is None:
            return cls(None, stopping)
        thread = threading.Thread(
            target=reader.run_alone, args=(stopping, locks), name="imap-intake", daemon=True
        )
        thread.start()
        log.info("IMAP intake reading %s", reader.account)
        return cls(thread, stopping)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            # Long enough for a blocked IMAP read to time out and the thread to log out.
            self.thread.join(IMAP_STOP_SECONDS)


class Doorbell:
    """How the listeners wake the worker: a byte down a pipe, written without blocking.

    Not a `multiprocessing.Event`: setting one waits for every process asleep on it to
    acknowledge, so a worker killed (the OOM killer's favourite, when it holds a large
    message) or stopped while it waited would hang every listener at its next `250`.
    """

    def __init__(self, context: BaseContext) -> None:
        self.bell, self.ringer = context.Pipe(duplex=False)
        os.set_blocking(self.ringer.fileno(), False)

    def ring(self) -> None:
        # One write of a few bytes to a pipe is all or nothing; a full pipe already holds
        # more wake-ups than the worker needs.
        with contextlib.suppress(BlockingIOError):
            self.ringer.send_bytes(b"!")

    def wait(self, timeout: float) -> None:
        """Until rung or `timeout`; the rings so far are answered together."""
        if self.bell.poll(timeout):
            while self.bell.poll(0):
                self.bell.recv_bytes()


class WorkerProcess(Child):
    """The pipeline and the delivery worker, in a process of their own.

    Receiving is I/O-bound and parsing, threading and rendering are CPU-bound; in one
    process they share one interpreter lock, so intake latency and throughput both
    suffered. The listeners ring `doorbell` after each spooled message.
    """

    name = "worker process"
    title = "gateway-worker"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.doorbell = Doorbell(self.context)
        # Shared memory without a lock, for the reason `Doorbell` gives.
        self.finishing = self.context.RawValue("b", 0)

    def target(self) -> Callable[..., None]:
        return run_worker

    def arguments(self) -> tuple[Any, ...]:
        return (self.settings, self.doorbell, self.finishing)

    def stop(self) -> None:
        """Ask the worker to finish its round; SIGTERM it after `WORKER_STOP_SECONDS`, and
        kill it when that has not stopped it either."""
        self.finishing.value = 1
        self.doorbell.ring()
        self.wait_to_end(WORKER_STOP_SECONDS)


async def keep_workers_alive(children: Sequence[Child], stop: asyncio.Event) -> None:
    """Restart a worker (or the web service) that dies; spooled mail waits safely in the
    meantime, and connections to the web service wait in its socket's backlog."""
    while not stop.is_set():
        await wait_for(stop, IDLE_POLL_SECONDS)
        for child in children:
            if not stop.is_set() and not child.alive():
                log.error("%s ended (%s); starting another", child.name, child.how_it_ended())
                child.start()


class WorkerStop:
    """Whether the worker should stop, and how soon.

    `finishing` (shared memory `serve` sets): at the end of this round, once what waits is
    filed and the outbox delivered. `now` (SIGTERM, or `serve` gone): after the batch in
    hand; what is left waits in the spool, the outbox in the database."""

    def __init__(self, finishing: Synchronized[int], doorbell: Doorbell) -> None:
        self.finishing = finishing
        self.doorbell = doorbell
        self.why = ""

    def now(self, why: str) -> None:
        """From a signal handler or another thread: stop after the batch in hand."""
        self.why = self.why or why
        self.doorbell.ring()  # Wakes the worker should it be waiting for mail.

    @property
    def stopping_now(self) -> bool:
        return bool(self.why)

    @property
    def stopping(self) -> bool:
        return self.stopping_now or bool(self.finishing.value)


class StopRequested(Exception):
    """Ends a drain at the next batch; the batch is given back to the spool unfiled."""


@dataclass(frozen=True, slots=True)
class UntilStopped:
    """A `Parser` that ends the drain once the worker is to stop now: asking for a batch's
    results then raises `StopRequested`, so the executor files the batch in hand, and the
    next one's claims are released before any of it is filed."""

    parser: Parser
    stop: WorkerStop

    def submit(self, receipts: Sequence[Receipt]) -> Results:
        results = self.parser.submit(receipts)

        def unless_stopped() -> list[ParseResult]:
            if self.stop.stopping_now:
                raise StopRequested(self.stop.why)
            return results()

        return unless_stopped


def run_worker(settings: Settings, doorbell: Doorbell, finishing: Synchronized[int]) -> None:
    """The worker process: file spooled mail, run due timers, send due mail, until told
    to stop; and stop when `serve` is gone."""
    stop = WorkerStop(finishing, doorbell)
    become_child(WorkerProcess.title, WORKER_NICENESS, stop.now)
    gateway = build_gateway(settings)
    parser = gateway.parser_process()
    try:
        parser.start_early()
        work(gateway, UntilStopped(parser, stop), doorbell, stop)
    except StopRequested:
        pass
    finally:
        parser.close()
        gateway.engine.dispose()
    if stop.stopping_now:
        log.info("worker stopped: %s", stop.why)


def work(gateway: Gateway, parser: Parser, doorbell: Doorbell, stop: WorkerStop) -> None:
    """Rounds of filing, timers and delivery, until `stop`."""
    timers_due = 0.0
    while not stop.stopping_now:
        # Rings during a drain stay in the pipe, so the mail they announce is not missed.
        gateway.executor.drain(parser)
        if stop.stopping_now:
            return
        if time.monotonic() >= timers_due:
            run_timers(gateway)
            timers_due = time.monotonic() + TIMERS_EVERY_SECONDS
        gateway.dispatcher.deliver_due()
        if stop.stopping:
            return
        doorbell.wait(IDLE_POLL_SECONDS)


def run_timers(gateway: Gateway) -> None:
    """Time-based work; a failure is logged and retried next round, never stops delivery."""
    try:
        gateway.timers.run_due()
    except Exception:  # The outbox must still be delivered below.
        log.exception("time-based work failed; trying again in %.0fs", TIMERS_EVERY_SECONDS)


def install_signal_handlers(stop: asyncio.Event) -> None:
    # Only the main thread may take signals; embedded in another thread, the caller stops us.
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def start_listeners(gateway: Gateway, on_spooled: Callable[[], None]) -> list[asyncio.Server]:
    settings = gateway.settings
    loop = asyncio.get_running_loop()
    servers = []
    for endpoint, source in (
        (settings.listen.smtp, IntakeSource.SMTP),
        (settings.listen.lmtp, IntakeSource.LMTP),
    ):
        if endpoint is None:
            continue
        handler = SupportHandler(gateway.spool, settings.mailbox.address, source, on_spooled)
        factory = smtp_factory(
            handler, settings.limits.max_message_bytes, lmtp=source is IntakeSource.LMTP
        )
        try:
            server = await loop.create_server(factory, endpoint.host, endpoint.port)
        except OSError as exc:
            key = "GATEWAY_SMTP_LISTEN" if source is IntakeSource.SMTP else "GATEWAY_LMTP_LISTEN"
            raise ConfigError(f"{key}: cannot listen on {endpoint}: {exc.strerror}") from exc
        log.info("%s listening on %s", source.upper(), endpoint)
        servers.append(server)
    return servers


async def wait_for(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def run_forever(gateway: Gateway) -> None:
    """`gateway serve`: run until a signal."""
    log.info("gateway serving; data in %s", gateway.settings.data_dir.resolve())
    if not gateway.settings.workflow.engineers:
        log.warning(
            "GATEWAY_ENGINEERS is empty: new tickets are acknowledged to customers "
            "but reach no engineer"
        )
    asyncio.run(serve(gateway))
