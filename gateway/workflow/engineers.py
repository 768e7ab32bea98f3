"""What an engineer's mail does: commands applied, an internal note or words relayed to the
customer (with the facts `#ask` asks for), and a receipt of what was done.

Only an engineer writing through their own reply token for the ticket (`Author.ENGINEER`)
has commands applied and words relayed; a `From:` header alone grants nothing, and such a
message is kept on the ticket as internal, its commands refused with the reason.
"""

from __future__ import annotations

from gateway.commands import Command, CommandName, read_commands
from gateway.errors import ChangeRefused, CommandRefused
from gateway.intake import Fact
from gateway.phrases import Phrase, status_zh
from gateway.trail import Act, Filing, engineer_participant, record, store_inbound, touch
from gateway.workflow.articles import kb_command, sent_articles
from gateway.workflow.intake import ask, asked_in, complete
from gateway.workflow.merging import merge
from gateway.workflow.people import add_person, drop_person
from gateway.workflow.states import (
    Applied,
    Author,
    CommandResult,
    Rules,
    S,
    transition,
)
from storage.models import (
    DONE_STATUSES,
    Event,
    EventKind,
    Message,
    Participant,
    Priority,
    Ticket,
    TicketStatus,
    Watch,
)


def keep_unverified(filing: Filing, ticket: Ticket, author: Author, rules: Rules) -> Applied:
    """Kept on the ticket as an internal message; nothing applied, nothing relayed.

    When the sender is a configured engineer, their receipt goes to that engineer's real
    address with their own reply token, so a forger learns nothing and the engineer can act.
    """
    inbound = filing.inbound
    text = inbound.mail.reply_text or inbound.mail.text
    message = store_inbound(filing, ticket, text, internal=True)
    if author is Author.UNVERIFIED_ENGINEER:
        why = Phrase(
            f"it did not come through your own reply address for ticket #{ticket.id}; "
            "reply to the ticket's notification to act on it",
            f"它不是通过您在工单 #{ticket.id} 上的专属回复地址发来的；请回复该工单的通知邮件来处理",
        )
    else:
        why = Phrase(
            "it came through another engineer's reply address",
            "它是通过另一位工程师的回复地址发来的",
        )
    engineer = (
        engineer_participant(filing.session, ticket, inbound.sender)
        if rules.engineer(inbound.sender) is not None
        else None
    )
    refused = (
        ()
        if inbound.automatic
        else tuple(
            CommandResult(command.line, False, why) for command in read_commands(text).commands
        )
    )
    event = record(filing, ticket, EventKind.UNVERIFIED_MESSAGE, message, f"{author.value}: {why}")
    return Applied(
        inbound,
        ticket,
        message,
        author,
        sender=engineer,
        events=(event,),
        results=refused,
        refused_because=why,
    )


def apply_engineer_message(
    filing: Filing, ticket: Ticket, engineer: Participant, rules: Rules
) -> Applied:
    """An authenticated engineer's reply: its commands, its note or public words."""
    inbound = filing.inbound
    if inbound.automatic:
        message = store_inbound(filing, ticket, inbound.mail.text, internal=True)
        event = record(filing, ticket, EventKind.AUTOMATIC_REPLY, message, inbound.automatic)
        return Applied(inbound, ticket, message, Author.ENGINEER, sender=engineer, events=(event,))
    # Writing on a ticket is working on it: its mail follows them from now on.
    engineer.watch = Watch.WORKING
    # Only the new part: without one, falling back to the whole text would relay the quoted
    # notification (other engineers' addresses, the command help) to the customer.
    block = read_commands(inbound.mail.reply_text)
    message = store_inbound(filing, ticket, block.body, internal=block.note)
    kind = EventKind.NOTE_ADDED if block.note else EventKind.REPLIED
    events = [record(filing, ticket, kind, message)]
    results = []
    for command in block.commands:
        result, changed = apply_command(filing, ticket, command, message, rules)
        results.append(result)
        events += changed
    sent = sent_articles(filing.session, ticket, events, rules.knowledge)
    relay = not block.note and bool(block.body or message.attachments or sent)
    results += [CommandResult(refusal.line, False, refusal.reason) for refusal in block.refusals]
    if block.note:
        results.append(
            CommandResult("#note", True, Phrase("kept as an internal note", "已作为内部备注保存"))
        )
    if relay and not any(c.name is CommandName.STATUS for c in block.commands):
        events += start_work_on_reply(filing, ticket, message)
    return Applied(
        inbound,
        ticket,
        message,
        Author.ENGINEER,
        sender=engineer,
        events=tuple(events),
        relay=relay,
        results=tuple(results),
        ask=asked_in(events),
        sent_articles=sent,
    )


def start_work_on_reply(filing: Filing, ticket: Ticket, message: Message) -> list[Event]:
    """An engineer's public reply puts a new or waiting ticket into work."""
    if ticket.status not in (S.NEW, S.WAITING):
        return []
    return [transition(filing, ticket, S.OPEN, message, detail="an engineer replied")]


