"""Every setting the gateway reads: its section, its default, its flat name.

`Settings` is composed of small frozen sections (`settings.limits`, `settings.delivery`,
`settings.notify`, ...), each default written once, in its section, with a comment saying
what it does. `KEYS` gives every setting a flat name (`support_address`) and says where it
goes and how its text is read; `gateway.config` loads the settings by those names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from gateway.intake.facts import DEFAULT_REQUIRED, Fact, Kind
from gateway.limits import Limits
from gateway.service.levels import ServiceLevels
from gateway.setting_values import (
    Endpoint,
    Engineer,
    ImapAccount,
    parse_address,
    parse_addresses,
    parse_blob_store,
    parse_endpoint,
    parse_engineers,
    parse_fact_names,
    parse_flag,
    parse_imap_url,
    parse_optional_path,
    parse_path,
    parse_positive_float,
    parse_positive_int,
    parse_public_url,
    parse_score,
    parse_secret,
    parse_text,
)

SOURCE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Listen:
    """Where mail comes in."""

    # Inbound SMTP; None turns it off.
    smtp: Endpoint | None = Endpoint("127.0.0.1", 2525)
    # Inbound LMTP (for a Postfix transport); off unless set.
    lmtp: Endpoint | None = None


@dataclass(frozen=True, slots=True)
class Web:
    """The HTTP service: customers' status pages, the engineers' queue, health and figures."""

    # Where it listens; None turns it off (on this host: links in mail still go out).
    listen: Endpoint | None = Endpoint("127.0.0.1", 8080)
    # The base of the links in mail, as customers reach the service; "" puts no link in mail.
    public_url: str = "http://127.0.0.1:8080"
    # A ticket's links stop working this many days after it closes.
    links_days_after_close: float = 90.0


@dataclass(frozen=True, slots=True)
class Mailbox:
    """The support address and how the gateway's mail names itself."""

    # The address customers write to; `local+token@domain` forms are accepted too.
    address: str = "support@localhost"
    # Display name on outgoing mail.
    name: str = "Support"
    # Subject tags read `[Support #123]`.
    subject_tag: str = "Support"


@dataclass(frozen=True, slots=True)
class Delivery:
    """How outgoing mail leaves."""

    # Outbound SMTP relay; None writes outgoing mail to `<data_dir>/outbox-maildir`.
    relay: Endpoint | None = None
    # Connections each worker keeps open to the relay while it has mail to send.
    relay_connections: int = 4
    # Delivery attempts before an outbox row is given up as failed.
    max_attempts: int = 8
    # First retry delay in seconds; doubles per attempt, capped at one hour.
    backoff_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Notify:
    """What the gateway's mail carries."""

    # Engineers' notices attach files up to this size; larger ones are linked.
    attach_to_notices_up_to_bytes: int = 5 * 1024 * 1024
    # Base URL under which `<data_dir>/blobs` is served, for linked attachments; optional.
    attachment_url: str = ""
    # Show the engineer's own address in replies relayed to customers.
    show_engineer_address: bool = False
    # Jinja2 mail templates, editable by operators.
    templates_dir: Path = SOURCE_ROOT / "templates"
    # Operators: told of quarantined messages, at most once an hour, in a digest.
    operators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoopGuard:
    """What automatic mail the gateway may send back (`loops`, `bounces`)."""

    # Automatic mail to one address: at most this many per ticket and per hour overall;
    # beyond that it is recorded on the ticket, not sent.
    auto_mail_per_ticket: int = 30
    auto_mail_per_hour: int = 20
    # An address that bounced permanently is not mailed for this many days.
    bounce_hold_days: float = 7.0
    # At most one acknowledgement per address in this many minutes, however many tickets
    # its mail opens (RFC 3834 2): an auto-responder that writes again and again.
    acknowledgement_interval_minutes: float = 10.0


@dataclass(frozen=True, slots=True)
class Workflow:
    """Who works the tickets, and how long the lifecycle's windows are."""

    # Engineers who answer tickets: `address[:tier[:language]]`, comma-separated.
    engineers: tuple[Engineer, ...] = ()
    # A resolved ticket with no answer from the customer closes after this many days.
    auto_close_days: float = 7.0
    # A reply to a closed ticket within this many days reopens it; later, it opens a new one.
    reopen_days: float = 14.0
    # How many people one message may add to a ticket from its To and Cc (beyond the
    # requester and the support address); the rest are in copy but sent nothing.
    max_people_added_per_message: int = 10


