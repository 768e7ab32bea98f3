"""The README's Postfix lines, run: a private Postfix takes a customer's mail over SMTP and
delivers it to the gateway over LMTP (`gateway serve`) or through the pipe into
`gateway ingest`, run as the service user; an `ingest` that exits 75 leaves the mail
deferred in Postfix's queue until the cause is gone, one that exits 65 has it bounced.

The configuration is the text of `deploy/` (which the README quotes), with this test's
paths, ports and user filled in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SUPPORT, ServeProcess, Sink, load_case, run_gateway, wait_until
from tests.postfix import (
    SERVICE_USER,
    Postfix,
    ServiceGateway,
    chown_to_service_user,
    deploy_file,
    free_port,
    private_root,
)

CUSTOMER = "alice@customer.example"


@pytest.fixture
def root() -> Iterator[Path]:
    place = private_root()
    yield place
    shutil.rmtree(place, ignore_errors=True)


@pytest.fixture
def postfix(root: Path) -> Iterator[Postfix]:
    (root / "postfix").mkdir()
    server = Postfix(root / "postfix")
    yield server
    server.stop()


def gateway_config(root: Path, sink: Sink, lmtp_port: int) -> dict[str, str]:
    """deploy/gateway.toml, filled in; the environment that points the gateway at it, and
    nothing else of the gateway's."""
    (root / "gateway.toml").write_text(
        deploy_file(
            "gateway.toml",
            {
                '"/var/lib/gateway"': f'"{root}/var"',
                '"127.0.0.1:25"': f'"127.0.0.1:{sink.port}"',
                '"127.0.0.1:2424"': f'"127.0.0.1:{lmtp_port}"',
            },
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_CONFIG"] = str(root / "gateway.toml")
    return env


def postfix_main_cf(postfix: Postfix) -> str:
    return deploy_file("postfix/main.cf", {"/etc/postfix": str(postfix.config)})


def tickets(listing: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """The tickets `gateway tickets --json` printed."""
    listed: list[dict[str, object]] = json.loads(listing.stdout)
    return listed


def test_postfix_delivers_the_support_address_to_serve_over_lmtp(
    root: Path, postfix: Postfix, sink: Sink
) -> None:
    lmtp_port = free_port()
    env = gateway_config(root, sink, lmtp_port)
    run_gateway(env, "db", "upgrade")
    postfix.configure(
        postfix_main_cf(postfix),
        master_cf="",
        transport=deploy_file(
            "postfix/transport.lmtp", {"127.0.0.1:2424": f"127.0.0.1:{lmtp_port}"}
        ),
    ).start()
    with (root / "serve.log").open("wb") as log:
        serve = ServeProcess(env, lmtp_port, log)
        serve.start()
        try:
            postfix.send(load_case("customer_new.eml"), CUSTOMER, SUPPORT)
            [ack] = sink.wait_for(1, timeout=30)
            assert run_gateway(env, "health").stdout.strip() == "healthy"
        finally:
            serve.stop()
    assert ack.recipients == [CUSTOMER]
    assert "[Support #1]" in ack.message["Subject"]
    [ticket] = tickets(run_gateway(env, "tickets", "--json"))
    assert ticket["requester"] == CUSTOMER
    assert postfix.queue() == []
    assert f"relay=127.0.0.1[127.0.0.1]:{lmtp_port}" in postfix.log()


def pipe_setup(root: Path, postfix: Postfix, sink: Sink) -> ServiceGateway:
    """The pipe transport of the README into `gateway ingest` as the service user, whose
    data directory (and SQLite file) it owns."""
    env = gateway_config(root, sink, free_port())
    gateway = ServiceGateway(root, env)
    (root / "var").mkdir()
    chown_to_service_user(root / "var")
    gateway.run("db", "upgrade")
    postfix.configure(
        postfix_main_cf(postfix),
        master_cf=deploy_file(
            "postfix/master.cf.pipe",
            {
                "user=gateway": f"user={SERVICE_USER}",
                "/etc/gateway/gateway.toml": f"{root}/gateway.toml",
                "/opt/gateway/.venv/bin/gateway": str(gateway.command),
            },
        ),
        transport=deploy_file("postfix/transport.pipe"),
    ).start()
    return gateway


def test_postfix_pipes_the_support_address_into_ingest_as_the_service_user(
    root: Path, postfix: Postfix, sink: Sink
) -> None:
    gateway = pipe_setup(root, postfix, sink)
    postfix.send(load_case("customer_new.eml"), CUSTOMER, "support+anything@example.com")
    [ack] = sink.wait_for(1, timeout=30)
    assert ack.recipients == [CUSTOMER]
    [ticket] = tickets(gateway.run("tickets", "--json"))
    assert ticket["requester"] == CUSTOMER
    assert postfix.queue() == []
    assert "status=sent (delivered via gateway service" in postfix.log()


def test_ingest_exiting_75_leaves_the_mail_deferred_until_the_spool_is_writable(
    root: Path, postfix: Postfix, sink: Sink
) -> None:
    gateway = pipe_setup(root, postfix, sink)
    # What a command run as root in the data directory leaves behind: a directory the
    # service user cannot write.
    (root / "var" / "spool").mkdir()
    postfix.send(load_case("customer_new.eml"), CUSTOMER, SUPPORT)
    [deferred] = wait_until(postfix.deferred, 30, "the mail deferred in Postfix's queue")
    [recipient] = deferred["recipients"]
    assert recipient["address"] == SUPPORT
    assert recipient["delay_reason"] == (
        "temporary failure. Command output: "
        f"gateway: cannot create {root}/var/spool/queue: Permission denied"
    )
    assert deferred["queue_name"] == "deferred"
    assert not sink.received

    chown_to_service_user(root / "var")
    postfix.flush()
    [ack] = sink.wait_for(1, timeout=30)
    assert ack.recipients == [CUSTOMER]
    [ticket] = tickets(gateway.run("tickets", "--json"))
    assert ticket["requester"] == CUSTOMER
    wait_until(lambda: postfix.queue() == [], 15, "Postfix's queue to empty")


def test_ingest_exiting_65_bounces_the_mail_with_the_gateways_reason(
    root: Path, postfix: Postfix, sink: Sink
) -> None:
    pipe_setup(root, postfix, sink)
    filler = b"".join(b"X-Filler-%d: x\r\n" % n for n in range(1001))
    postfix.send(filler + load_case("customer_new.eml"), CUSTOMER, SUPPORT)
    bounced = wait_until(
        lambda: [line for line in postfix.log().splitlines() if "status=bounced" in line],
        30,
        "Postfix to bounce the mail",
    )
    # Postfix's own fields (Received:, Delivered-To:, Return-Path:) count too.
    assert "dsn=5.6.0, status=bounced (data format error. Command output: gateway: " in (bounced[0])
    assert "header fields exceed the limit of 1000" in bounced[0]
    assert not sink.received
