"""How long the server takes to render a customer's status page, and the engineers' queue.

Files one real ticket through the gateway's stages (a customer's first mail), then writes
straight into its database the rest of a long conversation: `--messages` messages in all
(default 200), half the customer's and half engineers' relayed replies (each with its
`replied` event), a file on every tenth, and a status change every twentieth. Then calls the
web service's WSGI application as waitress would, `--rounds` times per page, and prints the
median, p95 and max of each. The target: under 50 ms for the status page of a ticket with
200 messages.

    .venv/bin/python bench/page.py --messages 200 --rounds 200
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.test import EnvironBuilder  # noqa: E402

from gateway.app import build_gateway  # noqa: E402
from gateway.links import address_token, status_token  # noqa: E402
from gateway.refusals import REFUSED  # noqa: E402
from gateway.setting_values import Engineer  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.web.queue_page import SESSION_COOKIE  # noqa: E402
from gateway.web.server import Beside, build_site  # noqa: E402
from storage.models import (  # noqa: E402
    Attachment,
    Direction,
    Event,
    EventKind,
    Message,
    Ticket,
    TicketStatus,
)
from storage.session import upgrade_schema  # noqa: E402

CUSTOMER = "alice@customer.example"
ENGINEER = "eng1@example.com"
SECRET = "bench-page"


def first_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Alice <{CUSTOMER}>"
    mail["To"] = "support@example.com"
    mail["Subject"] = "Black screen after switching camera on Android 12"
    mail["Message-ID"] = "<bench-page-1@customer.example>"
    mail["Date"] = "Mon, 07 Dec 2026 09:00:00 +0800"
    mail.set_content("After switching the camera the preview is black. SDK 4.0.6, Xiaomi 13.")
    return mail.as_bytes()


def write_conversation(gateway: object, ticket_id: int, messages: int) -> None:
    """The rest of a long conversation, straight into the database."""
    sessions = gateway.sessions  # type: ignore[attr-defined]
    blob = gateway.blobs.put(b"log line\n" * 200)  # type: ignore[attr-defined]
    with sessions() as session:
        ticket = session.get(Ticket, ticket_id)
        at = ticket.created_at
        for number in range(1, messages):
            at += timedelta(minutes=7)
            engineer = number % 2 == 1
            message = Message(
                ticket=ticket,
                direction=Direction.IN,
                message_id=f"bench-page-{number}@example",
                from_address=ENGINEER if engineer else CUSTOMER,
                from_name="Eng One" if engineer else "Alice",
                text=f"Message {number}: " + "the stream stutters after the switch. " * 12,
                created_at=at,
            )
            session.add(message)
            if number % 10 == 0:
                message.attachments.append(
                    Attachment(
                        filename=f"log{number}.txt",
                        content_type="text/plain",
                        size=1800,
                        sha256=blob,
                    )
                )
            if engineer:
                session.add(
                    Event(
                        ticket=ticket,
                        type=EventKind.REPLIED,
                        actor=ENGINEER,
                        at=at,
                        message=message,
                    )
                )
            if number % 20 == 0:
                session.add(
                    Event(
                        ticket=ticket,
                        type=EventKind.STATUS_CHANGED,
                        actor=ENGINEER,
                        at=at,
                        from_status=TicketStatus.OPEN,
                        to_status=TicketStatus.WAITING,
                    )
                )
        session.commit()


def timed(site: object, path: str, cookie: str, rounds: int) -> tuple[list[float], int]:
    """Milliseconds per call of the WSGI application for `path`, and the page's size."""
    times, size = [], 0
    for _ in range(rounds):
        environ = EnvironBuilder(path=path, headers={"Cookie": cookie}).get_environ()
        started = time.perf_counter()
        status: list[str] = []

        def start_response(line: str, headers: object, *rest: object) -> None:
            status.append(line)  # noqa: B023 (called before the next round)

        body = b"".join(site(environ, start_response))  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
        assert status and status[0].startswith("200"), (path, status)
        size = len(body)
    return times, size


def report(name: str, times: list[float], size: int) -> None:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(
        f"{name:<28} median {statistics.median(ordered):6.1f} ms   p95 {p95:6.1f} ms   "
        f"max {ordered[-1]:6.1f} ms   {size / 1024:.0f} KiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; SQLite by default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings().changed(
            data_dir=Path(folder),
            database_url=args.database_url,
            secret=SECRET,
            engineers=(Engineer(ENGINEER),),
            http_listen=None,
            support_address="support@example.com",
        )
        upgrade_schema(settings.effective_database_url)
        gateway = build_gateway(settings)
        gateway.spool.accept(first_mail(), CUSTOMER, ["support@example.com"], "smtp")
        gateway.executor.drain()
        write_conversation(gateway, 1, args.messages)
        site = build_site(gateway, Beside(REFUSED))
        gc.freeze()  # As `serve` does once it has started.
        now = gateway.clock.now()
        page = f"/t/{status_token(SECRET.encode(), 1, 1, 0)}"
        session = address_token(SECRET.encode(), "session", ENGINEER, now + timedelta(hours=1))
        cookie = f"{SESSION_COOKIE}={session}"
        print(
            f"ticket with {args.messages} messages, {args.rounds} rounds per page, "
            f"{'PostgreSQL' if args.database_url else 'SQLite'}"
        )
        report("status page (customer)", *timed(site, page, "", args.rounds))
        report("ticket (engineers)", *timed(site, "/queue/1", cookie, args.rounds))
        report("queue", *timed(site, "/queue", cookie, args.rounds))
        report("metrics", *timed(site, "/metrics", "", args.rounds))
        gateway.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
