"""Settings: engineers and the lifecycle's days are read, and bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Engineer, load_settings
from gateway.errors import ConfigError


def test_engineers_are_read_with_tier_and_language() -> None:
    settings = load_settings(
        {"GATEWAY_ENGINEERS": "Eng1@Example.com, eng2@example.com:l2,lead@example.com:L2:zh"}
    )
    assert settings.engineers == (
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
    assert (load_settings({}).auto_close_days, load_settings({}).reopen_days) == (7.0, 14.0)
    settings = load_settings({"GATEWAY_AUTO_CLOSE_DAYS": "3", "GATEWAY_REOPEN_DAYS": "30"})
    assert (settings.auto_close_days, settings.reopen_days) == (3.0, 30.0)
    with pytest.raises(ConfigError, match="GATEWAY_AUTO_CLOSE_DAYS: must be positive"):
        load_settings({"GATEWAY_AUTO_CLOSE_DAYS": "0"})


def test_engineers_as_a_toml_list(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('engineers = ["eng1@example.com", "lead@example.com:L2"]\n')
    settings = load_settings({}, config)
    assert [e.tier for e in settings.engineers] == ["L1", "L2"]
