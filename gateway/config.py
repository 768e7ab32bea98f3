"""Loading settings: defaults, then an optional `gateway.toml`, then `GATEWAY_*` variables.

This is the only module that reads `os.environ`; `cli` loads `Settings` (`gateway.settings`)
once and passes each stage the sections it needs. A bad value raises `ConfigError` naming
its key; a misspelt variable is named in the log, with the setting it may mean. Settings
that contradict each other are refused here too, and the data directory prepared.

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
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.errors import CannotCreate, ConfigError
from gateway.setting_values import same_folder
from gateway.settings import KEYS, Imap, Settings
from gateway.tables import (
    SERVICE_TABLES,
    merge_engineers,
    read_engineer_tables,
    read_service_levels,
)

log = logging.getLogger(__name__)

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
    raw = load_toml(path) if path is not None else {}
    if path is not None:
        values.update(read_toml(path, raw))
    values.update(read_environment(env))
    settings = with_tables(Settings().changed(**values), path, raw)
    check_settings(settings)
    return settings


def with_tables(settings: Settings, path: Path | None, raw: dict[str, Any]) -> Settings:
    """The settings with what the file's structured tables say: the service levels, and
    the `[[engineers]]` that `GATEWAY_ENGINEERS` extends."""
    if path is None:
        return settings
    service = read_service_levels(path, raw)
    listed = raw.get("engineers")
    if not isinstance(listed, list) or not is_engineer_tables(listed):
        return replace(settings, service=service)
    from_file = read_engineer_tables(path, listed)
    engineers = merge_engineers(from_file, settings.workflow.engineers)
    return replace(
        settings, service=service, workflow=replace(settings.workflow, engineers=engineers)
    )


def is_engineer_tables(value: Any) -> bool:
    """`[[engineers]]` tables, rather than the flat list `engineers = ["a@x:L2"]`."""
    return isinstance(value, list) and any(isinstance(item, dict) for item in value)


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


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: {path} is not valid TOML: {exc}") from None


def read_toml(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The settings the file sets, by flat name: top-level keys, or keys in a table named
    after their section (by field or flat name). An old name gives way to its new one.
    The structured tables are `gateway.tables`' to read."""
    entries: list[tuple[str, Any]] = []
    for name, value in raw.items():
        if name in SERVICE_TABLES or (name == "engineers" and is_engineer_tables(value)):
            continue
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
