"""Wiring: builds the stages from `Settings`, once, into a `Gateway`.

`build_gateway` creates the data directory's layout, checks the database schema is the one
this code needs (and the templates, for commands that render mail), and connects the
stages: spool → executor (pipeline, notifier) → dispatcher, and the timers. `gateway.serving`
runs what it builds; `cli` builds it for every command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.clock import Clock
from gateway.config import prepare_data_dir
from gateway.database import check_database_url, database_errors
from gateway.deadlines import Deadlines
from gateway.delivery import Dispatcher, MaildirDrop, SmtpRelay, Transport
from gateway.errors import ConfigError
from gateway.executor import Executor
from gateway.hosts import HostLocks, shared_secret
from gateway.imap_inbound import MailboxReader
from gateway.knowledge import KnowledgeBase
from gateway.loops import MailGuard
from gateway.notifications import Notifier
from gateway.outbox import Outbox, Sender
from gateway.parse_ahead import ParserProcess
from gateway.pipeline import Pipeline
from gateway.quarantine_digest import QuarantineDigests
from gateway.rendering import require_templates
from gateway.settings import SOURCE_ROOT, Settings
from gateway.spool import Spool
from gateway.suggestions import SuggestingAhead
from gateway.threader import ThreadRules
from gateway.timers import Timers
from gateway.workflow import Rules
from storage.blob_table import DatabaseBlobs
from storage.blobs import BlobDirectory, BlobStore
from storage.session import (
    is_known_revision,
    make_engine,
    make_session_factory,
    schema_revisions,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Gateway:
    """The stages, built once from the settings."""

    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    spool: Spool
    blobs: BlobStore
    executor: Executor
    dispatcher: Dispatcher
    timers: Timers
    # Signs reply tokens and the web service's links.
    secret: bytes
    # Work one gateway on the database does at a time.
    locks: HostLocks

    def parser_process(self) -> ParserProcess:
        """The worker's parser process, which also searches the knowledge base ahead when
        there is one."""
        rules = self.executor.pipeline.rules
        ahead = (
            SuggestingAhead(
                self.settings.effective_database_url, rules.knowledge, rules.intake.enabled
            )
            if rules.knowledge.enabled
            else None
        )
        return ParserProcess(self.spool, self.settings.limits, ahead)


def build_gateway(
    settings: Settings, clock: Clock | None = None, renders_mail: bool = True
) -> Gateway:
    """Create the data directory layout and every stage; checks the schema is current,
    and the templates when the command `renders_mail`. `clock` is the wall clock unless
    given."""
    clock = clock or Clock()
    engine = open_database(settings)
    if renders_mail:
        require_templates(settings.notify.templates_dir, SOURCE_ROOT / "templates")
    require_current_schema(engine)
    sessions = make_session_factory(engine)
    blobs = make_blob_store(settings, engine)
    spool = Spool(settings.data_dir / "spool", blobs, settings.limits, clock)
    spool.prepare()
    secret = shared_secret(settings.secret, engine, settings.data_dir / "secret.key")
    notifier = make_notifier(settings, secret, blobs, clock)
    executor = Executor(
        make_pipeline(settings, secret, notifier, clock),
        spool,
        sessions,
        clock,
        settings.batch_filing,
    )
    dispatcher = Dispatcher(sessions, make_transports(settings), settings.delivery, clock)
    digests = QuarantineDigests(
        sessions, notifier.outbox, notifier.templates, settings.notify.operators, spool
    )
    auto_close_after = timedelta(days=settings.workflow.auto_close_days)
    deadlines = Deadlines(sessions, notifier, executor.pipeline.rules)
    timers = Timers(sessions, notifier, auto_close_after, clock, digests, deadlines)
    locks = HostLocks(engine, settings.data_dir / "locks")
    return Gateway(
        settings, clock, engine, sessions, spool, blobs, executor, dispatcher, timers, secret, locks
    )


def make_blob_store(settings: Settings, engine: Engine) -> BlobStore:
    """The folder, or the database with the folder read for what was not moved yet."""
    directory = BlobDirectory(settings.blob_directory)
    if not settings.blobs_in_database:
        return directory
    legacy = directory if directory.root.is_dir() else None
    return DatabaseBlobs(settings.effective_database_url, legacy, engine)


def open_database(settings: Settings) -> Engine:
    """The engine of a database whose settings make sense, in a data directory that
    takes files; the schema is not looked at."""
    prepare_data_dir(settings)
    check_database_url(settings.effective_database_url)
    return make_engine(settings.effective_database_url)


def make_pipeline(settings: Settings, secret: bytes, notifier: Notifier, clock: Clock) -> Pipeline:
    mailbox, workflow = settings.mailbox, settings.workflow
    rules = Rules(
        workflow.engineers,
        timedelta(days=workflow.reopen_days),
        mailbox.address,
        workflow.max_people_added_per_message,
        settings.intake,
        settings.service,
        KnowledgeBase(settings.knowledge, settings.web.public_url),
    )
    thread_rules = ThreadRules(
        secret, mailbox.address, mailbox.subject_tag, rules.engineer_addresses
    )
    hold = timedelta(days=settings.loops.bounce_hold_days)
    return Pipeline(thread_rules, rules, notifier, hold, clock)


def make_notifier(settings: Settings, secret: bytes, blobs: BlobStore, clock: Clock) -> Notifier:
    mailbox, workflow = settings.mailbox, settings.workflow
    sender = Sender(
        mailbox.address, mailbox.name, mailbox.subject_tag, secret, settings.web.public_url
    )
    guard = MailGuard(
        settings.loops.auto_mail_per_ticket,
        settings.loops.auto_mail_per_hour,
        frozenset(engineer.address for engineer in workflow.engineers),
        timedelta(minutes=settings.loops.acknowledgement_interval_minutes),
    )
    outbox = Outbox(sender, guard, clock)
    return Notifier(outbox, settings.notify, workflow, blobs, settings.intake, settings.service)


def require_current_schema(engine: Engine) -> str:
    """The schema's revision; `ConfigError` naming the command to run when it is not the
    one this code needs."""
    with database_errors():
        current, newest = schema_revisions(engine)
    if current is not None and current == newest:
        return current
    if current is not None and not is_known_revision(current):
        raise ConfigError(
            f"the database schema is at {current}, newer than this gateway "
            f"({newest}): run the gateway version that upgraded it"
        )
    raise ConfigError(
        f"the database schema is at {current or 'nothing'}, this gateway needs "
        f"{newest}: run `gateway db upgrade` first"
    )


def make_transports(settings: Settings) -> list[Transport]:
    """One connection to the relay for each of `relay_connections`; one Maildir else."""
    relay = settings.delivery.relay
    if relay is None:
        return [MaildirDrop(settings.data_dir / "outbox-maildir")]
    return [SmtpRelay(relay.host, relay.port) for _ in range(settings.delivery.relay_connections)]


def make_mailbox_reader(
    gateway: Gateway, on_spooled: Callable[[], None] = lambda: None
) -> MailboxReader | None:
    """The IMAP intake for `GATEWAY_IMAP_URL`, or None when it is not set."""
    settings = gateway.settings
    if settings.imap.account is None:
        return None
    return MailboxReader(
        settings.imap,
        gateway.spool,
        gateway.sessions,
        settings.mailbox.address,
        gateway.clock,
        on_spooled,
    )
