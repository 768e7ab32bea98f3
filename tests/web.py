"""The web service under test: `gateway serve` as its own process, with its HTTP listener on a
free loopback port, and a small browser-like HTTP client (cookies, no automatic redirects).

`ServedGateway` is a `GatewayUnderTest`: the desk's helpers send it mail over SMTP and read
its database, while every page is fetched from the real process over HTTP.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gateway.app import build_gateway
from gateway.config import load_settings
from tests.conftest import (
    SUPPORT,
    CapturedMail,
    Desk,
    OverSmtp,
    ServeProcess,
    wait_until,
    with_current_schema,
)
from tests.ports import free_port

STATUS_LINK = re.compile(r"^(http://127\.0\.0\.1:\d+/t/[0-9a-z-]+)\r?$", re.MULTILINE)
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def serve_env(data_dir: Path, relay_port: int, database_url: str, **extra: str) -> dict[str, str]:
    """What `gateway serve` is started with: SMTP and HTTP on free ports, `relay_port` as
    its relay, and `extra` settings."""
    smtp_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_SUPPORT_ADDRESS=SUPPORT,
        GATEWAY_SECRET="test-secret",
        GATEWAY_SMTP_LISTEN=f"127.0.0.1:{smtp_port}",
        GATEWAY_HTTP_LISTEN=f"127.0.0.1:{http_port}",
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{http_port}",
        GATEWAY_RELAY=f"127.0.0.1:{relay_port}",
        GATEWAY_DELIVERY_BACKOFF_SECONDS="0.2",
    )
    env.update(extra)
    return env


class ServedGateway(OverSmtp):
    """`gateway serve` in a process of its own; its database read from here."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.env = with_current_schema(env)
        self.settings = load_settings(env)
        self.gateway = build_gateway(self.settings)
        smtp = self.settings.listen.smtp
        assert smtp is not None
        self.process = ServeProcess(env, smtp.port, log)

    @property
    def base_url(self) -> str:
        return self.settings.web.public_url

    def start(self) -> ServedGateway:
        self.process.start()
        web = self.settings.web.listen
        assert web is not None
        wait_until(lambda: fetch(f"{self.base_url}/healthz").status == 200, 30, "HTTP to listen")
        return self

    def stop(self) -> None:
        self.process.stop()
        self.gateway.engine.dispose()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Any
    body: str

    @property
    def csrf(self) -> str:
        match = CSRF_FIELD.search(self.body)
        assert match, "the page has no form with a CSRF token"
        return match.group(1)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Client:
    """A browser's HTTP side: one cookie jar, redirects left for the test to see."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirects()
        )

    def get(self, url: str) -> Reply:
        return fetch(url, opener=self.opener)

    def post(self, url: str, fields: dict[str, str]) -> Reply:
        data = urllib.parse.urlencode(fields).encode()
        return fetch(url, data, self.opener)


def fetch(
    url: str, data: bytes | None = None, opener: urllib.request.OpenerDirector | None = None
) -> Reply:
    request = urllib.request.Request(url, data=data)
    try:
        with (opener or urllib.request.build_opener(NoRedirects())).open(request, timeout=20) as r:
            return Reply(r.status, r.headers, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read().decode("utf-8", "replace"))


REQUIRED_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def assert_safe_headers(headers: object) -> None:
    """The security headers every answer of the web service carries. (Outside a test
    module pytest does not spell out a failed assert, so each says what it saw.)"""
    for name, value in REQUIRED_HEADERS.items():
        assert headers[name] == value, f"{name}: {headers[name]!r}"  # type: ignore[index]
    robots = headers["X-Robots-Tag"]  # type: ignore[index]
    assert "noindex" in robots, f"X-Robots-Tag: {robots!r}"
    policy = headers["Content-Security-Policy"]  # type: ignore[index]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
    assert "frame-ancestors 'none'" in policy, policy


def status_link(mail: CapturedMail) -> str:
    """The status link on a line of its own in the mail's text part."""
    body = mail.message.get_body(("plain",))
    assert body is not None
    found = STATUS_LINK.findall(str(body.get_content()))  # type: ignore[attr-defined]
    assert len(found) == 1, f"one status link expected, found {found}"
    return str(found[0])


ENGINEERS_SETTING = "eng1@example.com,eng2@example.com,lead@example.com:L2:zh"


class WebDesk(Desk):
    """The desk of `tests.conftest`, its gateway served as a process with its web service."""

    gateway: ServedGateway

    def url(self, path: str) -> str:
        return f"{self.gateway.base_url}{path}"


def port_taken_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
