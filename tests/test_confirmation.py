"""`classify_confirmation`: a customer's answer to "is it fixed?", one phrasing per row."""

from __future__ import annotations

import pytest

from gateway.confirmation import Confirmation, classify_confirmation

FIXED = Confirmation.FIXED
NOT_FIXED = Confirmation.NOT_FIXED
UNCLEAR = Confirmation.UNCLEAR
NEITHER = Confirmation.NEITHER

# Answers that say neither "fixed" nor "not fixed" yet: the ticket stays resolved.
NEUTRAL_ANSWERS = (
    "I haven't had time to test it yet",
    "Not sure if it's fixed yet",
    "I'll test it tomorrow",
    "Ok, I'll try",
    "Thanks for the update",
    "Thanks! I'll check tomorrow and get back to you",
    "I'll confirm tomorrow",
    "thanks, will test tomorrow",
    "ok, will check",
    "Thanks, I'll test it tomorrow.",
    "Got it, thanks!",
    "Noted, we will deploy the new SDK next week and let you know.",
    "Received, thank you. We need to roll it out to our users first.",
    "Thanks. Going to verify on the test devices this afternoon.",
    "Will do, thanks",
    "I don't know if it works yet, our QA team is testing it now.",
    "Too early to tell, thanks",
    "We haven't tested it yet.",
    "Not tested yet, I will update you",
    "Let me check with the team and get back to you.",
    "Thanks for the quick response, I'll try it on Monday",
    "谢谢，我明天再测试一下",
    "收到，谢谢",
    "收到",
    "好的，我们明天升级后测试",
    "明天再试试",
    "感谢，稍后验证",
    "好的，知道了，我们测试一下",
    "还没来得及测试",
    "谢谢，我们先升级到 5.2.2 看看",
    "了解，晚点确认",
    "不确定是否解决了，还在观察",
    "已收到，下周验证后回复您",
)

