"""Fixtures with real servers on loopback: the gateway's own listeners, an aiosmtpd sink as
the outbound relay, and the gateway's workers, all on free ports picked per test."""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from gateway.app import Gateway, build_gateway, serve
from gateway.config import Endpoint, Settings
from storage.models import OutboxMail, OutboxState, Receipt, Ticket
from storage.session import upgrade_schema

DATA = Path(__file__).parent / "data"
SUPPORT = "support@example.com"


def free_port() -> int:
    """A port nobody listens on now (aiosmtpd's Controller cannot bind port 0 itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


@dataclass
class CapturedMail:
    mail_from: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SinkHandler:
    """Records every message the relay receives; can be told to refuse."""

    received: list[CapturedMail] = field(default_factory=list)
    refuse_with: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.received.append(
            CapturedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 OK"


class Sink:
    """A real SMTP server on loopback standing in for the outbound relay."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def received(self) -> list[CapturedMail]:
        return self.handler.received

    def wait_for(self, count: int, timeout: float = 15.0) -> list[CapturedMail]:
        wait_until(lambda: len(self.received) >= count, timeout, f"{count} mails at the sink")
        return self.received

    def to(self, address: str) -> list[CapturedMail]:
        return [mail for mail in self.received if address in mail.recipients]


@pytest.fixture
def sink() -> Iterator[Sink]:
    relay = Sink()
    relay.controller.start()
    yield relay
    relay.controller.stop()


@pytest.fixture
def settings(tmp_path: Path, sink: Sink) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        smtp_listen=Endpoint("127.0.0.1", free_port()),
        lmtp_listen=Endpoint("127.0.0.1", free_port()),
        support_address=SUPPORT,
        relay=Endpoint("127.0.0.1", sink.port),
        delivery_backoff_seconds=0.2,
        secret="test-secret",
    )


class RunningGateway:
    """`gateway serve` running in a background thread, with helpers to talk to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_schema(settings.effective_database_url)
        self.gateway: Gateway = build_gateway(settings)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            ready = asyncio.Event()
            task = asyncio.create_task(serve(self.gateway, self.stop_event, ready))
            await ready.wait()
            self.ready.set()
            await task

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test by stop()
            self.error = exc
            self.ready.set()

    def start(self) -> RunningGateway:
        self.thread.start()
        assert self.ready.wait(10), "gateway did not start"
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        assert not self.thread.is_alive(), "gateway did not stop"
        if self.error:
            raise self.error

    def send(self, message: EmailMessage | bytes, recipients: list[str] | None = None,
             sender: str = "customer@example.org") -> dict[str, Any]:
        """Send over SMTP to the gateway's listener, as a mail client's MTA would."""
        assert self.settings.smtp_listen is not None
        raw = message if isinstance(message, bytes) else message.as_bytes()
        with smtplib.SMTP(self.settings.smtp_listen.host, self.settings.smtp_listen.port) as smtp:
            refused: dict[str, Any] = smtp.sendmail(sender, recipients or [SUPPORT], raw)
            return refused

    def session(self) -> Any:
        return self.gateway.sessions()

    def count(self, model: Any) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def tickets(self) -> list[Ticket]:
        with self.session() as session:
            return list(session.scalars(select(Ticket).order_by(Ticket.id)).all())

    def receipts(self) -> list[Receipt]:
        with self.session() as session:
            return list(session.scalars(select(Receipt).order_by(Receipt.id)).all())

    def wait_for_receipts(self, count: int, timeout: float = 15.0) -> list[Receipt]:
        wait_until(lambda: self.count(Receipt) >= count, timeout, f"{count} receipts")
        return self.receipts()

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Until the spool's queue is empty and nothing in the outbox is pending."""
        def idle() -> bool:
            if self.gateway.spool.pending():
                return False
            with self.session() as session:
                pending = session.scalar(select(func.count()).select_from(OutboxMail)
                                         .where(OutboxMail.state == OutboxState.PENDING))
            return pending == 0
        wait_until(idle, timeout, "the gateway to go idle")


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    running = RunningGateway(settings).start()
    yield running
    running.stop()


@pytest.fixture
def make_gateway(settings: Settings) -> Iterator[Callable[..., RunningGateway]]:
    """Start a gateway with some settings changed."""
    started: list[RunningGateway] = []

    def start(**changes: Any) -> RunningGateway:
        running = RunningGateway(replace(settings, **changes)).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def load_case(name: str, **values: str) -> bytes:
    """A message from tests/data, with `{placeholders}` filled in."""
    text = (DATA / name).read_bytes()
    for key, value in values.items():
        text = text.replace(f"{{{key}}}".encode(), value.encode())
    return text
