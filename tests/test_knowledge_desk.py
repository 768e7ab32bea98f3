"""The knowledge base end to end, over SMTP, on SQLite and PostgreSQL: suggestions in the
acknowledgement and the engineers' notice, "that solved it", `#kb`, `#kb new` with its
redaction, `#kb outdated`, and `gateway kb` reading what happened."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gateway.settings import Settings
from storage.models import EventKind, TicketStatus
from tests.conftest import (
    ALICE,
    ENG1,
    ENGINEERS,
    Desk,
    RunningGateway,
    Sink,
    gateway_env,
    new_mail,
    run_gateway,
)

KB_SET = Path(__file__).parent / "kb_set" / "articles"
BLACK_SCREEN = (
    "Preview black after switching camera",
    "Hi, on Android 12 with SDK 4.1.2 the local preview turns black when we switch from the "
    "front camera to the back camera. switchCamera() returns 0. Any idea?",
)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(KB_SET, folder)
    return folder


@pytest.fixture
def kb_desk(make_served_gateway: Callable[..., RunningGateway], sink: Sink, kb_dir: Path) -> Desk:
    return Desk(make_served_gateway(engineers=ENGINEERS, kb_dir=kb_dir), sink)


def kb(settings: Settings, kb_dir: Path, *args: str) -> str:
    env = gateway_env(
        settings.data_dir,
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_KB_DIR=str(kb_dir),
    )
    return run_gateway(env, "kb", *args).stdout.encode("latin-1").decode()


def shown(settings: Settings, ticket_id: int) -> dict[str, object]:
    env = gateway_env(settings.data_dir, GATEWAY_DATABASE_URL=settings.database_url)
    output = run_gateway(env, "show", str(ticket_id), "--json").stdout
    loaded: dict[str, object] = json.loads(output.encode("latin-1").decode())
    return loaded


def ask(desk: Desk, subject: str, body: str, sender: str = ALICE) -> tuple[int, str]:
    desk.customer_writes(bytes(new_mail(sender, subject, body)), sender=sender)
    ack = desk.wait_mail(sender, subject)
    ticket = max(desk.gateway.tickets(), key=lambda t: t.id)
    return ticket.id, desk.text(ack)


def test_the_acknowledgement_suggests_the_article_and_that_solved_it_closes(
    kb_desk: Desk, kb_dir: Path
) -> None:
    ticket_id, ack = ask(kb_desk, *BLACK_SCREEN)
    assert "Local preview goes black after switching camera on Android 12+" in ack
    assert "that solved it" in ack
    notice = kb_desk.text(kb_desk.wait_mail(ENG1, "New ("))
    assert "android12-black-screen-en" in notice and "#kb SLUG" in notice
    settings = kb_desk.gateway.settings
    assert shown(settings, ticket_id)["suggested_articles"][0] == "android12-black-screen-en"  # type: ignore[index]
    kb_desk.customer_replies(kb_desk.wait_mail(ALICE, BLACK_SCREEN[0]), "That solved it, thanks!")
    kb_desk.gateway.wait_for_receipts(2)
    detail = shown(settings, ticket_id)
    assert detail["status"] == TicketStatus.CLOSED.value
    assert detail["solved_by_article"] == "android12-black-screen-en"
    listed = {row["slug"]: row for row in json.loads(kb(settings, kb_dir, "list", "--json"))}
    assert listed["android12-black-screen-en"]["suggested"] == 1
    assert listed["android12-black-screen-en"]["solved"] == 1
    env = gateway_env(settings.data_dir, GATEWAY_DATABASE_URL=settings.database_url)
    report = json.loads(run_gateway(env, "report", "--json").stdout)["knowledge_base"]
    assert report["tickets_solved_by_article"] == 1
    assert report["tickets_with_suggestions"] == 1
    unhelpful = [row["slug"] for row in report["most_suggested_without_solving"]]
    assert "android12-black-screen-en" not in unhelpful
    assert set(unhelpful) == set(shown(settings, ticket_id)["suggested_articles"][1:])  # type: ignore[index]


def test_a_chinese_mail_gets_the_chinese_translation_and_its_words_close_it(kb_desk: Desk) -> None:
    ticket_id, ack = ask(
        kb_desk,
        "安卓12 切换摄像头黑屏",
        "你好，我们用的 SDK 4.1.0，Android 12 手机上切换前后摄像头后本地预览黑屏，请问怎么处理？",
    )
    assert "Android 12 及以上切换摄像头后本地预览黑屏" in ack
    assert "文章解决了" in ack
    kb_desk.customer_replies(kb_desk.wait_mail(ALICE, "安卓12"), "按照文章操作，已经解决了，谢谢")
    kb_desk.gateway.wait_for_receipts(2)
    detail = shown(kb_desk.gateway.settings, ticket_id)
    assert detail["status"] == TicketStatus.CLOSED.value
    assert detail["solved_by_article"] == "android12-black-screen-zh"


def test_nothing_is_suggested_when_nothing_is_relevant_and_a_plain_reply_closes_nothing(
    kb_desk: Desk,
) -> None:
    ticket_id, ack = ask(
        kb_desk,
        "Invoice for November",
        "Hello, could you send the November invoice with our VAT number?",
    )
    assert "may already answer" not in ack
    assert shown(kb_desk.gateway.settings, ticket_id)["suggested_articles"] == []
    kb_desk.customer_replies(kb_desk.wait_mail(ALICE, "Invoice"), "That solved it!")
    kb_desk.gateway.wait_for_receipts(2)
    assert shown(kb_desk.gateway.settings, ticket_id)["status"] != TicketStatus.CLOSED.value


def test_an_engineer_sends_an_article_drafts_one_and_flags_one(kb_desk: Desk, kb_dir: Path) -> None:
    ticket_id, _ = ask(
        kb_desk,
        "Echo on our custom player",
        "Customer bob.smith@client.example, phone +86 138-0013-8000, App ID "
        "8f3c2a1b9e7d4c6a5b3f2e1d0c9b8a7f hears an odd hiss. Token "
        "007eJxTYBBZ9MfOfaZ3fM1Cx2VEIAYGAExhBk8= attached.",
    )
    notice = kb_desk.wait_mail(ENG1, "New (")
    kb_desk.engineer_replies(notice, ENG1, "#kb token-expired-en\nThis article explains the token.")
    reply = kb_desk.text(kb_desk.wait_mail(ALICE, "Re: "))
    assert "Kicked out of the channel with token expired errors" in reply
    assert "/kb/token-expired-en" in reply
    kb_desk.engineer_replies(
        notice,
        ENG1,
        "#resolve\n#kb new\nSet the audio profile to music; write to ops@vendor.example or "
        "call 021-6212-3456 with App ID 8f3c2a1b9e7d4c6a5b3f2e1d0c9b8a7f.",
    )
    kb_desk.wait_mail(ALICE, "Solved")
    [draft] = sorted(kb_dir.glob(f"ticket-{ticket_id}-*.md"))
    text = draft.read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["status"] == "draft" and meta["source_ticket"] == ticket_id
    for secret in (
        "bob.smith@client.example",
        "ops@vendor.example",
        "138-0013-8000",
        "021-6212-3456",
        "8f3c2a1b9e7d4c6a5b3f2e1d0c9b8a7f",
        "007eJxTYBBZ9MfOfaZ3fM1Cx2VEIAYGAExhBk8",
    ):
        assert secret not in text, secret
    assert "audio profile to music" in text
    settings = kb_desk.gateway.settings
    trail = kb_desk.trail(ticket_id)
    assert (EventKind.ARTICLE_SENT, "", "") in trail
    assert (EventKind.ARTICLE_DRAFTED, "", "") in trail
    # The draft is indexed as a draft, and never suggested, even to the same question.
    kb(settings, kb_dir, "index")
    listed = {row["slug"]: row for row in json.loads(kb(settings, kb_dir, "list", "--json"))}
    assert listed[draft.stem]["status"] == "draft"
    found = json.loads(kb(settings, kb_dir, "search", "Set the audio profile to music", "--json"))
    assert draft.stem not in [row["slug"] for row in found]
    # Flagged outdated: not suggested until its file is edited.
    second, _ = ask(kb_desk, *BLACK_SCREEN, sender="carol@customer.example")
    notice = kb_desk.wait_mail(ENG1, "New (", count=2)
    kb_desk.engineer_replies(
        notice, ENG1, "#kb outdated android12-black-screen-en fixed in 4.2\n#note checked"
    )
    kb_desk.gateway.wait_for_receipts(5)
    third, _ = ask(kb_desk, *BLACK_SCREEN, sender="dave@customer.example")
    assert "android12-black-screen" not in json.dumps(shown(settings, third)["suggested_articles"])
    listed = {row["slug"]: row for row in json.loads(kb(settings, kb_dir, "list", "--json"))}
    assert listed["android12-black-screen-en"]["outdated"] == "fixed in 4.2"
    # Edited, it is reviewed: suggested again.
    edited = kb_dir / "android12-black-screen-en.md"
    edited.write_text(edited.read_text() + "\nReviewed for SDK 4.2.\n")
    kb(settings, kb_dir, "index")
    fourth, _ = ask(kb_desk, *BLACK_SCREEN, sender="erin@customer.example")
    assert shown(settings, fourth)["suggested_articles"][0] == "android12-black-screen-en"  # type: ignore[index]


def test_kb_commands_name_bad_files_and_search_explains_its_ranking(
    kb_desk: Desk, kb_dir: Path
) -> None:
    settings = kb_desk.gateway.settings
    (kb_dir / "bad-en.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    env = gateway_env(
        settings.data_dir, GATEWAY_DATABASE_URL=settings.database_url, GATEWAY_KB_DIR=str(kb_dir)
    )
    result = run_gateway(env, "kb", "index", check=False)
    assert result.returncode == 65
    assert "bad-en.md" in result.stderr and "YAML" in result.stderr
    found = json.loads(kb(settings, kb_dir, "search", "推流", "没有声音", "来电", "--json"))
    assert found[0]["slug"].startswith("ios-call-interruption-no-audio")
    assert set(found[0]) >= {"slug", "title", "lang", "score"}
    assert [row["score"] for row in found] == sorted((row["score"] for row in found), reverse=True)
    text = kb(settings, kb_dir, "search", "black screen")
    assert "GATEWAY_KB_MIN_SCORE" in text
    off = run_gateway(
        gateway_env(settings.data_dir, GATEWAY_DATABASE_URL=settings.database_url),
        "kb",
        "list",
        check=False,
    )
    assert off.returncode == 78 and "GATEWAY_KB_DIR" in off.stderr


def test_a_question_or_a_no_about_the_article_leaves_the_ticket_open(kb_desk: Desk) -> None:
    ticket_id, _ = ask(kb_desk, *BLACK_SCREEN)
    ack = kb_desk.wait_mail(ALICE, BLACK_SCREEN[0])
    for number, words in enumerate(
        ("Is it fixed yet in 4.2?", "The article hasn't helped at all.", "文章不管用"), 2
    ):
        kb_desk.customer_replies(ack, words)
        kb_desk.gateway.wait_for_receipts(number)
        detail = shown(kb_desk.gateway.settings, ticket_id)
        assert detail["status"] != TicketStatus.CLOSED.value, words
        assert detail["solved_by_article"] is None, words


def test_an_engineer_sends_a_chinese_customer_the_chinese_translation(kb_desk: Desk) -> None:
    ask(
        kb_desk,
        "SDK 报错 109",
        "你好，直播中途被踢出频道，报错 109，怎么办？",
        sender="li@customer.cn",
    )
    notice = kb_desk.wait_mail(ENG1, "New (")
    kb_desk.engineer_replies(notice, ENG1, "#kb token-expired-en")
    reply = kb_desk.text(kb_desk.wait_mail("li@customer.cn", "回复"))
    assert "/kb/token-expired-zh" in reply and "/kb/token-expired-en" not in reply