PHRASINGS: list[tuple[str, Confirmation]] = [
    # English, fixed -------------------------------------------------------------------------
    ("fixed", FIXED),
    ("Fixed!", FIXED),
    ("It's fixed", FIXED),
    ("it\u2019s fixed, thanks", FIXED),
    ("works now, thanks", FIXED),
    ("Working now", FIXED),
    ("That solved it", FIXED),
    ("Resolved", FIXED),
    ("All good now", FIXED),
    ("Problem is gone", FIXED),
    ("You can close the ticket", FIXED),
    ("Confirmed fixed", FIXED),
    ("Yes, it works", FIXED),
    ("fixed, thank you!", FIXED),
    ("The crash is fixed", FIXED),
    ("Doesn't crash anymore", FIXED),
    ("No more crashes since the update", FIXED),
    ("It no longer crashes", FIXED),
    ("I can't reproduce it any more", FIXED),
    ("Haven't seen the error since, thanks!", FIXED),
    ("The update did the trick", FIXED),
    ("Yes", FIXED),
    ("Thanks!", FIXED),
    ("Thank you so much, perfect!", FIXED),
    ("Not sure what you did, but it works now", FIXED),
    ("It used to crash on startup, now it works fine", FIXED),
    ("It stopped crashing", FIXED),
    ("Works now. I'll let you know if it happens again.", FIXED),
    ("\uff26\uff29\uff38\uff25\uff24", FIXED),  # full-width "FIXED"
    ("Please close the ticket, everything works", FIXED),
    ("It does work now", FIXED),
    ("No problems at all since yesterday", FIXED),
    ("I haven't had a single crash this week", FIXED),
    # English, not fixed ---------------------------------------------------------------------
    ("not fixed", NOT_FIXED),
    ("Not fixed.", NOT_FIXED),
    ("The crash is not fixed", NOT_FIXED),
    ("still crashes on Pixel 7", NOT_FIXED),
    ("doesn't work", NOT_FIXED),
    ("It doesn\u2019t work", NOT_FIXED),
    ("not resolved yet", NOT_FIXED),
    ("didn't help", NOT_FIXED),
    ("No luck", NOT_FIXED),
    ("Same problem", NOT_FIXED),
    ("Same error as before", NOT_FIXED),
    ("The problem persists", NOT_FIXED),
    ("It keeps crashing", NOT_FIXED),
    ("Nope", NOT_FIXED),
    ("No change", NOT_FIXED),
    ("Broken again", NOT_FIXED),
    ("It crashes again when I open settings", NOT_FIXED),
    ("Still broken", NOT_FIXED),
    ("still the same", NOT_FIXED),
    ("Still not working", NOT_FIXED),
    ("still seeing the error", NOT_FIXED),
    ("thanks, but it still crashes", NOT_FIXED),
    ("I can't get it to work", NOT_FIXED),
    ("It stopped working after the update", NOT_FIXED),
    ("No, it still freezes", NOT_FIXED),
    ("Not yet", NOT_FIXED),
    ("It only works after a restart", NOT_FIXED),
    ("It works on Wi-Fi, but not on mobile data", NOT_FIXED),
    ("It's working, but only on Wi-Fi", NOT_FIXED),
    ("Please don't close the ticket, the bug is still there", NOT_FIXED),
    ("Fixed? No, it crashed again this morning", NOT_FIXED),
    ("I don't think it's fixed", NOT_FIXED),
    ("No", NOT_FIXED),
    ("It worked for a day, then the crash came back", NOT_FIXED),
    ("Thanks for the fix, but unfortunately it still crashes", NOT_FIXED),
    ("It didn't stop crashing", NOT_FIXED),
    ("It is back since this morning.", NOT_FIXED),
    ("It's back again after the update", NOT_FIXED),
    ("问题又来了", NOT_FIXED),
    # English, unclear: new questions and new reports ---------------------------------------
    ("Thanks for the update. How do I enable hardware encoding?", UNCLEAR),
    ("Is it fixed in version 2.3?", UNCLEAR),
    ("Can you tell me when the release is out?", UNCLEAR),
    ("Thanks, it works now! Could you also look at the export bug?", UNCLEAR),
    ("Works now, but the export button crashes the app", UNCLEAR),
    ("When I open settings the app freezes", UNCLEAR),
    ("The app no longer crashes on startup, but now it freezes on the login screen", UNCLEAR),
    # Chinese, fixed -------------------------------------------------------------------------
    ("已经好了", FIXED),
    ("解决了，谢谢", FIXED),
    ("好了", FIXED),
    ("可以了", FIXED),
    ("正常了", FIXED),
    ("修复了", FIXED),
    ("没问题了", FIXED),
    ("搞定了", FIXED),
    ("已解决", FIXED),
    ("问题解决了", FIXED),
    ("没有再崩溃了，谢谢", FIXED),
    ("不再闪退了", FIXED),
    ("再也没出现过", FIXED),
    ("不好意思，已经好了", FIXED),
    ("谢谢", FIXED),
    ("好的，谢谢！", FIXED),
    ("現在已經可以正常使用了，謝謝", FIXED),  # traditional
    ("更新后没有再出现过闪退", FIXED),
    ("之前一直闪退，现在好了", FIXED),
    ("已经好了，如果再出现问题我会联系你们", FIXED),
    ("暂时没有再出现，谢谢", FIXED),
    ("可以关闭工单了", FIXED),
    # Chinese, not fixed ---------------------------------------------------------------------
    ("还是不行", NOT_FIXED),
    ("问题依旧", NOT_FIXED),
    ("没有解决", NOT_FIXED),
    ("没解决", NOT_FIXED),
    ("未解决", NOT_FIXED),
    ("不行", NOT_FIXED),
    ("没用", NOT_FIXED),
    ("无效", NOT_FIXED),
    ("没效果", NOT_FIXED),
    ("还没好", NOT_FIXED),
    ("好像还没好", NOT_FIXED),
    ("不好意思，还是不行", NOT_FIXED),
    ("仍然闪退", NOT_FIXED),
    ("又崩溃了", NOT_FIXED),
    ("並未解決", NOT_FIXED),  # traditional
    ("還是會閃退", NOT_FIXED),  # traditional
    ("更新后还是一样", NOT_FIXED),
    ("谢谢，不过还是会卡顿", NOT_FIXED),
    ("问题还存在", NOT_FIXED),
    ("只解决了一部分，有时候还是会闪退", NOT_FIXED),
    ("现在可以登录了，但是导出还是失败", NOT_FIXED),
    ("先不要关闭工单", NOT_FIXED),
    # Chinese, unclear -----------------------------------------------------------------------
    ("好了吗？", UNCLEAR),
    ("请问怎么导出数据", UNCLEAR),
    ("有没有解决？", UNCLEAR),
    ("为什么会出现这个问题", UNCLEAR),
    ("已经好了，另外想问一下怎么导出数据？", UNCLEAR),
    ("设置页面打不开", UNCLEAR),
    # Neither, in both languages: thanks, a promise to test, a doubt, a receipt -------------
    *((text, NEITHER) for text in NEUTRAL_ANSWERS),
]


