"""The kinds of value a setting holds, and reading each from its text.

Endpoints, engineers and IMAP accounts are small frozen values; addresses, numbers, flags
and paths are plain ones. Each `parse_*` function reads the text a setting has in the
environment or in `gateway.toml`, and raises `ConfigError` naming the setting's key when
the text does not say what it should.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from gateway.errors import ConfigError
from gateway.intake.facts import Fact, fact_named
from gateway.service.hours import Week

# L1 answers first, L2 takes what is escalated, a lead hears of broken promises.
TIERS = ("L1", "L2", "lead")
LANGUAGES = ("en", "zh")
Number = TypeVar("Number", int, float)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A `host:port` pair to listen on or connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Engineer:
    """An engineer's address, tier (`L1` first line, `L2` specialists, `lead`), mail
    language, time zone and weekly shift (`[[engineers]]` in `gateway.toml`)."""

    address: str
    tier: str = "L1"
    language: str = "en"
    # An IANA zone; empty: the team's (`[business_hours] timezone`).
    timezone: str = ""
    # The weekly shift in the engineer's own zone; None: always on shift.
    shift: Week | None = None
    # Receives P1 tickets at once when no L1 is on shift.
    on_call: bool = False


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


def parse_endpoint(key: str, value: str) -> Endpoint | None:
    """`host:port`, or `off`/empty for none."""
    if value.strip().lower() in ("", "off", "none"):
        return None
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: expected host:port (for example 127.0.0.1:2525), got {value!r}")
    return Endpoint(host.strip("[]"), int(port))


def parse_positive_int(key: str, value: str) -> int:
    return parse_positive(key, value, int, "a whole number")


def parse_positive_float(key: str, value: str) -> float:
    return parse_positive(key, value, float, "a number")


def parse_score(key: str, value: str) -> float:
    """A number from 0 to 1."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a number from 0 to 1, got {value!r}") from None
    if not 0 <= number <= 1:
        raise ConfigError(f"{key}: expected a number from 0 to 1, got {value!r}")
    return number


def parse_positive(key: str, value: str, kind: Callable[[str], Number], expected: str) -> Number:
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}") from None
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


def parse_public_url(key: str, value: str) -> str:
    """An http(s) base URL without a trailing slash, or "" (`off`) for none."""
    text = parse_text(key, value).rstrip("/")
    if text.lower() in ("", "off", "none"):
        return ""
    scheme, sep, rest = text.partition("://")
    if (
        not sep
        or scheme.lower() not in ("http", "https")
        or not rest
        or any(c in rest for c in '?#<> "\\')
    ):
        raise ConfigError(f"{key}: expected an http(s) URL such as https://support.example.com")
    return text


def parse_blob_store(key: str, value: str) -> str:
    """ "database", "directory", or "" (chosen by the kind of database)."""
    text = value.strip().lower()
    if text not in ("", "database", "directory"):
        raise ConfigError(f"{key}: expected database or directory, got {value!r}")
    return text


def parse_flag(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def parse_fact_names(key: str, value: str) -> tuple[Fact, ...]:
    """`sdk_version,platform,logs`: the facts a kind of report needs, each once; empty for
    none."""
    check_list_separator(key, value)
    facts: list[Fact] = []
    for word in (item.strip() for item in value.split(",") if item.strip()):
        fact = fact_named(word)
        if fact is None:
            known = ", ".join(Fact)
            raise ConfigError(f"{key}: unknown fact {word!r}; known: {known}")
        if fact not in facts:
            facts.append(fact)
    return tuple(facts)


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
    tier = parse_tier(key, address, tier)
    language = parse_language(key, address, language)
    return Engineer(parse_address(key, address).lower(), tier, language)


def parse_tier(key: str, address: str, text: str) -> str:
    """`L1`, `L2` or `lead` (in any case); empty for L1."""
    tier = text.strip().upper() or "L1"
    tier = "lead" if tier == "LEAD" else tier
    if tier not in TIERS:
        raise ConfigError(f"{key}: tier of {address} must be L1, L2 or lead, got {text!r}")
    return tier


def parse_language(key: str, address: str, text: str) -> str:
    """`en` or `zh`; empty for English."""
    language = text.strip().lower() or "en"
    if language not in LANGUAGES:
        raise ConfigError(
            f"{key}: language of {address} must be one of {', '.join(LANGUAGES)}, got {text!r}"
        )
    return language


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
