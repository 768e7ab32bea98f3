"""The pipeline: one spooled message's whole way to its ticket, in order.

`Pipeline.file` is the order of work for one message, each step a call to the module named
after its stage: parse (`parse_ahead`, done before or now), classify automatic mail
(`loops`), find the ticket (`threader`), apply (`workflow`, or `bounces` for a delivery
report), suggest articles (`suggestions`), announce (`notifications`), record
(`receipts`). It runs in the transaction of the
ledger it is given, so a message's ticket change, its mail and its receipt commit together;
the `executor` decides how many messages share one, and what becomes of one that fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gateway import loops, workflow
from gateway.bounces import file_bounce
from gateway.clock import Clock
from gateway.errors import MessageRefused, SpoolUnavailable
from gateway.intake import Findings
from gateway.notifications import Notifier
from gateway.parse_ahead import ParseResult, Readable, Refused, Unavailable
from gateway.parsing import ParsedMail
from gateway.receipts import Ledger, Outcome
from gateway.spool import Receipt
from gateway.suggestions import suggest
from gateway.threader import ThreadRules, find_ticket
from gateway.trail import Filing
from gateway.workflow import Rules

NO_SENDER = "no usable sender: no From, Sender or Reply-To address and no envelope sender"


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The stages one message goes through after the spool, and what they need."""

    thread_rules: ThreadRules
    rules: Rules
    notifier: Notifier
    bounce_hold: timedelta
    clock: Clock

    def file(self, ledger: Ledger, receipt: Receipt, parsed: ParseResult) -> Outcome:
        """Parse → classify automatic mail → find the ticket → apply → suggest articles →
        announce → record, in the ledger's transaction."""
        mail, first_mail, ahead = readable(parsed)
        inbound = loops.classify(receipt, mail, self.rules.support_address, self.clock.now())
        if not inbound.sender:
            raise MessageRefused(NO_SENDER)
        if earlier := ledger.earlier_outcome(receipt, mail.dedupe_key, inbound.at):
            return earlier
        filing = Filing(ledger.session, inbound, first_mail)
        match = find_ticket(ledger.session, inbound, self.thread_rules)
        if mail.is_bounce:
            kept = file_bounce(filing, match.ticket_id, self.bounce_hold)
            return ledger.record_report(inbound, kept)
        if match.ticket_id is None and (
            unfiled := loops.why_no_new_ticket(inbound, self.rules.support_address)
        ):
            return ledger.record_unfiled(inbound, unfiled)
        applied = workflow.apply(filing, match, self.rules)
        applied = suggest(ledger.session, applied, self.rules.knowledge, ahead)
        self.notifier.announce(ledger.session, applied)
        return ledger.record(applied, match)


def readable(parsed: ParseResult) -> tuple[ParsedMail, Findings | None, object]:
    """The parsed mail (with its reading as a first mail and what was worked out from it,
    if it was read ahead); why it is not, as the error the executor answers."""
    match parsed:
        case Readable(mail, first_mail, ahead):
            return mail, first_mail, ahead
        case Refused(reason):
            raise MessageRefused(reason)
        case Unavailable(reason):
            raise SpoolUnavailable(reason)
    raise AssertionError(parsed)
