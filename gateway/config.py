"""Settings: defaults, then an optional `gateway.toml`, then `GATEWAY_*` environment variables.

`Settings` is composed of small frozen sections (`settings.limits`, `settings.delivery`,
`settings.notify`, ...), each default written once, in its section. This is the only
module that reads `os.environ`; `cli` loads `Settings` once and passes each stage the
sections it needs. A bad value raises `ConfigError` naming its key.

Every setting has a flat name (`support_address`), used in the TOML file as it is and in
the environment upper-cased behind `GATEWAY_` (with the few exceptions `KEYS` lists); the
TOML file may also group them in tables named after their section (`[limits]`).
"""

from __future__ import annotations

import difflib
import logging
import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from gateway.errors import CannotCreate, ConfigError
from gateway.limits import Limits

log = logging.getLogger(__name__)

SOURCE_ROOT = Path(__file__).resolve().parent.parent
TIERS = ("L1", "L2")
LANGUAGES = ("en", "zh")


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


@dataclass(frozen=True, slots=True)
class Listen:
    """Where mail comes in."""

    # Inbound SMTP; None turns it off.
    smtp: Endpoint | None = Endpoint("127.0.0.1", 2525)
    # Inbound LMTP (for a Postfix transport); off unless set.
    lmtp: Endpoint | None = None


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
class Settings:
    """Every setting the gateway reads, in sections."""

    # Spool, blobs, the SQLite file and the Maildir of sent mail live here.
    data_dir: Path = Path("./var")
    # Any SQLAlchemy URL; empty means a SQLite file in the data dir.
    database_url: str = ""
    # Secret for reply tokens; empty means a key file in the data dir, created on first use.
    secret: str = ""
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
    imap: Imap = Imap()

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gateway.sqlite3"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

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


def parse_addresses(key: str, value: str) -> tuple[str, ...]:
    """`ops1@example.com,ops2@example.com`, each once."""
    check_list_separator(key, value)
    addresses = (parse_address(key, item).lower() for item in value.split(",") if item.strip())
    return tuple(dict.fromkeys(addresses))


def check_list_separator(key: str, value: str) -> None:
    # A `;` (Outlook's separator) would otherwise end up inside an address.
    if ";" in value:
        raise ConfigError(f"{key}: separate the entries with commas, not semicolons")


def parse_engineers(key: str, value: str) -> tuple[Engineer, ...]:
    """`eng1@example.com,eng2@example.com:L2,eng3@example.com:L1:zh`."""
    check_list_separator(key, value)
    engineers: dict[str, Engineer] = {}
    for item in (part.strip() for part in value.split(",")):
        if item:
            engineer = parse_engineer(key, item)
            engineers[engineer.address] = engineer
    return tuple(engineers.values())


def parse_engineer(key: str, item: str) -> Engineer:
    address, _, rest = item.partition(":")
    tier, _, language = rest.partition(":")
    tier = tier.strip().upper() or "L1"
    language = language.strip().lower() or "en"
    if tier not in TIERS:
        raise ConfigError(f"{key}: tier of {address} must be L1 or L2, got {tier!r}")
    if language not in LANGUAGES:
        raise ConfigError(
            f"{key}: language of {address} must be one of {', '.join(LANGUAGES)}, got {language!r}"
        )
    return Engineer(parse_address(key, address).lower(), tier, language)


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


def parse_path(key: str, value: str) -> Path:
    return Path(value)


def parse_secret(key: str, value: str) -> str:
    return value


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
    "workers": Key(None, "workers", parse_positive_int),
    "batch_filing": Key(None, "batch_filing", parse_flag),
    "smtp_listen": Key("listen", "smtp", parse_endpoint),
    "lmtp_listen": Key("listen", "lmtp", parse_endpoint),
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
    "imap": Key("imap", "account", parse_imap_url, "GATEWAY_IMAP_URL"),
    "imap_password_file": Key("imap", "password_file", parse_optional_path),
    "imap_folder_done": Key("imap", "folder_done", parse_text),
    "imap_poll_seconds": Key("imap", "poll_seconds", parse_positive_float),
    "imap_oauth2_token_file": Key("imap", "oauth2_token_file", parse_optional_path),
    "imap_oauth2_token_command": Key("imap", "oauth2_token_command", parse_text),
}
# Old names still read, with a line in the log: the two attachment sizes were easy to mix up.
RENAMED = {
    "max_attachment_bytes": "max_inbound_attachment_bytes",
    "attach_max_bytes": "attach_to_notices_up_to_bytes",
}


def variable_of(name: str) -> str:
    """The environment variable of the setting `name`."""
    key = KEYS.get(name)
    return key.variable if key and key.variable else f"GATEWAY_{name.upper()}"


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Defaults, overlaid by the TOML file (if any), overlaid by the environment."""
    env = os.environ if environ is None else environ
    warn_of_unknown_variables(env)
    values: dict[str, Any] = {}
    path = config_file or config_file_from(env)
    if path is not None:
        values.update(read_toml(path))
    values.update(read_environment(env))
    settings = Settings().changed(**values)
    check_settings(settings)
    return settings


def read_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets, by flat name; old names give way to new ones."""
    values: dict[str, Any] = {}
    for old, new in RENAMED.items():
        if variable_of(old) in env:
            log.warning("%s is deprecated: use %s", variable_of(old), variable_of(new))
            values[new] = KEYS[new].parse(variable_of(old), env[variable_of(old)])
    for name, key in KEYS.items():
        if variable_of(name) in env:
            values[name] = key.parse(variable_of(name), env[variable_of(name)])
    return values


