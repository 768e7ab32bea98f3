"""Fixtures with real servers on loopback: the gateway's own listeners, an aiosmtpd sink as
the outbound relay, the gateway's workers, and the database, all on free ports picked per test.

Every test that stores anything runs twice: on the embedded SQLite default and on a real
PostgreSQL server (`database_url`); `-m "not postgres"` leaves the second out.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import IO, Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from gateway.app import Gateway, build_gateway
from gateway.clock import Clock
from gateway.config import load_settings
from gateway.parsing import mime
from gateway.serving import serve
from gateway.setting_values import Endpoint, Engineer
from gateway.settings import Settings
from gateway.tokens import is_support_address
from storage.models import Event, OutboxMail, OutboxState, Receipt, Ticket
from tests.dovecot import Dovecot, TokenIntrospection
from tests.forked import run_forked
from tests.ports import free_port
from tests.postgres import PostgresServer
from tests.schema import current_schema

DATA = Path(__file__).parent / "data"
SUPPORT = "support@example.com"
# Generous: on a loaded two-core machine the first worker start imports the whole gateway.
GATEWAY_START_SECONDS = 30


@contextmanager
def every_line_parsed() -> Iterator[None]:
    """`parse_message` with no run of base64 lines kept out of the stdlib's parser."""
    kept, mime.ELIDED_RUN_BYTES = mime.ELIDED_RUN_BYTES, 2**62
    try:
        yield
    finally:
        mime.ELIDED_RUN_BYTES = kept


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


class ServeProcess:
    """`gateway serve` in a session of its own, so a kill takes its worker child too."""

    def __init__(
        self, env: dict[str, str], port: int, log: IO[bytes], host: str = "127.0.0.1"
    ) -> None:
        self.env, self.port, self.log, self.host = env, port, log, host
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        wait_until(self.listening, 30, "gateway serve to listen")

    def listening(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "serve exited"
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def gateway_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_SUPPORT_ADDRESS=SUPPORT,
        GATEWAY_SECRET="test-secret",
        # Tests that serve pages listen on a port of their own; the default would collide.
        GATEWAY_HTTP_LISTEN="off",
    )
    env.update(extra)
    return env


@contextmanager
def serving_hosts(
    tmp_path: Path, hosts: Sequence[str], **settings: str
) -> Iterator[list[ServeProcess]]:
    """A `gateway serve` for each loopback address in `hosts`, as on machines of their own:
    each on a free SMTP port, with a data directory (`host-1`, ...) and a log (`serve-1.log`,
    ...) of its own under `tmp_path`, and `settings`. Started by the caller, stopped after."""
    processes: list[ServeProcess] = []
    with ExitStack() as logs:
        for number, host in enumerate(hosts, 1):
            port = free_port()
            env = gateway_env(
                tmp_path / f"host-{number}", GATEWAY_SMTP_LISTEN=f"{host}:{port}", **settings
            )
            log = logs.enter_context((tmp_path / f"serve-{number}.log").open("wb"))
            processes.append(ServeProcess(env, port, log, host))
        try:
            yield processes
        finally:
            for process in processes:
                process.stop()


