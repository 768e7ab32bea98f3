"""Reading the MIME tree: raw bytes to the stdlib's `Message`, its body text and headers.

mail-parser reads the MIME structure, its defects and the attachments; on the few broken
multiparts it cannot read, the stdlib's tree is used alone. Before any of that, the raw
bytes are tidied the way lenient readers (mime4j) do: leading junk and stray non-field
lines among the header fields would otherwise end the header early and leave a message
without its From and Subject. Long base64 runs are kept out of the stdlib's parser and put
back afterwards. Header values and body text are decoded by `charsets`.
"""

from __future__ import annotations

import email.feedparser
import logging
import re
import secrets
from collections.abc import Iterator
from email.message import Message
from typing import Any

import mailparser
from inscriptis import get_text as html_to_text
from mailparser.exceptions import MailParserRecursionError

from gateway.errors import MalformedMessage
from gateway.parsing.charsets import decode_header_value, decode_text

# mail-parser logs a warning for every part type it does not render; those are not errors.
logging.getLogger("mailparser").setLevel(logging.ERROR)
log = logging.getLogger(__name__)

# A header field's name and colon; used with `match`, so it also reads in place at `pos`.
HEADER_LINE = re.compile(rb"[!-9;-~]+:")
MAX_LINE_LENGTH = 998
FEED_BYTES = 64 * 1024
# A run of base64 lines this long (an attachment) is kept out of the stdlib's parser, which
# would read it a line at a time and hold it as a list of line strings before joining them.
ELIDED_RUN_BYTES = 16 * 1024
PLACEHOLDER_MARK = "GatewayElidedRun"
# Where such a run may be: found without a repeated group, whose backtracking state would
# itself cost memory in proportion to the run's lines.
BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/=\r\n]{64,}")


def strip_leading_junk(raw: bytes) -> bytes:
    """Drop leading blank space, an mbox `From ` line and stray lines before the headers."""
    data = raw.lstrip()
    for _ in range(3):
        line_end = data.find(b"\n")
        if line_end < 0 or HEADER_LINE.match(data, 0, line_end):
            break
        following = line_end + 1
        while data[following : following + 1] in (b"\r", b"\n"):
            following += 1
        # Matched in place: `data` may be a large message, and slicing it copies.
        if data.startswith(b"From ") or HEADER_LINE.match(data, following):
            data = data[following:]
        else:
            break
    return data


def drop_stray_header_lines(data: bytes) -> bytes:
    """Drop lines among the header fields that are neither fields nor folded continuations.

    The stdlib ends the header at the first such line, so everything after it (From and
    Subject too, in a message whose relay unfolded a Received field) would become body text.
    mime4j skips them the same way. Lines after the last field are left to be the body.
    """
    end = re.search(rb"\r?\n\r?\n", data)
    head = data[: end.start()] if end else data
    lines = head.splitlines(keepends=True)
    if not lines or not HEADER_LINE.match(lines[0]):
        return data
    fields = [index for index, line in enumerate(lines) if HEADER_LINE.match(line)]
    kept = [
        line
        for index, line in enumerate(lines)
        if index > fields[-1] or line[:1] in (b" ", b"\t") or HEADER_LINE.match(line)
    ]
    if len(kept) == len(lines):
        return data
    return b"".join(kept) + data[len(head) :]


def read_mime(data: bytes) -> tuple[Message, list[dict[str, Any]] | None]:
    """The message tree, and its attachments as mail-parser lists them: None when the tree
    was read without mail-parser, and its attachments are to be found in the tree.

    mail-parser gives up on some broken multiparts that the stdlib reads (nested parts that
    reuse their parent's boundary leave it no epilogue to search); the stdlib's tree of
    those is used alone, so the message still becomes a ticket. So is that of a message with
    an over-long header field below the top: mail-parser writes nested parts out as text,
    and the stdlib re-folds such a field in quadratic time.
    """
    try:
        message = message_tree(data)
    except RecursionError as exc:
        raise MalformedMessage("MIME parts nested too deeply to read") from exc
    slow_part = first_slow_nested_header(message)
    if slow_part:
        log.info("reading the MIME tree without mail-parser: %s", slow_part)
        return message, None
    try:
        mail = mailparser.MailParser(message)
    except (RecursionError, MailParserRecursionError) as exc:
        raise MalformedMessage("MIME parts nested too deeply to read") from exc
    except Exception as exc:  # mail-parser raises arbitrary errors on hostile MIME.
        log.warning(
            "mail-parser failed (%s: %s); reading the MIME tree without it", type(exc).__name__, exc
        )
        return message_tree(data), None  # mail-parser may have left it half-read
    return mail.message, mail.attachments


