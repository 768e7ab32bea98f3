"""SMTP and LMTP intake: check recipients, spool the message, answer.

Receivers only spool. `handle_DATA` hands the bytes to `Spool.accept()` in a worker thread
and answers `250` only after they are fsynced; everything later happens in the pipeline.
Recipients other than the support address (and its `+token` forms) get `550 5.1.1`, so the
gateway is never an open relay. Errors become replies here and only here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from gateway.errors import GatewayError, UnknownRecipient
from gateway.spool import Spool
from gateway.tokens import plus_part

log = logging.getLogger(__name__)

# RFC 5321 caps lines at 1000 octets, but real clients send longer ones (HTML without line
# breaks, long base64 lines) and MTAs pass them on; refusing them would bounce customers.
# This bounds command lines; DATA, read in pieces, takes lines of any length.
LONG_LINE_LIMIT = 64 * 1024


# The stdlib's address parser also fails with these on some malformed addresses:
# IndexError for `alice@`, AttributeError for `<a@[>` and `"`.
ADDRESS_PARSER_FAILURES = (HeaderParseError, IndexError, AttributeError)


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

    aiosmtpd reads DATA a line at a time and keeps each line as a bytearray of its own
    until the end: for a 34 MiB message of base64 lines the listener peaked at 209 MiB
    (143 MiB now), and the per-line work was most of its time for large messages.
    Here the reader hands over everything up to the first "<CRLF>.<CRLF>" (a bare LF or CR
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
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def read_content(self) -> bytes | None:
        """The message up to the lone dot, unstuffed; None when it was over the limit.

        The reader is asked for the whole end marker, CRLF dot CRLF, not for dot CRLF:
        that one ends every line that ends a sentence, and each piece handed over moves
        the rest of the reader's buffer (a 100 KB log of such lines cost ~1,000 pieces).
        Whatever was read last may end in the marker's first bytes, the CRLF before DATA's
        content among them, so exactly the bytes that would complete it are read first.
        """
        buffer = bytearray()
        received = 0
        tail = b"\r\n"  # the last bytes read; DATA itself ends a line
        while True:
            started = marker_started(tail)
            try:
                if started:
                    piece = await self._reader.readexactly(len(END_OF_DATA) - started)
                    ends = piece == END_OF_DATA[started:]
                else:
                    piece = await self._reader.readuntil(END_OF_DATA)
                    ends = True
            except (asyncio.CancelledError, asyncio.IncompleteReadError):  # client gone
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:  # no marker yet in the reader's window
                piece = await self._reader.read(exc.consumed)
                ends = False
            tail = (tail + piece[-MARKER_START:])[-MARKER_START:]
            received += len(piece)
            if self.over_limit(received):
                buffer.clear()  # drained, not kept
            else:
                buffer += piece
            if ends:
                break
        if self.over_limit(received):
            return None
        del buffer[-3:]  # the dot line; the CRLF before it ends the message's last line
        content = bytes(buffer)
        del buffer
        if content.startswith(b"."):
            content = content[1:]
        return content.replace(b"\r\n.", b"\r\n")

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of a MAIL or RCPT argument and the parameters after it, as aiosmtpd
        parses them, or (None, None) for a malformed one. aiosmtpd's own defines a
        `typing.Protocol` class on every call (about 15 of the 50 µs each MAIL and RCPT
        spent here), and lets through what the stdlib's parser raises besides
        HeaderParseError, which became a `451` and a traceback instead of a syntax error."""
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


class TolerantSMTP(CompactData):
    line_length_limit = LONG_LINE_LIMIT


class TolerantLMTP(CompactData, LMTP):
    line_length_limit = LONG_LINE_LIMIT


def is_support_recipient(address: str, support_address: str) -> bool:
    """True for the support address and its `local+anything@domain` forms, in any case."""
    return plus_part(address, support_address) is not None


class SupportHandler:
    """aiosmtpd handler for both SMTP and LMTP sessions."""

    def __init__(
        self, spool: Spool, support_address: str, source: str, on_spooled: Callable[[], None]
    ) -> None:
        self.spool = spool
        self.support_address = support_address
        self.source = source
        self.on_spooled = on_spooled

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not is_support_recipient(address, self.support_address):
            return UnknownRecipient(f"no such mailbox here: {address}").smtp_reply()
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            receipt = await asyncio.to_thread(
                self.spool.accept, raw, envelope_sender(envelope), envelope.rcpt_tos, self.source
            )
        except GatewayError as exc:
            log.info("refused message from %s: %s", envelope.mail_from, exc.reason)
            return self.reply(exc.smtp_reply(), envelope)
        self.on_spooled()
        return self.reply(f"250 2.0.0 Queued as {receipt.spool_id}", envelope)

    def reply(self, line: str, envelope: Envelope) -> str:
        # LMTP answers DATA once per accepted recipient (RFC 2033 4.2).
        if self.source == "lmtp":
            return "\r\n".join([line] * max(1, len(envelope.rcpt_tos)))
        return line

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default reply names the exception class; say only what the client needs.
        log.exception("SMTP session error")
        return "451 4.3.0 Temporary server error, please try again later"


def envelope_sender(envelope: Envelope) -> str:
    """The reverse-path without brackets; aiosmtpd reports the null one as "<>"."""
    sender = (envelope.mail_from or "").strip()
    return "" if sender == "<>" else sender.strip("<>")


def smtp_factory(
    handler: SupportHandler, max_message_bytes: int, lmtp: bool = False
) -> Callable[[], SMTP]:
    """A protocol factory for `loop.create_server`."""
    protocol: Any = TolerantLMTP if lmtp else TolerantSMTP

    def build() -> SMTP:
        server: SMTP = protocol(
            handler,
            data_size_limit=max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="support-gateway",
        )
        return server

    return build
