"""Generated and mutated mail through the parser and the whole pipeline.

Two sources of input: messages built from a grammar of hostile RFC 5322 and MIME (encoded
words in unknown charsets, broken base64 and quoted-printable, 8-bit bytes and NULs in
header fields, long lines, multipart trees with missing, duplicate and reused boundaries,
deep nesting, many parts, attachments with hostile names), and real messages from
`tests/data` and the shared corpus with bytes flipped, cut, spliced and duplicated.

What must hold:
- `parse_message` returns a `ParsedMail` or refuses the message (`MalformedMessage`,
  `OverLimit`: a `MessageRefused`), within a time limit. A parsed message has safe
  attachment names, a one-line subject and sender name, text fields that are real Unicode
  (no undecoded bytes left as lone surrogates), and the same `dedupe_key` each time the
  same bytes are parsed.
- `executor.process` of a spooled message returns an `Outcome` and never raises; a
  quarantine carries its reason; the spool's queue is empty afterwards; and no stage after
  parsing crashes into the pipeline's last-resort quarantine.

The runs are derandomized, so CI sees the same examples each time, and CI does not shrink
a failure (that can take minutes): rerun with `FUZZ_SHRINK=1` for the minimal example. For
a longer campaign, `FUZZ_EXAMPLES=5000` raises every test's example count (and shrinks and
reports every distinct failure), and `FUZZ_SEED=<n>` explores other examples than CI's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import signal
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, note, seed, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument

from gateway.app import Gateway, build_gateway
from gateway.errors import MessageRefused
from gateway.loops import TICKET_HEADER
from gateway.parsing import ParsedMail, long_base64_runs, parse_message
from gateway.receipts import Outcome
from gateway.settings import Settings
from gateway.spool import IntakeSource
from storage.models import ReceiptOutcome
from tests.conftest import ALICE, DATA, ENG1, ENGINEERS, SUPPORT, every_line_parsed
from tests.schema import current_schema
from tests.test_corpus import load_manifest

T = TypeVar("T")

# Hypothesis keeps caches in `.hypothesis/` under the working directory; not in the source tree.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "gateway-hypothesis")
)

EXAMPLES_OVERRIDE = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
SEED = os.environ.get("FUZZ_SEED", "")
# Shrinking a slow or stateful failure can take Hypothesis its full five minutes, so CI
# reports the failing example as found; FUZZ_SHRINK=1 (or a campaign) shrinks it.
SHRINK = bool(os.environ.get("FUZZ_SHRINK") or EXAMPLES_OVERRIDE)
# Per example: Hypothesis's (wall-clock) deadline flags work that takes far longer than any
# message should, and is generous so a loaded CI machine does not make it flake: most
# examples take well under a second, but a deep MIME tree takes one here, twice over, and
# a slow shared machine once took 5.4 s for it. The CPU limit on each message is the
# close guard; it also stops a hang that would never reach the deadline.
DEADLINE = timedelta(seconds=20)
CPU_SECONDS = 10.0
# Corpus messages up to this size are mutated (most are; the few large ones are slow).
CORPUS_SAMPLE_BYTES = 256 * 1024
# Mutations that would grow a message past this size are skipped.
MAX_MUTANT_BYTES = 512 * 1024
# A reproducer larger than this is written to a file instead of printed.
PRINTED_REPRODUCER_BYTES = 64 * 1024


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The settings every property here runs with: reproducible, bounded, quiet on disk."""
    configured = settings(
        max_examples=EXAMPLES_OVERRIDE or examples,
        deadline=DEADLINE,
        derandomize=not SEED,
        database=None,
        print_blob=False,
        # CI needs one failure to fail; a campaign wants every distinct one.
        report_multiple_bugs=bool(EXAMPLES_OVERRIDE),
        # The explain phase traces every line it runs, ten times slower: deadlines misfire.
        phases=[
            Phase.explicit,
            Phase.reuse,
            Phase.generate,
            Phase.target,
            *([Phase.shrink] if SHRINK else []),
        ],
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )

    def apply(test: Callable[..., None]) -> Callable[..., None]:
        test = configured(test)
        return seed(int(SEED))(test) if SEED else test

    return apply


# -- guards ----------------------------------------------------------------------------------


class Hang(BaseException):
    """Raised by the CPU timer; a BaseException so no `except Exception` swallows it."""