def message_tree(data: bytes) -> Message:
    """What `email.message_from_bytes` makes of `data`, in a fraction of its memory.

    That function decodes the whole message into one string and reads it through a
    `StringIO`, four bytes a character. Fed in slices, the parser holds little more than the
    lines of the part it is reading. Decoding ASCII with surrogateescape maps each byte
    alone, so slicing anywhere gives the same tree.

    Runs of base64 lines over `ELIDED_RUN_BYTES` reach the parser as one placeholder line
    each and are put back into their part's payload afterwards, so a large attachment costs
    its text once rather than once per copy the parser makes.
    """
    fed, elided = elide_long_base64_runs(data)
    parser = email.feedparser.BytesFeedParser()
    for start in range(0, len(fed), FEED_BYTES):
        parser.feed(fed[start : start + FEED_BYTES])
    message = parser.close()
    if elided:
        restore_elided_runs(message, data, elided)
    return message


def elide_long_base64_runs(data: bytes) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """`data` with each long run of base64 lines replaced by a placeholder line, and where
    each run was. A placeholder is made of base64 letters, so the parser reads it as it
    would have read the run: body lines that are neither headers, boundaries nor blank."""
    if len(data) < ELIDED_RUN_BYTES:
        return data, {}
    pieces: list[bytes] = []
    elided: dict[str, tuple[int, int]] = {}
    position = 0
    nonce = secrets.token_hex(8)
    for start, end in long_base64_runs(data):
        placeholder = f"{PLACEHOLDER_MARK}{len(elided)}x{nonce}"
        line_end = b"\r\n" if data.endswith(b"\r\n", start, end) else b"\n"
        pieces += [data[position:start], placeholder.encode("ascii"), line_end]
        elided[placeholder] = (start, end)
        position = end
    if not elided:
        return data, {}
    pieces.append(data[position:])
    return b"".join(pieces), elided


def long_base64_runs(data: bytes) -> Iterator[tuple[int, int]]:
    """Spans of at least `ELIDED_RUN_BYTES` of whole, non-empty lines of base64 letters,
    each line ending in LF or CRLF; none in a message that never names base64.

    Scanning prose costs more than the parse it would save: the runs worth eliding are
    attachments under a `Content-Transfer-Encoding` that names it."""
    if b"ase64" not in data and b"ASE64" not in data:
        return
    for text in BASE64_TEXT.finditer(data):
        start, end = text.span()
        if end - start < ELIDED_RUN_BYTES:
            continue
        if start > 0 and data[start - 1] != ord("\n"):  # Begins mid-line: from the next.
            start = data.find(b"\n", start, end) + 1
        end = data.rfind(b"\n", start, end) + 1  # Ends with its last whole line.
        if start == 0 or end == 0:  # No whole line (or the message itself starts here).
            continue
        while start < end:  # A blank line ends a run: it separates headers from a body.
            if data.startswith(b"\n", start) or data.startswith(b"\r\n", start):
                start = data.find(b"\n", start, end) + 1
                continue
            blank = [
                found
                for found in (data.find(b"\n\n", start, end), data.find(b"\n\r\n", start, end))
                if found >= 0
            ]
            stop = min(blank) + 1 if blank else end
            # A lone CR ends a line too, and "\r\r" holds a blank one: left to the parser.
            if stop - start >= ELIDED_RUN_BYTES and data.count(b"\r", start, stop) == data.count(
                b"\r\n", start, stop
            ):
                yield start, stop
            start = stop


def restore_elided_runs(message: Message, data: bytes, elided: dict[str, tuple[int, int]]) -> None:
    """Put each run back where its placeholder is: in a part's payload, or in a multipart's
    preamble or epilogue, where the attachments of some malformed messages end up (and
    mail-parser finds them)."""
    for part in message.walk():
        # As parsed: get_payload() would hand back 8-bit bytes already decoded ("replace").
        payload = vars(part).get("_payload")
        if isinstance(payload, str) and PLACEHOLDER_MARK in payload:
            part.set_payload(with_runs(payload, data, elided))
        for outside in ("preamble", "epilogue"):
            text = getattr(part, outside)
            if text and PLACEHOLDER_MARK in text:
                setattr(part, outside, with_runs(text, data, elided))