@dataclass(frozen=True, slots=True)
class Intake:
    """Reading the facts an engineer needs out of a report, and asking once for the rest."""

    # Off: facts are neither read nor asked for, and acknowledgements are as they were.
    enabled: bool = True
    # The facts each kind of report needs (`gateway.intake.facts` names them); the
    # acknowledgement asks for those the first mail does not give.
    required_crash: tuple[Fact, ...] = DEFAULT_REQUIRED[Kind.CRASH]
    required_quality: tuple[Fact, ...] = DEFAULT_REQUIRED[Kind.QUALITY]
    required_howto: tuple[Fact, ...] = DEFAULT_REQUIRED[Kind.HOWTO]
    required_account: tuple[Fact, ...] = DEFAULT_REQUIRED[Kind.ACCOUNT]
    required_other: tuple[Fact, ...] = DEFAULT_REQUIRED[Kind.OTHER]

    def required(self, kind: Kind) -> tuple[Fact, ...]:
        """The facts a report of `kind` needs."""
        required: tuple[Fact, ...] = getattr(self, f"required_{kind.value}")
        return required


@dataclass(frozen=True, slots=True)
class Imap:
    """The support mailbox at a hosted mail service, read over IMAP."""

    # From `GATEWAY_IMAP_URL`; None turns the IMAP intake off.
    account: ImapAccount | None = None
    # A file holding the IMAP password (instead of putting it in the URL).
    password_file: Path | None = None
    # Processed mail is moved to this folder; empty flags it \\Seen where it is.
    folder_done: str = ""
    # How often to look for new mail when the server offers no IDLE.
    poll_seconds: float = 60.0
    # XOAUTH2 (Gmail, Microsoft 365): an access token read from this file at each login...
    oauth2_token_file: Path | None = None
    # ...or printed by this command at each login (so it can refresh the token).
    oauth2_token_command: str = ""