@contextmanager
def cpu_time_limit(seconds: float) -> Iterator[None]:
    """Fail instead of spinning forever. pytest-timeout owns SIGALRM (wall time); this uses
    the profiling timer, which counts CPU time, so the two never clash."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    except Hang:
        raise AssertionError(f"still running after {seconds} s of CPU time: a hang") from None
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def final_example() -> bool:
    """Whether Hypothesis is replaying the failing example it will report."""
    try:
        return current_build_context().is_final
    except InvalidArgument:  # Called outside a Hypothesis test.
        return False


def show_reproducer(raw: bytes) -> None:
    """Hypothesis prints a failing example's input as a Python literal; a large one is
    also saved to a file, to be read back as the reproducer."""
    if len(raw) <= PRINTED_REPRODUCER_BYTES or not final_example():
        return
    path = Path(tempfile.gettempdir()) / f"fuzz-{hashlib.sha256(raw).hexdigest()[:16]}.eml"
    path.write_bytes(raw)
    note(f"raw = Path({str(path)!r}).read_bytes()  # {len(raw)} bytes")


# -- generated messages ----------------------------------------------------------------------

# Charset labels: real ones, the aliases clients use, unknown labels, RFC 2231 language
# suffixes, and names of Python codecs that are not text charsets at all.
CHARSETS = (
    "utf-8",
    "UTF-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "latin1",
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "shift_jis",
    "euc-jp",
    "iso-2022-jp",
    "ks_c_5601-1987",
    "euc-kr",
    "koi8-r",
    "utf-16",
    "utf-16le",
    "utf-32",
    "utf-7",
    "unicode-1-1-utf-7",
    "utf-8-sig",
    "x-unknown",
    "unknown-8bit",
    "bogus",
    "x-user-defined",
    "utf-8*en",
    "iso-8859-1*de",
    '"utf-8"',
    "UTF8 ",
    "cp65001",
    "mbcs",
    "idna",
    "punycode",
    "undefined",
    "unicode_escape",
    "raw_unicode_escape",
    "base64",
    "hex",
    "rot13",
    "zlib",
    "uu",
    "quopri",
    "charmap",
    "x" * 80,
    "",
)
# Codecs text is written in (declared or not).
WRITING_CODECS = (
    "utf-8",
    "gb18030",
    "big5",
    "cp1252",
    "shift_jis",
    "iso2022_jp",
    "koi8-r",
    "utf-16",
    "euc_kr",
)
HOSTILE_TEXT = (
    "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789     .,:;!?'\"()<>[]@=_-/\\*%#&+"
    "\t\r\n\x00\x01\x08\x0b\x0c\x1b\x7f\x85\xa0\xad"
    "\u200b\u200e\u202e\u2028\u2029\ufeff\ufffd"
    "éüßñÅ中文漢字補大かなカナ한국ΩπЖ😀"
)
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._"
BOUNDARY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=? "
B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
FILENAME_PIECES = (
    "..",
    "/",
    "\\",
    "C:",
    "etc",
    "passwd",
    "report",
    ".pdf",
    ".exe",
    "winmail.dat",
    "\x00",
    "\x1f",
    "\x7f",
    "\x85",
    "\u202e",
    "\u2028",
    "\ufeff",
    "\t",
    "\n",
    "\r",
    " ",
    ".",
    "中文",
    "名前",
    "ü",
    "😀",
    ";",
    '"',
    "'",
    "%2F",
    "%00",
    "*",
    "?=",
    "=?",
)
ADDRESS_FORMS = (
    b"alice@customer.example",
    b"Alice <alice@customer.example>",
    b'"Doe, Jane" <jane@example.org>',
    b"alice@example.org)<bob@example.org>",
    b"alice@example.org <bob@example.org>",
    b"undisclosed-recipients:;",
    b"MAILER-DAEMON@example.net",
    b"postmaster",
    b"no-reply@example.net",
    b"<>",
    b"@",
    b"a@b@c",
    b'"unterminated <a@example.org>',
    b"support@example.com",
    b"eng1@example.com",
    b"support+tok@example.com",
    b"a@example.org, b@example.org, c@example.org",
)
MESSAGE_IDS = (
    b"<one@example.org>",
    b"<two@example.org>",
    b"<three@customer.example>",
    b"one@example.org",
    b"<>",
    b"<@>",
    b"<a b@c>",
    b"<<<x@y>>>",
)
DATES = (
    b"Mon, 1 Jan 2024 10:00:00 +0000",
    b"Thu, 01 Jan 1970 00:00:00 -2400",
    b"Fri, 31 Dec 9999 23:59:59 -1200",
    b"Sat, 1 Jan 0001 00:00:00 +1400",
    b"1 Jan 2024",
    b"yesterday",
    b"0 Foo 0 0:0:0 +9999",
    b"Tue, 2 Feb 2021 25:61:61 GMT",
)
FIELD_NAMES = (
    b"Auto-Submitted",
    b"Precedence",
    b"List-Id",
    b"List-Unsubscribe",
    b"Return-Path",
    b"Sender",
    b"Reply-To",
    b"Content-Language",
    b"X-Auto-Response-Suppress",
    b"Received",
    b"X-Loop",
    b"Thread-Index",
    b"X-Mailer",
    b"Importance",
    TICKET_HEADER.encode(),
    b"Resent-From",
    b"Comments",
    b"X-\xff\xfe",
    b"Sub ject",
    b"",
    b"From",
    b"Subject",
    b"Message-ID",
    b"Content-Type",
)
LEAF_TYPES = (
    b"text/plain",
    b"text/html",
    b"application/octet-stream",
    b"image/png",
    b"message/rfc822",
    b"message/delivery-status",
    b"text/rfc822-headers",
    b"application/ms-tnef",
    b"application/zip",
    b"text/calendar",
    b"TEXT/PLAIN",
    b"text/",
    b"/",
    b"text/plain;;;;",
    b"x" * 300,
    b"",
)
MULTIPART_SUBTYPES = (
    b"mixed",
    b"alternative",
    b"related",
    b"digest",
    b"report",
    b"signed",
    b"x-unknown",
    b"",
)
ENCODINGS = (
    b"7bit",
    b"8bit",
    b"binary",
    b"base64",
    b"quoted-printable",
    b" BASE64 ",
    b"x-uuencode",
    b"uuencode",
    b"bogus",
    b"",
)
TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"


def text_in_codec(draw: st.DrawFn, max_size: int = 40) -> bytes:
    text = draw(st.text(alphabet=HOSTILE_TEXT, max_size=max_size))
    return text.encode(draw(st.sampled_from(WRITING_CODECS)), "replace")


def q_encode(data: bytes) -> bytes:
    return b"".join(bytes([c]) if bytes([c]).isalnum() else b"=%02X" % c for c in data)


@st.composite
def encoded_words(draw: st.DrawFn) -> bytes:
    charset = draw(st.sampled_from(CHARSETS)).encode()
    kind = draw(st.sampled_from((b"B", b"Q", b"b", b"q", b"X")))
    data = text_in_codec(draw)
    payload = draw(st.sampled_from(("base64", "q", "broken", "raw")))
    if payload == "base64":
        body = base64.b64encode(data)
    elif payload == "q":
        body = q_encode(data)
    elif payload == "broken":
        body = draw(st.text(alphabet=B64_CHARS + "=?_ \x00", max_size=30)).encode()
    else:
        body = draw(st.binary(max_size=20))
    return b"=?" + charset + b"?" + kind + b"?" + body + b"?="


@st.composite
def header_values(draw: st.DrawFn) -> bytes:
    """A header value: words, encoded words, raw 8-bit bytes, comments, long runs."""
    piece = st.one_of(
        st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12).map(str.encode),
        encoded_words(),
        st.binary(min_size=1, max_size=12),
        st.builds(lambda n: b"(" * n + b"x" + b")" * n, st.integers(1, 2000)),
        st.builds(lambda n, c: c * n, st.integers(100, 10_000), st.sampled_from((b"x", b" "))),
        st.sampled_from(ADDRESS_FORMS),
    )
    pieces = draw(st.lists(piece, max_size=6))
    separator = draw(st.sampled_from((b" ", b"", b"\n ", b"\r\n\t", b",")))
    return separator.join(pieces)


@st.composite
def addresses(draw: st.DrawFn) -> bytes:
    form = draw(st.sampled_from(("known", "named", "list", "any")))
    if form == "known":
        return draw(st.sampled_from(ADDRESS_FORMS))
    if form == "named":
        name = draw(st.one_of(encoded_words(), header_values()))
        local = draw(st.text(alphabet=TOKEN_CHARS + '"\\ ', min_size=1, max_size=20)).encode()
        domain = draw(st.sampled_from((b"example.org", b"")))
        return name + b" <" + local + b"@" + domain + b">"
    if form == "list":
        return b", ".join(draw(st.lists(st.sampled_from(ADDRESS_FORMS), max_size=200)))
    return draw(header_values())


@st.composite
def dates(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.sampled_from(DATES))
    huge = st.sampled_from((2**31, 10**20))  # past what a C int or a datetime holds
    day, year = draw(st.integers(-5, 99)), draw(st.one_of(st.integers(-1, 100_000), huge))
    hour = draw(st.integers(-1, 99))
    zone = draw(st.one_of(st.integers(-99_999, 99_999), huge, huge.map(int.__neg__)))
    month = draw(st.sampled_from((b"Jan", b"Feb", b"Dec", b"Foo")))
    return b"%d %s %d %02d:00:00 %+05d" % (day, month, year, hour, zone)


@st.composite
def subjects(draw: st.DrawFn) -> bytes:
    prefix = draw(
        st.sampled_from(
            (b"", b"Re: ", b"[Support #1] ", b"Re: [Support #2] ", b"Automatic reply: ", b"Fwd: ")
        )
    )
    return prefix + draw(header_values())


@st.composite
def header_fields(draw: st.DrawFn) -> list[bytes]:
    """The top-level fields of a message, each one maybe missing, in any order."""
    candidates = (
        (b"From", addresses()),
        (b"To", addresses()),
        (b"Cc", addresses()),
        (b"Subject", subjects()),
        (b"Message-ID", st.sampled_from(MESSAGE_IDS)),
        (b"In-Reply-To", st.sampled_from(MESSAGE_IDS)),
        (b"References", st.lists(st.sampled_from(MESSAGE_IDS), max_size=300).map(b" ".join)),
        (b"Date", dates()),
        (b"MIME-Version", st.sampled_from((b"1.0", b"2.0", b""))),
    )
    fields = [name + b": " + draw(value) for name, value in candidates if draw(st.booleans())]
    extra = st.builds(
        lambda name, value: name + b": " + value, st.sampled_from(FIELD_NAMES), header_values()
    )
    fields += draw(st.lists(extra, max_size=6))
    if draw(st.booleans()):
        fields += draw(st.lists(st.binary(max_size=40), max_size=3))  # stray non-field lines
    return list(draw(st.permutations(fields)))


@st.composite
def filenames(draw: st.DrawFn) -> str:
    pieces = st.one_of(st.sampled_from(FILENAME_PIECES), st.text(alphabet=TOKEN_CHARS, max_size=10))
    name = "".join(draw(st.lists(pieces, max_size=10)))
    return name * draw(st.sampled_from((1, 1, 1, 40, 3000)))


def percent_encode(data: bytes) -> bytes:
    return b"".join(bytes([c]) if bytes([c]).isalnum() else b"%%%02X" % c for c in data)


@st.composite
def filename_params(draw: st.DrawFn) -> bytes:
    """A filename parameter as clients write it, right and wrong."""
    name = draw(filenames())
    param = draw(st.sampled_from((b"filename", b"name")))
    data = name.encode(draw(st.sampled_from(WRITING_CODECS)), "replace")
    data += draw(st.binary(max_size=3))  # raw 8-bit bytes, as old clients send them
    form = draw(st.sampled_from(("quoted", "bare", "encoded-word", "rfc2231", "continued")))
    if form == "quoted":
        return param + b'="' + data + b'"'
    if form == "bare":
        return param + b"=" + data
    if form == "encoded-word":
        charset = draw(st.sampled_from(CHARSETS)).encode()
        return param + b'="=?' + charset + b"?B?" + base64.b64encode(data) + b'?="'
    charset = draw(st.sampled_from(CHARSETS)).encode()
    language = draw(st.sampled_from((b"", b"en", b"zh-CN", b"'")))
    encoded = percent_encode(data)
    if form == "rfc2231":
        return param + b"*=" + charset + b"'" + language + b"'" + encoded
    size = draw(st.integers(1, 40))
    chunks = [encoded[i : i + size] for i in range(0, len(encoded), size)] or [b""]
    indexes = draw(st.sampled_from(("in order", "gap", "repeat")))
    params = []
    for index, chunk in enumerate(chunks):
        number = index * 2 if indexes == "gap" else index % 2 if indexes == "repeat" else index
        start = charset + b"'" + language + b"'" if index == 0 else b""
        params.append(param + b"*%d*=" % number + start + chunk)
    return b"; ".join(params)


@st.composite
def leaf_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            (
                "text",
                "base64",
                "broken-base64",
                "quoted-printable",
                "broken-qp",
                "html",
                "nested-html",
                "binary",
                "uuencode",
                "tnef",
                "delivery-status",
                "long-line",
                "empty",
            )
        )
    )
    if kind == "text":
        return text_in_codec(draw, 400)
    if kind == "base64":
        data = draw(st.binary(max_size=300)) if draw(st.booleans()) else text_in_codec(draw)
        # Now and then an attachment long enough to be kept out of the stdlib's parser.
        encoded = base64.b64encode(data * draw(st.sampled_from((1, 1, 1, 200))))
        width = draw(st.sampled_from((76, 4, 10_000)))
        return b"\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))
    if kind == "broken-base64":
        return draw(st.text(alphabet=B64_CHARS + "\n\r!*- ", max_size=400)).encode()
    if kind in ("quoted-printable", "broken-qp"):
        encoded = q_encode(text_in_codec(draw, 200))
        if kind == "broken-qp":
            encoded += draw(st.sampled_from((b"=", b"=G1", b"=\n", b"=0", b"= \n=")))
        return encoded
    if kind == "html":
        inner = text_in_codec(draw, 200)
        return (
            b"<html><head><style>p{}</style></head><body><p>"
            + inner
            + (b"</p><table><tr><td>cell<td>cell</table><a href='x'>link</a><br>")
        )
    if kind == "nested-html":
        depth = draw(st.integers(1, 5000))
        tag = draw(st.sampled_from((b"div", b"table", b"ul><li", b"blockquote", b"p")))
        return (b"<" + tag + b">") * depth + b"deep"
    if kind == "binary":
        return draw(st.binary(max_size=400))
    if kind == "uuencode":
        return b"begin 644 x.txt\n" + draw(st.binary(max_size=100)) + b"\n`\nend\n"
    if kind == "tnef":
        return base64.b64encode(TNEF_SIGNATURE + draw(st.binary(max_size=300)))
    if kind == "delivery-status":
        return (
            b"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; "
            + draw(addresses())
            + b"\nAction: failed\nStatus: "
            + draw(st.sampled_from((b"5.1.1", b"4.0.0", b"9.9.9", b"")))
            + b"\n"
        )
    if kind == "long-line":
        return draw(st.sampled_from((b"x", b"=", b" ", b"\xe4"))) * draw(st.integers(1000, 50_000))
    return b""


@st.composite
def leaf_parts(draw: st.DrawFn, depth: int) -> list[bytes]:
    """A single part: its fields, a blank line and its body, as lines."""
    content_type = draw(st.sampled_from(LEAF_TYPES))
    params = []
    if draw(st.booleans()):
        params.append(b"charset=" + draw(st.sampled_from(CHARSETS)).encode())
    if draw(st.booleans()):
        params.append(draw(filename_params()))
    fields = [b"Content-Type: " + b"; ".join([content_type, *params])]
    if draw(st.booleans()):
        fields.append(b"Content-Transfer-Encoding: " + draw(st.sampled_from(ENCODINGS)))
    if draw(st.booleans()):
        disposition = draw(st.sampled_from((b"attachment", b"inline", b"ATTACHMENT", b"x")))
        fields.append(b"Content-Disposition: " + disposition + b"; " + draw(filename_params()))
    if draw(st.booleans()):
        fields.append(b"Content-ID: " + draw(st.sampled_from(MESSAGE_IDS)))
    if content_type == b"message/rfc822" and depth > 0:
        body = draw(message_lines(depth - 1))
    else:
        body = draw(leaf_bodies()).split(b"\n")
    return [*fields, b"", *body]


@st.composite
def boundaries(draw: st.DrawFn, parent: bytes | None) -> bytes:
    choices = [
        st.text(alphabet=BOUNDARY_CHARS, min_size=1, max_size=70).map(str.encode),
        st.just(b""),
        st.just(b"b" * 300),
    ]
    if parent is not None:
        choices.append(st.just(parent))  # a nested part reusing its parent's boundary
    return draw(st.one_of(*choices))


@st.composite
def multipart_parts(draw: st.DrawFn, depth: int, parent: bytes | None) -> list[bytes]:
    """A multipart with a random boundary, declared right or wrong, and its children."""
    boundary = draw(boundaries(parent))
    subtype = draw(st.sampled_from(MULTIPART_SUBTYPES))
    declared = draw(
        st.sampled_from(
            (
                b'; boundary="' + boundary + b'"',
                b"; boundary=" + boundary,
                b"",
                b'; boundary="' + boundary + b'"; boundary="other"',
                b"; boundary*=''" + boundary,
            )
        )
    )
    if subtype == b"report":
        declared += draw(
            st.sampled_from(
                (b"; report-type=delivery-status", b"; report-type=disposition-notification", b"")
            )
        )
    lines = [b"Content-Type: multipart/" + subtype + declared, b""]
    lines += draw(st.lists(st.binary(max_size=30), max_size=2))  # preamble
    children = draw(st.lists(entities(depth - 1, boundary), max_size=4))
    if draw(st.integers(0, 9)) == 9:  # many parts
        children += [[b"Content-Type: text/plain; name=part.txt", b"", b"part"]] * draw(
            st.integers(100, 700)
        )
    for child in children:
        lines += [b"--" + boundary, *child]
    closing = draw(st.sampled_from((1, 1, 1, 0, 2)))
    lines += [b"--" + boundary + b"--"] * closing
    lines += draw(st.lists(st.binary(max_size=30), max_size=2))  # epilogue
    return lines


@st.composite
def entities(draw: st.DrawFn, depth: int, parent: bytes | None = None) -> list[bytes]:
    if depth <= 0 or draw(st.booleans()):
        return draw(leaf_parts(depth))
    return draw(multipart_parts(depth, parent))


@st.composite
def deep_nesting(draw: st.DrawFn, inner: list[bytes]) -> list[bytes]:
    """`inner` wrapped in up to ~60 multiparts (rarely far more), boundaries shared or not."""
    depth = draw(st.one_of(st.integers(0, 60), st.sampled_from((300, 1500))))
    shared = draw(st.booleans())
    closed = draw(st.booleans())
    opening: list[bytes] = []
    closing: list[bytes] = []
    for level in range(depth):
        boundary = b"deep" if shared else b"deep%d" % level
        opening += [b"Content-Type: multipart/mixed; boundary=" + boundary, b"", b"--" + boundary]
        if closed:
            closing.insert(0, b"--" + boundary + b"--")
    return opening + inner + closing


@st.composite
def message_lines(draw: st.DrawFn, depth: int = 3) -> list[bytes]:
    fields = draw(header_fields())
    body = draw(entities(depth))
    if depth >= 3 and draw(st.integers(0, 4)) == 4:
        body = draw(deep_nesting(body))
    # The body entity's own fields join the top-level ones.
    separator = body.index(b"")
    return [*fields, *body[:separator], b"", *body[separator + 1 :]]


@st.composite
def generated_messages(draw: st.DrawFn) -> bytes:
    lines = draw(message_lines())
    ending = draw(st.sampled_from(("lf", "crlf", "mixed", "cr")))
    if ending == "mixed":
        period = draw(st.integers(2, 7))
        return b"".join(line + (b"\r\n" if i % period else b"\n") for i, line in enumerate(lines))
    eol = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[ending]
    return eol.join(lines) + eol


# -- mutated messages ------------------------------------------------------------------------

INSERTED = (
    b"\r\n",
    b"\n",
    b"\r",
    b"\n\n",
    b"\r\n\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\x80",
    b"\xe4\xb8\xad",
    b"--",
    b"--\n",
    b"=?",
    b"?=",
    b"=?utf-8?B?",
    b"=?undefined?Q?=FF?=",
    b"=?x-unknown?q?",
    b"=\n",
    b"=",
    b"=G1",
    b";",
    b'"',
    b"\\",
    b"<",
    b">",
    b"(",
    b")",
    b":",
    b" ",
    b"\t",
    b"From ",
    b"\nFrom: x@example.org\n",
    b"\nSubject: =?utf-8?Q?a=0Ab?=\n",
    b'Content-Type: multipart/mixed; boundary=""\n',
    b"Content-Type: message/rfc822\n\n",
    b"Content-Transfer-Encoding: base64\n",
    b"Content-Transfer-Encoding: quoted-printable\n",
    b"Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%2Fpasswd\n",
    b"; charset=",
    b"; boundary=",
    b"; filename=",
    b"\x1b$B",
    b"begin 644 x\n",
    b"Auto-Submitted: auto-replied\n",
    b"Content-Type: multipart/report\n",
)
BOUNDARY_PARAM = re.compile(rb'boundary="?([^";\r\n]+)', re.IGNORECASE)


def position(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def flip_byte(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    if not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]


def insert_token(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    at = position(draw, data)
    return data[:at] + draw(st.sampled_from(INSERTED)) + data[at:]


def insert_boundary_line(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    found = BOUNDARY_PARAM.findall(data)
    if not found:
        return data
    line = b"\n--" + draw(st.sampled_from(found)) + draw(st.sampled_from((b"", b"--"))) + b"\n"
    at = position(draw, data)
    return data[:at] + line + data[at:]


def reuse_boundary(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    found = sorted(set(BOUNDARY_PARAM.findall(data)))
    if len(found) < 2:
        return data
    old, new = draw(st.permutations(found))[:2]
    return data.replace(old, new)


def delete_range(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    start = position(draw, data)
    return data[:start] + data[start + draw(st.integers(1, 2000)) :]


def truncate(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    return data[: position(draw, data)]


def splice(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    other = draw(st.sampled_from(seeds))
    start = position(draw, other)
    chunk = other[start : start + draw(st.integers(1, 4096))]
    at = position(draw, data)
    return data[:at] + chunk + data[at:]


def duplicate_chunk(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    start = position(draw, data)
    chunk = data[start : start + draw(st.integers(1, 200))]
    at = position(draw, data)
    return data[:at] + chunk * draw(st.integers(1, 50)) + data[at:]


def duplicate_header_block(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    end = re.search(rb"\r?\n\r?\n", data)
    if end is None or len(data) > MAX_MUTANT_BYTES:
        return data
    eol = b"\r\n" if data[end.start() : end.start() + 1] == b"\r" else b"\n"
    return (data[: end.start()] + eol) * draw(st.integers(1, 20)) + data


def drop_header_separator(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    return re.sub(rb"\r?\n\r?\n", b"\n", data, count=1)


def crlf_to_lf(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    at = position(draw, data)
    return data[:at] + data[at:].replace(b"\r\n", b"\n")


def lf_to_crlf(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    at = position(draw, data)
    return data[:at] + data[at:].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lf_to_cr(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")


def long_line(draw: st.DrawFn, data: bytes, seeds: list[bytes]) -> bytes:
    at = position(draw, data)
    run = draw(st.sampled_from((b"x", b" ", b"=", b"\xff"))) * draw(st.integers(1000, 100_000))
    return data[:at] + run + data[at:]


MUTATIONS = (
    truncate,
    flip_byte,
    insert_token,
    delete_range,
    splice,
    duplicate_chunk,
    duplicate_header_block,
    drop_header_separator,
    insert_boundary_line,
    reuse_boundary,
    crlf_to_lf,
    lf_to_crlf,
    lf_to_cr,
    long_line,
)


@st.composite
def mutated_messages(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = draw(st.sampled_from(seeds))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=6)):
        mutated = mutation(draw, data, seeds)
        # Duplications compound; past this size a mutant tests the machine, not the parser.
        data = mutated if len(mutated) <= MAX_MUTANT_BYTES else data
    return data


class Seeds(list[bytes]):
    """The messages mutations start from; short to print in a failure report."""

    def __repr__(self) -> str:
        return f"<{len(self)} seed messages>"


@pytest.fixture(scope="module")
def seeds() -> Seeds:
    """Every case in tests/data and the corpus's messages up to `CORPUS_SAMPLE_BYTES`; a
    missing corpus fails the tests, as in test_corpus."""
    cases = [path.read_bytes() for path in sorted(DATA.glob("*.eml"))]
    corpus = [
        entry.raw
        for entry in load_manifest()
        if entry.kind == "message" and entry.file.stat().st_size <= CORPUS_SAMPLE_BYTES
    ]
    assert cases, f"no cases in {DATA}"
    assert len(corpus) > 300, f"only {len(corpus)} corpus messages to mutate"
    return Seeds(cases + corpus)


# -- the parser ------------------------------------------------------------------------------

CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def check_parse(raw: bytes) -> None:
    """`parse_message` returns a safe `ParsedMail` or refuses the message with its reason
    (`MalformedMessage`, or `OverLimit` and the other `MessageRefused` errors)."""
    show_reproducer(raw)
    with cpu_time_limit(CPU_SECONDS):
        try:
            mail = parse_message(raw)
        except MessageRefused as exc:
            assert exc.reason.strip()
            return
        again = parse_message(raw)
        if any(long_base64_runs(raw)):
            # Runs of base64 lines were kept out of the stdlib's parser and put back after.
            with every_line_parsed():
                assert parse_message(raw) == mail, "eliding base64 runs changed the parse"
    assert again.dedupe_key == mail.dedupe_key, "dedupe_key differs between two parses"
    check_parsed(mail)


def check_parsed(mail: ParsedMail) -> None:
    for attachment in mail.attachments:
        name = attachment.filename
        size = len(name.encode())
        assert 0 < size <= 255, f"display name of {size} bytes: {name!r}"
        assert not name.endswith((".", " ")), f"display name {name!r} Windows would change"
        assert "/" not in name and "\\" not in name, f"path in display name {name!r}"
        assert not any(unicodedata.category(ch) in CONTROL_CATEGORIES for ch in name), (
            f"control character in display name {name!r}"
        )
    for field, value in (("subject", mail.subject), ("from_name", mail.from_name)):
        assert "\r" not in value and "\n" not in value, f"line break in {field}: {value!r}"
    for field, value in text_fields(mail):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise AssertionError(
                f"undecoded bytes (lone surrogates) in {field}: {value!r}"
            ) from None


def text_fields(mail: ParsedMail) -> Iterator[tuple[str, str]]:
    """Every text a later stage stores or mails: `ParsedMail` promises decoded Unicode, so
    raw 8-bit bytes must not come through as lone surrogates."""
    for field in fields(mail):
        value = getattr(mail, field.name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, str):
                yield field.name, item
    for attachment in mail.attachments:
        for name in ("filename", "content_type", "content_id"):
            value = getattr(attachment, name)
            if isinstance(value, str):
                yield f"attachment {name}", value


# Inputs the fuzzing found crashing or hanging the gateway, kept as explicit examples so each
# stays fixed: the generated-mail tests run them before anything they generate.
PARSER_REPRODUCERS = (
    # A charset label that names a Python codec which is not a text encoding.
    b"Content-Type: text/plain; charset=punycode\n\n\n",
    b"From: a@example.org\nSubject: =?undefined?Q?x?=\n\nhi\n",
    # ... in an RFC 2231 filename, which the stdlib decodes itself (Message.get_filename).
    b"Content-Type: text/plain\nContent-Disposition: attachment; filename*=punycode''%80\n\n\n",
    b"Content-Type: text/plain; name*=idna''%2E%2E\n\n\n",
    b"Content-Type: text/plain\nContent-Disposition: attachment; filename*=a\x00b''%41\n\n\n",
    # A NUL or raw 8-bit bytes in an encoded word's charset label (codecs.lookup raises).
    b"From: =?\x00gbK?Q?=B0?= <a@example.com>, b@example.net\n\nhi\n",
    b"From: =?\xff\xfegbK?Q?=B0?= <a@example.com>, b@example.net\n\nhi\n",
    # Date numbers past what a C int holds (parsedate_to_datetime raises OverflowError).
    b"From: a@example.org\nDate: Wed, 4 Apr 2012 22:22:42 -68686868680700\n\nhi\n",
    b"From: a@example.org\nDate: Wed, 4 Apr 6868682012 22:22:42 -0700\n\nhi\n",
    # Raw 8-bit bytes in message identifiers, left as lone surrogates.
    b"From: a@example.org\nMessage-ID: <\xd0x@example.org>\n\nhi\n",
    b"From: a@example.org\nIn-Reply-To: <\xd0x@example.org>\n\nhi\n",
    # An encoded newline in the sender's display name.
    b"From: =?utf-8?Q?evil=0ABcc:_x@example.net?= <a@example.org>\n\nhi\n",
    # A forwarded multipart with an 8-bit preamble: the stdlib cannot write it out again.
    b'Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary="0"\n\n\x80\n--0--\n',
    # Quadratic time: a forwarded message's long header is re-folded by the stdlib
    # (email.header), and a long parameter list is re-scanned from its start for every `;`
    # (email.message._parseparam). Each was well past the CPU limit.
    b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    b"Content-Type: message/rfc822\nContent-Disposition: attachment; filename=f.eml\n\n"
    b"Subject: \xe4" + b"x" * 30_000 + b"\n\nbody\n--b--\n",
    b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    b"Content-Type: message/rfc822\nContent-Disposition: attachment; filename=f.eml\n\n"
    b"References: " + b"<x@y> " * 30_000 + b"\n\nbody\n--b--\n",
    b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    b'Content-Type: text/plain; name="' + b"\n ".join([b";" * 30_000] * 3) + b'"\n\nhi\n--b--\n',
    # ... and a forwarded message the stdlib cannot write out as bytes (an 8-bit preamble)
    # whose long 8-bit header its text writer folds in quadratic time (41 s).
    b"From: a@example.org\nContent-Type: message/rfc822\n\nSubject: \xe4"
    + b"x" * 30_000
    + b'\nContent-Type: multipart/mixed; boundary="0"\n\n\x80\n--0--\n',
)
# Messages for one gateway, in this order: later ones thread onto the tickets of earlier ones.
PIPELINE_REPRODUCERS = (
    # The same address twice in Cc: two participant rows for one ticket.
    b"From: alice@customer.example\nCc: a@example.org, a@example.org\n\nhi\n",
    # Raw 8-bit bytes in a Message-ID, stored in SQLite.
    b"From: a@example.org\nMessage-ID: <\xd0x@example.org>\n\nhi\n",
    # An automatic reply with a raw 8-bit Auto-Submitted value, recorded on the ticket.
    b"From: a@example.org\nMessage-ID: <one@example.org>\n\nhi\n",
    b"From: a@example.org\nIn-Reply-To: <one@example.org>\nAuto-Submitted: a\x80\n\nhi\n",
    # A message/delivery-status attachment (hidden from the stdlib by a reused boundary) that
    # the engineers' notification attaches.
    b'From: alice@customer.example\nContent-Type: multipart/mixed; boundary="0"\n\n--0\n'
    b'Content-Type: multipart/mixed; boundary="0"\n\n--0--\n--0\n'
    b"Content-Type: message/delivery-status\nContent-Disposition: attachment\n\n\n--0--\n",
)


def with_examples(examples: Iterator[dict[str, Any]]) -> Callable[[T], T]:
    """Hypothesis's `@example` for each of `examples`, first to last."""

    def apply(test: T) -> T:
        for values in reversed(list(examples)):
            test = example(**values)(test)
        return test

    return apply