def with_runs(text: str, data: bytes, elided: dict[str, tuple[int, int]]) -> str:
    """`text` with each placeholder replaced by its run. The line end before a boundary
    belongs to the boundary, so a run that ended its part comes back without its last one."""
    for placeholder, (start, end) in elided.items():
        at = text.find(placeholder)
        if at < 0:
            continue
        after = at + len(placeholder)
        if text.startswith("\r\n", after):
            after += 2
        elif text.startswith("\n", after):
            after += 1
        else:
            end -= 2 if data.endswith(b"\r\n", start, end) else 1
        # Decoded straight from the message's bytes: a 25 MB run is copied once.
        run = str(memoryview(data)[start:end], "ascii")
        text = run if at == 0 and after == len(text) else text[:at] + run + text[after:]
    return text


def first_slow_nested_header(message: Message) -> str:
    """The first header field below the top level whose value is longer than a line may be
    (RFC 5322: 998), named for the log; "" when there is none."""
    for part in message.walk():
        if part is message:
            continue
        for name, value in part.raw_items():
            if len(str(value)) > MAX_LINE_LENGTH:
                return f"{name[:40]} field of {len(str(value))} characters in a nested part"
    return ""


class HeaderView:
    """Header fields as they arrived (8-bit bytes kept), decoded on request."""

    def __init__(self, message: Message) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            self.values.setdefault(name.lower(), []).append(str(value))
        self.names = set(self.values)
        self.hint = first_body_charset(message)

    def raw(self, name: str) -> str:
        found = self.values.get(name)
        return found[0] if found else ""

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def decoded(self, name: str) -> str:
        return decode_header_value(self.raw(name), self.hint)


def first_body_charset(message: Message) -> str | None:
    """The charset of the first text part: the best guess for raw 8-bit header bytes."""
    for part in message.walk():
        charset = part.get_content_charset()
        if charset and part.get_content_maintype() == "text":
            return charset
    return None


def body_text(message: Message) -> tuple[str, str]:
    """The message's own text, its HTML rendered as text when it has no plain text; and its
    HTML."""
    plain, html = (unified_line_ends(text) for text in body_parts(message))
    return plain if plain.strip() else html_to_text(html) if html.strip() else "", html


def unified_line_ends(text: str) -> str:
    """`text` with every line ending in `\\n`: a sender's CRLF and lone CR alike."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def body_parts(message: Message) -> tuple[str, str]:
    """The message's own text and HTML, leaving out attachments and forwarded messages."""
    plain: list[str] = []
    html: list[str] = []
    for part in body_leaves(message):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = decode_text(payload, part.get_content_charset())
        (html if part.get_content_subtype() == "html" else plain).append(text)
    return "\n".join(plain), "\n".join(html)


def body_leaves(part: Message) -> Iterator[Message]:
    if part.get_content_type() == "message/rfc822" or is_attachment_part(part):
        return
    if part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if part.get_content_subtype() == "alternative":
            # Of alternatives, the last text/plain and the last text/html are the best ones.
            children = pick_alternatives(children)
        for child in children:
            yield from body_leaves(child)
    elif part.get_content_type() in ("text/plain", "text/html"):
        yield part


def pick_alternatives(children: list[Message]) -> list[Message]:
    chosen: dict[str, Message] = {}
    for child in children:
        kind = child.get_content_type()
        if child.is_multipart():
            kind = "multipart"
        chosen[kind] = child
    return list(chosen.values())


def is_attachment_part(part: Message) -> bool:
    return content_disposition(part) == "attachment" or (
        not part.is_multipart() and filename_of(part) is not None
    )


def filename_of(part: Message) -> str | None:
    """The part's file name, None without one; '' when its RFC 2231 charset cannot decode
    it (`filename*=idna''...` makes the stdlib raise, and a NUL in the charset's name
    makes it raise ValueError), so it gets a made-up safe name."""
    try:
        return part.get_filename()
    except (UnicodeError, LookupError, ValueError):
        return ""


def content_disposition(part: Message) -> str:
    return str(part.get("content-disposition") or "").split(";", 1)[0].strip().lower()