def apply_command(
    filing: Filing, ticket: Ticket, command: Command, message: Message, rules: Rules
) -> tuple[CommandResult, list[Event]]:
    """Apply one command for the engineer who sent `message`: its result and its event."""
    name, argument = command.name, command.argument
    try:
        if name is CommandName.STATUS:
            outcome, event = set_status(filing, ticket, TicketStatus(argument), message)
        elif name is CommandName.PRIORITY:
            outcome, event = set_priority(filing, ticket, Priority(argument), message)
        elif name is CommandName.ASSIGN:
            outcome, event = assign(filing, ticket, argument, message, rules)
        elif name is CommandName.CC:
            outcome, event = add_person(filing, ticket, argument, message, rules)
        elif name is CommandName.UNCC:
            outcome, event = drop_person(filing, ticket, argument, message)
        elif name is CommandName.MERGE:
            outcome, event = merge(filing, ticket, int(argument), message)
        elif name in (CommandName.FOLLOW, CommandName.UNFOLLOW):
            outcome, event = set_watch(filing, ticket, name is CommandName.FOLLOW, message)
        elif name is CommandName.ASK:
            facts = tuple(Fact(word) for word in argument.split())
            outcome, event = ask(filing, ticket, facts, message, rules.intake)
        elif name is CommandName.INFO:
            outcome, event = complete(filing, ticket, message)
        elif name is CommandName.KB:
            outcome, event = kb_command(filing, ticket, argument, message, rules.knowledge)
        else:
            outcome, event = escalate(filing, ticket, message, rules)
    except ChangeRefused as exc:
        return CommandResult(command.line, False, exc.phrase), []
    return CommandResult(command.line, True, outcome), [event]


def set_status(
    filing: Act, ticket: Ticket, status: TicketStatus, message: Message | None
) -> tuple[Phrase, Event]:
    if ticket.status is status:
        raise CommandRefused(
            Phrase(
                f"the ticket is already {status.value}", f"工单已经是“{status_zh(status.value)}”"
            )
        )
    before = ticket.status
    # Resolved to closed is no reopen.
    reopens = before in DONE_STATUSES and status not in DONE_STATUSES
    kind = EventKind.REOPENED if reopens else EventKind.STATUS_CHANGED
    event = transition(filing, ticket, status, message, kind, "by command")
    zh = f"状态 {status_zh(before.value)} → {status_zh(status.value)}"
    return Phrase(f"status {before.value} → {status.value}", zh), event


def set_priority(
    filing: Filing, ticket: Ticket, priority: Priority, message: Message
) -> tuple[Phrase, Event]:
    if ticket.priority is priority:
        raise CommandRefused(
            Phrase(f"the priority is already {priority.value}", f"优先级已经是 {priority.value}")
        )
    change = f"{ticket.priority.value} → {priority.value}"
    ticket.priority = priority
    touch(ticket, filing.inbound.at)
    said = Phrase(f"priority {change}", f"优先级 {change}")
    return said, record(filing, ticket, EventKind.PRIORITY_CHANGED, message, change)


def assign(
    filing: Act, ticket: Ticket, address: str, message: Message | None, rules: Rules
) -> tuple[Phrase, Event]:
    if rules.engineer(address) is None:
        raise CommandRefused(
            Phrase(
                f"{address} is not one of the configured engineers", f"{address} 不是已配置的工程师"
            )
        )
    if ticket.assignee == address:
        raise CommandRefused(
            Phrase(f"the ticket is already assigned to {address}", f"工单已经指派给 {address}")
        )
    ticket.assignee = address
    touch(ticket, filing.at)
    engineer_participant(filing.session, ticket, address).watch = Watch.WORKING
    said = Phrase(f"assigned to {address}", f"已指派给 {address}")
    return said, record(filing, ticket, EventKind.ASSIGNED, message, address)


def escalate(
    filing: Filing, ticket: Ticket, message: Message, rules: Rules
) -> tuple[Phrase, Event]:
    specialists = rules.tier("L2")
    if not specialists:
        raise CommandRefused(
            Phrase(
                "no L2 engineers are configured (GATEWAY_ENGINEERS address:L2)",
                "没有配置 L2 工程师（GATEWAY_ENGINEERS address:L2）",
            )
        )
    if ticket.tier == "L2":
        raise CommandRefused(Phrase("the ticket is already escalated to L2", "工单已经升级到 L2"))
    ticket.tier = "L2"
    touch(ticket, filing.inbound.at)
    for engineer in specialists:
        specialist = engineer_participant(filing.session, ticket, engineer.address)
        if specialist.watch is not Watch.WORKING:
            specialist.watch = Watch.FOLLOWING
    names = ", ".join(e.address for e in specialists)
    event = record(filing, ticket, EventKind.ESCALATED, message, names)
    return Phrase(f"escalated to L2 ({names})", f"已升级到 L2（{names}）"), event


def set_watch(
    filing: Filing, ticket: Ticket, follow: bool, message: Message
) -> tuple[Phrase, Event]:
    """`#follow` / `#unfollow`: the sending engineer gets the ticket's mail, or no more."""
    engineer = engineer_participant(filing.session, ticket, filing.inbound.sender)
    if follow:
        engineer.watch = Watch.FOLLOWING
        outcome = Phrase("you get this ticket's mail", "您将收到本工单的邮件")
    else:
        engineer.watch = Watch.UNFOLLOWED
        outcome = Phrase(
            "you get no more mail about this ticket (but this receipt)",
            "您不再收到本工单的邮件（本回执除外）",
        )
    kind = EventKind.FOLLOWED if follow else EventKind.UNFOLLOWED
    return outcome, record(filing, ticket, kind, message, filing.inbound.sender)