@pytest.mark.parametrize(("text", "expected"), PHRASINGS, ids=[text for text, _ in PHRASINGS])
def test_phrasing_is_read_as_the_customer_meant_it(text: str, expected: Confirmation) -> None:
    assert classify_confirmation(text) is expected


def test_the_table_covers_both_languages_and_every_verdict() -> None:
    assert len(PHRASINGS) >= 80
    assert {expected for _, expected in PHRASINGS} == set(Confirmation)
    assert len({text for text, _ in PHRASINGS}) == len(PHRASINGS)


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty_text_with_no_subject_says_neither(text: str) -> None:
    assert classify_confirmation(text) is NEITHER
    assert classify_confirmation(text, "") is NEITHER


def test_only_the_start_of_a_long_message_counts() -> None:
    report = "When I export a project the progress bar stops at 80 percent. " * 12
    assert classify_confirmation(report + "It is fixed now.") is UNCLEAR


def test_an_answer_at_the_start_of_a_long_message_still_counts() -> None:
    assert classify_confirmation("Still crashes. " + "Here is the log line. " * 40) is NOT_FIXED


# One-click answers: the bodies the confirmation mail prefills, as sent or with words added.


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Fixed, thank you.", FIXED),
        ("Not fixed: ", NOT_FIXED),
        ("Not fixed: it still crashes when I rotate the phone", NOT_FIXED),
        ("Not fixed: no more crashes, but the export hangs", NOT_FIXED),
        ("已解决，谢谢。", FIXED),
        ("未解决：", NOT_FIXED),
        ("未解决：换了新版本以后还是闪退", NOT_FIXED),
    ],
)
def test_prefilled_body_is_read_as_its_answer(body: str, expected: Confirmation) -> None:
    assert classify_confirmation(body) is expected


# Subjects -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[Support #12] Fixed", FIXED),
        ("Re: [Support #12] Fixed", FIXED),
        ("RE: Fwd: [Support #12] fixed", FIXED),
        ("Re: [Support #12] Not fixed", NOT_FIXED),
        ("Re: [Support #12] Still broken", NOT_FIXED),
        ("回复：[Support #12] 已解决", FIXED),
        ("答复: [Support #12] 未解决", NOT_FIXED),
        ("回覆: 已修复", FIXED),
        ("Re: 还是不行", NOT_FIXED),
    ],
)
def test_prefilled_subject_answers_when_the_body_is_empty(
    subject: str, expected: Confirmation
) -> None:
    assert classify_confirmation("", subject) is expected


def test_prefilled_subject_answers_when_the_body_says_nothing_either_way() -> None:
    assert classify_confirmation("Sent from my phone", "Re: [Support #12] Not fixed") is NOT_FIXED


@pytest.mark.parametrize(
    "subject",
    [
        "Re: [Support #12] App crashes on startup",
        "Re: [Support #12] App still crashes after the update",
        "Re: [Support #12] Not fixed: the camera roll crashes after rotating the phone twice",
        "Re: [Support #12] Fixed the login, but sync fails",
        "Re: [Support #12] Resolved: is it fixed? Crash",
        "Re: [Support #12] 已解决：请确认是否修复 - 闪退",
        "Re: [Support #12] Solved — please confirm: Crash",
        "Re: 回复：[Support #12] 已解决，请确认：闪退",
        "Re: [Support #12] Open again: Crash",
        "回复：[Support #12] 已关闭：闪退",
    ],
)
def test_a_subject_that_is_not_an_answer_is_ignored(subject: str) -> None:
    assert classify_confirmation("", subject) is NEITHER
    assert classify_confirmation("Works now, thanks", subject) is FIXED


def test_the_body_wins_over_the_subject() -> None:
    assert classify_confirmation("still crashes", "Re: [Support #12] Fixed") is NOT_FIXED
    assert classify_confirmation("fixed, thanks", "Re: [Support #12] Not fixed") is FIXED
    assert classify_confirmation("还是不行", "回复：[Support #12] 已解决") is NOT_FIXED


def test_a_new_question_in_the_body_is_not_overruled_by_a_fixed_subject() -> None:
    assert classify_confirmation("How do I export my data?", "Re: [Support #12] Fixed") is UNCLEAR
