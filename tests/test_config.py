"""Settings: read from the environment and a TOML file into sections, each default written
once; old names still read; bad values name their key."""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.limits import Limits
from gateway.setting_values import Engineer
from gateway.settings import KEYS, Delivery, Settings


def test_engineers_are_read_with_tier_and_language() -> None:
    settings = load_settings(
        {"GATEWAY_ENGINEERS": "Eng1@Example.com, eng2@example.com:l2,lead@example.com:L2:zh"}
    )
    assert settings.workflow.engineers == (
        Engineer("eng1@example.com", "L1", "en"),
        Engineer("eng2@example.com", "L2", "en"),
        Engineer("lead@example.com", "L2", "zh"),
    )


@pytest.mark.parametrize(
    "value, named",
    [
        ("eng1@example.com:L3", "tier of eng1@example.com must be L1, L2 or lead"),
        ("eng1@example.com:L1:fr", "language of eng1@example.com must be one of en, zh"),
        ("not-an-address", "expected an address"),
    ],
)
def test_bad_engineer_entries_name_the_setting(value: str, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"GATEWAY_ENGINEERS": value})
    assert raised.value.reason.startswith("GATEWAY_ENGINEERS:") and named in raised.value.reason


def test_lifecycle_days_default_and_override() -> None:
    defaults = load_settings({}).workflow
    assert (defaults.auto_close_days, defaults.reopen_days) == (7.0, 14.0)
    settings = load_settings({"GATEWAY_AUTO_CLOSE_DAYS": "3", "GATEWAY_REOPEN_DAYS": "30"})
    assert (settings.workflow.auto_close_days, settings.workflow.reopen_days) == (3.0, 30.0)
    with pytest.raises(ConfigError, match="GATEWAY_AUTO_CLOSE_DAYS: must be positive"):
        load_settings({"GATEWAY_AUTO_CLOSE_DAYS": "0"})


