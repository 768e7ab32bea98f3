"""SMTP and LMTP intake: check recipients, spool the message, answer.

Receivers only spool. `handle_DATA` hands the bytes to `Spool.accept()` in a worker thread
and answers `250` only after they are fsynced; everything later happens in the pipeline.
Recipients other than the support address (and its `+token` forms) get `550 5.1.1`, so the
gateway is never an open relay. Errors become replies here and only here, and each
refusal is counted by kind in `refusals` for the figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.errors import SMTP_ANSWERED, ServerError, UnknownRecipient
from gateway.refusals import refused
from gateway.smtp_data import TolerantLMTP, TolerantSMTP
from gateway.spool import IntakeSource, Spool
from gateway.tokens import is_support_address

log = logging.getLogger(__name__)


class SupportHandler:
    """aiosmtpd handler for both SMTP and LMTP sessions."""

    def __init__(
        self,
        spool: Spool,
        support_address: str,
        source: IntakeSource,
        on_spooled: Callable[[], None],
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
        if not is_support_address(address, self.support_address):
            return refused(UnknownRecipient(f"no such mailbox here: {address}")).smtp_reply()
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            receipt = await asyncio.to_thread(
                self.spool.accept, raw, envelope_sender(envelope), envelope.rcpt_tos, self.source
            )
        except SMTP_ANSWERED as exc:
            log.info("refused message from %s: %s", envelope.mail_from, exc.reason)
            return self.reply(refused(exc).smtp_reply(), envelope)
        self.on_spooled()
        return self.reply(f"250 2.0.0 Queued as {receipt.spool_id}", envelope)

    def reply(self, line: str, envelope: Envelope) -> str:
        # LMTP answers DATA once per accepted recipient (RFC 2033 4.2).
        if self.source is IntakeSource.LMTP:
            return "\r\n".join([line] * max(1, len(envelope.rcpt_tos)))
        return line

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd's default reply names the exception class; say only what the client needs.
        log.exception("SMTP session error")
        return refused(ServerError("Temporary server error, please try again later")).smtp_reply()


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
