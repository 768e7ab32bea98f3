"""aiosmtpd's SMTP and LMTP servers with two methods replaced: the DATA reader and the
reading of envelope addresses.

A fork of library internals (`smtp_DATA`, `_getaddr`, and the private names they call),
kept only for the aiosmtpd versions in `AIOSMTPD_VERSIONS`; `tests/test_intake.py` fails
on any other, and on any of those private names going missing. What keeps the DATA reader
is the listener's peak memory for one large message (`bench/throughput.py --big`, figures in
`bench/README.md`): aiosmtpd keeps each line of a message as an object of its own until its
end.
"""

from __future__ import annotations

import asyncio
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, syntax

from gateway.errors import MessageTooLarge
from gateway.refusals import refused

# The aiosmtpd releases this fork was checked against (pyproject.toml pins the same).
AIOSMTPD_VERSIONS = ">=1.4.6,<1.5"
# The private aiosmtpd names the fork calls.
AIOSMTPD_INTERNALS = (
    "_set_post_data_state",
    "_call_handler_hook",
    "check_helo_needed",
    "check_auth_needed",
    "_getaddr",
    "smtp_DATA",
    "local_part_limit",
)

# RFC 5321 caps lines at 1000 octets, but real clients send longer ones (HTML without line
# breaks, long base64 lines) and MTAs pass them on; refusing them would bounce customers.
# This bounds command lines; DATA, read in pieces, takes lines of any length.
LONG_LINE_LIMIT = 64 * 1024

# The stdlib's address parser also fails with these on some malformed addresses:
# IndexError for `alice@`, AttributeError for `<a@[>` and `"`, UnboundLocalError for
# `a@[` and a tab.
ADDRESS_PARSER_FAILURES = (HeaderParseError, IndexError, AttributeError, UnboundLocalError)

END_OF_DATA = b"\r\n.\r\n"
# The most of the marker's first bytes that the bytes read so far can end with.
MARKER_START = len(END_OF_DATA) - 1


def marker_started(tail: bytes) -> int:
    """How many of the end marker's first bytes `tail` ends with (at most four)."""
    return next(
        (size for size in range(MARKER_START, 0, -1) if tail.endswith(END_OF_DATA[:size])), 0
    )


class CompactData(SMTP):
    """DATA read in large pieces into one buffer, not line by line.

    The reader hands over everything up to the first "<CRLF>.<CRLF>" (a bare LF or CR
    before the dot does not end the message: no smuggling), leading dots are removed
    afterwards in one pass, and a message over the size limit is drained and answered
    `552` after its end, as RFC 5321 4.2.5 implies.
    """

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self.read_content()
        if content is None:
            await self.push(refused(self.too_large()).smtp_reply())
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def too_large(self) -> MessageTooLarge:
        return MessageTooLarge(f"message exceeds the limit of {self.data_size_limit} bytes")

    async def read_content(self) -> bytes | None:
        """The message up to the lone dot, unstuffed; None when it was over the limit.

        The reader is asked for the whole end marker, CRLF dot CRLF, not for dot CRLF:
        that one ends every line that ends a sentence, and each piece handed over moves
        the rest of the reader's buffer. Whatever was read last may end in the marker's
        first bytes, the CRLF before DATA's content among them, so exactly the bytes that
        would complete it are read first.
        """
        buffer = bytearray()
        received = 0
        tail = b"\r\n"  # the last bytes read; DATA itself ends a line
        ends = False
        while not ends:
            piece, ends = await self.read_piece(marker_started(tail))
            tail = (tail + piece[-MARKER_START:])[-MARKER_START:]
            received += len(piece)
            if self.over_limit(received):
                buffer.clear()  # drained, not kept
            else:
                buffer += piece
        if self.over_limit(received):
            return None
        return unstuffed(buffer)

    async def read_piece(self, started: int) -> tuple[bytes, bool]:
        """The next bytes of the content, and whether they end it."""
        try:
            if started:
                piece = await self._reader.readexactly(len(END_OF_DATA) - started)
                return piece, piece == END_OF_DATA[started:]
            return await self._reader.readuntil(END_OF_DATA), True
        except (asyncio.CancelledError, asyncio.IncompleteReadError):  # client gone
            self._writer.close()
            raise
        except asyncio.LimitOverrunError as exc:  # no marker yet in the reader's window
            return await self._reader.read(exc.consumed), False

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of a MAIL or RCPT argument and the parameters after it, as aiosmtpd
        parses them, or (None, None) for a malformed one. aiosmtpd's own defines a
        `typing.Protocol` class on every call, and lets through what the stdlib's parser
        raises besides HeaderParseError, which became a `451` and a traceback instead of a
        syntax error."""
        if not arg:
            return "", ""
        parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
        try:
            address, rest = parse(arg)
            addr = address.addr_spec
        except ADDRESS_PARSER_FAILURES:
            return None, None
        local_part = addr.rpartition("@")[0]
        if self.local_part_limit and len(local_part) > self.local_part_limit:
            return None, None
        return addr, rest

    def over_limit(self, received: int) -> bool:
        # As aiosmtpd counts: the message with its stuffing dots, not the final dot line.
        limit = self.data_size_limit
        return limit is not None and limit > 0 and received - len(b".\r\n") > limit


def unstuffed(buffer: bytearray) -> bytes:
    """The content without its dot line and its stuffing dots (RFC 5321 4.5.2)."""
    del buffer[-3:]  # the dot line; the CRLF before it ends the message's last line
    content = bytes(buffer)
    buffer.clear()
    if content.startswith(b"."):
        content = content[1:]
    return content.replace(b"\r\n.", b"\r\n")


class TolerantSMTP(CompactData):
    line_length_limit = LONG_LINE_LIMIT


class TolerantLMTP(CompactData, LMTP):
    line_length_limit = LONG_LINE_LIMIT
