"""The database schema: tickets, their messages, attachments, events, participants, the
outbox of mail to send, the receipt log of every message the spool handed over, blobs, and
the knowledge base's index. The column types they use are in `storage.columns`.

Schema changes go through Alembic migrations in `storage/migrations/`.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.columns import BoundedString, StorableText, UTCDateTime, readable_enum

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TicketStatus(enum.Enum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


# A ticket someone still works on, and one whose work is done (until a reopen).
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.WAITING)
DONE_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class Priority(enum.Enum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class EventKind(enum.StrEnum):
    """What one event on a ticket's trail records."""

    CREATED = "created"
    FOLLOWED_UP = "followed_up"
    MESSAGE_ADDED = "message_added"
    AUTOMATIC_REPLY = "automatic_reply"
    UNVERIFIED_MESSAGE = "unverified_message"
    REPLIED = "replied"
    NOTE_ADDED = "note_added"
    STATUS_CHANGED = "status_changed"
    REOPENED = "reopened"
    CONFIRMED = "confirmed"
    AUTO_CLOSED = "auto_closed"
    PRIORITY_CHANGED = "priority_changed"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    BOUNCED = "bounced"
    MAIL_SUPPRESSED = "mail_suppressed"
    DELIVERY_FAILED = "delivery_failed"
    RELATED = "related"
    MERGED = "merged"
    PARTICIPANT_ADDED = "participant_added"
    PARTICIPANT_DROPPED = "participant_dropped"
    PEOPLE_NOT_ADDED = "people_not_added"
    SENDER_NOT_FROM = "sender_not_from"
    FOLLOWED = "followed"
    UNFOLLOWED = "unfollowed"
    # An inbound message whose MIME structure was broken: its text read from the raw body.
    STRUCTURE_BROKEN = "structure_broken"
    # The engineers were told of the ticket again (`gateway notify`).
    NOTIFIED = "notified"
    # The intake: the customer was asked for facts (detail: their names), a fact was learned
    # or corrected (detail: name, value, where from), an engineer declared it complete.
    INFO_REQUESTED = "info_requested"
    FACT_LEARNED = "fact_learned"
    INTAKE_COMPLETED = "intake_completed"
    # Service levels (`gateway.service_clocks`): each once per target, priority and round.
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    DIGEST_SENT = "digest_sent"
    # An operator revoked every signed link to the ticket's pages (detail: the new version).
    LINKS_REVOKED = "links_revoked"
    # The knowledge base (`gateway.knowledge`), each with the article's slug as detail:
    # articles suggested for a new ticket (their slugs, space-separated), the one the
    # customer said solved it, an article opened from a suggestion's link, one an engineer
    # sent (`#kb SLUG`), drafted from the ticket (`#kb new`) or flagged for review (`#kb
    # outdated`).
    ARTICLES_SUGGESTED = "articles_suggested"
    SOLVED_BY_ARTICLE = "solved_by_article"
    ARTICLE_OPENED = "article_opened"
    ARTICLE_SENT = "article_sent"
    ARTICLE_DRAFTED = "article_drafted"
    ARTICLE_OUTDATED = "article_outdated"


# The actor of changes nobody made by hand (auto-close, suppressed or failed mail).
SYSTEM_ACTOR = "system"
# The actor of changes made with a `gateway` command: `operator:<login name>`, or
# `operator` alone when the system knows no name for the user running it.
OPERATOR_ACTOR = "operator"


def is_operator(actor: str) -> bool:
    return actor.partition(":")[0] == OPERATOR_ACTOR


class Direction(enum.Enum):
    IN = "in"
    OUT = "out"


class ParticipantRole(enum.Enum):
    REQUESTER = "requester"
    CC = "cc"
    ENGINEER = "engineer"
    # In copy of the customer's mail but not added (over the limit, or dropped by `#uncc`):
    # may write to the ticket, but is sent nothing.
    COPIED = "copied"


class Watch(enum.Enum):
    """How an engineer on a ticket follows its mail."""

    # Told of it when it was new: its mail only while nobody works on it.
    NOTIFIED = "notified"
    # Assigned to it, or wrote on it: its mail until they unfollow.
    WORKING = "working"
    # Chose to (`#follow`), or had it escalated to them.
    FOLLOWING = "following"
    # Chose not to (`#unfollow`).
    UNFOLLOWED = "unfollowed"


