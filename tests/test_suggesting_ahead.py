"""The knowledge base searched ahead in the parser process: the worker takes that answer
when it was asked the new ticket's very question, and searches for itself otherwise."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.intake import Findings, read_first_mail
from gateway.knowledge import Found, index_folder, synonyms_for
from gateway.parse_ahead import InlineParser
from gateway.parsing import ParsedMail, parse_message
from gateway.suggestions import Suggested, SuggestingAhead
from storage.models import Event, EventKind
from tests.conftest import SUPPORT, DirectGateway, as_sent_over_smtp, new_mail

KB_SET = Path(__file__).parent / "kb_set" / "articles"
ASKED = ("Safari: no sound from the remote user", "Console says NotAllowedError on play().")
ANSWER = "safari-autoplay-notallowed-en"


@pytest.fixture
def direct(make_direct_gateway: Callable[..., DirectGateway], tmp_path: Path) -> DirectGateway:
    folder = tmp_path / "kb"
    shutil.copytree(KB_SET, folder)
    gateway = make_direct_gateway(kb_dir=folder)
    with gateway.session() as session, session.begin():
        index_folder(session, folder, synonyms_for(folder), datetime(2026, 12, 5, tzinfo=UTC))
    return gateway


def spooled(direct: DirectGateway, subject: str, body: str) -> None:
    raw = as_sent_over_smtp(new_mail("alice@client.example", subject, body))
    direct.gateway.spool.accept(raw, "alice@client.example", [SUPPORT], "smtp")


def suggested_slugs(direct: DirectGateway) -> list[str]:
    with direct.session() as session:
        query = select(Event.detail).where(Event.type == EventKind.ARTICLES_SUGGESTED)
        return [detail for detail in session.scalars(query)]


def searching_ahead(direct: DirectGateway) -> SuggestingAhead:
    knowledge = direct.gateway.executor.pipeline.rules.knowledge
    return SuggestingAhead(direct.settings.effective_database_url, knowledge)


def test_the_parser_process_finds_the_suggestions_the_worker_files(direct: DirectGateway) -> None:
    spooled(direct, *ASKED)
    parser = direct.gateway.parser_process()
    try:
        outcomes = direct.gateway.executor.drain(parser)
    finally:
        parser.close()
    assert len(outcomes) == 1
    assert suggested_slugs(direct) == [ANSWER]


def test_searching_ahead_travels_as_its_settings_and_answers_the_tickets_question(
    direct: DirectGateway,
) -> None:
    ahead = pickle.loads(pickle.dumps(searching_ahead(direct)))
    raw = as_sent_over_smtp(new_mail("alice@client.example", *ASKED))
    mail = parse_message(raw, direct.gateway.spool.limits)
    answer = ahead(mail, read_first_mail(mail.intake_text()))
    assert answer is not None
    assert answer.question.text.startswith(f"{ASKED[0]}\n")
    assert answer.question.lang == "en" and answer.question.platform == "Web"
    assert [f.slug for f in answer.found] == [ANSWER]
    assert answer.found[0].url.endswith(f"/kb/{ANSWER}")


class Planted:
    """A search ahead whose answer is changed: it names another article, and with
    `other_question` answers another question than the ticket's."""

    def __init__(self, real: SuggestingAhead, other_question: bool) -> None:
        self.real, self.other_question = real, other_question

    def __call__(self, mail: ParsedMail, first_mail: Findings) -> Suggested | None:
        answer = self.real(mail, first_mail)
        assert answer is not None and [f.slug for f in answer.found] == [ANSWER]
        planted = Found("token-expired-en", "token-expired", "Token expired", "", "en", 0.9)
        question = replace(answer.question, platform="Linux")
        return Suggested(question if self.other_question else answer.question, (planted,))


@pytest.mark.parametrize(
    ("other_question", "expected"), [(False, "token-expired-en"), (True, ANSWER)]
)
def test_the_worker_takes_the_answer_only_to_its_own_question(
    direct: DirectGateway, other_question: bool, expected: str
) -> None:
    spooled(direct, *ASKED)
    spool = direct.gateway.spool
    also = Planted(searching_ahead(direct), other_question)
    parser = InlineParser(spool, spool.limits, reads_ahead=True, also=also)
    direct.gateway.executor.drain(parser)
    assert suggested_slugs(direct) == [expected]
