"""What the knowledge base does on a ticket: an engineer's `#kb` commands, and a customer's
"that solved it" to the articles their acknowledgement suggested.

`#kb SLUG` sends an article with the engineer's reply; `#kb new` drafts an article from the
ticket (the customer's question and the engineer's answer, their details redacted) for a
person to review; `#kb outdated SLUG why` flags an article, which is then not suggested
until its file is edited. A customer who says an article solved it closes the ticket as
confirmed, and the trail says which article did.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.confirmation import Confirmation, classify_confirmation
from gateway.errors import ChangeRefused
from gateway.intake import Fact
from gateway.knowledge import (
    Draft,
    Found,
    KnowledgeBase,
    article_by_slug,
    article_named,
    points_at_an_article,
    published_article,
    write_draft,
)
from gateway.knowledge.articles import stem_of
from gateway.knowledge.snapshot import changed
from gateway.knowledge.usage import suggested_slugs
from gateway.phrases import Phrase
from gateway.setting_values import LANGUAGES
from gateway.trail import Act, Filing, record
from gateway.workflow.intake import known_value
from gateway.workflow.states import S, transition
from storage.models import (
    OPEN_STATUSES,
    Direction,
    Event,
    EventKind,
    KbArticle,
    Message,
    ParticipantRole,
    Ticket,
    TicketStatus,
)

KB_OFF = Phrase(
    "the knowledge base is off: GATEWAY_KB_DIR is not set",
    "知识库未开启：没有设置 GATEWAY_KB_DIR",
)
# The ticket's facts that identify the customer, redacted from a draft wherever they appear.
IDENTIFYING = (Fact.APP_ID, Fact.CHANNEL, Fact.UID)


def kb_command(
    act: Act, ticket: Ticket, argument: str, message: Message, knowledge: KnowledgeBase
) -> tuple[Phrase, Event]:
    """One `#kb` command (`commands.read_kb_command` normalised it)."""
    if not knowledge.enabled:
        raise ChangeRefused(KB_OFF)
    if argument == "new":
        return draft_article(act, ticket, message, knowledge)
    if argument.startswith("outdated "):
        _, slug, *why = argument.split(maxsplit=2)
        return flag_outdated(act, ticket, slug, " ".join(why), message)
    row = published_article(act.session, argument, ticket.language)
    if row is None:
        raise ChangeRefused(no_article(argument))
    done = Phrase(f"article {row.slug} sent to the customer", f"已把文章 {row.slug} 发给客户")
    return done, record(act, ticket, EventKind.ARTICLE_SENT, message, row.slug)


def no_article(slug: str) -> Phrase:
    return Phrase(
        f"no published article {slug} (`gateway kb list` lists them)",
        f"没有已发布的文章 {slug}（`gateway kb list` 列出全部文章）",
    )


def sent_articles(
    session: Session, ticket: Ticket, events: Sequence[Event], knowledge: KnowledgeBase
) -> tuple[Found, ...]:
    """The articles `#kb SLUG` sent with a message, as its mail lists them."""
    sent = [
        knowledge.sendable(session, event.detail, ticket.language)
        for event in events
        if event.type is EventKind.ARTICLE_SENT
    ]
    return tuple(found for found in sent if found is not None)


def flag_outdated(
    act: Act, ticket: Ticket, slug: str, why: str, message: Message
) -> tuple[Phrase, Event]:
    row = article_by_slug(act.session, slug)
    if row is None:
        raise ChangeRefused(no_article(slug))
    row.outdated = why or f"flagged by {act.actor} on ticket #{ticket.id}"
    row.outdated_at = act.at
    changed(act.session)
    done = Phrase(
        f"article {slug} flagged for review; it is not suggested until its file is edited",
        f"文章 {slug} 已标记为需要复查；修改文件之前不会再被推荐",
    )
    return done, record(act, ticket, EventKind.ARTICLE_OUTDATED, message, f"{slug} {why}".strip())


def draft_article(
    act: Act, ticket: Ticket, message: Message, knowledge: KnowledgeBase
) -> tuple[Phrase, Event]:
    """A draft from the customer's first words and the engineer's answer: this message's
    words, else their last public reply."""
    answer = message.text.strip() or last_answer(ticket)
    if not answer:
        raise ChangeRefused(
            Phrase(
                "#kb new needs an answer: write it in this message, or reply to the customer first",
                "#kb new 需要一个解答：写在这封邮件里，或先回复客户",
            )
        )
    first = next((m for m in ticket.messages if m.direction is Direction.IN), None)
    draft = Draft(
        ticket.id,
        ticket.subject,
        ticket.language if ticket.language in LANGUAGES else "en",
        known_value(ticket, Fact.PLATFORM),
        first.text if first is not None else "",
        answer,
    )
    try:
        slug = write_draft(knowledge.folder, draft, identifying(ticket))
    except OSError as exc:
        where = f"{knowledge.folder}: {exc.strerror}"
        raise ChangeRefused(f"the draft could not be written to {where}") from None
    done = Phrase(
        f"draft article {slug} written for review (status: draft)",
        f"已写好草稿文章 {slug}，等待复查（status: draft）",
    )
    return done, record(act, ticket, EventKind.ARTICLE_DRAFTED, message, slug)


def identifying(ticket: Ticket) -> list[str]:
    """What names the customer on this ticket, to be taken out of a draft wherever it
    appears: the people on it, by address and name, and its identifying facts."""
    customers = [p for p in ticket.participants if p.role is not ParticipantRole.ENGINEER]
    people = [p.address for p in customers] + [p.name for p in customers]
    facts = [known_value(ticket, fact) for fact in IDENTIFYING]
    names = [ticket.requester, ticket.requester_name, *people, *facts]
    return [name for name in names if name]


def last_answer(ticket: Ticket) -> str:
    replies = [
        e.message.text
        for e in ticket.events
        if e.type is EventKind.REPLIED and e.message is not None and e.message.text.strip()
    ]
    return replies[-1] if replies else ""


# -- the customer's answer ------------------------------------------------------------------

# While a ticket is in one of these, its customer may say an article solved it.
SOLVABLE = frozenset({*OPEN_STATUSES, TicketStatus.RESOLVED})


def suggested_to(ticket: Ticket) -> list[str]:
    """The slugs suggested on the ticket, first suggestion first."""
    return [
        slug
        for event in ticket.events
        if event.type is EventKind.ARTICLES_SUGGESTED
        for slug in suggested_slugs(event.detail)
    ]


def was_suggested(ticket: Ticket, slug: str) -> bool:
    """Whether the article, or a translation of it, was suggested to the ticket."""
    return stem_of(slug) in {stem_of(s) for s in suggested_to(ticket)}


def solved_by_article(
    filing: Filing, ticket: Ticket, text: str, message: Message
) -> list[Event] | None:
    """The events of a customer saying a suggested article solved it; None when the reply
    says no such thing.

    The reply must confirm as a confirmation does (`gateway.confirmation`), and name a
    suggested article or point at one, unless no engineer has answered yet: then nothing
    else can have solved it. Which article: the one it names, else the first suggested.
    """
    slugs = suggested_to(ticket)
    subject = filing.inbound.mail.subject
    if (
        not slugs
        or ticket.status not in SOLVABLE
        or classify_confirmation(text, subject) is not Confirmation.FIXED
    ):
        return None
    query = select(KbArticle.slug, KbArticle.title).where(KbArticle.slug.in_(slugs))
    titles = {slug: title for slug, title in filing.session.execute(query)}
    named = article_named(text, [(slug, titles.get(slug, "")) for slug in slugs])
    answered = any(e.type is EventKind.REPLIED for e in ticket.events)
    if named is None and answered and not points_at_an_article(text):
        return None
    slug = named or slugs[0]
    return close_as_solved(
        filing, ticket, slug, message, f"the customer says article {slug} solved it"
    )


def close_as_solved(
    act: Act, ticket: Ticket, slug: str, message: Message | None, why: str
) -> list[Event]:
    """The ticket closed as confirmed, and the trail saying which article solved it."""
    closed = transition(act, ticket, S.CLOSED, message, EventKind.CONFIRMED, why)
    return [closed, record(act, ticket, EventKind.SOLVED_BY_ARTICLE, message, slug)]