class OutboxState(enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class ReceiptOutcome(enum.Enum):
    NEW_TICKET = "new_ticket"
    REPLY = "reply"
    DUPLICATE = "duplicate"
    # Automatic mail about no ticket of ours (a delivery report, a vacation reply, our own
    # mail come back): recorded, no ticket.
    REPORT = "report"
    QUARANTINED = "quarantined"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_changed", "status", "status_changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[TicketStatus] = mapped_column(readable_enum(TicketStatus), index=True)
    priority: Mapped[Priority] = mapped_column(readable_enum(Priority), default=Priority.P3)
    subject: Mapped[str] = mapped_column(BoundedString(998))
    requester: Mapped[str] = mapped_column(BoundedString(320), index=True)
    requester_name: Mapped[str] = mapped_column(BoundedString(200), default="")
    language: Mapped[str] = mapped_column(BoundedString(8), default="en")
    assignee: Mapped[str | None] = mapped_column(BoundedString(320))
    # Which engineers' tier works on it: L1, or L2 once escalated.
    tier: Mapped[str] = mapped_column(BoundedString(2), default="L1")
    reopen_count: Mapped[int] = mapped_column(default=0)
    # When the status last changed: auto-close and the reopen window count from here.
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The closed ticket this one follows up, when a reply came after the reopen window.
    follow_up_of: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # The ticket this one was merged into (`#merge`): mail to this one goes there.
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # What the report is about (`gateway.intake.facts.Kind`), which decides the facts it needs.
    kind: Mapped[str] = mapped_column(BoundedString(16), default="other", server_default="other")
    # When the customer was first asked for missing facts: never asked twice automatically.
    info_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An engineer said the intake is complete (`#info ok`): nothing is missing any more.
    intake_complete: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Where the priority came from: the customer's words, a sender rule or a command.
    priority_reason: Mapped[str] = mapped_column(StorableText(), default="", server_default="")
    # The customer's offset from UTC in minutes, from their first mail's Date: "your time".
    customer_utc_offset: Mapped[int | None] = mapped_column(Integer)
    # The service-level clocks as the event log last left them (`gateway.service_clocks`):
    # the due times engineers' mail shows, and the next moment `due` has work for it.
    response_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_paused: Mapped[bool] = mapped_column(default=False, server_default=false())
    service_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # A new ticket no engineer was on shift for: it waits for the next shift's digest.
    awaiting_shift_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # Part of every signed link to the ticket's pages: raising it revokes them all.
    links_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="ticket", order_by="Event.id", cascade="all, delete-orphan"
    )
    participants: Mapped[list[Participant]] = relationship(
        back_populates="ticket", order_by="Participant.id", cascade="all, delete-orphan"
    )
    facts: Mapped[list[TicketFact]] = relationship(
        back_populates="ticket", order_by="TicketFact.id", cascade="all, delete-orphan"
    )


class Participant(Base):
    """Someone on a ticket; reply tokens are bound to one participant."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    address: Mapped[str] = mapped_column(BoundedString(320))
    role: Mapped[ParticipantRole] = mapped_column(readable_enum(ParticipantRole))
    # For engineers: whether the ticket's mail reaches them.
    watch: Mapped[Watch] = mapped_column(
        readable_enum(Watch), default=Watch.NOTIFIED, server_default=Watch.NOTIFIED.value
    )
    # What the person is greeted by: the name they sign with, else their display name.
    name: Mapped[str] = mapped_column(BoundedString(200), default="")

    ticket: Mapped[Ticket] = relationship(back_populates="participants")


class Message(Base):
    """A mail on a ticket, received or sent. `message_id` is the RFC 5322 Message-ID."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    direction: Mapped[Direction] = mapped_column(readable_enum(Direction))
    message_id: Mapped[str] = mapped_column(BoundedString(998, max_bytes=2000))
    from_address: Mapped[str] = mapped_column(BoundedString(320))
    from_name: Mapped[str] = mapped_column(BoundedString(200), default="")
    to_addresses: Mapped[str] = mapped_column(StorableText(), default="")
    subject: Mapped[str] = mapped_column(BoundedString(998), default="")
    text: Mapped[str] = mapped_column(StorableText(), default="")
    # The raw message in the blob store (inbound: as received; outbound: as rendered).
    raw_sha256: Mapped[str | None] = mapped_column(BoundedString(64))
    automatic: Mapped[bool] = mapped_column(default=False)
    # Internal: notes and engineers' mail that was not relayed; never shown to the customer.
    internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id", cascade="all, delete-orphan"
    )


