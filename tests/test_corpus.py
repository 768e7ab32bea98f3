"""The shared corpus of other projects' test mail, through the gateway over real SMTP.

Every message in `MANIFEST.tsv` is sent to one running gateway, in path order, one at a
time, and must end in exactly one recorded outcome within a time limit. The corpus README's
tags then say what else must hold: bounces open no tickets, machine mail gets no
acknowledgement, encoded words and CJK subjects decode cleanly, replies join their parent's
ticket. Body texts and HTML fragments go to the quote stripper.

The corpus lives beside this repository (`../shared/corpus`) unless `GATEWAY_CORPUS_DIR`
names another folder. A missing corpus fails these tests; it is never a reason to skip them.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import email
import os
import quopri
import re
import smtplib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message as MimeMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.errors import MalformedMessage
from gateway.loops import TICKET_HEADER
from gateway.parsing import elide_long_base64_runs, extract_reply, parse_message
from gateway.setting_values import Endpoint
from gateway.settings import Settings
from storage.models import Attachment, Event, Message, Receipt, ReceiptOutcome, Ticket
from tests.conftest import SUPPORT, RunningGateway, Sink, every_line_parsed, free_port

# One test process runs the whole module, so each database's corpus run happens once.
pytestmark = pytest.mark.xdist_group("corpus")

# A message must be filed (or refused) this quickly, from the first SMTP command to its receipt.
PER_MESSAGE_SECONDS = 10.0
# How long to wait for a receipt before calling the message lost.
LOST_AFTER_SECONDS = 30.0
# The whole run, as a guard against a slow creep (it takes a few seconds).
CORPUS_SECONDS = 60.0

ENVELOPE_SENDER = "corpus-sender@customer.example"

NOT_SENT = frozenset({"expected-result", "license-notice"})
BODY_ONLY = frozenset({"body-only", "fragment"})
MACHINE_MAIL = frozenset(
    {
        "autoreply",
        "out-of-office",
        "auto-submitted",
        "precedence-bulk",
        "mail-loop-own-address",
        "bounce",
    }
)
CJK = frozenset({"gbk", "gb2312", "gb18030", "big5", "chinese", "iso-2022-jp", "japanese"})
FILED = (ReceiptOutcome.NEW_TICKET, ReceiptOutcome.REPLY)

CJK_CHARACTER = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# The gateway's own refusals carry an enhanced status code and a reason.
GATEWAY_REFUSAL = re.compile(r"5\.\d{1,3}\.\d{1,3} \S")


def corpus_dir() -> Path:
    configured = os.environ.get("GATEWAY_CORPUS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


@dataclass(frozen=True)
class Entry:
    """One row of the manifest."""

    path: str
    tags: frozenset[str]
    file: Path

    @property
    def raw(self) -> bytes:
        return self.file.read_bytes()

    @property
    def kind(self) -> str:
        if self.tags & NOT_SENT:
            return "skip"
        return "body" if self.tags & BODY_ONLY else "message"


def load_manifest() -> list[Entry]:
    root = corpus_dir()
    manifest = root / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.fail(
            f"the mail corpus is missing: no {manifest} (set GATEWAY_CORPUS_DIR to "
            "the folder that holds MANIFEST.tsv)",
            pytrace=False,
        )
    with manifest.open(encoding="utf-8", newline="") as rows:
        entries = [
            Entry(row["path"], frozenset(filter(None, row["tags"].split(","))), root / row["path"])
            for row in csv.DictReader(rows, delimiter="\t")
        ]
    return sorted(entries, key=lambda entry: entry.path)


@pytest.fixture(scope="module")
def manifest() -> list[Entry]:
    return load_manifest()


def headers_of(raw: bytes) -> MimeMessage:
    """The stdlib's reading of a message's header fields: an oracle apart from the gateway."""
    return email.message_from_bytes(raw)


def message_ids(value: object) -> list[str]:
    return MESSAGE_ID.findall(str(value or ""))


def words_in_codec(value: bytes, codec: str) -> str:
    """An RFC 2047 header value decoded by hand, every encoded word read with `codec`."""
    value = re.sub(rb"\?=\s+=\?", b"?==?", value)

    def decode(match: re.Match[bytes]) -> str:
        _charset, encoding, text = match.groups()
        if encoding.lower() == b"b":
            text = text.rstrip(b"=")
            data = base64.b64decode(text + b"=" * (-len(text) % 4))
        else:
            data = quopri.decodestring(text.replace(b"_", b" "), header=True)
        return data.decode(codec)

    pieces: list[str] = []
    position = 0
    for match in ENCODED_WORD.finditer(value):
        pieces.append(value[position : match.start()].decode("ascii"))
        pieces.append(decode(match))
        position = match.end()
    pieces.append(value[position:].decode("ascii"))
    return "".join(pieces)


def raw_header(raw: bytes, name: str) -> bytes:
    """The first `name:` field's value as bytes, unfolded, before any decoding."""
    block = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    found = re.search(rb"(?mi)^" + name.encode() + rb":[ \t]*(.*(?:\r?\n[ \t].*)*)", block)
    assert found, f"no {name} field"
    return re.sub(rb"\r?\n[ \t]+", b" ", found.group(1)).rstrip(b"\r ")


