"""What a notice says: the context its template is given.

Every template gets the ticket, its tag and status, the recipient and their own reply
address (`NoticeContext.base`); a status change adds its words (`status`). Customers'
templates add the name to greet (`customer`), and for a change, who made it and, for
`resolved`, the one-click answers to "is it fixed?" (`status_news`). Engineers' notices
list the customer's files: the small ones attached, the large ones linked
(`engineer_files`), each as its sender named it and as it was sent (`made_safe_entry`).

Files are passed on with the type their bytes show, active ones made safe (`filetypes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from gateway.audience import Audience, name_of
from gateway.composing import MailFile
from gateway.filetypes import forwarded
from gateway.knowledge import Found
from gateway.outbox import Sender
from gateway.settings import Notify, Workflow
from gateway.workflow import Applied
from storage.blobs import BlobStore, blob_name
from storage.models import (
    Attachment,
    Direction,
    Event,
    Participant,
    Ticket,
    TicketStatus,
)

# One-click answers to "is it fixed?": subject and body the customer's client prefills.
CONFIRMATION_ANSWERS = {
    "en": {"fixed": ("Fixed", "Fixed, thank you."), "not_fixed": ("Not fixed", "Not fixed: ")},
    "zh": {"fixed": ("已解决", "已解决，谢谢。"), "not_fixed": ("未解决", "未解决：")},
}


class NoticeContext:
    """Builds what the templates of notices are given."""

    def __init__(
        self,
        sender: Sender,
        settings: Notify,
        workflow: Workflow,
        blobs: BlobStore,
        audience: Audience,
    ) -> None:
        self.sender = sender
        self.settings = settings
        self.workflow = workflow
        self.blobs = blobs
        self.audience = audience

    # -- every notice ----------------------------------------------------------------------

    def base(self, ticket: Ticket, participant: Participant) -> dict[str, Any]:
        return {
            "ticket": ticket,
            "tag": self.sender.tag(ticket),
            "status": ticket.status.value,
            "priority": ticket.priority.value,
            "recipient": participant.address,
            "reply_address": self.sender.reply_address(ticket, participant),
            "support_address": self.sender.address,
            "support_name": self.sender.name,
        }

    def status(self, event: Event) -> dict[str, Any]:
        return {
            "event_type": event.type,
            "from_status": event.from_status.value if event.from_status else "",
            "to_status": event.to_status.value if event.to_status else "",
            "detail": event.detail,
            "reopen_count": event.ticket.reopen_count,
            "auto_close_days": f"{self.workflow.auto_close_days:g}",
            "reopen_days": f"{self.workflow.reopen_days:g}",
        }

    # -- customers -------------------------------------------------------------------------

    def customer(self, ticket: Ticket, participant: Participant) -> dict[str, Any]:
        """What every customer template is given: the name to greet ('' for a neutral
        greeting) and what the footer says, with the recipient's own status link."""
        return self.base(ticket, participant) | {
            "customer_name": name_of(ticket, participant),
            "status_url": self.sender.status_url(ticket, participant),
        }

    def articles(
        self, found: Sequence[Found], ticket: Ticket, participant: Participant | None = None
    ) -> list[dict[str, str]]:
        """Knowledge-base articles as a notice lists them. A link to the web service's own
        article page carries the customer's status token, for its "this solved it" button."""
        token = self.sender.status_token(ticket, participant) if participant else ""
        return [
            {
                "slug": article.slug,
                "title": article.title,
                "summary": article.summary,
                "url": article.url + (f"?t={token}" if token and article.own_page else ""),
            }
            for article in found
        ]

    def status_news(self, ticket: Ticket, participant: Participant, event: Event) -> dict[str, Any]:
        """What a customer's mail says of a status change: who made it (the participant
        themselves, or someone by name), and for `resolved` the links that answer it."""
        reply_address = self.sender.reply_address(ticket, participant)
        return (
            self.status(event)
            | {
                "actor_role": self.audience.role_of(event.actor),
                "by_you": event.actor == participant.address,
                "actor_name": self.name_of_actor(ticket, event.actor),
            }
            | self.confirmation_links(ticket, reply_address, event)
        )

    def confirmation_links(
        self, ticket: Ticket, token_address: str, event: Event
    ) -> dict[str, str]:
        """mailto links that answer "fixed" or "not fixed" with one click."""
        if event.to_status is not TicketStatus.RESOLVED:
            return {"fixed_link": "", "not_fixed_link": ""}
        answers = CONFIRMATION_ANSWERS.get(ticket.language, CONFIRMATION_ANSWERS["en"])
        links = {}
        for key, (subject, body) in answers.items():
            query = f"subject={quote(self.sender.tag(ticket) + ' ' + subject)}&body={quote(body)}"
            links[f"{key}_link"] = f"mailto:{token_address}?{query}"
        return links

    def name_of_actor(self, ticket: Ticket, actor: str) -> str:
        """The name a customer who made a change goes by, for the others on the ticket."""
        found = next((p for p in self.audience.customers(ticket) if p.address == actor), None)
        return name_of(ticket, found) if found is not None else ""

    # -- files -----------------------------------------------------------------------------

    def engineer_files(
        self, attachments: Sequence[Attachment]
    ) -> tuple[tuple[MailFile, ...], list[dict[str, Any]]]:
        """Files small enough to attach, and every file listed with its link if large, and
        how an attached one was sent (`made_safe_entry`)."""
        files, listed = [], []
        for attachment in attachments:
            attached = attachment.size <= self.settings.attach_to_notices_up_to_bytes
            file = self.file_of(attachment) if attached else None
            files += [file] if file else []
            listed.append(
                made_safe_entry(attachment, file)
                | {
                    "size": attachment.size,
                    "sha256": attachment.sha256,
                    "attached": attached,
                    "link": self.link_to(attachment.sha256) if not attached else "",
                }
            )
        return tuple(files), listed

    def link_to(self, sha256: str) -> str:
        if not self.settings.attachment_url:
            return ""
        return f"{self.settings.attachment_url.rstrip('/')}/{blob_name(sha256)}"

    def file_of(self, attachment: Attachment) -> MailFile:
        """The file as it is passed on: typed by its bytes, made safe if active."""
        data = self.blobs.get(attachment.sha256)
        sent = forwarded(attachment.filename, attachment.content_type, data)
        return MailFile(sent.filename, sent.content_type, data, sent.active)


def made_safe_entry(attachment: Attachment, file: MailFile | None) -> dict[str, Any]:
    """A file as its sender named and typed it, and as it was sent: `made_safe` says what
    made it active ('' when it was not), `retyped` whether its type was changed to match
    its bytes."""
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "sent_as": file.filename if file else attachment.filename,
        "sent_type": file.content_type if file else attachment.content_type,
        "made_safe": file.made_safe if file else "",
        "retyped": file is not None
        and not file.made_safe
        and file.content_type != attachment.content_type.partition(";")[0].strip().lower(),
    }


def about_people(applied: Applied, limit: int) -> dict[str, Any]:
    """What an engineer's notice says of the people a message did not bring in: those in
    copy over the limit, and the ticket a stranger referred to."""
    return {
        "not_added": applied.not_added,
        "people_limit": limit,
        "related_to": applied.related_to.id if applied.related_to else None,
    }


def latest_customer_words(ticket: Ticket) -> str:
    """The customer's most recent words after their first message ('' if none)."""
    inbound = [
        m
        for m in ticket.messages[1:]
        if m.direction is Direction.IN
        and not m.internal
        and not m.automatic
        and m.from_address == ticket.requester
    ]
    return inbound[-1].text if inbound else ""