class Attachment(Base):
    """A file from a message; its bytes are in the blob store under `sha256`."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(BoundedString(255))
    content_type: Mapped[str] = mapped_column(BoundedString(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(BoundedString(64))
    content_id: Mapped[str | None] = mapped_column(BoundedString(998))
    inline: Mapped[bool] = mapped_column(default=False)

    message: Mapped[Message] = relationship(back_populates="attachments")


class Event(Base):
    """One change on a ticket: the trail `gateway show` prints."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    type: Mapped[EventKind] = mapped_column(readable_enum(EventKind, length=32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(BoundedString(320))
    from_status: Mapped[TicketStatus | None] = mapped_column(readable_enum(TicketStatus))
    to_status: Mapped[TicketStatus | None] = mapped_column(readable_enum(TicketStatus))
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    detail: Mapped[str] = mapped_column(StorableText(), default="")
    # The ticket an event happened on, when `#merge` moved it here: its trail is kept, but
    # its clocks are not this ticket's.
    moved_from: Mapped[int | None] = mapped_column(Integer)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    message: Mapped[Message | None] = relationship()


class TicketFact(Base):
    """One value of one fact of a ticket, as learned: a fact's value is its latest row, and
    the rows before it are its history."""

    __tablename__ = "facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # A `gateway.intake.facts.Fact` name.
    name: Mapped[str] = mapped_column(BoundedString(32))
    # `unknown` when the customer said they do not know; logs: SHA-256s, space-separated.
    value: Mapped[str] = mapped_column(StorableText())
    # Where it was read (`gateway.intake.facts.Source`), and the words it came from.
    source: Mapped[str] = mapped_column(BoundedString(32))
    excerpt: Mapped[str] = mapped_column(StorableText(), default="")
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    learned_at: Mapped[datetime] = mapped_column(UTCDateTime())

    ticket: Mapped[Ticket] = relationship(back_populates="facts")
    message: Mapped[Message | None] = relationship()


