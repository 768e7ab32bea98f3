"""The knowledge base searched ahead in the parser process: the worker takes that answer
when it was asked the new ticket's very question, of the index as it still is, and searches
for itself otherwise."""

from __future__ import annotations

import logging
import pickle
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gateway.intake import Findings, read_first_mail
from gateway.knowledge import Found, KnowledgeBase, Question, index_folder, synonyms_for
from gateway.knowledge.snapshot import changed
from gateway.parse_ahead import InlineParser, ParseResult, Readable, Results
from gateway.parsing import ParsedMail, parse_message
from gateway.spool import Receipt
from gateway.suggestions import Suggested, SuggestingAhead
from storage.models import Event, EventKind, KbArticle
from tests.conftest import SUPPORT, DirectGateway, as_sent_over_smtp, new_mail

KB_SET = Path(__file__).parent / "kb_set" / "articles"
ASKED = ("Safari: no sound from the remote user", "Console says NotAllowedError on play().")
ANSWER = "safari-autoplay-notallowed-en"


@pytest.fixture(params=[True, False], ids=["intake", "no intake"])
def direct(
    make_direct_gateway: Callable[..., DirectGateway],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> DirectGateway:
    folder = tmp_path / "kb"
    shutil.copytree(KB_SET, folder)
    gateway = make_direct_gateway(kb_dir=folder, intake=request.param)
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
    rules = direct.gateway.executor.pipeline.rules
    return SuggestingAhead(
        direct.settings.effective_database_url, rules.knowledge, rules.intake.enabled
    )


def test_the_parser_process_finds_the_suggestions_the_worker_files(direct: DirectGateway) -> None:
    spooled(direct, *ASKED)
    parser = direct.gateway.parser_process()
    try:
        [receipt] = direct.gateway.spool.pending()
        [read] = parser.submit([receipt])()
        assert isinstance(read, Readable) and isinstance(read.ahead, Suggested)
        assert [f.slug for f in read.ahead.found] == [ANSWER]
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
    replying = new_mail(
        "alice@client.example", f"Re: {ASKED[0]}", ASKED[1], headers={"In-Reply-To": "<1@x>"}
    )
    reply = parse_message(as_sent_over_smtp(replying), direct.gateway.spool.limits)
    out_of_office = new_mail(
        "alice@client.example",
        f"Auto: {ASKED[0]}",
        ASKED[1],
        headers={"Auto-Submitted": "auto-replied"},
    )
    automatic = parse_message(as_sent_over_smtp(out_of_office), direct.gateway.spool.limits)
    answer, to_reply, to_machine = ahead(
        [
            (mail, read_first_mail(mail.intake_text())),
            (reply, read_first_mail(reply.intake_text())),
            (automatic, read_first_mail(automatic.intake_text())),
        ]
    )
    assert to_reply is None and to_machine is None
    assert answer is not None
    assert answer.question.text.startswith(f"{ASKED[0]}\n")
    assert answer.question.lang == "en"
    assert answer.question.platform == ("Web" if direct.settings.intake.enabled else None)
    assert [f.slug for f in answer.found] == [ANSWER]
    assert answer.found[0].url.endswith(f"/kb/{ANSWER}")


class Planted:
    """A search ahead whose answer is changed to name another article; `change` alters
    it further: another question than the ticket's, or an older version of the index."""

    def __init__(self, real: SuggestingAhead, change: str) -> None:
        self.real, self.change = real, change

    def __call__(self, readings: Sequence[tuple[ParsedMail, Findings]]) -> list[Suggested]:
        [answer] = self.real(readings)
        assert answer is not None and [f.slug for f in answer.found] == [ANSWER]
        return [self.changed(answer)]

    def changed(self, answer: Suggested) -> Suggested:
        planted = Found("token-expired-en", "token-expired", "Token expired", "", "en", 0.9)
        answer = replace(answer, found=(planted,))
        if self.change == "question":
            return replace(answer, question=replace(answer.question, platform="Linux"))
        if self.change == "index":
            return replace(answer, version="an older one")
        return answer


@pytest.mark.parametrize(
    ("change", "expected"), [("", "token-expired-en"), ("question", ANSWER), ("index", ANSWER)]
)
def test_the_worker_takes_the_answer_only_to_its_own_question_of_the_index_as_it_is(
    direct: DirectGateway, change: str, expected: str
) -> None:
    spooled(direct, *ASKED)
    spool = direct.gateway.spool
    also = Planted(searching_ahead(direct), change)
    parser = InlineParser(spool, spool.limits, reads_ahead=True, also=also)
    direct.gateway.executor.drain(parser)
    assert suggested_slugs(direct) == [expected]


@dataclass(frozen=True)
class ReadBefore:
    """A parser whose results were read earlier, as the parser process's are a batch
    ahead of the filing."""

    results: list[ParseResult]

    def submit(self, receipts: Sequence[Receipt]) -> Results:
        return lambda: self.results


def test_an_article_flagged_after_the_search_ahead_is_not_suggested(direct: DirectGateway) -> None:
    spooled(direct, *ASKED)
    spool = direct.gateway.spool
    parser = InlineParser(spool, spool.limits, reads_ahead=True, also=searching_ahead(direct))
    [read] = parser.submit(spool.pending())()
    assert isinstance(read, Readable) and isinstance(read.ahead, Suggested)
    assert [f.slug for f in read.ahead.found] == [ANSWER]
    with direct.session() as session, session.begin():
        row = session.scalars(select(KbArticle).where(KbArticle.slug == ANSWER)).one()
        row.outdated = "flagged meanwhile"
        changed(session)
    direct.gateway.executor.drain(ReadBefore([read]))
    assert suggested_slugs(direct) == []


def test_one_search_that_fails_leaves_the_rest_of_the_batch_its_answers(
    direct: DirectGateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ahead = searching_ahead(direct)
    real = KnowledgeBase.suggestions

    def suggestions(knowledge: KnowledgeBase, session: Session, question: Question) -> list[Found]:
        if "odd" in question.text:
            session.execute(text("SELECT * FROM no_such_table"))
        return real(knowledge, session, question)

    monkeypatch.setattr(KnowledgeBase, "suggestions", suggestions)
    mails = [
        parse_message(
            as_sent_over_smtp(new_mail("alice@client.example", subject, ASKED[1])),
            direct.gateway.spool.limits,
        )
        for subject in ("An odd one", ASKED[0])
    ]
    with caplog.at_level(logging.WARNING, "gateway.suggestions"):
        failed, answered = ahead([(mail, read_first_mail(mail.intake_text())) for mail in mails])
    assert "searching ahead failed" in caplog.text
    assert failed is None
    assert answered is not None and [f.slug for f in answered.found] == [ANSWER]


def test_a_search_ahead_that_fails_leaves_the_worker_to_search(direct: DirectGateway) -> None:
    spooled(direct, *ASKED)
    spool = direct.gateway.spool
    knowledge = searching_ahead(direct).knowledge
    broken = SuggestingAhead("sqlite:////nonexistent/folder/kb.db", knowledge, True)
    parser = InlineParser(spool, spool.limits, reads_ahead=True, also=broken)
    [read] = parser.submit(spool.pending())()
    assert isinstance(read, Readable) and read.ahead is None
    direct.gateway.executor.drain(parser)
    assert suggested_slugs(direct) == [ANSWER]
