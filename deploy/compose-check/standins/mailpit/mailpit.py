#!/usr/bin/env python3
"""A stand-in for Mailpit: SMTP on :1025 into memory, and Mailpit's web API on :8025.

`/mailpit` serves; `/mailpit readyz` exits 0 when the API answers (the compose health
check). The API mirrors Mailpit's for what the compose check reads:

  GET /api/v1/messages            {"total": N, "messages": [summary, ...]}, newest first
  GET /api/v1/message/<ID>        the summary with Text, HTML, Date and headers
  GET /api/v1/message/<ID>/raw    the message as received
  GET /api/v1/message/<ID>/headers
  GET /readyz
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

SMTP_PORT = 1025
HTTP_PORT = 8025


@dataclass(frozen=True)
class Stored:
    id: str
    raw: bytes
    created: datetime
    envelope_to: list[str]

    @property
    def parsed(self) -> EmailMessage:
        message = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(message, EmailMessage)
        return message


class Mailbox:
    """Every message received, oldest first; shared by the SMTP and HTTP threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Stored] = []

    def add(self, raw: bytes, envelope_to: list[str]) -> None:
        stored = Stored(str(uuid.uuid4()), raw, datetime.now(UTC), envelope_to)
        with self.lock:
            self.messages.append(stored)

    def newest_first(self) -> list[Stored]:
        with self.lock:
            return list(reversed(self.messages))

    def find(self, message_id: str) -> Stored | None:
        return next((m for m in self.newest_first() if m.id == message_id), None)


def addresses(message: EmailMessage, header: str) -> list[dict[str, str]]:
    values = [str(value) for value in message.get_all(header, [])]
    return [{"Name": name, "Address": address} for name, address in getaddresses(values)]


def summary(stored: Stored) -> dict[str, Any]:
    message = stored.parsed
    sender = addresses(message, "From")
    return {
        "ID": stored.id,
        "MessageID": str(message.get("Message-ID", "")).strip("<>"),
        "Read": False,
        "From": sender[0] if sender else {"Name": "", "Address": ""},
        "To": addresses(message, "To"),
        "Cc": addresses(message, "Cc"),
        "Bcc": [],
        "ReplyTo": addresses(message, "Reply-To"),
        "Subject": str(message.get("Subject", "")),
        "Created": stored.created.isoformat().replace("+00:00", "Z"),
        "Size": len(stored.raw),
        "Attachments": 0,
        "Snippet": body(message, "plain")[:250],
    }


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


def headers(message: EmailMessage) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in message.items():
        found.setdefault(name, []).append(str(value))
    return found


def detail(stored: Stored) -> dict[str, Any]:
    message = stored.parsed
    return summary(stored) | {
        "Date": str(message.get("Date", "")),
        "Text": body(message, "plain"),
        "HTML": body(message, "html"),
        "Headers": headers(message),
        "EnvelopeTo": stored.envelope_to,
    }


class Handler:
    """aiosmtpd's DATA hook: keep the message."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.mailbox.add(raw, list(envelope.rcpt_tos))
        return "250 Message accepted"


def api(mailbox: Mailbox) -> type[BaseHTTPRequestHandler]:
    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            parts = path.split("/")
            if path == "/readyz":
                self.send(200, b"ok", "text/plain")
            elif path == "/api/v1/messages":
                listed = [summary(m) for m in mailbox.newest_first()]
                self.json(
                    {
                        "total": len(listed),
                        "count": len(listed),
                        "unread": len(listed),
                        "start": 0,
                        "tags": [],
                        "messages": listed,
                    }
                )
            elif len(parts) in (5, 6) and parts[:4] == ["", "api", "v1", "message"]:
                self.message(parts[4], parts[5] if len(parts) == 6 else "")
            else:
                self.send(404, b"not found", "text/plain")

        def message(self, message_id: str, what: str) -> None:
            stored = mailbox.find(message_id)
            if stored is None:
                self.send(404, b"message not found", "text/plain")
            elif what == "":
                self.json(detail(stored))
            elif what == "raw":
                self.send(200, stored.raw, "text/plain; charset=utf-8")
            elif what == "headers":
                self.json(headers(stored.parsed))
            else:
                self.send(404, b"not found", "text/plain")

        def json(self, value: object) -> None:
            self.send(200, json.dumps(value).encode(), "application/json")

        def send(self, status: int, content: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Api


def serve() -> None:
    mailbox = Mailbox()
    http = ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), api(mailbox))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    loop = asyncio.new_event_loop()
    handler = Handler(mailbox)
    smtp = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="mailpit"), "0.0.0.0", SMTP_PORT)
    )
    # PID 1 in the container: without handlers SIGTERM and SIGINT would be ignored.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, loop.stop)
    print(f"stand-in mailpit: SMTP on :{SMTP_PORT}, API on :{HTTP_PORT}", flush=True)
    loop.run_forever()
    smtp.close()
    http.shutdown()


def readyz() -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/readyz", timeout=2) as r:
            return 0 if r.status == 200 else 1
    except OSError as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if sys.argv[1:] == ["readyz"]:
        sys.exit(readyz())
    serve()