def test_engineers_as_a_toml_list(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('engineers = ["eng1@example.com", "lead@example.com:L2"]\n')
    settings = load_settings({}, config)
    assert [e.tier for e in settings.workflow.engineers] == ["L1", "L2"]


def test_the_two_attachment_sizes_have_names_that_cannot_be_confused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(
        {
            "GATEWAY_MAX_INBOUND_ATTACHMENT_BYTES": "1000",
            "GATEWAY_ATTACH_TO_NOTICES_UP_TO_BYTES": "500",
        }
    )
    assert settings.limits.max_inbound_attachment_bytes == 1000
    assert settings.notify.attach_to_notices_up_to_bytes == 500
    assert "deprecated" not in caplog.text


@pytest.mark.parametrize(
    "old, new, section",
    [
        ("GATEWAY_MAX_ATTACHMENT_BYTES", "GATEWAY_MAX_INBOUND_ATTACHMENT_BYTES", "limits"),
        ("GATEWAY_ATTACH_MAX_BYTES", "GATEWAY_ATTACH_TO_NOTICES_UP_TO_BYTES", "notify"),
    ],
)
def test_old_attachment_setting_names_still_work_and_say_what_replaces_them(
    old: str,
    new: str,
    section: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "gateway.config"):
        settings = load_settings({old: "1234"})
    value = getattr(settings, section)
    assert 1234 in (
        getattr(value, "max_inbound_attachment_bytes", None),
        getattr(value, "attach_to_notices_up_to_bytes", None),
    )
    assert f"{old} is deprecated: use {new}" in caplog.text
    assert load_settings({old: "1", new: "2"}) == load_settings({new: "2"})
    with pytest.raises(ConfigError, match=f"{old}: must be positive"):
        load_settings({old: "0"})


def test_a_toml_file_may_group_settings_in_tables_named_after_their_section(
    tmp_path: Path,
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        'support_name = "Help"\n[limits]\nmax_message_bytes = 2000\n[workflow]\nreopen_days = 3\n'
    )
    settings = load_settings({}, config)
    assert (
        settings.mailbox.name,
        settings.limits.max_message_bytes,
        settings.workflow.reopen_days,
    ) == ("Help", 2000, 3.0)
    config.write_text("[limits]\nmax_mesage_bytes = 2000\n")
    with pytest.raises(ConfigError, match="unknown setting 'max_mesage_bytes' in \\[limits\\]"):
        load_settings({}, config)


def test_every_setting_reaches_a_field_of_its_section_and_starts_at_its_default() -> None:
    defaults = load_settings({})
    assert defaults == Settings()
    for name, key in KEYS.items():
        section = defaults if key.section is None else getattr(defaults, key.section)
        assert key.field in {f.name for f in fields(section)}, name
    changed = Settings().changed(relay_connections=2, workers=3, max_message_bytes=9)
    assert (changed.delivery.relay_connections, changed.workers) == (2, 3)
    assert changed.limits == replace(Limits(), max_message_bytes=9)
    assert changed.delivery == replace(Delivery(), relay_connections=2)


def test_in_a_toml_file_too_a_new_name_wins_over_its_old_one(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "attach_to_notices_up_to_bytes = 2\nattach_max_bytes = 1\n"
        "[limits]\nmax_attachment_bytes = 7\n"
    )
    settings = load_settings({}, config)
    assert settings.notify.attach_to_notices_up_to_bytes == 2
    assert settings.limits.max_inbound_attachment_bytes == 7
    config.write_text('[imap]\nimap = "imap://u:p@mail.example/INBOX"\nimap_poll_seconds = 5\n')
    imap = load_settings({}, config).imap
    assert imap.account is not None and imap.account.host == "mail.example"
    assert imap.poll_seconds == 5.0


# -- bad settings through the real command line --------------------------------------------


def run_with(tmp_path: Path, *args: str, **settings: str) -> tuple[int, str]:
    """`gateway ARGS` with these settings: its exit code and stderr."""
    from tests.conftest import gateway_env, run_gateway

    env = gateway_env(tmp_path / "var") | settings
    done = run_gateway(env, *args, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


@pytest.mark.parametrize("command", [["tickets"], ["db", "upgrade"], ["serve"]])
def test_a_data_dir_that_cannot_be_created_exits_73_naming_it(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    wanted = tmp_path / "a-file" / "var"
    code, stderr = run_with(tmp_path, *command, GATEWAY_DATA_DIR=str(wanted))
    assert code == 73
    assert "GATEWAY_DATA_DIR" in stderr and str(wanted) in stderr


@pytest.mark.parametrize(
    "url, said",
    [
        ("postgresql+psycopg://ops:s3cr3t-pw@db.example:54x2/gateway", "port"),
        ("postgresql+psycopg://ops:s3cr3t-pw@db.example:99999/gateway", "port 99999"),
        ("mysql+mysqldb://ops:s3cr3t-pw@db.example/gateway", "not installed"),
        ("oracle9://ops:s3cr3t-pw@db.example/gateway", "no database kind 'oracle9'"),
        ("ops:s3cr3t-pw at db.example", "not a database URL"),
    ],
)
@pytest.mark.parametrize("command", [["tickets"], ["db", "upgrade"]])
def test_a_database_url_that_cannot_work_exits_78_without_showing_the_password(
    tmp_path: Path, url: str, said: str, command: list[str]
) -> None:
    code, stderr = run_with(tmp_path, *command, GATEWAY_DATABASE_URL=url)
    assert code == 78
    assert "GATEWAY_DATABASE_URL" in stderr and said in stderr
    assert "s3cr3t-pw" not in stderr


def test_a_templates_dir_missing_or_incomplete_stops_commands_that_render_mail(
    tmp_path: Path,
) -> None:
    from tests.conftest import gateway_env, with_current_schema

    with_current_schema(gateway_env(tmp_path / "var"))
    missing = tmp_path / "no-such-templates"
    code, stderr = run_with(tmp_path, "due", GATEWAY_TEMPLATES_DIR=str(missing))
    assert code == 78 and "GATEWAY_TEMPLATES_DIR" in stderr and str(missing) in stderr
    partial = tmp_path / "partial"
    (partial / "customer").mkdir(parents=True)
    (partial / "customer" / "acknowledgement.en.txt.j2").write_text("{% set subject = 'x' %}")
    code, stderr = run_with(tmp_path, "process", GATEWAY_TEMPLATES_DIR=str(partial))
    assert code == 78 and "GATEWAY_TEMPLATES_DIR" in stderr
    shipped = Settings().notify.templates_dir
    first_missing = sorted(
        str(path.relative_to(shipped))
        for path in shipped.glob("*/*.en.*.j2")
        if path.name != "acknowledgement.en.txt.j2"
    )[0]
    assert f"lacks {first_missing}" in stderr
    # Listing tickets renders no mail: it still works.
    code, stderr = run_with(tmp_path, "tickets", GATEWAY_TEMPLATES_DIR=str(missing))
    assert code == 0, stderr


@pytest.mark.parametrize(
    "variable, value, said",
    [
        ("GATEWAY_ENGINEERS", "eng1@example.com;eng2@example.com", "commas, not semicolons"),
        ("GATEWAY_ENGINEERS", "eng1@example.com,Support@Example.com:L2", "support address"),
        ("GATEWAY_ENGINEERS", "support+team@example.com", "support address"),
        ("GATEWAY_OPERATORS", "ops@example.com; oncall@example.com", "commas, not semicolons"),
        ("GATEWAY_OPERATORS", "support@example.com", "support address"),
    ],
)
def test_people_lists_with_semicolons_or_the_support_address_exit_78_naming_them(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    code, stderr = run_with(tmp_path, "tickets", **{variable: value})
    assert code == 78
    assert f"gateway: {variable}:" in stderr and said in stderr


@pytest.mark.parametrize(
    "typo, meant",
    [
        ("GATEWAY_ENGINEER", "GATEWAY_ENGINEERS"),
        ("GATEWAY_RELAY_HOST", "GATEWAY_RELAY"),
        ("GATEWAY_SUPORT_ADDRESS", "GATEWAY_SUPPORT_ADDRESS"),
    ],
)
def test_an_unknown_variable_is_named_with_the_closest_known_one(
    tmp_path: Path, typo: str, meant: str
) -> None:
    code, stderr = run_with(tmp_path, "db", "status", **{typo: "x"})
    warning = [line for line in stderr.splitlines() if typo in line]
    assert warning and "WARNING" in warning[0] and f"did you mean {meant}?" in warning[0]


def test_an_unknown_variable_like_nothing_known_is_named_without_a_guess(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        load_settings({"GATEWAY_ZZZZ": "1", "GATEWAY_SUPPORT_NAME": "Help desk"})
    [warning] = [r.getMessage() for r in caplog.records if "GATEWAY_ZZZZ" in r.getMessage()]
    assert "did you mean" not in warning
    assert not [r for r in caplog.records if "GATEWAY_SUPPORT_NAME" in r.getMessage()]


def test_an_unknown_key_in_the_toml_file_suggests_the_closest_known_one(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('engineer = ["eng1@example.com"]\n')
    with pytest.raises(ConfigError, match="unknown setting 'engineer'; did you mean engineers\\?"):
        load_settings({}, config)
    config.write_text("[delivery]\nmax_atempts = 3\n")
    with pytest.raises(
        ConfigError, match="'max_atempts' in \\[delivery\\]; did you mean max_attempts\\?"
    ):
        load_settings({}, config)


def test_operators_are_read_lower_cased_and_once() -> None:
    settings = load_settings(
        {"GATEWAY_OPERATORS": "Ops@Example.com, oncall@example.com,ops@example.com"}
    )
    assert settings.notify.operators == ("ops@example.com", "oncall@example.com")
    assert load_settings({}).notify.operators == ()
