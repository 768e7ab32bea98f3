"""How much mail one ticket's whole life sends, to whom.

    .venv/bin/python bench/ticket_life.py

A customer (Alice, with Bob in copy) opens a ticket; an engineer answers, resolves it;
Alice writes "thanks, will test tomorrow", then "still not fixed"; the engineer resolves it
again; Alice confirms it is fixed. Three engineers are configured (two L1, one L2). The
stages run in this process against a real SMTP sink; it prints the mails each person got,
with their subjects.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.setting_values import Endpoint  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from tests.conftest import (  # noqa: E402
    ALICE,
    ENG1,
    ENGINEERS,
    SUPPORT,
    Desk,
    DirectGateway,
    Sink,
    free_port,
    load_case,
)

BOB = "bob@customer.example"


def live_one_ticket(desk: Desk) -> None:
    first = load_case("customer_new.eml").replace(
        b"To: support@example.com", f"To: support@example.com\nCc: Bob <{BOB}>".encode(), 1
    )
    desk.customer_writes(first)
    ack = desk.wait_mail(ALICE, "Live stream crashes")
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, "Thanks Alice, we are looking into it.")
    desk.engineer_replies(notice, ENG1, "#resolve\nFixed in SDK 5.2.2, please update.")
    asked = desk.mails_to(ALICE)[-1]
    desk.customer_replies(asked, "Thanks, I'll test it tomorrow.")
    desk.customer_replies(asked, "Still not fixed: it crashes on 5.2.2 too.")
    desk.engineer_replies(notice, ENG1, "#resolve\nThe real fix is in 5.2.3.")
    desk.customer_replies(desk.mails_to(ALICE)[-1], "Fixed, thank you!")
    del ack


def main() -> int:
    sink = Sink()
    sink.controller.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings().changed(
                data_dir=Path(folder) / "var",
                smtp_listen=Endpoint("127.0.0.1", free_port()),
                lmtp_listen=Endpoint("127.0.0.1", free_port()),
                support_address=SUPPORT,
                relay=Endpoint("127.0.0.1", sink.port),
                secret="bench-secret",
                http_listen=None,
                engineers=ENGINEERS,
            )
            gateway = DirectGateway(settings)
            live_one_ticket(Desk(gateway, sink))
            gateway.stop()
    finally:
        sink.controller.stop()
    counts = Counter(r for mail in sink.received for r in mail.recipients)
    print(f"{len(sink.received)} mails for one ticket's life:")
    for address in (ALICE, BOB, *(e.address for e in ENGINEERS)):
        print(f"  {counts[address]:3d}  {address}")
        for mail in sink.to(address):
            print(f"         {Desk.subject(mail)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