def looks_misdecoded(text: str) -> bool:
    """Mojibake: text that, written back in a legacy charset, reads as different CJK text.

    Two mistakes produce it. CJK bytes read as Latin-1 (`¤j¸É`) encode back to Latin-1 and
    decode as a CJK charset; UTF-8 bytes read as a CJK charset (`繝｡繝ｼ`) encode back to
    that charset and decode as UTF-8.
    """
    if "\ufffd" in text:
        return True
    latin = "".join(ch for ch in text if "\x80" <= ch <= "\xff")
    if len(latin) >= 4 and not CJK_CHARACTER.search(text):
        for legacy in ("latin-1", "cp1252"):
            try:
                data = text.encode(legacy)
            except UnicodeEncodeError:
                continue
            for codec in ("utf-8", "big5", "gb2312", "shift_jis", "euc-jp", "euc-kr"):
                try:
                    if CJK_CHARACTER.search(data.decode(codec)):
                        return True
                except UnicodeDecodeError:
                    continue
    for legacy in ("cp932", "gbk", "big5", "euc-kr"):
        try:
            data = text.encode(legacy)
            data.decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if not data.isascii():
            return True
    return False


@dataclass
class Delivery:
    """One corpus message sent to the gateway, and what became of it."""

    entry: Entry
    sent: bytes
    code: int
    reply: str
    seconds: float
    receipt: Receipt | None

    @property
    def accepted(self) -> bool:
        return self.code == 250

    @property
    def outcome(self) -> ReceiptOutcome | None:
        return self.receipt.outcome if self.receipt else None


@dataclass
class CorpusRun:
    """Everything the corpus run left behind, read once after the gateway went idle."""

    gateway: RunningGateway
    deliveries: list[Delivery]
    seconds: float
    receipt_count: int
    tickets: dict[int, Ticket]
    messages: dict[int, Message]
    attachments: dict[int, list[Attachment]]
    acknowledgements: list[MimeMessage]

    def tagged(self, tags: frozenset[str]) -> list[Delivery]:
        return [d for d in self.deliveries if d.entry.tags & tags]

    def subjects(self, delivery: Delivery) -> list[str]:
        """The subjects the gateway stored for a message (its own and its new ticket's)."""
        receipt = delivery.receipt
        if receipt is None or receipt.outcome not in FILED or receipt.message_pk is None:
            return []
        subjects = [self.messages[receipt.message_pk].subject]
        if receipt.outcome is ReceiptOutcome.NEW_TICKET and receipt.ticket_id is not None:
            subjects.append(self.tickets[receipt.ticket_id].subject)
        return subjects


