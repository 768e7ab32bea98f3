"""The compose stack, the image and the systemd unit, read as an operator would use them.

No container engine or systemd runs here, so these read the files: the services the topology
needs, the order they start in, what the replicas share, that every command they run is one
the gateway has, and how the unit stops `serve` (`systemd-analyze verify` checks its syntax).
`test_cli.py` runs those commands for real, `test_postfix.py` the Postfix lines; the README
quotes every file of `deploy/` as it is.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from sqlalchemy.engine import make_url

from gateway.cli import build_parser
from gateway.errors import EX_CONFIG
from gateway.lifeline import TERMINATE_SECONDS
from gateway.serving import IMAP_STOP_SECONDS, WORKER_STOP_SECONDS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def dockerfile() -> dict[str, list[str]]:
    """Dockerfile instructions by keyword, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.setdefault(keyword.upper(), []).append(rest.strip())
    return found


IMAGE = "support-gateway:local"


def replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("command") is None and service.get("image") == IMAGE
    }


def host_port(published: str) -> str:
    """`[HOST_IP:]HOST_PORT:CONTAINER_PORT` -> HOST_PORT (HOST_IP may be `${VAR:-default}`)."""
    return published.split(":")[-2]


def assert_gateway_command(words: list[str]) -> None:
    """`words` is a command line the gateway's own parser takes."""
    assert words[0] == "gateway", words
    build_parser().parse_args(words[1:])


def test_stack_has_postgres_mailpit_one_migration_and_two_replicas(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit")
    assert services["migrate"]["command"] == ["gateway", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert len(replicas(compose)) >= 2
    # Built once, by the service that starts first; the others only run the image.
    builders = [name for name, service in services.items() if service.get("build")]
    assert builders == ["migrate"] and services["migrate"]["image"] == IMAGE
    assert all(service.get("pull_policy") == "never" for service in replicas(compose).values())


def test_replicas_start_after_the_migration_and_share_only_the_database(
    compose: dict[str, Any],
    dockerfile: dict[str, list[str]],
) -> None:
    data_dir = next(
        value.split("=", 1)[1]
        for env in dockerfile["ENV"]
        for value in shlex.split(env)
        if value.startswith("GATEWAY_DATA_DIR=")
    )
    mounts = []
    for name, service in replicas(compose).items():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", (
            name
        )
        url = make_url(service["environment"]["GATEWAY_DATABASE_URL"])
        assert (url.drivername, url.host) == ("postgresql+psycopg", "postgres"), name
        assert service["environment"]["GATEWAY_RELAY"] == "mailpit:1025", name
        [volume] = [v for v in service["volumes"] if v.endswith(f":{data_dir}")]
        mounts.append(volume.split(":")[0])
    assert len(set(mounts)) == len(mounts), "each replica has its own data volume"
    assert set(mounts) <= set(compose["volumes"])
    ports = [host_port(service["ports"][0]) for service in replicas(compose).values()]
    assert len(set(ports)) == len(ports), "each replica needs its own host port"


def test_published_ports_bind_to_loopback_unless_gateway_bind_says_otherwise(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        for published in service.get("ports", []):
            assert published.startswith("${GATEWAY_BIND:-127.0.0.1}:"), (name, published)


def test_every_service_is_health_checked_with_commands_that_exist(
    compose: dict[str, Any],
    dockerfile: dict[str, list[str]],
) -> None:
    checked_by_readiness = set()
    for name, service in compose["services"].items():
        check = service.get("healthcheck", {})
        if name == "migrate":
            assert check.get("disable") is True
            continue
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        if any("/readyz" in word for word in check["test"]):
            listen = service["environment"]["GATEWAY_HTTP_LISTEN"]
            port = listen.rpartition(":")[2]
            assert f"http://127.0.0.1:{port}/readyz" in " ".join(check["test"]), name
            assert check["test"][1] == "python", "the image has Python, not curl"
            checked_by_readiness.add(name)
    assert checked_by_readiness == set(replicas(compose)), "each replica by its /readyz"
    assert_gateway_command(compose["services"]["migrate"]["command"])
    [cmd] = dockerfile["CMD"]
    assert_gateway_command(yaml.safe_load(cmd))


def test_image_installs_the_package_with_postgres_and_its_templates(
    dockerfile: dict[str, list[str]],
) -> None:
    copied = {source for words in dockerfile["COPY"] for source in words.split()[:-1]}
    for source in copied:
        assert (ROOT / source).exists(), source
    assert {"gateway", "storage", "templates", "pyproject.toml"} <= copied
    assert any(".[postgres]" in run for run in dockerfile["RUN"])
    assert any("GATEWAY_TEMPLATES_DIR=/app/templates" in env for env in dockerfile["ENV"])


def test_the_image_installs_pinned_versions_within_the_declared_ranges(
    dockerfile: dict[str, list[str]],
) -> None:
    """Every dependency of `.[postgres]` is pinned in constraints.txt, which the image
    installs from, at a version `pyproject.toml` allows: a rebuild installs what was tested."""
    assert any("-c constraints.txt" in run for run in dockerfile["RUN"])
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["postgres"]
    for requirement in map(Requirement, declared):
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned), f"{requirement.name}=={pinned}"


def unit_file() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((ROOT / "deploy" / "gateway.service").read_text())
    return unit


def test_systemd_unit_runs_serve_as_the_service_user_and_lets_it_stop_its_workers() -> None:
    service = unit_file()["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/.venv/bin/gateway")
    assert_gateway_command(["gateway", *command[1:]])
    assert command[1:] == ["serve"]
    assert service["User"] == "gateway" and service["Restart"] == "on-failure"
    assert service["Environment"] == "GATEWAY_CONFIG=/etc/gateway/gateway.toml"
    assert service["RestartPreventExitStatus"] == str(EX_CONFIG)
    # SIGTERM to `serve` alone: it asks its workers to finish, and waits for them and for
    # the IMAP reader; only what is left when the time is up is killed.
    assert service["KillMode"] == "mixed" and service["KillSignal"] == "SIGTERM"
    longest_stop = IMAP_STOP_SECONDS + WORKER_STOP_SECONDS + TERMINATE_SECONDS
    assert int(service["TimeoutStopSec"]) > longest_stop


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: `apt-get install systemd`"
    text = (ROOT / "deploy" / "gateway.service").read_text()
    # The one thing verify checks on this machine's disk: that the command exists.
    unit = tmp_path / "gateway.service"
    unit.write_text(
        text.replace("/opt/gateway/.venv/bin/gateway", str(Path(sys.executable).parent / "gateway"))
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize(
    "name",
    [
        "gateway.service",
        "gateway.toml",
        "postfix/main.cf",
        "postfix/transport.lmtp",
        "postfix/transport.pipe",
        "postfix/master.cf.pipe",
    ],
)
def test_readme_quotes_each_deployment_file_as_it_is(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`deploy/{name}`" in readme
    assert (ROOT / "deploy" / name).read_text() in readme
