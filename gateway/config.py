"""Settings: defaults, then an optional `gateway.toml`, then `GATEWAY_*` environment variables.

This is the only module that reads `os.environ`. `cli` loads `Settings` once and passes it
down; nothing else looks settings up globally. A bad value raises `ConfigError` naming its key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from gateway.errors import ConfigError
from gateway.limits import DEFAULT_LIMITS

SOURCE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A `host:port` pair to listen on or connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Engineer:
    """An engineer's address, tier (`L1` first line, `L2` specialists) and mail language."""

    address: str
    tier: str = "L1"
    language: str = "en"


@dataclass(frozen=True, slots=True)
class ImapAccount:
    """The mailbox folder the IMAP intake reads, from `GATEWAY_IMAP_URL`."""

    host: str
    port: int
    user: str
    folder: str = "INBOX"
    tls: bool = False
    # From the URL; `GATEWAY_IMAP_PASSWORD_FILE` or an OAuth2 token may stand in for it.
    password: str = field(default="", repr=False)

    def __str__(self) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


TIERS = ("L1", "L2")
LANGUAGES = ("en", "zh")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting the gateway reads, each with its default."""

    # Spool, blobs, the SQLite file and the Maildir of sent mail live here.
    data_dir: Path = Path("./var")
    # Any SQLAlchemy URL; empty means a SQLite file in the data dir.
    database_url: str = ""
    # Inbound SMTP; None turns it off.
    smtp_listen: Endpoint | None = Endpoint("127.0.0.1", 2525)
    # Inbound LMTP (for a Postfix transport); off unless set.
    lmtp_listen: Endpoint | None = None
    # The address customers write to; `local+token@domain` forms are accepted too.
    support_address: str = "support@localhost"
    # Display name on outgoing mail.
    support_name: str = "Support"
    # Subject tags read `[Support #123]`.
    subject_tag: str = "Support"
    # Outbound SMTP relay; None writes outgoing mail to `<data_dir>/outbox-maildir`.
    relay: Endpoint | None = None
    # Connections each worker keeps open to the relay while it has mail to send.
    relay_connections: int = 4
    # Largest message accepted over SMTP/LMTP/ingest, in bytes (answered with 552).
    max_message_bytes: int = 40 * 1024 * 1024
    # Header block and field count; larger headers are refused (552 / 554) before `250`.
    max_header_bytes: int = DEFAULT_LIMITS.max_header_bytes
    max_headers: int = DEFAULT_LIMITS.max_headers
    # More `Received:` fields than this means a mail loop: refused with 554 5.4.6.
    max_received_hops: int = DEFAULT_LIMITS.max_received_hops
    # MIME nesting and part count, and the size of one attachment; over them after `250`,
    # the message is quarantined with the reason.
    max_mime_depth: int = DEFAULT_LIMITS.max_mime_depth
    max_mime_parts: int = DEFAULT_LIMITS.max_mime_parts
    max_attachment_bytes: int = DEFAULT_LIMITS.max_attachment_bytes
    # Automatic mail to one address: at most this many per ticket and per hour overall;
    # beyond that it is recorded on the ticket, not sent (loop protection).
    auto_mail_per_ticket: int = 30
    auto_mail_per_hour: int = 20
    # An address that bounced permanently is not mailed for this many days.
    bounce_hold_days: float = 7.0
    # Worker processes that file spooled mail and deliver the outbox, beside the listeners.
    workers: int = 1
    # Delivery attempts before an outbox row is given up as failed.
    delivery_max_attempts: int = 8
    # First retry delay in seconds; doubles per attempt, capped at one hour.
    delivery_backoff_seconds: float = 30.0
    # Secret for reply tokens; empty means a key file in the data dir, created on first use.
    secret: str = ""
    # Engineers who answer tickets: `address[:tier[:language]]`, comma-separated.
    engineers: tuple[Engineer, ...] = ()
    # A resolved ticket with no answer from the customer closes after this many days.
    auto_close_days: float = 7.0
    # A reply to a closed ticket within this many days reopens it; later, it opens a new one.
    reopen_days: float = 14.0
    # Engineers' notifications attach files up to this size; larger ones are linked.
    attach_max_bytes: int = 5 * 1024 * 1024
    # Base URL under which `<data_dir>/blobs` is served, for linked attachments; optional.
    attachment_url: str = ""
    # Show the engineer's own address in replies relayed to customers.
    show_engineer_address: bool = False
    # The support mailbox at a hosted mail service, read over IMAP; None turns it off.
    imap: ImapAccount | None = None
    # A file holding the IMAP password (instead of putting it in the URL).
    imap_password_file: Path | None = None
    # Processed mail is moved to this folder; empty flags it \Seen where it is.
    imap_folder_done: str = ""
    # How often to look for new mail when the server offers no IDLE.
    imap_poll_seconds: float = 60.0
    # XOAUTH2 (Gmail, Microsoft 365): an access token read from this file at each login...
    imap_oauth2_token_file: Path | None = None
    # ...or printed by this command at each login (so it can refresh the token).
    imap_oauth2_token_command: str = ""
    # Jinja2 mail templates, editable by operators.
    templates_dir: Path = field(default_factory=lambda: SOURCE_ROOT / "templates")

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gateway.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"


def parse_endpoint(key: str, value: str) -> Endpoint | None:
    """`host:port`, or `off`/empty for none."""
    if value.strip().lower() in ("", "off", "none"):
        return None
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: expected host:port (for example 127.0.0.1:2525), got {value!r}")
    return Endpoint(host.strip("[]"), int(port))


def parse_positive_int(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


def parse_positive_float(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return number


def parse_address(key: str, value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in value.strip()):
        raise ConfigError(f"{key}: expected an address like support@example.com, got {value!r}")
    return value.strip()


def parse_text(key: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ConfigError(f"{key}: must be a single line")
    return value.strip()


def parse_flag(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def parse_engineers(key: str, value: str) -> tuple[Engineer, ...]:
    """`eng1@example.com,eng2@example.com:L2,eng3@example.com:L1:zh`."""
    engineers: dict[str, Engineer] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        address, _, rest = item.partition(":")
        tier, _, language = rest.partition(":")
        tier = tier.strip().upper() or "L1"
        language = language.strip().lower() or "en"
        if tier not in TIERS:
            raise ConfigError(f"{key}: tier of {address} must be L1 or L2, got {tier!r}")
        if language not in LANGUAGES:
            raise ConfigError(
                f"{key}: language of {address} must be one of "
                f"{', '.join(LANGUAGES)}, got {language!r}"
            )
        address = parse_address(key, address).lower()
        engineers[address] = Engineer(address, tier, language)
    return tuple(engineers.values())


def parse_imap_url(key: str, value: str) -> ImapAccount | None:
    """`imap://user:password@host:port/folder` or `imaps://...`; empty for none."""
    if not value.strip():
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{key}: not a valid URL: {exc}") from None
    if parts.scheme not in ("imap", "imaps"):
        raise ConfigError(f"{key}: must start with imap:// or imaps://, got {parts.scheme!r}")
    if not parts.hostname or not parts.username:
        raise ConfigError(f"{key}: needs a user and a host, as in imap://user@host/INBOX")
    tls = parts.scheme == "imaps"
    return ImapAccount(
        host=parts.hostname,
        port=port or (993 if tls else 143),
        user=unquote(parts.username),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=tls,
        password=unquote(parts.password or ""),
    )


def same_folder(first: str, second: str) -> bool:
    """IMAP folder names compare exactly, except INBOX, which has no case (RFC 3501 5.1)."""
    if first.upper() == "INBOX" and second.upper() == "INBOX":
        return True
    return bool(first) and first == second


def parse_optional_path(key: str, value: str) -> Path | None:
    return Path(value) if value.strip() else None


# Setting name -> (environment variable, parser). The TOML file uses the lower-case names.
Parser = Callable[[str, str], Any]
KEYS: dict[str, tuple[str, Parser]] = {
    "data_dir": ("GATEWAY_DATA_DIR", lambda _k, v: Path(v)),
    "database_url": ("GATEWAY_DATABASE_URL", parse_text),
    "smtp_listen": ("GATEWAY_SMTP_LISTEN", parse_endpoint),
    "lmtp_listen": ("GATEWAY_LMTP_LISTEN", parse_endpoint),
    "support_address": ("GATEWAY_SUPPORT_ADDRESS", parse_address),
    "support_name": ("GATEWAY_SUPPORT_NAME", parse_text),
    "subject_tag": ("GATEWAY_SUBJECT_TAG", parse_text),
    "relay": ("GATEWAY_RELAY", parse_endpoint),
    "relay_connections": ("GATEWAY_RELAY_CONNECTIONS", parse_positive_int),
    "max_message_bytes": ("GATEWAY_MAX_MESSAGE_BYTES", parse_positive_int),
    "max_header_bytes": ("GATEWAY_MAX_HEADER_BYTES", parse_positive_int),
    "max_headers": ("GATEWAY_MAX_HEADERS", parse_positive_int),
    "max_received_hops": ("GATEWAY_MAX_RECEIVED_HOPS", parse_positive_int),
    "max_mime_depth": ("GATEWAY_MAX_MIME_DEPTH", parse_positive_int),
    "max_mime_parts": ("GATEWAY_MAX_MIME_PARTS", parse_positive_int),
    "max_attachment_bytes": ("GATEWAY_MAX_ATTACHMENT_BYTES", parse_positive_int),
    "auto_mail_per_ticket": ("GATEWAY_AUTO_MAIL_PER_TICKET", parse_positive_int),
    "auto_mail_per_hour": ("GATEWAY_AUTO_MAIL_PER_HOUR", parse_positive_int),
    "bounce_hold_days": ("GATEWAY_BOUNCE_HOLD_DAYS", parse_positive_float),
    "workers": ("GATEWAY_WORKERS", parse_positive_int),
    "delivery_max_attempts": ("GATEWAY_DELIVERY_MAX_ATTEMPTS", parse_positive_int),
    "delivery_backoff_seconds": ("GATEWAY_DELIVERY_BACKOFF_SECONDS", parse_positive_float),
    "secret": ("GATEWAY_SECRET", lambda _k, v: v),
    "engineers": ("GATEWAY_ENGINEERS", parse_engineers),
    "auto_close_days": ("GATEWAY_AUTO_CLOSE_DAYS", parse_positive_float),
    "reopen_days": ("GATEWAY_REOPEN_DAYS", parse_positive_float),
    "attach_max_bytes": ("GATEWAY_ATTACH_MAX_BYTES", parse_positive_int),
    "attachment_url": ("GATEWAY_ATTACHMENT_URL", parse_text),
    "show_engineer_address": ("GATEWAY_SHOW_ENGINEER_ADDRESS", parse_flag),
    "imap": ("GATEWAY_IMAP_URL", parse_imap_url),
    "imap_password_file": ("GATEWAY_IMAP_PASSWORD_FILE", parse_optional_path),
    "imap_folder_done": ("GATEWAY_IMAP_FOLDER_DONE", parse_text),
    "imap_poll_seconds": ("GATEWAY_IMAP_POLL_SECONDS", parse_positive_float),
    "imap_oauth2_token_file": ("GATEWAY_IMAP_OAUTH2_TOKEN_FILE", parse_optional_path),
    "imap_oauth2_token_command": ("GATEWAY_IMAP_OAUTH2_TOKEN_COMMAND", parse_text),
    "templates_dir": ("GATEWAY_TEMPLATES_DIR", lambda _k, v: Path(v)),
}


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Defaults, overlaid by the TOML file (if any), overlaid by the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or _config_file_from(env)
    if path is not None:
        values.update(_read_toml(path))
    for name, (variable, parser) in KEYS.items():
        if variable in env:
            values[name] = parser(variable, env[variable])
    settings = Settings(**values)
    if not settings.subject_tag:
        raise ConfigError("GATEWAY_SUBJECT_TAG: must not be empty")
    check_imap_login(settings)
    return settings


def check_imap_login(settings: Settings) -> None:
    """An IMAP mailbox needs exactly one way to log in, and a done folder of its own."""
    if settings.imap is None:
        return
    if same_folder(settings.imap_folder_done, settings.imap.folder):
        raise ConfigError(
            f"GATEWAY_IMAP_FOLDER_DONE: must differ from the folder read "
            f"({settings.imap.folder}), or every move would be new mail"
        )
    ways = [
        bool(settings.imap.password),
        settings.imap_password_file is not None,
        settings.imap_oauth2_token_file is not None or bool(settings.imap_oauth2_token_command),
    ]
    if sum(ways) != 1:
        raise ConfigError(
            "GATEWAY_IMAP_URL: give exactly one way to log in: a password in the URL, "
            "GATEWAY_IMAP_PASSWORD_FILE, or GATEWAY_IMAP_OAUTH2_TOKEN_FILE/_COMMAND"
        )


def _config_file_from(env: Mapping[str, str]) -> Path | None:
    if "GATEWAY_CONFIG" in env:
        return Path(env["GATEWAY_CONFIG"])
    default = Path("gateway.toml")
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in KEYS:
            raise ConfigError(f"{path}: unknown setting {name!r}")
        # A TOML list (of engineers) reads like the comma-separated environment form.
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        values[name] = KEYS[name][1](f"{path}: {name}", text)
    return values