def as_sent(entry: Entry) -> bytes:
    """The bytes an MTA would relay: CRLF line ends on the wire (RFC 5321 2.3.8)."""
    raw = re.sub(rb"\r?\n", b"\r\n", entry.raw)
    if "mail-loop-own-address" in entry.tags:
        # The fixture comes From its own project's helpdesk address; ours is SUPPORT.
        raw = re.sub(
            rb"(?mi)^(From:[^\r\n]*<)[^>\r\n]+>", rb"\1" + SUPPORT.encode() + b">", raw, count=1
        )
    return raw


def envelope_sender(entry: Entry) -> str:
    # Delivery reports travel with the null reverse-path (RFC 5321 4.5.5).
    return "" if "bounce" in entry.tags else ENVELOPE_SENDER


def wait_for_receipt(gateway: RunningGateway, spool_id: str, started: float) -> Receipt | None:
    while time.monotonic() - started < LOST_AFTER_SECONDS:
        with gateway.session() as session:
            receipt = session.scalars(select(Receipt).where(Receipt.spool_id == spool_id)).first()
        if receipt is not None:
            return receipt
        time.sleep(0.002)
    return None


def deliver(gateway: RunningGateway, smtp: smtplib.SMTP, entry: Entry) -> Delivery:
    """Send one message and wait until the gateway refused it or recorded its outcome."""
    raw = as_sent(entry)
    started = time.monotonic()
    smtp.rset()
    smtp.mail(envelope_sender(entry))
    rcpt_code, rcpt_reply = smtp.rcpt(SUPPORT)
    assert rcpt_code == 250, f"{entry.path}: RCPT answered {rcpt_code} {rcpt_reply!r}"
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPDataError as refused:
        code, reply = refused.smtp_code, refused.smtp_error
    receipt = None
    if code == 250:
        receipt = wait_for_receipt(gateway, reply.decode().rsplit(" ", 1)[1], started)
    return Delivery(
        entry, raw, code, reply.decode("utf-8", "replace"), time.monotonic() - started, receipt
    )


