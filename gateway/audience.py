"""Who on a ticket is told what: the customer's side, the engineers watching it, and the
language and name each is written to in.

The customer's side is the requester and the people they copied, never an engineer, the
support address or a sender no address could be read for. The watchers are the configured
engineers on the ticket who follow its mail: while nobody works on it, every engineer told
of it; once it is assigned or an engineer has written on it, only those working on it and
those who chose to follow it (`Watch`), so the other L1s hear of a new ticket and no more.
"""

from __future__ import annotations

from gateway.composing import single_line
from gateway.inbound import UNKNOWN_SENDER
from gateway.rendering import FALLBACK_LANGUAGE
from gateway.setting_values import Engineer
from gateway.tokens import is_gateway_side
from storage.models import (
    SYSTEM_ACTOR,
    Participant,
    ParticipantRole,
    Ticket,
    Watch,
    is_operator,
)

CUSTOMER_ROLES = (ParticipantRole.REQUESTER, ParticipantRole.CC)
FOLLOWING_WHILE_NEW = (Watch.NOTIFIED, Watch.WORKING, Watch.FOLLOWING)
FOLLOWING_WHEN_WORKED_ON = (Watch.WORKING, Watch.FOLLOWING)


class Audience:
    """The people mail may go to, as the settings know them."""

    def __init__(self, engineers: tuple[Engineer, ...], support_address: str) -> None:
        self.engineers = engineers
        self.support_address = support_address
        self.engineer_addresses = frozenset(engineer.address for engineer in engineers)

    def customers(self, ticket: Ticket) -> list[Participant]:
        """The requester and the people they copied: everyone on the customer's side."""
        return [
            p
            for p in ticket.participants
            if p.role in CUSTOMER_ROLES
            and p.address != UNKNOWN_SENDER
            and not is_gateway_side(p.address, self.support_address, self.engineer_addresses)
        ]

    def watchers(self, ticket: Ticket, but: str = "") -> list[Participant]:
        """The engineers on the ticket who follow its mail (see the module docstring)."""
        engineers = [
            p
            for p in ticket.participants
            if p.role is ParticipantRole.ENGINEER and p.address in self.engineer_addresses
        ]
        worked_on = any(p.watch is Watch.WORKING for p in engineers)
        following = FOLLOWING_WHEN_WORKED_ON if worked_on else FOLLOWING_WHILE_NEW
        return [p for p in engineers if p.watch in following and p.address != but]

    def specialists(self, ticket: Ticket, but: str = "") -> list[Participant]:
        """The L2 engineers among the ticket's watchers."""
        tier_2 = {engineer.address for engineer in self.engineers if engineer.tier == "L2"}
        return [p for p in self.watchers(ticket, but) if p.address in tier_2]

    def role_of(self, actor: str) -> str:
        """Who made a change, as the templates tell it: system, operator, engineer or
        customer."""
        if actor == SYSTEM_ACTOR:
            return "system"
        if is_operator(actor):
            return "operator"
        return "engineer" if actor in self.engineer_addresses else "customer"

    def zone_of(self, participant: Participant, team_zone: str) -> str:
        """The engineer's time zone; the team's when unset."""
        engineer = next((e for e in self.engineers if e.address == participant.address), None)
        return engineer.timezone if engineer and engineer.timezone else team_zone

    def language_of(self, participant: Participant) -> str:
        engineer = next((e for e in self.engineers if e.address == participant.address), None)
        return engineer.language if engineer else FALLBACK_LANGUAGE


def name_of(ticket: Ticket, participant: Participant) -> str:
    """The name a participant is greeted by: the one they sign with or their display name,
    for the requester the From name of their first mail, else none."""
    if participant.name:
        return single_line(participant.name)
    if participant.address == ticket.requester:
        return single_line(ticket.requester_name)
    return ""
