"""The knowledge base's reading and search: tokens, synonyms, indexing, the same ranking on
SQLite and PostgreSQL, and the labelled test set's figures (`tests/kb_set`)."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.intake import Fact, MailText, read_first_mail
from gateway.knowledge import (
    Draft,
    Question,
    index_folder,
    published_article,
    ranking,
    relevance,
    search,
    synonyms_for,
    write_draft,
)
from gateway.knowledge.drafts import redacted
from gateway.knowledge.snapshot import changed, snapshot
from gateway.knowledge.words import query_terms, tokens
from gateway.settings import Knowledge
from storage.models import KbArticle
from storage.session import make_engine, make_session_factory
from tests.postgres import PostgresServer
from tests.schema import current_schema

KB_SET = Path(__file__).parent / "kb_set"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
MIN_SCORE = Knowledge().min_score
SYNONYMS = synonyms_for(None)


def indexed(url: str, folder: Path = KB_SET / "articles") -> Session:
    current_schema(url)
    sessions = make_session_factory(make_engine(url))
    with sessions() as session, session.begin():
        run = index_folder(session, folder, SYNONYMS, NOW)
        assert not run.errors
    return sessions()


@pytest.fixture(scope="module")
def sqlite_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path_factory.mktemp('kb') / 'kb.sqlite3'}"
    with indexed(url) as session:
        yield session


def questions() -> list[dict[str, str]]:
    loaded: list[dict[str, str]] = json.loads((KB_SET / "questions.json").read_text())
    return loaded


def as_question(entry: dict[str, str]) -> Question:
    """What the pipeline asks: the mail's text, its language, and what the intake reads."""
    findings = read_first_mail(MailText(entry["subject"], entry["body"], "", (), None))
    return Question(
        f"{entry['subject']}\n{entry['body']}",
        entry["lang"],
        findings.value(Fact.PLATFORM),
        findings.value(Fact.SDK_VERSION),
    )


# -- reading ---------------------------------------------------------------------------------


def test_chinese_is_read_as_character_pairs_and_two_character_terms_match() -> None:
    read = tokens("推流黑屏，有回声和卡顿", SYNONYMS)
    for term in ("推流", "黑屏", "回声", "卡顿"):
        assert term in read
    assert "流黑" in read  # pairs across words too: no dictionary decides


def test_versions_error_codes_and_api_names_stay_whole_and_latin_is_lowercased_and_stemmed() -> (
    None
):
    read = tokens("NotAllowedError on SDK v4.0.6, error -1004; it Crashes", SYNONYMS)
    assert {"notallowederror", "4.0.6", "-1004", "1004", "crash"} <= set(read)
    assert "Crashes" not in read and "4" not in read


def test_synonyms_give_chinese_and_english_the_same_concept_both_ways() -> None:
    pairs = [
        ("黑屏", "black screen"),
        ("回声", "echo"),
        ("推流", "push stream"),
        ("拉流", "pull stream"),
    ]
    for chinese, english in pairs:
        shared = {t for t in tokens(chinese, SYNONYMS) if t.startswith("syn_")}
        assert shared and shared <= set(tokens(english, SYNONYMS)), (chinese, english)


def test_a_question_is_its_distinct_tokens_without_greetings() -> None:
    terms = query_terms("Hi team, black screen black screen. Thanks!", SYNONYMS)
    assert terms.count("black") == 1
    assert "hi" not in terms and "thank" not in terms


# -- the index -------------------------------------------------------------------------------


def test_drafts_are_listed_but_never_found(sqlite_index: Session) -> None:
    drafts = sqlite_index.scalars(select(KbArticle.slug).where(KbArticle.status == "draft")).all()
    assert drafts
    for slug in drafts:
        title = sqlite_index.scalars(select(KbArticle.title).where(KbArticle.slug == slug)).one()
        found = search(sqlite_index, Question(title), SYNONYMS)
        assert slug not in [f.slug for f in found]


def test_a_changed_or_removed_file_is_indexed_again_and_a_bad_one_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    shutil.copytree(KB_SET / "articles", folder)
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    session = indexed(url, folder)
    (folder / "token-expired-en.md").unlink()
    (folder / "broken-en.md").write_text("no front matter here\n")
    echo = folder / "android-echo-zh.md"
    echo.write_text(echo.read_text().replace("status: published", "status: draft"))
    with session.begin():
        run = index_folder(session, folder, SYNONYMS, NOW)
    assert run.removed == ["token-expired-en"]
    assert run.changed == ["android-echo-zh"]
    assert "front matter" in run.errors["broken-en.md"]
    found = [f.stem for f in search(session, Question("回声 消除 echo"), SYNONYMS)]
    assert "android-echo" not in found
    session.close()


