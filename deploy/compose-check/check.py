"""The compose stack, checked end to end from this host (stdlib only).

Both replicas answer /readyz; a new mail to each replica is acknowledged through the relay
(Mailpit's API); a reply to replica 1's acknowledgement, sent through replica 2 to the reply
address alone (no In-Reply-To, no subject tag, as tests/test_scale_out.py does), joins that
ticket by its reply token and opens no other. Exit 1 naming what failed.

    python3 check.py --project NAME   (the docker-compose project the stack runs as)
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, TypeVar

HOST = "127.0.0.1"
SMTP_PORTS = {"gateway-1": 2525, "gateway-2": 2526}
WEB_PORTS = {"gateway-1": 8080, "gateway-2": 8081}
MAILPIT = f"http://{HOST}:8025"
SUPPORT = "support@example.com"
WAIT_SECONDS = 60.0

T = TypeVar("T")


class CheckFailed(Exception):
    pass


def wait_for(what: str, probe: Callable[[], T | None], seconds: float = WAIT_SECONDS) -> T:
    """`probe()`'s first answer that is not None, asked every half second."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise CheckFailed(f"waited {seconds:.0f}s for {what}")
        time.sleep(0.5)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str) -> Any:
    status, body = get(url)
    if status != 200:
        raise CheckFailed(f"GET {url}: HTTP {status}")
    return json.loads(body)


def check_ready() -> None:
    for replica, port in WEB_PORTS.items():
        status, body = get(f"http://{HOST}:{port}/readyz")
        if status != 200:
            raise CheckFailed(f"{replica} /readyz: HTTP {status}: {body[:300]!r}")
        print(f"  {replica} /readyz: 200")


def send(port: int, sender: str, recipient: str, raw: str) -> None:
    with smtplib.SMTP(HOST, port, timeout=30) as client:
        client.sendmail(sender, [recipient], raw.encode())


def new_mail(customer: str, run: str, number: int) -> str:
    return (
        f"From: {customer}\r\nTo: {SUPPORT}\r\nSubject: Stream {number} crashes ({run})\r\n"
        f"Message-ID: <new-{number}-{run}@customer.example>\r\n\r\n"
        "The stream crashes every time I open it.\r\n"
    )


def token_only_reply(customer: str, reply_to: str, run: str) -> str:
    """A reply that only its reply token can thread: no In-Reply-To, no subject tag."""
    return (
        f"From: {customer}\r\nTo: {reply_to}\r\nSubject: still broken\r\n"
        f"Message-ID: <token-reply-{run}@customer.example>\r\n\r\n"
        "Still crashes after the update.\r\n"
    )


def mail_to(customer: str) -> list[dict[str, Any]]:
    """The relay's messages to `customer`, oldest first."""
    listed = get_json(f"{MAILPIT}/api/v1/messages")["messages"]
    mine = [m for m in listed if any(to["Address"] == customer for to in m["To"] or [])]
    return sorted(mine, key=lambda m: str(m["Created"]))


def raw_message(mailpit_id: str) -> EmailMessage:
    status, raw = get(f"{MAILPIT}/api/v1/message/{mailpit_id}/raw")
    if status != 200:
        raise CheckFailed(f"GET raw message {mailpit_id}: HTTP {status}")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def acknowledgement(customer: str) -> EmailMessage:
    found = wait_for(f"the acknowledgement to {customer}", lambda: mail_to(customer) or None)
    return raw_message(found[0]["ID"])


def reply_address(ack: EmailMessage) -> str:
    reply_to = ack["Reply-To"]
    if reply_to is None or not reply_to.addresses:
        raise CheckFailed(f"the acknowledgement has no Reply-To: {dict(ack.items())}")
    address = str(reply_to.addresses[0].addr_spec)
    if not re.fullmatch(r"support\+[^@]+@example\.com", address, re.IGNORECASE):
        raise CheckFailed(f"the acknowledgement's Reply-To is no reply address: {address}")
    return address


def gateway(project: str, *words: str) -> Any:
    """`gateway WORDS --json` in replica 1, its output read."""
    command = ["docker-compose", "-p", project, "exec", "-T", "gateway-1", "gateway", *words]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def tickets_of(project: str, customer: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = gateway(project, "tickets", "--requester", customer, "--json")
    return found


def threading_counts() -> dict[str, float]:
    """`gateway_threading_total` by method, from replica 2's /metrics (the database's)."""
    status, body = get(f"http://{HOST}:{WEB_PORTS['gateway-2']}/metrics")
    if status != 200:
        raise CheckFailed(f"gateway-2 /metrics: HTTP {status}")
    pattern = r'^gateway_threading_total\{method="([^"]+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, body.decode(), re.MULTILINE)}


def check_reply_threads(project: str, customer: str, ack: EmailMessage, run: str) -> None:
    [ticket] = tickets_of(project, customer)
    reply_to = reply_address(ack)
    print(f"  {customer}: ticket #{ticket['id']}, acknowledged with Reply-To {reply_to}")
    by_token_before = threading_counts().get("token", 0)
    send(SMTP_PORTS["gateway-2"], customer, reply_to, token_only_reply(customer, reply_to, run))
    print("  sent a reply to it (token only) through gateway-2")
    reply_id = f"token-reply-{run}@customer.example"

    def filed() -> list[dict[str, Any]] | None:
        for listed in tickets_of(project, customer):
            shown = gateway(project, "show", str(listed["id"]), "--json")
            if any(str(m["message_id"]).strip("<>") == reply_id for m in shown["messages"]):
                return [listed, shown]
        return None

    listed, shown = wait_for("the reply to be filed", filed)
    if listed["id"] != ticket["id"]:
        raise CheckFailed(
            f"the reply opened ticket #{listed['id']} instead of joining #{ticket['id']}: "
            "gateway-2 did not accept the reply token gateway-1 minted (do the replicas "
            "share the reply-token secret?)"
        )
    inbound = [m for m in shown["messages"] if m["direction"] == "in"]
    if len(inbound) != 2 or len(tickets_of(project, customer)) != 1:
        raise CheckFailed(f"ticket #{ticket['id']}: {len(inbound)} inbound messages, expected 2")
    by_token = threading_counts().get("token", 0) - by_token_before
    if by_token != 1:
        raise CheckFailed(f'gateway_threading_total{{method="token"}} rose by {by_token}, not 1')
    print(f"  the reply joined ticket #{ticket['id']}, threaded by its token; no new ticket")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="the docker-compose project name")
    project = parser.parse_args().project
    run = secrets.token_hex(4)
    customers = {name: f"{name}-{run}@customer.example" for name in ("alice", "bob")}
    try:
        check_ready()
        for number, (name, replica) in enumerate([("alice", "gateway-1"), ("bob", "gateway-2")]):
            customer = customers[name]
            send(SMTP_PORTS[replica], customer, SUPPORT, new_mail(customer, run, number + 1))
        print("  sent a new mail to gateway-1 (alice) and one to gateway-2 (bob)")
        acks = {name: acknowledgement(address) for name, address in customers.items()}
        print(
            "  both acknowledgements reached the relay: "
            + "; ".join(f"{name}: {ack['Subject']}" for name, ack in acks.items())
        )
        check_reply_threads(project, customers["alice"], acks["alice"], run)
    except (CheckFailed, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        print(f"check: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("check: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