@with_examples({"raw": raw} for raw in PARSER_REPRODUCERS)
@fuzz(examples=300)
@given(raw=generated_messages())
def test_parser_refuses_or_reads_generated_mail_safely(raw: bytes) -> None:
    check_parse(raw)


@fuzz(examples=800)
@given(data=st.data())
def test_parser_refuses_or_reads_mutated_mail_safely(seeds: Seeds, data: st.DataObject) -> None:
    check_parse(data.draw(mutated_messages(seeds), label="raw"))


# -- the pipeline ----------------------------------------------------------------------------

ENVELOPE_SENDERS = (
    ALICE,
    "",
    None,
    "MAILER-DAEMON@example.net",
    ENG1,
    SUPPORT,
    "not an address",
    "x" * 400 + "@example.org",
    "jörg@exämple.org",
)
FILED = frozenset({ReceiptOutcome.NEW_TICKET, ReceiptOutcome.REPLY})


class Desk:
    """A gateway whose stages are called directly (no listeners, no relay)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def __repr__(self) -> str:
        return f"<gateway in {self.gateway.settings.data_dir}>"


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    """A gateway in a temporary directory, one per test function: Hypothesis runs every
    example against it, so later messages thread onto earlier tickets."""
    settings = Settings().changed(
        data_dir=tmp_path / "var",
        database_url=database_url,
        smtp_listen=None,
        lmtp_listen=None,
        support_address=SUPPORT,
        relay=None,
        secret="fuzz-secret",
        http_listen=None,
        engineers=ENGINEERS,
    )
    settings.data_dir.mkdir(parents=True)
    current_schema(settings.effective_database_url)
    gateway = build_gateway(settings)
    yield Desk(gateway)
    gateway.engine.dispose()


class StageCrashes(logging.Handler):
    """Tracebacks the gateway logs: the pipeline logs one when it catches an exception that
    no stage handled, before its last-resort quarantine."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks.append(self.format(record))


