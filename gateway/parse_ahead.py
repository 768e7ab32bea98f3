"""Parsing ahead: a child process parses the next batch while the worker files this one.

Parsing is a large share of a worker's CPU (`bench/README.md`) and needs no database, so on
a machine with a core to spare it need not wait its turn. The child reads each message from
its spool entry itself, copies it into the blob store (`Spool.keep_raw`, whose fsyncs then
wait beside the worker's filing, not in it) and sends back what `parse_message` made of it;
the executor files the results in order. The child exits when the worker's end of its
socket closes, and at once when the worker dies, busy or not (`gateway.lifeline`), so a
worker never leaves it behind; SIGTERM ends it too, once the batch in hand is answered. A
child that dies is started again, and meanwhile the worker parses for itself. A batch too
large to be worth the copy between processes is parsed in the worker, as everything is
when there is no child (`InlineParser`).

The child also reads each message as the intake reads a first mail (`read_first_mail`): it
is pure, it needs nothing but the message, and most mail opens a ticket; the worker uses
that reading when the message opens one, and reads for itself when it was not read ahead.
A later stage may ask for more to be worked out there from that reading (`ReadsAhead`: the
knowledge base's suggestions, `gateway.suggestions`), for the batch's mails together once
all are parsed; it is kept with each result, and the stage uses it when it is what the
stage would have asked, and asks for itself otherwise. The child is started with the
worker (`start_early`), so the first mail does not wait for it to start.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Protocol, cast

from gateway.errors import GatewayError, SpoolUnavailable, internal_error
from gateway.intake import Findings, read_first_mail
from gateway.lifeline import die_with_parent
from gateway.limits import Limits
from gateway.parsing import ParsedMail, parse_message
from gateway.spool import Receipt, Spool

log = logging.getLogger(__name__)

# Larger batches are parsed in the worker: sending a big attachment to it costs two more
# copies of it, one in each process, for little time saved.
AHEAD_MAX_BYTES = 8 * 1024 * 1024
# A child that failed is started again only after this long, so one that cannot start (a
# broken install) costs a warning now and then, not a process for every batch.
RESTART_AFTER_SECONDS = 10.0
# Run by the child; `-c` rather than `-m`, so the classes it sends are this module's own.
CHILD_MAIN = "import sys; from gateway.parse_ahead import serve; serve(*map(int, sys.argv[1:]))"


class ReadsAhead(Protocol):
    """What a later stage works out in the parser process from the mails of a batch read
    as first mails, one answer each, in order; picklable, sent to the child with the
    parser. A batch's mails are worked out together, once all are parsed: their work
    shares what it reads (a connection, an index) while it is at hand."""

    def __call__(self, readings: Sequence[tuple[ParsedMail, Findings]]) -> Sequence[object]: ...


@dataclass(frozen=True, slots=True)
class Readable:
    """The message, parsed."""

    mail: ParsedMail
    # The intake's reading of it as a first mail, when it was read ahead; None: read it
    # when it opens a ticket.
    first_mail: Findings | None = None
    # What `ReadsAhead` made of it, if anything.
    ahead: object = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Why the message cannot be read; it is quarantined with the reason."""

    reason: str
    # An exception no refusal explains, formatted for the worker's log.
    trace: str = ""


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why the raw message could not be kept (a full disk): not the message's fault, so it
    waits in the spool."""

    reason: str


ParseResult = Readable | Refused | Unavailable
Results = Callable[[], list[ParseResult]]


class Parser(Protocol):
    def submit(self, receipts: Sequence[Receipt]) -> Results:
        """Start parsing `receipts`; the callable returns one result for each, in order."""
        ...


def parse_spooled(
    spool: Spool, receipt: Receipt, limits: Limits, reads_ahead: bool = False
) -> tuple[bytes | None, ParseResult]:
    """`receipt`'s raw message (None when it cannot be read) and what `parse_message` made
    of it (and, `reads_ahead`, its reading as a first mail); nothing is kept yet."""
    try:
        raw = spool.raw(receipt)
    except Exception as exc:
        return None, failure(exc)
    try:
        mail = parse_message(raw, limits)
        first_mail = (
            read_first_mail(mail.intake_text()) if reads_ahead and not mail.is_bounce else None
        )
        return raw, Readable(mail, first_mail)
    except Exception as exc:
        return raw, failure(exc)


def worked_out(also: ReadsAhead, results: list[ParseResult]) -> list[ParseResult]:
    """The results with what `also` makes of each mail read as a first mail; as they were,
    logged, when that fails: the stage that asked then works it out itself."""
    numbers: list[int] = []
    readings: list[tuple[ParsedMail, Findings]] = []
    for number, result in enumerate(results):
        if isinstance(result, Readable) and result.first_mail is not None:
            numbers.append(number)
            readings.append((result.mail, result.first_mail))
    if not readings:
        return results
    try:
        answers = also(readings)
        worked = list(results)
        for number, (mail, first_mail), answer in zip(numbers, readings, answers, strict=True):
            worked[number] = Readable(mail, first_mail, answer)
        return worked
    except Exception as exc:
        log.warning(
            "reading ahead failed (%s: %s); the worker works it out", type(exc).__name__, exc
        )
        return results


def keep_blobs(spool: Spool, receipt: Receipt, raw: bytes, parsed: ParseResult) -> ParseResult:
    """Keep the raw message in the blob store, even one that cannot be parsed, and a
    readable one's files too: filing only refers to them. `Unavailable` when the store
    cannot take them now."""
    try:
        spool.keep_raw(receipt, raw)
        if isinstance(parsed, Readable):
            for attachment in parsed.mail.attachments:
                spool.keep_file(receipt, attachment.data, attachment.sha256)
    except Exception as exc:
        return failure(exc)
    return parsed


def failure(exc: Exception) -> Unavailable | Refused:
    """What an error reading or keeping a message makes of it; called where it is caught."""
    if isinstance(exc, SpoolUnavailable):  # Not the message's fault: it waits in the spool.
        return Unavailable(exc.reason)
    if isinstance(exc, GatewayError):
        return Refused(exc.reason)
    # Never lose a message we answered 250 for.
    return Refused(internal_error(exc), traceback.format_exc())


@dataclass(frozen=True, slots=True)
class InlineParser:
    """Parses in this process, when the results are asked for."""

    spool: Spool
    limits: Limits
    # Read each message as a first mail too (the child process, which has a core of its own).
    reads_ahead: bool = False
    also: ReadsAhead | None = None

    def submit(self, receipts: Sequence[Receipt]) -> Results:
        return lambda: self.parse(receipts)

    def parse(self, receipts: Sequence[Receipt]) -> list[ParseResult]:
        """Each receipt parsed, then the batch's blobs kept together: one commit (not one a
        blob) serves them in the database store, whose transaction is not held open while
        the batch is parsed (it would hold SQLite's write lock against the worker filing
        the batch before)."""
        parsed = [
            parse_spooled(self.spool, receipt, self.limits, self.reads_ahead)
            for receipt in receipts
        ]
        raws = [raw for raw, _ in parsed]
        results = [result for _, result in parsed]
        if self.also is not None:
            results = worked_out(self.also, results)
        try:
            with self.spool.keeping():
                return [
                    result if raw is None else keep_blobs(self.spool, receipt, raw, result)
                    for receipt, raw, result in zip(receipts, raws, results, strict=True)
                ]
        except SpoolUnavailable as exc:
            return [Unavailable(exc.reason) for _ in receipts]


class ParserProcess:
    """A child process that parses each submitted batch while the caller works on."""

    def __init__(self, spool: Spool, limits: Limits, also: ReadsAhead | None = None) -> None:
        self.inline = InlineParser(spool, limits)
        self.also = also
        self.child: subprocess.Popen[bytes] | None = None
        self.connection: Connection | None = None
        # The write end of the child's lifeline: closing it (or dying) ends the child.
        self.lifeline: int | None = None
        self.submitted = 0
        self.restart_at = 0.0

    def start_early(self) -> None:
        """Start the child before the first batch: its start (a Python and the modules it
        imports, a good share of a second) then overlaps the worker's, not the first mail's
        way through."""
        try:
            if self.connection is None:
                self.start()
        except OSError as exc:
            self.failed(exc)

    def submit(self, receipts: Sequence[Receipt]) -> Results:
        if (
            sum(receipt.size for receipt in receipts) > AHEAD_MAX_BYTES
            or time.monotonic() < self.restart_at
        ):
            return self.inline.submit(receipts)
        try:
            connection = self.connection or self.start()
            self.submitted += 1
            connection.send((self.submitted, list(receipts)))
        except OSError as exc:
            self.failed(exc)
            return self.inline.submit(receipts)
        number = self.submitted
        return lambda: self.receive(number, receipts)

    def receive(self, number: int, receipts: Sequence[Receipt]) -> list[ParseResult]:
        try:
            while self.connection is not None:
                answered, results = self.connection.recv()
                if answered == number:  # Earlier answers belong to batches given up on.
                    return cast(list[ParseResult], results)
        except Exception as exc:  # Whatever became of the child, the worker can parse.
            self.failed(exc)
        return self.inline.submit(receipts)()

    def failed(self, why: Exception) -> None:
        log.warning(
            "the parser process failed (%s: %s); parsing in the worker for %.0fs",
            type(why).__name__,
            why,
            RESTART_AFTER_SECONDS,
        )
        self.restart_at = time.monotonic() + RESTART_AFTER_SECONDS
        self.close()

    def start(self) -> Connection:
        """Start the child. The kernel ends it when the thread that starts it ends
        (`gateway.lifeline`), so batches are submitted from a thread that lives as long as
        this process does: the worker's main thread."""
        ours, theirs = socket.socketpair()
        lifeline, self.lifeline = os.pipe()
        with ours, theirs:
            try:
                self.child = subprocess.Popen(
                    [sys.executable, "-c", CHILD_MAIN]
                    + [str(fd) for fd in (theirs.fileno(), lifeline, os.getpid())],
                    pass_fds=[theirs.fileno(), lifeline],
                    stdin=subprocess.DEVNULL,
                )
            finally:
                os.close(lifeline)
            self.connection = Connection(ours.detach())
        self.connection.send(replace(self.inline, reads_ahead=True, also=self.also))
        return self.connection

    def close(self) -> None:
        """End the child: it exits when its socket and its lifeline close."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.lifeline is not None:
            os.close(self.lifeline)
            self.lifeline = None
        if self.child is not None:
            try:
                self.child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
            self.child = None


def serve(fd: int, lifeline: int, worker_pid: int) -> None:
    """The child: parse each batch the worker sends, until its socket closes or the worker
    dies. SIGTERM ends it between batches: one that arrives during a batch waits until the
    batch is answered. SIGINT (a Ctrl-C, sent to the whole process group) is left to
    `serve`, which stops the worker, which closes this child's socket."""
    die_with_parent(worker_pid, lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    connection = Connection(fd)
    parser: InlineParser = connection.recv()
    while True:
        try:
            number, receipts = connection.recv()
        except EOFError:
            return
        with signal_held(signal.SIGTERM):
            try:
                connection.send((number, parser.parse(receipts)))
            except OSError:  # The worker is gone.
                return


@contextmanager
def signal_held(signum: int) -> Iterator[None]:
    """`signum` waits until the block is left, then takes its course (this thread only)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
