"""Settings: read from the environment and a TOML file into sections, each default written
once; old names still read; bad values name their key."""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path

import pytest

from gateway.config import KEYS, Delivery, Engineer, Settings, load_settings
from gateway.errors import ConfigError
from gateway.limits import Limits


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
        ("eng1@example.com:L3", "tier of eng1@example.com must be L1 or L2"),
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