@dataclass(frozen=True, slots=True)
class Knowledge:
    """The knowledge base: articles that may already answer a new ticket, suggested in its
    acknowledgement and in the engineers' notice."""

    # A folder of Markdown articles (`gateway.knowledge`); None turns the knowledge base off.
    directory: Path | None = None
    # Where customers read an article: this + its slug; empty: the web service's
    # `/kb/<slug>` (which also offers the "this solved it" button).
    url: str = ""
    # An article is suggested only when its score (0 to 1, `gateway kb search` shows it)
    # reaches this.
    min_score: float = 0.42
    # At most this many suggestions in one acknowledgement.
    max_suggestions: int = 3

    @property
    def enabled(self) -> bool:
        return self.directory is not None


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting the gateway reads, in sections."""

    # Spool, blobs, the SQLite file and the Maildir of sent mail live here.
    data_dir: Path = Path("./var")
    # Any SQLAlchemy URL; empty means a SQLite file in the data dir.
    database_url: str = ""
    # Secret for reply tokens and links; empty means the one kept in the database, created
    # by the first gateway to start.
    secret: str = ""
    # Where raw messages and files are kept: "database" (shared by every host on it) or
    # "directory" (`<data dir>/blobs`); empty: the database on PostgreSQL, else the directory.
    blob_store: str = ""
    # Worker processes that file spooled mail and deliver the outbox, beside the listeners.
    workers: int = 1
    # File what waits in the spool in batches, one transaction each, parsing the next batch
    # in a process of its own meanwhile; off, one message at a time: the same, but slower.
    batch_filing: bool = True
    listen: Listen = Listen()
    mailbox: Mailbox = Mailbox()
    limits: Limits = Limits()
    delivery: Delivery = Delivery()
    notify: Notify = Notify()
    loops: LoopGuard = LoopGuard()
    workflow: Workflow = Workflow()
    intake: Intake = Intake()
    # Targets per priority, the team's calendar, sender rules, routing (`gateway.tables`).
    service: ServiceLevels = field(default_factory=ServiceLevels)
    imap: Imap = Imap()
    web: Web = Web()
    knowledge: Knowledge = Knowledge()

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gateway.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def blobs_in_database(self) -> bool:
        if self.blob_store:
            return self.blob_store == "database"
        return self.effective_database_url.startswith("postgresql")

    @property
    def blob_directory(self) -> Path:
        return self.data_dir / "blobs"

    def changed(self, **values: Any) -> Settings:
        """These settings with some changed, each named by its flat name."""
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            key = KEYS[name]
            if key.section is None:
                top[key.field] = value
            else:
                sections.setdefault(key.section, {})[key.field] = value
        for section, changes in sections.items():
            top[section] = replace(getattr(self, section), **changes)
        return replace(self, **top)


Parser = Callable[[str, str], Any]


class Key(NamedTuple):
    """Where one setting goes: its section (None: `Settings` itself) and field, and how
    its text is read."""

    section: str | None
    field: str
    parse: Parser
    variable: str = ""


KEYS: dict[str, Key] = {
    "data_dir": Key(None, "data_dir", parse_path),
    "database_url": Key(None, "database_url", parse_text),
    "secret": Key(None, "secret", parse_secret),
    "blob_store": Key(None, "blob_store", parse_blob_store),
    "workers": Key(None, "workers", parse_positive_int),
    "batch_filing": Key(None, "batch_filing", parse_flag),
    "smtp_listen": Key("listen", "smtp", parse_endpoint),
    "lmtp_listen": Key("listen", "lmtp", parse_endpoint),
    "http_listen": Key("web", "listen", parse_endpoint),
    "public_url": Key("web", "public_url", parse_public_url),
    "links_days_after_close": Key("web", "links_days_after_close", parse_positive_float),
    "support_address": Key("mailbox", "address", parse_address),
    "support_name": Key("mailbox", "name", parse_text),
    "subject_tag": Key("mailbox", "subject_tag", parse_text),
    "max_message_bytes": Key("limits", "max_message_bytes", parse_positive_int),
    "max_header_bytes": Key("limits", "max_header_bytes", parse_positive_int),
    "max_headers": Key("limits", "max_headers", parse_positive_int),
    "max_received_hops": Key("limits", "max_received_hops", parse_positive_int),
    "max_mime_depth": Key("limits", "max_mime_depth", parse_positive_int),
    "max_mime_parts": Key("limits", "max_mime_parts", parse_positive_int),
    "max_inbound_attachment_bytes": Key(
        "limits", "max_inbound_attachment_bytes", parse_positive_int
    ),
    "relay": Key("delivery", "relay", parse_endpoint),
    "relay_connections": Key("delivery", "relay_connections", parse_positive_int),
    "delivery_max_attempts": Key("delivery", "max_attempts", parse_positive_int),
    "delivery_backoff_seconds": Key("delivery", "backoff_seconds", parse_positive_float),
    "attach_to_notices_up_to_bytes": Key(
        "notify", "attach_to_notices_up_to_bytes", parse_positive_int
    ),
    "attachment_url": Key("notify", "attachment_url", parse_text),
    "show_engineer_address": Key("notify", "show_engineer_address", parse_flag),
    "templates_dir": Key("notify", "templates_dir", parse_path),
    "operators": Key("notify", "operators", parse_addresses),
    "auto_mail_per_ticket": Key("loops", "auto_mail_per_ticket", parse_positive_int),
    "auto_mail_per_hour": Key("loops", "auto_mail_per_hour", parse_positive_int),
    "bounce_hold_days": Key("loops", "bounce_hold_days", parse_positive_float),
    "acknowledgement_interval_minutes": Key(
        "loops", "acknowledgement_interval_minutes", parse_positive_float
    ),
    "engineers": Key("workflow", "engineers", parse_engineers),
    "auto_close_days": Key("workflow", "auto_close_days", parse_positive_float),
    "reopen_days": Key("workflow", "reopen_days", parse_positive_float),
    "max_people_added_per_message": Key(
        "workflow", "max_people_added_per_message", parse_positive_int
    ),
    "intake": Key("intake", "enabled", parse_flag),
    **{
        f"intake_required_{kind.value}": Key("intake", f"required_{kind.value}", parse_fact_names)
        for kind in Kind
    },
    "kb_dir": Key("knowledge", "directory", parse_optional_path),
    "kb_url": Key("knowledge", "url", parse_public_url),
    "kb_min_score": Key("knowledge", "min_score", parse_score),
    "kb_max_suggestions": Key("knowledge", "max_suggestions", parse_positive_int),
    "imap": Key("imap", "account", parse_imap_url, "GATEWAY_IMAP_URL"),
    "imap_password_file": Key("imap", "password_file", parse_optional_path),
    "imap_folder_done": Key("imap", "folder_done", parse_text),
    "imap_poll_seconds": Key("imap", "poll_seconds", parse_positive_float),
    "imap_oauth2_token_file": Key("imap", "oauth2_token_file", parse_optional_path),
    "imap_oauth2_token_command": Key("imap", "oauth2_token_command", parse_text),
}