def run_corpus(gateway: RunningGateway, sink: Sink, entries: list[Entry]) -> CorpusRun:
    endpoint = gateway.settings.listen.smtp
    assert endpoint is not None
    started = time.monotonic()
    with smtplib.SMTP(endpoint.host, endpoint.port, timeout=LOST_AFTER_SECONDS) as smtp:
        smtp.ehlo()
        deliveries = [deliver(gateway, smtp, entry) for entry in entries]
    seconds = time.monotonic() - started
    gateway.wait_idle(timeout=LOST_AFTER_SECONDS)
    with gateway.session() as session:
        tickets = {t.id: t for t in session.scalars(select(Ticket))}
        messages = {m.id: m for m in session.scalars(select(Message))}
        attachments: dict[int, list[Attachment]] = {}
        for attachment in session.scalars(select(Attachment)):
            attachments.setdefault(attachment.message_pk, []).append(attachment)
    return CorpusRun(
        gateway,
        deliveries,
        seconds,
        gateway.count(Receipt),
        tickets,
        messages,
        attachments,
        [mail.message for mail in sink.received],
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def corpus_run(
    manifest: list[Entry], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[CorpusRun]:
    """The whole corpus through one gateway, on SQLite and again on PostgreSQL."""
    database_url = ""
    if request.param == "postgres":
        database_url = request.getfixturevalue("postgres").new_database()
    sink = Sink()
    sink.controller.start()
    try:
        settings = Settings().changed(
            data_dir=tmp_path_factory.mktemp("corpus") / "var",
            database_url=database_url,
            smtp_listen=Endpoint("127.0.0.1", free_port()),
            lmtp_listen=None,
            support_address=SUPPORT,
            relay=Endpoint("127.0.0.1", sink.port),
            delivery_backoff_seconds=0.2,
            secret="corpus-secret",
            http_listen=None,
        )
        gateway = RunningGateway(settings).start()
        try:
            yield run_corpus(gateway, sink, [e for e in manifest if e.kind == "message"])
        finally:
            gateway.stop()
    finally:
        sink.controller.stop()


def failures(found: list[str]) -> str:
    return f"{len(found)} failures:\n" + "\n".join(found)


def test_manifest_lists_every_corpus_file(manifest: list[Entry]) -> None:
    root = corpus_dir()
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert {e.path for e in manifest} == on_disk - {"MANIFEST.tsv", "README.md"}
    assert sum(e.kind == "message" for e in manifest) > 300


def test_every_message_ends_in_exactly_one_outcome(corpus_run: CorpusRun) -> None:
    found = []
    for d in corpus_run.deliveries:
        if d.accepted and d.receipt is None:
            found.append(f"{d.entry.path}: accepted, no receipt")
        elif d.accepted and d.outcome is ReceiptOutcome.QUARANTINED and not d.receipt.reason:
            found.append(f"{d.entry.path}: quarantined without a reason")
        elif d.accepted and "internal error" in d.receipt.reason:
            found.append(f"{d.entry.path}: {d.receipt.reason}")
        elif not d.accepted and not (500 <= d.code < 600 and GATEWAY_REFUSAL.match(d.reply)):
            found.append(f"{d.entry.path}: answered {d.code} {d.reply!r}")
    assert not found, failures(found)


def test_nothing_accepted_is_lost(corpus_run: CorpusRun) -> None:
    accepted = [d for d in corpus_run.deliveries if d.accepted]
    assert corpus_run.receipt_count == len(accepted)
    spool_ids = {d.receipt.spool_id for d in accepted if d.receipt}
    assert len(spool_ids) == len(accepted)
    assert corpus_run.gateway.gateway.spool.pending() == []


def test_each_message_is_handled_within_the_time_limit(corpus_run: CorpusRun) -> None:
    slow = [
        f"{d.entry.path}: {d.seconds:.2f}s"
        for d in corpus_run.deliveries
        if d.seconds >= PER_MESSAGE_SECONDS
    ]
    assert not slow, failures(slow)
    assert corpus_run.seconds < CORPUS_SECONDS


def test_outlook_msg_files_are_refused(corpus_run: CorpusRun) -> None:
    rejects = corpus_run.tagged(frozenset({"reject"}))
    assert rejects
    for d in rejects:
        assert d.code == 554, f"{d.entry.path}: answered {d.code}"
        assert "Outlook .msg" in d.reply


def test_bounces_never_open_a_ticket(corpus_run: CorpusRun) -> None:
    bounces = corpus_run.tagged(frozenset({"bounce"}))
    assert len(bounces) > 40
    opened = [d.entry.path for d in bounces if d.outcome is ReceiptOutcome.NEW_TICKET]
    assert not opened, failures(opened)


def test_machine_mail_gets_no_acknowledgement(corpus_run: CorpusRun) -> None:
    # An acknowledgement names the ticket it belongs to and answers the message that opened it.
    acknowledged = {
        (str(ack[TICKET_HEADER]), parent)
        for ack in corpus_run.acknowledgements
        for parent in message_ids(ack["In-Reply-To"])
    }
    found = []
    for d in corpus_run.tagged(MACHINE_MAIL):
        receipt = d.receipt
        if receipt is None or receipt.message_pk is None:
            continue
        own_id = corpus_run.messages[receipt.message_pk].message_id
        if (str(receipt.ticket_id), own_id) in acknowledged:
            found.append(f"{d.entry.path}: acknowledged ({sorted(d.entry.tags & MACHINE_MAIL)})")
    assert not found, failures(found)
    assert corpus_run.acknowledgements, "ordinary customer mail is still acknowledged"


def test_encoded_words_leave_no_leftovers(corpus_run: CorpusRun) -> None:
    found = []
    for d in corpus_run.deliveries:
        tags = {tag for tag in d.entry.tags if tag.startswith(("rfc2047", "rfc2231"))}
        if not tags or d.receipt is None or d.receipt.message_pk is None:
            continue
        names = corpus_run.subjects(d)
        if tags - {"rfc2047"}:
            names += [a.filename for a in corpus_run.attachments.get(d.receipt.message_pk, [])]
        found += [f"{d.entry.path}: {name!r}" for name in names if "=?" in name]
    assert not found, failures(found)


def test_cjk_subjects_are_clean_unicode(corpus_run: CorpusRun) -> None:
    checked = 0
    bad = []
    for d in corpus_run.tagged(CJK):
        if not d.accepted:
            continue
        subjects = corpus_run.subjects(d) or [parse_message(d.sent).subject]
        checked += 1
        for subject in subjects:
            if looks_misdecoded(subject):
                bad.append(f"{d.entry.path}: {subject!r}")
    assert checked > 30
    assert not bad, failures(bad)


def decoded_by_hand(raw: bytes, how: Callable[[bytes], str]) -> str:
    return " ".join(how(raw_header(raw, "Subject")).split())


# Subjects whose bytes were decoded here with the codec they really use, not the one
# they declare.
HAND_DECODED_SUBJECTS: dict[str, Callable[[bytes], str]] = {
    "rt/new-ticket-from-gb18030": lambda v: words_in_codec(v, "gb18030"),
    # Labelled GB2312, written in GBK (its traditional characters are not in GB2312).
    "zammad/mail031.box": lambda v: words_in_codec(v, "gbk"),
    "kopano/gb2312_18030.eml": lambda v: words_in_codec(v, "gbk"),
    "zammad/mail032.box": lambda v: words_in_codec(v, "gb2312"),
    "zammad/mail027.box": lambda v: words_in_codec(v, "utf-8"),
    # Raw Big5 bytes in the header, no encoded word.
    "kopano/big5.eml": lambda v: v.decode("big5"),
    "zammad/mail098.box": lambda v: words_in_codec(v, "iso-2022-jp"),
    "mimekit/messages/japanese.txt": lambda v: words_in_codec(v, "iso-2022-jp"),
    "kopano/zcp-11713.eml": lambda v: words_in_codec(v, "iso-2022-jp"),
    # Raw UTF-8 in the header of a message whose parts are ISO-2022-JP.
    "sisimai/bsd/lhost-kddi-01.eml": lambda v: v.decode("utf-8"),
    # Big5 bytes that a relay read as Latin-1 and wrote out again as UTF-8.
    "mail-gem/error_emails/content_transfer_encoding_empty.eml": lambda v: (
        v.decode("utf-8").encode("latin-1").decode("big5")
    ),
}


def test_cjk_subjects_match_decoding_by_hand(corpus_run: CorpusRun) -> None:
    by_path = {d.entry.path: d for d in corpus_run.deliveries}
    assert corpus_run.subjects(by_path["rt/new-ticket-from-gb18030"]) == ["测试", "测试"]
    for path, how in HAND_DECODED_SUBJECTS.items():
        d = by_path[path]
        expected = decoded_by_hand(d.sent, how)
        assert CJK_CHARACTER.search(expected), f"{path}: {expected!r}"
        subjects = corpus_run.subjects(d) or [parse_message(d.sent).subject]
        assert subjects and set(subjects) == {expected}, f"{path}: {subjects} != {expected!r}"


def related_tickets(gateway: RunningGateway, ticket_id: int | None) -> set[int]:
    """The tickets a new ticket's sender referred to without being on them."""
    with gateway.session() as session:
        details = session.scalars(
            select(Event.detail).where(Event.ticket_id == ticket_id, Event.type == "related")
        )
        return {int(found) for detail in details for found in re.findall(r"#(\d+)", detail)}


def test_replies_land_on_their_parents_ticket(corpus_run: CorpusRun) -> None:
    """A reply joins its parent's ticket; one from someone not on that ticket (a list
    member answering another) opens a ticket of its own, related to it."""
    tickets_by_id: dict[str, set[int]] = {}
    checked = 0
    found = []
    for d in corpus_run.deliveries:
        if not d.accepted:
            continue
        fields = headers_of(d.sent)
        parents = set()
        for parent_id in message_ids(fields["In-Reply-To"]):
            parents |= tickets_by_id.get(parent_id, set())
        if parents:
            checked += 1
            ticket_id = d.receipt.ticket_id if d.receipt else None
            if (
                ticket_id not in parents
                and not related_tickets(corpus_run.gateway, ticket_id) & parents
            ):
                found.append(f"{d.entry.path}: {d.outcome} on #{ticket_id}, parent on {parents}")
        if (
            d.receipt
            and d.outcome in FILED
            and d.receipt.ticket_id is not None
            and "duplicate-message-id" not in d.entry.tags
        ):
            for own_id in message_ids(fields["Message-ID"])[:1]:
                tickets_by_id.setdefault(own_id, set()).add(d.receipt.ticket_id)
    # Path order puts many replies before their parents; these are the ones it does not.
    assert checked >= 9
    assert not found, failures(found)


def test_loops_and_missing_parents_are_filed(corpus_run: CorpusRun) -> None:
    tags = frozenset({"threading-loop", "threading-missing-parent"})
    threads = corpus_run.tagged(tags)
    assert len(threads) >= 10
    unfiled = [f"{d.entry.path}: {d.outcome}" for d in threads if d.outcome not in FILED]
    assert not unfiled, failures(unfiled)


def test_duplicates_are_only_exact_repeats(corpus_run: CorpusRun) -> None:
    def body(raw: bytes) -> bytes:
        return re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[-1]

    seen: set[bytes] = set()
    found = []
    for d in corpus_run.deliveries:
        if d.outcome is ReceiptOutcome.DUPLICATE and body(d.sent) not in seen:
            found.append(f"{d.entry.path}: {d.receipt.reason if d.receipt else ''}")
        if d.accepted:
            seen.add(body(d.sent))
    assert not found, failures(found)


def forwarded_messages_in(part: MimeMessage) -> int:
    """Forwarded messages as the stdlib sees them, not counting those inside others."""
    if part.get_content_type() == "message/rfc822":
        return 1
    if not part.is_multipart():
        return 0
    return sum(forwarded_messages_in(child) for child in part.get_payload())


def test_forwarded_messages_stay_attachments(corpus_run: CorpusRun) -> None:
    checked = 0
    found = []
    for d in corpus_run.tagged(frozenset({"message-rfc822"})):
        if d.outcome not in FILED or d.receipt is None or d.receipt.message_pk is None:
            continue
        expected = forwarded_messages_in(headers_of(d.sent))
        stored = [
            a
            for a in corpus_run.attachments.get(d.receipt.message_pk, [])
            if a.content_type == "message/rfc822"
        ]
        checked += 1
        if len(stored) < expected:
            found.append(f"{d.entry.path}: {len(stored)} of {expected} forwarded messages")
    assert checked > 20
    assert not found, failures(found)


def visible_words(html: str) -> list[str]:
    """Words a browser would show: a crude oracle, tags and non-displayed elements removed."""
    html = re.sub(r"(?is)<(title|style|script|head)\b.*?</\1\s*>|<!--.*?-->", " ", html)
    return re.findall(r"[^\W\d_]{2,}", re.sub(r"<[^>]*>", " ", html))


def test_html_only_mail_is_stored_with_a_text_body(corpus_run: CorpusRun) -> None:
    filed = [
        d
        for d in corpus_run.tagged(frozenset({"html-only"}))
        if d.outcome in FILED and d.receipt and d.receipt.message_pk
    ]
    with_words = [d for d in filed if visible_words(parse_message(d.sent).html)]
    assert len(with_words) > 15
    empty = [
        d.entry.path
        for d in with_words
        if not corpus_run.messages[d.receipt.message_pk].text.strip()
    ]
    assert not empty, failures(empty)


def test_most_corpus_mail_becomes_tickets(corpus_run: CorpusRun) -> None:
    counts = Counter(
        d.outcome.value if d.outcome else f"refused {d.code}" for d in corpus_run.deliveries
    )
    slowest = max(corpus_run.deliveries, key=lambda d: d.seconds)
    print(
        f"\ncorpus: {len(corpus_run.deliveries)} messages in {corpus_run.seconds:.1f}s, "
        f"{dict(sorted(counts.items()))}; slowest {slowest.entry.path} "
        f"{slowest.seconds:.3f}s"
    )
    assert counts[ReceiptOutcome.NEW_TICKET.value] > 100


def test_every_message_parses_as_stored_the_same_way_twice(manifest: list[Entry]) -> None:
    """The files as they are (many with bare LF line ends) parse, or are malformed mail."""
    for entry in manifest:
        if entry.kind != "message":
            continue
        raw = entry.raw
        started = time.monotonic()
        with contextlib.suppress(MalformedMessage):
            assert parse_message(raw) == parse_message(raw), entry.path
        assert time.monotonic() - started < 2 * PER_MESSAGE_SECONDS, entry.path


def test_eliding_attachment_lines_changes_no_parse(manifest: list[Entry]) -> None:
    """Runs of base64 lines are kept out of the stdlib's parser and put back afterwards;
    every corpus message that has one parses the same as when the parser reads it all."""
    with_runs = [
        entry
        for entry in manifest
        if entry.kind == "message" and elide_long_base64_runs(entry.raw)[1]
    ]
    assert len(with_runs) > 10
    elided = {}
    for entry in with_runs:
        with contextlib.suppress(MalformedMessage):
            elided[entry.path] = parse_message(entry.raw)
    with every_line_parsed():
        for entry in with_runs:
            assert elide_long_base64_runs(entry.raw)[1] == {}
            with contextlib.suppress(MalformedMessage):
                assert parse_message(entry.raw) == elided.pop(entry.path), entry.path
    assert not elided, "parsed only with its runs elided"


def test_body_texts_and_fragments_go_through_the_quote_stripper(manifest: list[Entry]) -> None:
    bodies = [e for e in manifest if e.kind == "body"]
    assert len(bodies) == 21
    for entry in bodies:
        text = entry.raw.decode("utf-8")
        started = time.monotonic()
        visible = extract_reply(text)
        assert time.monotonic() - started < PER_MESSAGE_SECONDS, entry.path
        assert isinstance(visible, str)
        assert len(visible) <= len(text), entry.path


def normalized(text: str) -> str:
    return " ".join(text.split())


def test_talon_standard_replies_match_their_oracles(manifest: list[Entry]) -> None:
    """talon's own test reads `<name>_reply_text` as the expected reply, else "Hello".

    talon keeps signatures, the gateway drops them; so where an oracle file exists the
    gateway's reply is the oracle's opening, and the rest of the oracle is its signature.
    """
    replies = [
        e
        for e in manifest
        if e.path.startswith("talon/standard_replies/") and e.path.endswith(".eml")
    ]
    assert len(replies) >= 10
    found = []
    for entry in replies:
        reply = normalized(parse_message(entry.raw).reply_text)
        oracle_file = entry.file.with_name(entry.file.stem + "_reply_text")
        if oracle_file.exists():
            oracle = normalized(oracle_file.read_text("utf-8"))
            signature = oracle[len(reply) :]
            if not (reply and oracle.startswith(reply) and signature[:1] in ("", " ")):
                found.append(f"{entry.path}: {reply!r} does not open {oracle!r}")
        elif reply != "Hello":
            found.append(f"{entry.path}: {reply!r} != 'Hello'")
    assert not found, failures(found)