def warn_of_unknown_variables(env: Mapping[str, str]) -> None:
    """A misspelt variable would be ignored in silence: name it, and what it may mean."""
    variables = [variable_of(name) for name in (*KEYS, *RENAMED)] + ["GATEWAY_CONFIG"]
    # Compared without the prefix all of them share, which would make any name look close.
    known = {variable.removeprefix("GATEWAY_"): variable for variable in variables}
    for variable in sorted(name for name in env if name.startswith("GATEWAY_")):
        if variable not in variables:
            guess = closest(variable.removeprefix("GATEWAY_"), list(known))
            hint = f"; did you mean {known[guess]}?" if guess else ""
            log.warning("%s is not a setting of the gateway%s", variable, hint)


def closest(name: str, known: list[str]) -> str:
    """The known name most like `name`, if one is much like it; else ""."""
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return matches[0] if matches else ""


def check_settings(settings: Settings) -> None:
    if not settings.mailbox.subject_tag:
        raise ConfigError("GATEWAY_SUBJECT_TAG: must not be empty")
    engineers = tuple(engineer.address for engineer in settings.workflow.engineers)
    for variable, addresses in (
        ("GATEWAY_ENGINEERS", engineers),
        ("GATEWAY_OPERATORS", settings.notify.operators),
    ):
        check_not_support(variable, addresses, settings.mailbox.address)
    check_imap_login(settings.imap)


def check_not_support(variable: str, addresses: tuple[str, ...], support: str) -> None:
    """The support address among the people it mails would mail itself, in a loop."""
    for address in addresses:
        if mailbox_of(address) == mailbox_of(support):
            raise ConfigError(
                f"{variable}: {address} is the support address (GATEWAY_SUPPORT_ADDRESS); "
                "mail to it would come back as new mail"
            )


def mailbox_of(address: str) -> tuple[str, str]:
    """Local part without its `+tag`, and domain: `support+x@A.com` is `support@a.com`."""
    local, _, domain = address.lower().rpartition("@")
    return local.partition("+")[0], domain


def prepare_data_dir(settings: Settings) -> Path:
    """The data directory, created if need be, and known to take files."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise CannotCreate(
            f"GATEWAY_DATA_DIR: cannot create or write to {path}: {exc.strerror}"
        ) from None
    return path


def check_imap_login(imap: Imap) -> None:
    """An IMAP mailbox needs exactly one way to log in, and a done folder of its own."""
    if imap.account is None:
        return
    if same_folder(imap.folder_done, imap.account.folder):
        raise ConfigError(
            f"GATEWAY_IMAP_FOLDER_DONE: must differ from the folder read "
            f"({imap.account.folder}), or every move would be new mail"
        )
    ways = [
        bool(imap.account.password),
        imap.password_file is not None,
        imap.oauth2_token_file is not None or bool(imap.oauth2_token_command),
    ]
    if sum(ways) != 1:
        raise ConfigError(
            "GATEWAY_IMAP_URL: give exactly one way to log in: a password in the URL, "
            "GATEWAY_IMAP_PASSWORD_FILE, or GATEWAY_IMAP_OAUTH2_TOKEN_FILE/_COMMAND"
        )


def config_file_from(env: Mapping[str, str]) -> Path | None:
    if "GATEWAY_CONFIG" in env:
        return Path(env["GATEWAY_CONFIG"])
    default = Path("gateway.toml")
    return default if default.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    """The settings the file sets, by flat name: top-level keys, or keys in a table named
    after their section (by field or flat name). An old name gives way to its new one."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: {path} is not valid TOML: {exc}") from None
    entries: list[tuple[str, Any]] = []
    for name, value in raw.items():
        if isinstance(value, dict) and name in SECTIONS:
            entries += [(flat_name(path, name, key), item) for key, item in value.items()]
        else:
            entries.append((name, value))
    # Old names first, so that the new ones, wherever they stand, win.
    entries.sort(key=lambda entry: entry[0] not in RENAMED)
    return dict(read_toml_value(path, name, value) for name, value in entries)


def flat_name(path: Path, section: str, key: str) -> str:
    """The flat name of `key` in the table `[section]`: a field name or a flat name."""
    if key in KEYS or key in RENAMED:
        return key
    names = {item.field: name for name, item in KEYS.items() if item.section == section}
    if key not in names:
        guess = closest(key, [*names, *KEYS])
        hint = f"; did you mean {guess}?" if guess else ""
        raise ConfigError(f"{path}: unknown setting {key!r} in [{section}]{hint}")
    return names[key]


def read_toml_value(path: Path, name: str, value: Any) -> tuple[str, Any]:
    if name in RENAMED:
        log.warning("%s: %s is deprecated: use %s", path, name, RENAMED[name])
        name = RENAMED[name]
    if name not in KEYS:
        guess = closest(name, [*KEYS])
        hint = f"; did you mean {guess}?" if guess else ""
        raise ConfigError(f"{path}: unknown setting {name!r}{hint}")
    # A TOML list (of engineers) reads like the comma-separated environment form.
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return name, KEYS[name].parse(f"{path}: {name}", text)


SECTIONS = frozenset(key.section for key in KEYS.values() if key.section is not None)
