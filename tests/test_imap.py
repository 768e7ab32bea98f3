"""IMAP intake against a real Dovecot: mail appended to the support mailbox becomes tickets,
nothing is lost or duplicated across restarts, crashes and a changed UIDVALIDITY."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import build_gateway
from gateway.config import load_settings
from gateway.errors import ConfigError, SpoolUnavailable
from gateway.imap_inbound import MailboxReader
from gateway.setting_values import Endpoint, parse_imap_url
from gateway.settings import Settings
from gateway.spool import Receipt, Spool
from storage.models import ImapFolder, ReceiptOutcome
from tests.conftest import RunningGateway, Sink, free_port, load_case, wait_until
from tests.dovecot import PASSWORD, Dovecot
from tests.schema import current_schema

SEEN = b"\\Seen"


def customer_mail(number: int, sender: str = "alice@customer.example") -> bytes:
    return (
        f"From: Customer {number} <{sender}>\r\nTo: support@example.com\r\n"
        f"Subject: Problem number {number}\r\nMessage-ID: <problem-{number}@customer.example>"
        f"\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nIt crashes, case {number}.\r\n"
    ).encode()


def imap_gateway(
    make_gateway: Callable[..., RunningGateway],
    dovecot: Dovecot,
    folder: str = "INBOX",
    **changes: Any,
) -> RunningGateway:
    return make_gateway(imap=parse_imap_url("GATEWAY_IMAP_URL", dovecot.url(folder)), **changes)


def ticket_subjects(gateway: RunningGateway) -> list[str]:
    return [ticket.subject for ticket in gateway.tickets()]


def test_appended_mail_becomes_a_ticket_within_seconds_and_is_flagged_seen(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot, sink: Sink
) -> None:
    gateway = imap_gateway(make_gateway, dovecot)
    dovecot.append(load_case("customer_new.eml"))
    wait_until(gateway.tickets, timeout=5, what="a ticket from the IMAP mailbox")
    ack = sink.wait_for(1)[0]
    assert ack.recipients == ["alice@customer.example"]
    assert gateway.receipts()[0].source == "imap"
    wait_until(
        lambda: all(SEEN in flags for flags in dovecot.messages().values()),
        what="the message flagged \\Seen",
    )


def test_reply_appended_later_threads_onto_the_ticket(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot, sink: Sink
) -> None:
    gateway = imap_gateway(make_gateway, dovecot)
    dovecot.append(load_case("customer_new.eml"))
    ack = sink.wait_for(1)[0].message
    reply_to = ack["Reply-To"].addresses[0].addr_spec
    reply = load_case(
        "customer_reply.eml", ack_id=ack["Message-ID"].strip("<>"), subject=str(ack["Subject"])
    ).replace(b"support@example.com", reply_to.encode())
    dovecot.append(reply)
    receipts = gateway.wait_for_receipts(2)
    assert receipts[1].outcome is ReceiptOutcome.REPLY
    assert len(gateway.tickets()) == 1


def test_server_restart_loses_nothing_and_duplicates_nothing(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.imap_inbound")
    gateway = imap_gateway(make_gateway, dovecot)
    for number in (1, 2, 3):
        dovecot.append(customer_mail(number))
    wait_until(lambda: len(gateway.tickets()) == 3, what="three tickets")
    dovecot.stop()
    wait_until(lambda: "unavailable" in caplog.text, what="the outage to be noticed")
    dovecot.start()
    for number in (4, 5, 6):
        dovecot.append(customer_mail(number))
    wait_until(lambda: len(gateway.tickets()) == 6, timeout=30, what="six tickets")
    gateway.wait_idle()
    assert sorted(ticket_subjects(gateway)) == [f"Problem number {n}" for n in range(1, 7)]
    assert [r.outcome for r in gateway.receipts()] == [ReceiptOutcome.NEW_TICKET] * 6
    assert caplog.text.count("unavailable") == 1, "an outage is logged once, not per attempt"
    assert "reachable again" in caplog.text


def test_recreated_folder_with_new_uidvalidity_makes_no_duplicate_tickets(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot
) -> None:
    dovecot.append(customer_mail(1), folder="Support")
    gateway = imap_gateway(make_gateway, dovecot, folder="Support")
    dovecot.append(customer_mail(2), folder="Support")
    wait_until(lambda: len(gateway.tickets()) == 2, what="two tickets")
    with gateway.session() as session:
        before = session.scalars(select(ImapFolder.uidvalidity)).one()
    with dovecot.client() as client:
        client.delete_folder("Support")
        client.create_folder("Support")
        for number in (1, 2, 3):
            client.append("Support", customer_mail(number))
    wait_until(lambda: len(gateway.receipts()) == 5, timeout=30, what="five receipts")
    assert sorted(ticket_subjects(gateway)) == [f"Problem number {n}" for n in (1, 2, 3)]
    outcomes = [r.outcome for r in gateway.receipts()]
    assert outcomes.count(ReceiptOutcome.DUPLICATE) == 2
    with gateway.session() as session:
        assert session.scalars(select(ImapFolder.uidvalidity)).one() != before


def test_poison_messages_are_quarantined_and_the_others_ticketed(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot
) -> None:
    gateway = imap_gateway(make_gateway, dovecot)
    dovecot.append(customer_mail(1))
    dovecot.append(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)  # an Outlook .msg
    dovecot.append(b"this is not a mail message at all")
    dovecot.append(customer_mail(2))
    wait_until(lambda: len(gateway.gateway.spool.quarantined()) == 2, what="two quarantined")
    wait_until(lambda: len(gateway.tickets()) == 2, what="two tickets")
    reasons = sorted(reason for _, reason in gateway.gateway.spool.quarantined())
    assert reasons == [
        "an Outlook .msg file is not an RFC 5322 message",
        "no header fields: this is not an RFC 5322 message",
    ]
    wait_until(
        lambda: all(SEEN in f for f in dovecot.messages().values()),
        what="every message, good or poison, flagged",
    )


def test_processed_mail_is_moved_to_the_done_folder(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot
) -> None:
    gateway = imap_gateway(make_gateway, dovecot, imap_folder_done="Processed")
    dovecot.append(customer_mail(1))
    dovecot.append(customer_mail(2))
    wait_until(lambda: len(gateway.tickets()) == 2, what="two tickets")
    wait_until(lambda: not dovecot.messages("INBOX"), what="INBOX emptied")
    assert len(dovecot.messages("Processed")) == 2


class CrashingSpool(Spool):
    """The real spool, but the process "dies" right after the bytes are fsynced."""

    def accept(
        self, raw: bytes, mail_from: str | None, recipients: Sequence[str], source: str
    ) -> Receipt:
        super().accept(raw, mail_from, recipients, source)
        raise KeyboardInterrupt("crash after the spool, before the UID is committed")


def reader_for(settings: Settings, spool: Spool | None = None) -> tuple[MailboxReader, Any]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings)
    assert settings.imap.account is not None
    reader = MailboxReader(
        settings.imap,
        spool or gateway.spool,
        gateway.sessions,
        settings.mailbox.address,
        gateway.clock,
    )
    return reader, gateway


def test_crash_between_spool_and_commit_redelivers_once_and_files_once(
    settings: Settings, dovecot: Dovecot
) -> None:
    settings = settings.changed(imap=parse_imap_url("u", dovecot.url()))
    dovecot.append(customer_mail(1))
    _, gateway = reader_for(settings)
    crashing = CrashingSpool(
        settings.data_dir / "spool", gateway.blobs, settings.limits, gateway.clock
    )
    crashing_reader, _ = reader_for(settings, crashing)
    with pytest.raises(KeyboardInterrupt):
        crashing_reader.poll_once()
    assert not any(SEEN in f for f in dovecot.messages().values()), "not flagged before commit"
    reader, _ = reader_for(settings)
    assert reader.poll_once() == 1, "the same message is read again after the crash"
    outcomes = [o.outcome for o in gateway.executor.drain()]
    assert sorted(o.value for o in outcomes) == ["duplicate", "new_ticket"]
    assert all(SEEN in f for f in dovecot.messages().values())
    assert reader.poll_once() == 0


def test_crash_between_commit_and_flag_flags_on_the_next_pass(
    settings: Settings, dovecot: Dovecot
) -> None:
    settings = settings.changed(imap=parse_imap_url("u", dovecot.url()))
    dovecot.append(customer_mail(1))
    reader, gateway = reader_for(settings)
    with reader.connection() as client:
        status = client.select_folder("INBOX")
        [uid] = reader.new_uids(client, None)
        reader.take(client, uid)
        reader.remember(int(status[b"UIDVALIDITY"]), uid)  # ...and the process dies here
    assert not any(SEEN in f for f in dovecot.messages().values())
    assert reader.poll_once() == 0, "nothing is fetched twice"
    assert all(SEEN in f for f in dovecot.messages().values())
    assert [o.outcome.value for o in gateway.executor.drain()] == ["new_ticket"]


def test_wrong_password_is_a_config_error_naming_the_setting(
    settings: Settings, dovecot: Dovecot, tmp_path: Path
) -> None:
    wrong = tmp_path / "imap-password"
    wrong.write_text("not-the-password\n")
    url = parse_imap_url("u", dovecot.url(password=False))
    reader, _ = reader_for(settings.changed(imap=url, imap_password_file=wrong))
    with pytest.raises(ConfigError) as raised:
        reader.poll_once()
    assert raised.value.reason.startswith("GATEWAY_IMAP_PASSWORD_FILE: 127.0.0.1 refused")
    wrong.write_text(PASSWORD)
    assert reader.poll_once() == 0


def test_connection_dropped_without_bye_is_noticed_and_resumed(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.imap_inbound")
    gateway = imap_gateway(make_gateway, dovecot)
    dovecot.append(customer_mail(1))
    wait_until(lambda: len(gateway.tickets()) == 1, what="the first ticket")
    dovecot.drop_connections()
    wait_until(
        lambda: "reachable again" in caplog.text,
        timeout=10,
        what="the dropped connection to be noticed and replaced",
    )
    assert caplog.text.count("unavailable") == 1
    dovecot.append(customer_mail(2))
    wait_until(lambda: len(gateway.tickets()) == 2, timeout=15, what="the second ticket")


def test_first_read_takes_unread_mail_only_and_never_flags_what_it_skipped(
    settings: Settings, dovecot: Dovecot
) -> None:
    settings = settings.changed(imap=parse_imap_url("u", dovecot.url()))
    dovecot.append(customer_mail(1), flags=(SEEN,))  # history, read long ago
    dovecot.append(customer_mail(2))
    reader, gateway = reader_for(settings)
    assert reader.poll_once() == 1
    assert [o.outcome.value for o in gateway.executor.drain()] == ["new_ticket"]
    with dovecot.client() as client:  # someone marks the old mail unread again
        client.select_folder("INBOX")
        client.remove_flags([1], [SEEN])
    dovecot.append(customer_mail(3), flags=(SEEN,))  # read in webmail before we saw it
    assert reader.poll_once() == 1, "new mail is taken even when someone read it first"
    assert SEEN not in dovecot.messages()[1], "skipped history is left as it is"
    assert [o.outcome.value for o in gateway.executor.drain()] == ["new_ticket"]


def test_server_without_idle_is_polled(make_gateway: Callable[..., RunningGateway]) -> None:
    server = Dovecot(capabilities="IMAP4rev1 LITERAL+ UIDPLUS MOVE").start()
    try:
        gateway = imap_gateway(make_gateway, server, imap_poll_seconds=0.5)
        server.append(customer_mail(1))
        wait_until(lambda: len(gateway.tickets()) == 1, timeout=10, what="a polled ticket")
    finally:
        gateway.stop()
        server.remove()


class FailingOnceSpool(Spool):
    """The real spool, whose disk is full for the first message."""

    failed = False

    def accept(
        self, raw: bytes, mail_from: str | None, recipients: Sequence[str], source: str
    ) -> Receipt:
        if not self.failed:
            self.failed = True
            raise SpoolUnavailable("cannot write the spool: No space left on device")
        return super().accept(raw, mail_from, recipients, source)


def test_a_full_disk_pauses_the_intake_without_losing_or_ending_it(
    settings: Settings, dovecot: Dovecot
) -> None:
    settings = settings.changed(imap=parse_imap_url("u", dovecot.url()))
    _, gateway = reader_for(settings)
    spool = FailingOnceSpool(
        settings.data_dir / "spool", gateway.blobs, settings.limits, gateway.clock
    )
    reader, _ = reader_for(settings, spool)
    stop = threading.Event()
    thread = threading.Thread(target=reader.run, args=(stop,))
    thread.start()
    try:
        dovecot.append(customer_mail(1))
        wait_until(lambda: spool.failed and spool.pending(), what="the retry to spool it")
        assert [r.source for r in spool.pending()] == ["imap"]
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_done_folder_equal_to_the_folder_read_is_refused() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_IMAP_FOLDER_DONE: must differ"):
        load_settings(
            {
                "GATEWAY_IMAP_URL": "imap://support:pw@mail.example/INBOX",
                "GATEWAY_IMAP_FOLDER_DONE": "inbox",
            }
        )


def test_two_gateways_on_one_data_dir_read_the_mailbox_one_at_a_time(
    make_gateway: Callable[..., RunningGateway], dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.imap_inbound")
    first = imap_gateway(make_gateway, dovecot)
    dovecot.append(customer_mail(1))
    wait_until(lambda: len(first.tickets()) == 1, what="the first gateway reading")
    # Same data dir and database; listeners of its own.
    second = imap_gateway(
        make_gateway, dovecot, lmtp_listen=None, smtp_listen=Endpoint("127.0.0.1", free_port())
    )
    for number in (2, 3):
        dovecot.append(customer_mail(number))
    wait_until(lambda: len(first.tickets()) == 3, what="three tickets")
    assert [r.message for r in caplog.records if "another gateway reads" in r.message] == [
        f"another gateway reads {dovecot.url(password=False)}; taking over if it stops"
    ]
    first.stop()
    # The second takes the mailbox over once the first has let go of it.
    for number in (4, 5):
        dovecot.append(customer_mail(number))
    wait_until(lambda: len(second.tickets()) == 5, timeout=20, what="the second taking over")
    outcomes = [receipt.outcome for receipt in second.receipts()]
    # Two readers at once would have fetched and spooled every message twice.
    assert outcomes == [ReceiptOutcome.NEW_TICKET] * 5
    assert sorted(ticket_subjects(second)) == [f"Problem number {n}" for n in range(1, 6)]