def run_gateway(
    env: dict[str, str], *args: str, stdin: bytes = b"", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` as a process of its own, forked from one that has imported
    the gateway already (`tests.forked`); its output read as latin-1."""
    command = [sys.executable, "-m", "gateway", *args]
    forked = run_forked(list(args), env, stdin, timeout=60)
    if forked is None:
        result = subprocess.run(
            command,
            env=env,
            input=stdin.decode("latin-1"),
            capture_output=True,
            text=True,
            timeout=60,
            encoding="latin-1",
        )
    else:
        code, stdout, stderr = forked
        result = subprocess.CompletedProcess(command, code, as_text(stdout), as_text(stderr))
    if check:
        assert result.returncode == 0, result.stderr
    return result


def as_text(output: bytes) -> str:
    """`output` as `subprocess.run(text=True, encoding="latin-1")` reads it: universal
    newlines."""
    return output.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")


def with_current_schema(env: dict[str, str]) -> dict[str, str]:
    """`env`'s data directory and database, as `gateway db upgrade` leaves them, made here:
    where the command is only a test's setup, its process costs a second."""
    settings = load_settings(env)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    current_schema(settings.effective_database_url)
    return env


@pytest.fixture
def served(tmp_path: Path, sink: Sink) -> Iterator[ServeProcess]:
    """`gateway serve` as its own process on SQLite, listening, with `sink` as its relay;
    its `env` runs the other commands."""
    port = free_port()
    env = gateway_env(
        tmp_path / "var",
        GATEWAY_SMTP_LISTEN=f"127.0.0.1:{port}",
        GATEWAY_RELAY=f"127.0.0.1:{sink.port}",
    )
    with_current_schema(env)
    with (tmp_path / "serve.log").open("wb") as log:
        serve = ServeProcess(env, port, log)
        serve.start()
        yield serve
        serve.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    relay = Sink()
    relay.controller.start()
    yield relay
    relay.controller.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL cluster for the run; fails (never skips) when not installed."""
    server = PostgresServer().start()
    yield server
    server.stop()


BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def one_database(request: pytest.FixtureRequest, with_schema: bool) -> Iterator[str]:
    """ "" (a SQLite file in the data dir) or the URL of a fresh PostgreSQL database, which
    is dropped after the test."""
    if request.param == "sqlite":
        yield ""
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.new_database() if with_schema else server.empty_database()
    yield url
    server.drop(url)


@pytest.fixture(params=BOTH_DATABASES)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database of one test, with the current schema on PostgreSQL (SQLite gets it from
    the gateway). `@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)`
    keeps a test about SQLite itself to SQLite."""
    yield from one_database(request, with_schema=True)


@pytest.fixture(params=BOTH_DATABASES)
def bare_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database without any schema: a new SQLite file, or an empty PostgreSQL database."""
    yield from one_database(request, with_schema=False)


@pytest.fixture
def settings(tmp_path: Path, sink: Sink, database_url: str) -> Settings:
    return Settings().changed(
        data_dir=tmp_path / "var",
        database_url=database_url,
        smtp_listen=Endpoint("127.0.0.1", free_port()),
        lmtp_listen=Endpoint("127.0.0.1", free_port()),
        support_address=SUPPORT,
        relay=Endpoint("127.0.0.1", sink.port),
        delivery_backoff_seconds=0.2,
        secret="test-secret",
        http_listen=None,
    )


class GatewayUnderTest:
    """What tests read of a gateway, served or driven in this process: its stages
    (`gateway`) and its database."""

    settings: Settings
    gateway: Gateway

    def session(self) -> Any:
        return self.gateway.sessions()

    def due_at(self, moment: datetime) -> list[int]:
        """`gateway due --now MOMENT`: the time-based work of that moment and the mail it
        sends, run here; the tickets it closed."""
        stages = build_gateway(self.settings, Clock.at(moment))
        try:
            closed = stages.timers.run_due()
            stages.dispatcher.deliver_due()
            return closed
        finally:
            stages.engine.dispose()

    def count(self, model: Any) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def tickets(self) -> list[Ticket]:
        with self.session() as session:
            return list(session.scalars(select(Ticket).order_by(Ticket.id)).all())

    def receipts(self) -> list[Receipt]:
        with self.session() as session:
            return list(session.scalars(select(Receipt).order_by(Receipt.id)).all())


def awaited_at(task: asyncio.Task[None]) -> str:
    """Where a task's coroutines wait, outermost first (a task's own stack shows only its
    first coroutine)."""
    lines, coroutine = [], task.get_coro()
    while coroutine is not None and getattr(coroutine, "cr_frame", None) is not None:
        frame = coroutine.cr_frame
        lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coroutine = coroutine.cr_await
    return "\n".join(lines) or "(serve() has ended)"


class OverSmtp(GatewayUnderTest):
    """A gateway with its listeners and workers running: mail goes in over SMTP, and it is
    idle once its spool and outbox are."""

    def send(
        self,
        message: EmailMessage | bytes,
        recipients: list[str] | None = None,
        sender: str = "customer@example.org",
    ) -> dict[str, Any]:
        """Send over SMTP to the gateway's listener, as a mail client's MTA would."""
        endpoint = self.settings.listen.smtp
        assert endpoint is not None
        raw = message if isinstance(message, bytes) else message.as_bytes()
        with smtplib.SMTP(endpoint.host, endpoint.port) as smtp:
            refused: dict[str, Any] = smtp.sendmail(sender, recipients or [SUPPORT], raw)
            return refused

    def wait_for_receipts(self, count: int, timeout: float = 15.0) -> list[Receipt]:
        wait_until(lambda: self.count(Receipt) >= count, timeout, f"{count} receipts")
        return self.receipts()

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Until the spool's queue is empty and nothing in the outbox is pending."""

        def idle() -> bool:
            if self.gateway.spool.pending():
                return False
            with self.session() as session:
                pending = session.scalar(
                    select(func.count())
                    .select_from(OutboxMail)
                    .where(OutboxMail.state == OutboxState.PENDING)
                )
            return pending == 0

        wait_until(idle, timeout, "the gateway to go idle")


class RunningGateway(OverSmtp):
    """`gateway serve` running in a background thread, with helpers to talk to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        current_schema(settings.effective_database_url)
        self.gateway: Gateway = build_gateway(settings)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            ready = asyncio.Event()
            self.task = asyncio.create_task(serve(self.gateway, self.stop_event, ready))
            # Until ready, or until serve() ends: a gateway that fails to start says why.
            started = asyncio.create_task(ready.wait())
            await asyncio.wait({self.task, started}, return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
            self.ready.set()
            await self.task

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test by stop()
            self.error = exc
            self.ready.set()

    def start(self) -> RunningGateway:
        self.thread.start()
        if not self.ready.wait(GATEWAY_START_SECONDS):
            frame = sys._current_frames().get(self.thread.ident or 0)
            where = "".join(traceback.format_stack(frame)) if frame else "(the thread has ended)\n"
            awaiting = awaited_at(self.task) if self.task else "(serve() never began)"
            pytest.fail(
                f"gateway did not start in {GATEWAY_START_SECONDS}s; it was at:\n{where}"
                f"serve() was waiting at:\n{awaiting}"
            )
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


class DirectGateway(GatewayUnderTest):
    """The gateway's stages in this process, without listeners or workers: `send` spools a
    message as the SMTP listener would, files it and delivers what it caused before it
    returns. For tests of decisions (threading, the workflow, confirmations), where a
    listener and worker processes would add only time; the same helpers as
    `RunningGateway`."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        current_schema(settings.effective_database_url)
        self.gateway: Gateway = build_gateway(settings, clock)

    def start(self) -> DirectGateway:
        return self

    def stop(self) -> None:
        self.gateway.engine.dispose()

    def send(
        self,
        message: EmailMessage | bytes,
        recipients: list[str] | None = None,
        sender: str = "customer@example.org",
    ) -> dict[str, Any]:
        """Spool, file and deliver as a listener and a worker would; what SMTP would refuse
        (recipients other than the support address) is returned, as `sendmail` does."""
        wanted = recipients or [SUPPORT]
        accepted = [r for r in wanted if is_support_address(r, self.settings.mailbox.address)]
        refused = {r: (550, b"5.1.1 no such mailbox here") for r in wanted if r not in accepted}
        self.gateway.spool.accept(as_sent_over_smtp(message), sender, accepted, "smtp")
        self.gateway.executor.drain()
        self.gateway.dispatcher.deliver_due()
        return refused

    def wait_for_receipts(self, count: int, timeout: float = 15.0) -> list[Receipt]:
        receipts = self.receipts()
        assert len(receipts) >= count, f"{len(receipts)} receipts, not {count}"
        return receipts

    def wait_idle(self, timeout: float = 15.0) -> None:
        self.gateway.executor.drain()
        self.gateway.dispatcher.deliver_due()


def as_sent_over_smtp(message: EmailMessage | bytes) -> bytes:
    """The bytes a listener receives for `message` from `smtplib`: every line ending CRLF,
    the last one too."""
    raw = message if isinstance(message, bytes) else message.as_bytes()
    raw = re.sub(rb"\r\n|\n|\r", b"\r\n", raw)
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


@pytest.fixture
def make_direct_gateway(settings: Settings) -> Iterator[Callable[..., DirectGateway]]:
    """The stages in this process, with some settings changed."""
    started: list[DirectGateway] = []

    def start(clock: Clock | None = None, **changes: Any) -> DirectGateway:
        direct = DirectGateway(settings.changed(**changes), clock)
        started.append(direct)
        return direct

    yield start
    for direct in started:
        direct.stop()


@pytest.fixture
def served_gateway(settings: Settings) -> Iterator[RunningGateway]:
    """A gateway served as `gateway serve` runs: listeners, worker processes."""
    running = RunningGateway(settings).start()
    yield running
    running.stop()


@pytest.fixture
def gateway(served_gateway: RunningGateway) -> RunningGateway:
    return served_gateway


@pytest.fixture
def make_gateway(
    make_served_gateway: Callable[..., RunningGateway],
) -> Callable[..., RunningGateway]:
    return make_served_gateway


@pytest.fixture
def make_served_gateway(settings: Settings) -> Iterator[Callable[..., RunningGateway]]:
    """Serve a gateway with some settings changed."""
    started: list[RunningGateway] = []

    def start(**changes: Any) -> RunningGateway:
        running = RunningGateway(settings.changed(**changes)).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


class RawClient:
    """An SMTP client that writes exactly the bytes it is given."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.replies = self.sock.makefile("rb")
        assert self.reply().startswith("220")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.replies.readline().decode()
            assert line, "connection closed"
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return "\n".join(lines)

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.replies.close()
        self.sock.close()


def load_case(name: str, **values: str) -> bytes:
    """A message from tests/data, with `{placeholders}` filled in."""
    text = (DATA / name).read_bytes()
    for key, value in values.items():
        text = text.replace(f"{{{key}}}".encode(), value.encode())
    return text


ALICE = "alice@customer.example"
ENG1 = "eng1@example.com"
ENG2 = "eng2@example.com"
LEAD = "lead@example.com"
ENGINEERS = (Engineer(ENG1), Engineer(ENG2), Engineer(LEAD, "L2", "zh"))


def new_mail(
    sender: str,
    subject: str,
    body: str,
    to: str = SUPPORT,
    cc: str = "",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A new message as a mail client writes it, with a Message-ID of the sender's domain."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = cc
    mail["Subject"] = subject
    mail["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2])
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail


def raw_mail(
    sender_field: str | None,
    subject: str,
    message_id: str,
    body: str = "Our stream freezes after ten minutes.",
    extra: str = "",
) -> bytes:
    """A plain-text message as bytes, its From field as given (`None`: no From at all) and
    `extra` fields, written as they are, before the body."""
    sender = f"From: {sender_field}\r\n" if sender_field is not None else ""
    return (
        f"{sender}To: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}\r\n{body}\r\n"
    ).encode()


class Desk:
    """A support desk seen from the mailboxes: a customer and engineers writing to a running
    gateway, reading what it sends them at the sink."""

    def __init__(self, gateway: GatewayUnderTest, sink: Sink) -> None:
        self.gateway = gateway
        self.sink = sink

    # -- reading mail ----------------------------------------------------------------------

    def mails_to(self, address: str) -> list[CapturedMail]:
        return self.sink.to(address)

    def wait_mail(
        self, address: str, subject_part: str, count: int = 1, timeout: float = 15.0
    ) -> CapturedMail:
        """The `count`-th mail to `address` whose subject contains `subject_part`."""

        def matching() -> list[CapturedMail]:
            found = [m for m in self.mails_to(address) if subject_part in self.subject(m)]
            return found if len(found) >= count else []

        return list(
            wait_until(matching, timeout, f"mail {count} to {address} about {subject_part!r}")
        )[count - 1]

    @staticmethod
    def subject(mail: CapturedMail) -> str:
        return str(mail.message["Subject"] or "")

    @staticmethod
    def text(mail: CapturedMail) -> str:
        body = mail.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())  # type: ignore[attr-defined]

    @staticmethod
    def attachment_names(mail: CapturedMail) -> list[str]:
        return [str(part.get_filename()) for part in mail.message.iter_attachments()]

    @staticmethod
    def reply_to(mail: CapturedMail) -> str:
        return str(mail.message["Reply-To"].addresses[0].addr_spec)

    @staticmethod
    def sender_of(mail: CapturedMail) -> str:
        return str(mail.message["From"].addresses[0].addr_spec)

    # -- writing mail ----------------------------------------------------------------------

    def customer_writes(self, raw: bytes, sender: str = ALICE) -> None:
        self.gateway.send(raw, sender=sender)

    def reply(
        self,
        mail: CapturedMail,
        sender: str,
        body: str,
        attachment: tuple[str, bytes] | None = None,
    ) -> EmailMessage:
        """A reply as a mail client writes it: Re: subject, threading headers, the new text
        above a signature and the quoted original."""
        original = mail.message
        reply = EmailMessage()
        reply["From"] = sender
        reply["To"] = self.reply_to(mail)
        reply["Subject"] = f"Re: {self.subject(mail)}"
        reply["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2])
        reply["In-Reply-To"] = original["Message-ID"]
        reply["References"] = f"{original.get('References', '')} {original['Message-ID']}"
        quoted = "\n".join(f"> {line}" for line in self.text(mail).splitlines())
        reply.set_content(
            f"{body}\n\n-- \n{sender}\n\nOn Wed, 25 Nov 2026 at 10:00, Support "
            f"<{SUPPORT}> wrote:\n{quoted}\n"
        )
        if attachment is not None:
            reply.add_attachment(
                attachment[1], maintype="text", subtype="plain", filename=attachment[0]
            )
        return reply

    def engineer_replies(
        self,
        mail: CapturedMail,
        sender: str,
        body: str,
        attachment: tuple[str, bytes] | None = None,
    ) -> None:
        """Answer `mail` to its Reply-To, as the engineer's client does."""
        self.gateway.send(
            self.reply(mail, sender, body, attachment),
            recipients=[self.reply_to(mail)],
            sender=sender,
        )

    def customer_replies(self, mail: CapturedMail, body: str, sender: str = ALICE) -> None:
        self.gateway.send(
            self.reply(mail, sender, body), recipients=[self.reply_to(mail)], sender=sender
        )

    # -- the desk's state ------------------------------------------------------------------

    def only_ticket(self) -> Ticket:
        [ticket] = self.gateway.tickets()
        return ticket

    def ticket(self, ticket_id: int) -> Ticket:
        with self.gateway.session() as session:
            return session.get_one(Ticket, ticket_id)  # type: ignore[no-any-return]

    def trail(self, ticket_id: int) -> list[tuple[str, str, str]]:
        with self.gateway.session() as session:
            events = session.scalars(
                select(Event).where(Event.ticket_id == ticket_id).order_by(Event.id)
            ).all()
            return [
                (
                    e.type,
                    e.from_status.value if e.from_status else "",
                    e.to_status.value if e.to_status else "",
                )
                for e in events
            ]

    def open_ticket(self) -> tuple[int, CapturedMail]:
        """A new ticket from Alice: (its number, her acknowledgement)."""
        self.customer_writes(load_case("customer_new.eml"))
        ack = self.wait_mail(ALICE, "Live stream crashes")
        return self.only_ticket().id, ack

    def resolved_ticket(self) -> tuple[int, CapturedMail]:
        """A ticket an engineer has resolved: (its number, Alice's acknowledgement)."""
        ticket_id, ack = self.open_ticket()
        notice = self.wait_mail(ENG1, "New (P3)")
        self.engineer_replies(notice, ENG1, "#resolve\nFixed in 5.2.2.")
        self.wait_mail(ALICE, "Solved — please confirm")
        return ticket_id, ack


@pytest.fixture
def served_desk(make_served_gateway: Callable[..., RunningGateway], sink: Sink) -> Desk:
    """The desk with a served gateway, its listeners and worker processes running."""
    return Desk(make_served_gateway(engineers=ENGINEERS), sink)


@pytest.fixture
def desk(served_desk: Desk) -> Desk:
    return served_desk


@pytest.fixture
def direct_desk(make_direct_gateway: Callable[..., DirectGateway], sink: Sink) -> Desk:
    """The desk with the gateway's stages in this process (`DirectGateway`)."""
    return Desk(make_direct_gateway(engineers=ENGINEERS), sink)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A private Dovecot IMAP server on loopback; fails (never skips) when not installed."""
    server = Dovecot().start()
    yield server
    server.remove()


@pytest.fixture
def oauth2_dovecot() -> Iterator[Dovecot]:
    """Dovecot that takes XOAUTH2 logins, checked against a real introspection endpoint."""
    introspection = TokenIntrospection()
    server = Dovecot(oauth2_introspection_url=introspection.url).start()
    yield server
    server.remove()
    introspection.stop()


@pytest.fixture
def make_web_desk(tmp_path: Path, sink: Sink, database_url: str) -> Iterator[Any]:
    """Starts a served gateway with its web service, with `extra` settings, as a desk."""
    # Here, not at the top: `tests.web` builds on this module.
    from tests.web import ENGINEERS_SETTING, ServedGateway, WebDesk, serve_env

    started: list[Any] = []

    def start(**extra: str) -> WebDesk:
        env = serve_env(tmp_path / "var", sink.port, database_url, **extra)
        env.setdefault("GATEWAY_ENGINEERS", ENGINEERS_SETTING)
        log = (tmp_path / "serve.log").open("ab")
        served = ServedGateway(env, log).start()
        started.append(served)
        return WebDesk(served, sink)

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def web_desk(make_web_desk: Any) -> Any:
    """A served gateway with its web service, as a desk (`tests.web.WebDesk`)."""
    return make_web_desk()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (`tests.browser`), quit after the test."""
    # Here, not at the top: only the browser tests need Selenium.
    from tests.browser import start_chromium

    driver = start_chromium(tmp_path / "chromium-profile")
    yield driver
    driver.quit()