class OutboxMail(Base):
    """A rendered mail waiting for (or done with) delivery to the relay."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        # The limits on automatic mail count what went to one address lately.
        Index("ix_outbox_recipient", "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    mail_from: Mapped[str] = mapped_column(BoundedString(320))
    recipient: Mapped[str] = mapped_column(BoundedString(320))
    # Which notice it is ("acknowledgement", ...): RFC 3834 limits how often some may go.
    kind: Mapped[str] = mapped_column(BoundedString(32), default="", server_default="")
    content: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[OutboxState] = mapped_column(
        readable_enum(OutboxState), default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(StorableText(), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    ticket: Mapped[Ticket | None] = relationship()
    message: Mapped[Message | None] = relationship()


class Receipt(Base):
    """What became of one spooled message: the audit log of intake.

    `dedupe_key` makes a second delivery of the same message a no-op (a unique constraint,
    so two processes racing on one message still record it once).
    """

    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    spool_id: Mapped[str] = mapped_column(BoundedString(80), unique=True)
    raw_sha256: Mapped[str] = mapped_column(BoundedString(64))
    dedupe_key: Mapped[str | None] = mapped_column(BoundedString(64), unique=True)
    source: Mapped[str] = mapped_column(BoundedString(16))
    mail_from: Mapped[str] = mapped_column(BoundedString(320))
    recipients: Mapped[str] = mapped_column(StorableText())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[ReceiptOutcome] = mapped_column(readable_enum(ReceiptOutcome))
    reason: Mapped[str] = mapped_column(StorableText(), default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))

    ticket: Mapped[Ticket | None] = relationship()
    message: Mapped[Message | None] = relationship()


class ImapFolder(Base):
    """How far the IMAP intake has read one folder of one mailbox.

    The UIDs are only valid with their `uidvalidity`; when the server changes that, the
    folder is read again and the receipts' dedupe keys keep copies from becoming tickets.
    """

    __tablename__ = "imap_folders"

    id: Mapped[int] = mapped_column(primary_key=True)
    # `user@host:port/folder`: one row per folder the gateway reads.
    mailbox: Mapped[str] = mapped_column(BoundedString(600), unique=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    # Every UID above `baseline_uid` up to `last_uid` was spooled; at or below it, only the
    # unread mail found when the folder was first read (or read again after a UIDVALIDITY
    # change) was.
    baseline_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AddressHold(Base):
    """An address that bounced permanently: not mailed again until `until`."""

    __tablename__ = "address_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(BoundedString(320), unique=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(StorableText(), default="")
    # The ticket whose mail bounced.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuarantineDigest(Base):
    """A digest of quarantined messages mailed to the operators.

    `number` is unique: processes that find the same digest due all write the same number,
    and only the first to commit sends it; the others' transactions, mail included, are
    taken back.
    """

    __tablename__ = "quarantine_digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    # Messages quarantined up to this moment are in this digest or an earlier one.
    covers_until: Mapped[datetime] = mapped_column(UTCDateTime())
    messages: Mapped[int]


class StoredBlob(Base):
    """A raw message or a file in the database blob store (`storage.blob_table`): written
    with its chunks in one transaction, so a row means every chunk is there."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BlobChunk(Base):
    """One piece of a blob, in order: no blob is ever one value of its whole size."""

    __tablename__ = "blob_chunks"

    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("blobs.sha256", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SharedSecret(Base):
    """A key every gateway on the database must use alike (the one that signs reply
    tokens and links), created once by the first."""

    __tablename__ = "shared_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KbArticle(Base):
    """One knowledge-base article as last indexed from its file (`gateway.knowledge`).

    Published articles' tokens are searched: on SQLite in the FTS5 table `kb_fts` (rowid =
    this id), on PostgreSQL in `kb_postings`, made from this table's `terms` tsvectors; none
    is mapped here.
    """

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    stem: Mapped[str] = mapped_column(String(200), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(StorableText())
    summary: Mapped[str] = mapped_column(StorableText())
    # Comma-separated intake platform names; "" is every platform.
    platforms: Mapped[str] = mapped_column(StorableText(), default="")
    # A PEP 440 specifier; "" is every version.
    sdk_versions: Mapped[str] = mapped_column(String(200), default="")
    tags: Mapped[str] = mapped_column(StorableText(), default="")
    # The file's SHA-256 and the synonym table's it was indexed with: an article is
    # indexed again when either changed.
    digest: Mapped[str] = mapped_column(String(64))
    synonyms: Mapped[str] = mapped_column(String(64), default="")
    # How many tokens were indexed (BM25's document length).
    length: Mapped[int] = mapped_column(Integer, default=0)
    # The tokens of the title and tags, space-separated: what a question must share with
    # the article for it to be suggested.
    key_terms: Mapped[str] = mapped_column(StorableText(), default="")
    # The synonym table's concepts its text names, space-separated: how much of what a
    # question is about, in either language, the article speaks of.
    concepts: Mapped[str] = mapped_column(StorableText(), default="")
    # Why an engineer flagged it for review (`#kb outdated`); "" when not flagged. Editing
    # the file clears it.
    outdated: Mapped[str] = mapped_column(StorableText(), default="")
    outdated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KbTerm(Base):
    """How many published articles hold a token: BM25's document frequency on PostgreSQL,
    and the words a misspelt question's words are corrected to."""

    __tablename__ = "kb_terms"

    term: Mapped[str] = mapped_column(String(200), primary_key=True)
    articles: Mapped[int] = mapped_column(Integer)


class KbIndexVersion(Base):
    """The knowledge base index's version: a new random token with every change, so each
    process knows when its snapshot of the index is stale (`gateway.knowledge.snapshot`).
    One row."""

    __tablename__ = "kb_index_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
