"""Wiring: builds the stages from `Settings` and runs them together in `serve()`.

`serve()` runs the SMTP/LMTP listeners, the pipeline worker (spool → tickets) and the
delivery worker (outbox → relay) in one event loop until it is asked to stop; blocking
work (fsync, parsing, database, SMTP client) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Settings
from gateway.delivery import Dispatcher, MaildirDrop, SmtpRelay, Transport
from gateway.errors import ConfigError
from gateway.notifications import Notifier, Sender
from gateway.pipeline import Pipeline
from gateway.smtp_inbound import SupportHandler, smtp_factory
from gateway.spool import Spool
from gateway.tokens import load_secret
from storage.blobs import BlobStore
from storage.session import make_engine, make_session_factory, schema_revisions

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Gateway:
    """The stages, built once from the settings."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    spool: Spool
    pipeline: Pipeline
    dispatcher: Dispatcher


def build_gateway(settings: Settings) -> Gateway:
    """Create the data directory layout and every stage; checks the schema is current."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    require_current_schema(engine)
    sessions = make_session_factory(engine)
    blobs = BlobStore(settings.data_dir / "blobs")
    spool = Spool(settings.data_dir / "spool", blobs, settings.max_message_bytes)
    spool.prepare()
    secret = load_secret(settings.secret, settings.data_dir / "secret.key")
    sender = Sender(settings.support_address, settings.support_name, settings.subject_tag,
                    secret)
    pipeline = Pipeline(spool, sessions, blobs, Notifier(settings.templates_dir, sender),
                        secret, settings.support_address, settings.subject_tag)
    dispatcher = Dispatcher(sessions, make_transport(settings), settings.delivery_max_attempts,
                            settings.delivery_backoff_seconds)
    return Gateway(settings, engine, sessions, spool, pipeline, dispatcher)


def require_current_schema(engine: Engine) -> None:
    current, newest = schema_revisions(engine)
    if current != newest:
        raise ConfigError(
            f"the database schema is at {current or 'nothing'}, this gateway needs {newest}: "
            "run `gateway migrate` first"
        )


def make_transport(settings: Settings) -> Transport:
    if settings.relay is None:
        return MaildirDrop(settings.data_dir / "outbox-maildir")
    return SmtpRelay(settings.relay.host, settings.relay.port)


async def serve(gateway: Gateway, stop: asyncio.Event | None = None,
                ready: asyncio.Event | None = None) -> None:
    """Run listeners and workers until `stop` is set (or SIGTERM/SIGINT arrives)."""
    stop = stop or asyncio.Event()
    install_signal_handlers(stop)
    spooled = asyncio.Event()
    outbox_ready = asyncio.Event()
    servers = await start_listeners(gateway, spooled.set)
    workers = [
        asyncio.create_task(pipeline_worker(gateway, spooled, outbox_ready, stop)),
        asyncio.create_task(delivery_worker(gateway, outbox_ready, stop)),
    ]
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping: closing listeners, finishing work in progress")
    for server in servers:
        server.close()
        await server.wait_closed()
    spooled.set()
    outbox_ready.set()
    await asyncio.gather(*workers)
    gateway.engine.dispose()


def install_signal_handlers(stop: asyncio.Event) -> None:
    # Only the main thread may take signals; embedded in another thread, the caller stops us.
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def start_listeners(gateway: Gateway,
                          on_spooled: Callable[[], None]) -> list[asyncio.Server]:
    settings = gateway.settings
    loop = asyncio.get_running_loop()
    servers = []
    for endpoint, source in ((settings.smtp_listen, "smtp"), (settings.lmtp_listen, "lmtp")):
        if endpoint is None:
            continue
        handler = SupportHandler(gateway.spool, settings.support_address, source, on_spooled)
        factory = smtp_factory(handler, settings.max_message_bytes, lmtp=source == "lmtp")
        try:
            server = await loop.create_server(factory, endpoint.host, endpoint.port)
        except OSError as exc:
            key = "GATEWAY_SMTP_LISTEN" if source == "smtp" else "GATEWAY_LMTP_LISTEN"
            raise ConfigError(f"{key}: cannot listen on {endpoint}: {exc.strerror}") from exc
        log.info("%s listening on %s", source.upper(), endpoint)
        servers.append(server)
    return servers


async def pipeline_worker(gateway: Gateway, spooled: asyncio.Event,
                          outbox_ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Files spooled messages as they arrive; also picks up what a crash left behind."""
    while True:
        # Cleared before draining, so mail spooled during a drain wakes the next one.
        spooled.clear()
        outcomes = await asyncio.to_thread(gateway.pipeline.drain)
        if outcomes:
            outbox_ready.set()
        if stop.is_set():
            return
        await wait_for_either(spooled, stop, IDLE_POLL_SECONDS)


async def delivery_worker(gateway: Gateway, outbox_ready: asyncio.Event,
                          stop: asyncio.Event) -> None:
    """Sends due outbox rows; wakes when the pipeline queued mail, or to retry."""
    while True:
        outbox_ready.clear()
        await asyncio.to_thread(gateway.dispatcher.deliver_due)
        if stop.is_set():
            return
        await wait_for_either(outbox_ready, stop, IDLE_POLL_SECONDS)


async def wait_for_either(event: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


def run_forever(gateway: Gateway, data_dir: Path) -> None:
    """`gateway serve`: run until a signal."""
    log.info("gateway serving; data in %s", data_dir.resolve())
    asyncio.run(serve(gateway))