@contextmanager
def stage_crashes() -> Iterator[StageCrashes]:
    handler = StageCrashes()
    logger = logging.getLogger("gateway")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def parser_crashes(raw: bytes) -> bool:
    """Whether `parse_message` itself raises something other than a refusal (those are the
    parser properties' findings, not the later stages')."""
    try:
        parse_message(raw)
    except MessageRefused:
        return False
    except Exception:
        return True
    return False


def check_pipeline(desk: Desk, raw: bytes, sender: Any, times: int) -> None:
    """Spool `raw` and process it (`times` times, as a redelivery would): an outcome every
    time, never an exception, and nothing left in the queue."""
    gateway = desk.gateway
    show_reproducer(raw)
    for _ in range(times):
        try:
            receipt = gateway.spool.accept(raw, sender, [SUPPORT], IntakeSource.INGEST)
        except MessageRefused as exc:  # Refused before the spool owns it: empty or not mail.
            assert exc.reason.strip()
            return
        with cpu_time_limit(CPU_SECONDS), stage_crashes() as crashes:
            outcome = gateway.executor.process(receipt)
        assert isinstance(outcome, Outcome)
        assert outcome.spool_id == receipt.spool_id
        assert isinstance(outcome.outcome, ReceiptOutcome)
        if outcome.outcome is ReceiptOutcome.QUARANTINED:
            assert outcome.reason.strip(), "quarantined without a reason"
        if outcome.outcome in FILED:
            assert outcome.ticket_id is not None, f"{outcome.outcome} names no ticket"
        left = [entry.spool_id for entry in gateway.spool.pending()]
        assert receipt.spool_id not in left, "the message was left in the spool's queue"
        if crashes.tracebacks and not parser_crashes(raw):
            raise AssertionError(
                f"a stage after parsing crashed ({outcome.reason}):\n"
                + "\n".join(crashes.tracebacks)
            )


@with_examples({"raw": raw, "sender": ALICE, "times": 1} for raw in PIPELINE_REPRODUCERS)
@fuzz(examples=200)
@given(raw=generated_messages(), sender=st.sampled_from(ENVELOPE_SENDERS), times=st.integers(1, 2))
def test_pipeline_files_or_quarantines_generated_mail(
    desk: Desk, raw: bytes, sender: Any, times: int
) -> None:
    check_pipeline(desk, raw, sender, times)


@fuzz(examples=600)
@given(data=st.data(), sender=st.sampled_from(ENVELOPE_SENDERS), times=st.integers(1, 2))
def test_pipeline_files_or_quarantines_mutated_mail(
    desk: Desk, seeds: Seeds, data: st.DataObject, sender: Any, times: int
) -> None:
    check_pipeline(desk, data.draw(mutated_messages(seeds), label="raw"), sender, times)
