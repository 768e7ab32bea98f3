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
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from gateway.errors import GatewayError, UnknownRecipient
from gateway.spool import Spool
from gateway.tokens import plus_part

log = logging.getLogger(__name__)

# RFC 5321 caps lines at 1000 octets, but real clients send longer ones (HTML without line
# breaks, long base64 lines) and MTAs pass them on; refusing them would bounce customers.
LONG_LINE_LIMIT = 64 * 1024
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"


class CompactData(SMTP):
    """DATA read into one buffer instead of aiosmtpd's list of lines.

    aiosmtpd keeps every line as a bytearray of its own until the end of the message, then
    joins them: a 34 MiB message of base64 lines peaked at six times its size in the
    listener. Here the peak is the buffer and its one copy. The protocol is aiosmtpd's:
    only CRLF ends a line (so a bare LF before a dot cannot end the message), a leading dot
    is removed, and the reply to an over-long line or message waits for the end of DATA.
    """

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
        content, refusal = await self.read_content()
        if refusal:
            await self.push(refusal)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    async def read_content(self) -> tuple[bytes, str]:
        """The message up to the lone dot, unstuffed; or b"" and the reply refusing it."""
        buffer = bytearray()
        received = 0
        refusal = ""
        in_line = False  # within a line longer than the reader's limit
        while True:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:  # the client went away mid-message
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:
                line = await self._reader.read(exc.consumed)
                refusal = refusal or TOO_LONG
            if not in_line and line == b".\r\n":
                break
            in_line = not line.endswith(b"\r\n")
            if len(line) > self.line_length_limit:
                refusal = refusal or TOO_LONG
            received += len(line)
            if not refusal and self.data_size_limit and received > self.data_size_limit:
                refusal = "552 Error: Too much mail data"
            if refusal:
                buffer.clear()  # drained, not kept
                continue
            buffer += line[1:] if line.startswith(b".") else line
        return bytes(buffer), refusal


class TolerantSMTP(CompactData):
    line_length_limit = LONG_LINE_LIMIT


class TolerantLMTP(CompactData, LMTP):
    line_length_limit = LONG_LINE_LIMIT


def is_support_recipient(address: str, support_address: str) -> bool:
    """True for the support address and its `local+anything@domain` forms, in any case."""
    return plus_part(address, support_address) is not None


class SupportHandler:
    """aiosmtpd handler for both SMTP and LMTP sessions."""

    def __init__(self, spool: Spool, support_address: str, source: str,
                 on_spooled: Callable[[], None]) -> None:
        self.spool = spool
        self.support_address = support_address
        self.source = source
        self.on_spooled = on_spooled

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
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


def smtp_factory(handler: SupportHandler, max_message_bytes: int,
                 lmtp: bool = False) -> Callable[[], SMTP]:
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