def test_a_search_reads_the_index_again_only_when_it_changed(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    shutil.copytree(KB_SET / "articles", folder)
    session = indexed(f"sqlite:///{tmp_path / 'kb.sqlite3'}", folder)
    asked = Question("Safari NotAllowedError, remote audio does not play", "en")
    first = snapshot(session)
    assert snapshot(session) is first
    assert search(session, asked, SYNONYMS)[0].stem == "safari-autoplay-notallowed"
    search(session, Question("safary notalowederror"), SYNONYMS)
    assert first.corrections == {"notalowederror": "notallowederror"}
    slug = "safari-autoplay-notallowed-en"
    # A change rolled back leaves the snapshot as it was, and none taken meanwhile stays.
    row = session.scalars(select(KbArticle).where(KbArticle.slug == slug)).one()
    row.status = "draft"
    changed(session)
    assert slug not in {a.slug for a in snapshot(session).articles.values()}
    session.rollback()
    assert slug in {a.slug for a in snapshot(session).articles.values()}
    # `#kb outdated` and indexing again are seen by the next search.
    row = session.scalars(select(KbArticle).where(KbArticle.slug == slug)).one()
    row.outdated = "flagged"
    changed(session)
    session.commit()
    assert search(session, asked, SYNONYMS)[0].outdated
    assert snapshot(session).corrections == {}  # Remembered of a version, not carried on.
    for name in (f"{slug}.md", "safari-autoplay-notallowed-zh.md"):
        (folder / name).unlink()
    index_folder(session, folder, SYNONYMS, NOW)
    session.commit()
    assert "safari-autoplay-notallowed" not in [f.stem for f in search(session, asked, SYNONYMS)]
    session.close()


def test_sqlite_and_postgresql_rank_every_question_alike(
    sqlite_index: Session, postgres: PostgresServer
) -> None:
    url = postgres.new_database()
    try:
        with indexed(url) as on_postgres:
            for entry in questions():
                question = as_question(entry)
                here = search(sqlite_index, question, SYNONYMS)
                there = search(on_postgres, question, SYNONYMS)
                assert [f.slug for f in here] == [f.slug for f in there], entry["id"]
                for mine, theirs in zip(here, there, strict=True):
                    assert mine.bm25 == pytest.approx(theirs.bm25, rel=1e-9), entry["id"]
    finally:
        postgres.drop(url)


# -- the labelled set ------------------------------------------------------------------------


def test_the_labelled_set_finds_the_right_article_and_stays_quiet_without_one(
    sqlite_index: Session,
) -> None:
    """The figures per language, printed for the record; the floors guard against a change
    that makes them worse."""
    tally: dict[tuple[str, str], list[bool]] = {}
    ranked_in_top3: dict[str, list[bool]] = {}
    for entry in questions():
        found = search(sqlite_index, as_question(entry), SYNONYMS)
        suggested = [f.stem for f in found if f.score >= MIN_SCORE][:3]
        lang, expected = entry["lang"], entry["expect"]
        if expected:
            tally.setdefault((lang, "answered"), []).append(expected in suggested)
            ranked_in_top3.setdefault(lang, []).append(expected in [f.stem for f in found[:3]])
        else:
            tally.setdefault((lang, "no answer"), []).append(not suggested)
    share = {key: sum(hits) / len(hits) for key, hits in tally.items()}
    top3 = {lang: sum(hits) / len(hits) for lang, hits in ranked_in_top3.items()}
    for (lang, kind), value in sorted(share.items()):
        print(f"{lang} {kind}: {value:.0%} of {len(tally[(lang, kind)])}")
    for lang, value in sorted(top3.items()):
        print(f"{lang} right article ranked in the top 3, any score: {value:.0%}")
    # The targets. The score was fitted to these questions (`bench/kb_fit.py`); fitted
    # without each, ten-fold, they give 89% / 89% answered and 93% / 91% quiet.
    assert all(value >= 0.9 for value in top3.values()), top3
    assert share[("en", "answered")] >= 0.85 and share[("zh", "answered")] >= 0.85, share
    assert share[("en", "no answer")] >= 0.90 and share[("zh", "no answer")] >= 0.90, share


def test_a_search_for_suggestions_leaves_out_only_what_could_not_score_enough(
    sqlite_index: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Articles that could not reach the threshold are not measured, and no article that
    could is lost: the score rises with every measure that grows with BM25."""
    assert all(relevance.WEIGHTS[name] > 0 for name in relevance.RISING_WITH_BM25)
    measured = {"all": 0, "above": 0}
    counting = "all"
    real_evidence = ranking.Measure.evidence

    def evidence(*args: Any) -> relevance.Evidence:
        measured[counting] += 1
        return real_evidence(*args)

    monkeypatch.setattr(ranking.Measure, "evidence", evidence)
    suggested = 0
    for entry in questions():
        question = as_question(entry)
        counting = "all"
        everything = search(sqlite_index, question, SYNONYMS)
        counting = "above"
        above = search(sqlite_index, question, SYNONYMS, floor=MIN_SCORE)
        assert above == [found for found in everything if found.score >= MIN_SCORE]
        suggested += bool(above)
    assert suggested > len(questions()) / 2
    assert measured["above"] < measured["all"] / 2, measured


def test_no_article_scores_above_its_best_score() -> None:
    """What `best_score` says of an article's BM25 measures bounds its score, rounded as
    the score is, whatever its language and concepts."""
    rng = random.Random(5)
    for _ in range(5000):
        values = {name: rng.random() for name in relevance.FEATURES}
        values["matched"] *= relevance.MAX_MATCHED
        evidence = relevance.Evidence(**values)
        rising = {name: values[name] for name in relevance.RISING_WITH_BM25}
        assert relevance.best_score(rising) >= relevance.score(evidence)
    # At the best already, the two are the same, also where the likelihood rounds up to
    # the threshold.
    at_best = {name: relevance.BEST[name] for name in relevance.FEATURES}
    for strength in (0.1, 0.2, 0.3, 0.4, 0.5):
        rising = {name: at_best[name] for name in relevance.RISING_WITH_BM25}
        rising["strength"] = at_best["strength"] = strength
        assert relevance.best_score(rising) == relevance.score(relevance.Evidence(**at_best))


def test_an_article_for_another_platform_or_sdk_version_is_left_out(sqlite_index: Session) -> None:
    text = "Android 12 black screen after switching camera, local preview black"
    fits = search(sqlite_index, Question(text, "en", "Android", "4.1.2"), SYNONYMS)
    assert fits[0].stem == "android12-black-screen"
    for platform, version in (("iOS", "4.1.2"), ("Android", "4.3.1")):
        other = search(sqlite_index, Question(text, "en", platform, version), SYNONYMS)
        assert "android12-black-screen" not in [f.stem for f in other]


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("Remote users hear nothing in Safari on my MacBook: NotAllowedError from play()", "macOS"),
        ("Windows 上的 Chrome 打开网页，远端用户没有声音，控制台报 NotAllowedError", "Windows"),
        ("iPhone 上用 Safari 浏览器打开 H5 页面，远端没声音，NotAllowedError", "iOS"),
    ],
)
def test_a_browser_on_any_system_is_asked_about_as_the_web(
    sqlite_index: Session, text: str, platform: str
) -> None:
    found = search(sqlite_index, Question(text, None, platform, "4.20.0"), SYNONYMS)
    assert found[0].stem == "safari-autoplay-notallowed", found[:2]
    assert found[0].score >= MIN_SCORE


def test_a_framework_that_names_a_browser_is_not_asked_about_as_the_web(
    sqlite_index: Session,
) -> None:
    text = "Electron 共享屏幕时对方听不到电脑里的声音；网页版在 Chrome 里可以勾选分享系统音频"
    web = search(sqlite_index, Question(text, "zh", "Web", "4.2.1"), SYNONYMS)
    assert web[0].stem == "web-screen-share-audio"
    electron = search(sqlite_index, Question(text, "zh", "Electron", "4.2.1"), SYNONYMS)
    assert "web-screen-share-audio" not in [f.stem for f in electron]


def test_a_translation_is_shown_in_the_askers_language(sqlite_index: Session) -> None:
    asked = "Android 12 切换摄像头 后 黑屏"
    in_chinese = search(sqlite_index, Question(asked, "zh", "Android", "4.1.0"), SYNONYMS)
    in_english = search(sqlite_index, Question(asked, "en", "Android", "4.1.0"), SYNONYMS)
    assert in_chinese[0].slug == "android12-black-screen-zh"
    assert in_english[0].slug == "android12-black-screen-en"


def test_a_misspelt_word_is_read_as_the_articles_word(sqlite_index: Session) -> None:
    right = search(sqlite_index, Question("safari notallowederror"), SYNONYMS)
    typo = search(sqlite_index, Question("safary notalowederror"), SYNONYMS)
    assert typo[0].slug == right[0].slug == "safari-autoplay-notallowed-en"
    assert typo[0].score >= 0.9 * right[0].score  # the concepts of a corrected word count too
    assert search(sqlite_index, Question("qwxzv"), SYNONYMS) == []
    # Each correction is looked for once an index version, then remembered.
    corrections = snapshot(sqlite_index).corrections
    assert corrections["notalowederror"] == "notallowederror" and corrections["qwxzv"] is None
    assert search(sqlite_index, Question("safary notalowederror"), SYNONYMS) == typo


def test_a_long_article_keeps_the_concepts_it_names_within_the_token_bound(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    filler = "推流设置说明。" * 3000  # far beyond what is indexed
    (folder / "long-zh.md").write_text(
        f"---\ntitle: 推流黑屏\nlang: zh\nstatus: published\n---\n{filler}\n"
    )
    (folder / "other-en.md").write_text("---\ntitle: Billing\nlang: en\n---\nInvoices.\n")
    with indexed(f"sqlite:///{tmp_path / 'kb.sqlite3'}", folder) as session:
        found = search(session, Question("black screen when publishing", "en"), SYNONYMS)
        assert found and found[0].slug == "long-zh"


def test_words_no_index_keeps_and_slugs_it_cannot_name_are_refused(tmp_path: Path) -> None:
    assert all(len(t) <= 64 for t in tokens("key " + "a1" * 200 + " -" + "9" * 40, SYNONYMS))
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / f"{'x' * 201}-en.md").write_text("---\ntitle: Long\n---\nBody.\n")
    (folder / "mixed-en.md").write_text("---\ntitle: Mixed\nlang: zh\n---\nBody.\n")
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    current_schema(url)
    with make_session_factory(make_engine(url))() as session, session.begin():
        run = index_folder(session, folder, SYNONYMS, NOW)
    assert "at most 200" in run.errors[f"{'x' * 201}-en.md"]
    assert "ends in -en" in run.errors["mixed-en.md"]
    assert not run.added


def test_a_small_base_still_searches_by_the_words_its_articles_share(tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    for name in ("android12-black-screen-en", "android12-black-screen-zh", "token-expired-en"):
        shutil.copy(KB_SET / "articles" / f"{name}.md", folder)
    with indexed(f"sqlite:///{tmp_path / 'kb.sqlite3'}", folder) as session:
        found = search(session, Question("black screen after switching camera", "en"), SYNONYMS)
        assert found[0].slug == "android12-black-screen-en"
        assert found[0].bm25 > 0.1


def test_an_engineer_names_an_article_in_any_language_and_gets_the_customers(
    sqlite_index: Session,
) -> None:
    by_stem = published_article(sqlite_index, "android12-black-screen", "zh")
    by_other = published_article(sqlite_index, "android12-black-screen-en", "zh")
    same = published_article(sqlite_index, "android12-black-screen-en", "en")
    assert by_stem is not None and by_stem.slug == "android12-black-screen-zh"
    assert by_other is not None and by_other.slug == "android12-black-screen-zh"
    assert same is not None and same.slug == "android12-black-screen-en"
    drafts = sqlite_index.scalars(select(KbArticle.slug).where(KbArticle.status == "draft"))
    assert all(published_article(sqlite_index, slug) is None for slug in drafts)


def test_a_draft_never_replaces_a_file_and_takes_out_who_the_customer_is(tmp_path: Path) -> None:
    draft = Draft(7, "Echo on Android", "en", "Android", "Hi, Ann Lee here, ann@x.example", "Fix")
    first = write_draft(tmp_path, draft, ["Ann Lee", "ann@x.example"])
    second = write_draft(tmp_path, draft, ["Ann Lee"])
    assert (first, second) == ("ticket-7-echo-on-android-en", "ticket-7-echo-on-android-2-en")
    text = (tmp_path / f"{first}.md").read_text()
    assert "Ann Lee" not in text and "ann@x.example" not in text
    assert "Announce" in redacted("Announce it, Ann", ["Ann"])  # whole words only
