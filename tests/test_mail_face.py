"""The mail people get, read as they read it: a ticket's whole life with an English and a
Chinese customer (each with someone in copy) and an English and a Chinese engineer, every
mail captured at the sink and checked for its language, its wording, its greeting, its
footer and its headers, and for one mail per person per message."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from gateway.parsing.signature import signed_name
from gateway.rendering import filesize
from gateway.setting_values import Engineer
from tests.conftest import ENG1, SUPPORT, CapturedMail, Desk, Sink

ENG_ZH = "zhang@example.com"
TEAM = "Acme Support"
# Engineers' wording that must never reach a customer: the trail's details, raw statuses.
ENGINEER_WORDING = (
    "the customer says",
    "by command",
    "an engineer replied",
    "Status:",
    "reopened 1 time",
    "time(s)",
)
RAW_TRANSITION = re.compile(r"\b(?:new|open|waiting|resolved|closed)\s*(?:->|→|&rarr;)", re.I)
CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
SPACE_BETWEEN_CJK = re.compile(rf"[{CJK}][ \t\r\n]+[{CJK}]")
# ASCII words a Chinese mail may hold: units, product names, the configured team name.
ALLOWED_WORDS = {"Support", "Acme", "SDK", "KB", "MB", "Mate", "bin", "logcat", "txt", "P3"}
# The names of platforms, which the intake may read from a device ("Pixel 8": Android).
ALLOWED_WORDS |= {"Android", "iOS"}
# And, for engineers, what their commands are spelt with.
COMMAND_WORDS = {"Reply", "To", "L2", "P1", "P4", "open", "waiting", "resolved", "closed"}
# `#ask logs device`, `#info ok`.
COMMAND_WORDS |= {"logs", "device", "ok"}
# `#kb SLUG`, `#kb new`, `#kb outdated SLUG`: the command syntax, as engineers type it.
COMMAND_WORDS |= {"SLUG", "new", "outdated"}


@dataclass(frozen=True)
class Side:
    """One customer's side of a ticket, in one language."""

    language: str
    requester: str
    from_header: str
    copied: str
    cc_header: str
    subject: str
    first_words: str
    signed: str
    copied_name: str
    asked: str
    answer: str
    not_fixed: str
    fixed: str
    resolve: str


ENGLISH = Side(
    "en",
    "dave@customer.example",
    "Dave Customer <dave@customer.example>",
    "carol@customer.example",
    "Carol Copy <carol@customer.example>",
    "Pusher crashes on Pixel 8",
    "The pusher crashes when it starts, SDK 5.2.1.\n\nThanks,\nDave",
    "Dave",
    "Carol Copy",
    "#status waiting\nCould you send the full log?",
    "Here it is.\n— Dave",
    "Still crashes on 5.2.3, sorry.",
    "Works now, thank you!\nDave",
    "#resolve\nFixed in SDK 5.2.3.",
)
CHINESE = Side(
    "zh",
    "wangwei@customer.cn",
    "王伟 <wangwei@customer.cn>",
    "hong@customer.cn",
    "小红 <hong@customer.cn>",
    "推流闪退",
    "一开始推流就闪退，SDK 5.2.1，华为 Mate 60。\n谢谢！\n小王",
    "小王",
    "小红",
    "#status waiting\n请发一下完整的日志。",
    "日志在附件里。\n谢谢！\n小王",
    "还是不行，还是闪退。",
    "已经好了，谢谢！\n小王",
    "#resolve\n已在 SDK 5.2.3 修复。",
)


def first_mail(side: Side) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = side.from_header
    mail["To"] = SUPPORT
    mail["Cc"] = side.cc_header
    mail["Subject"] = side.subject
    mail.set_content(side.first_words)
    mail.add_attachment(b"x" * 120 * 1024, maintype="text", subtype="plain", filename="logcat.txt")
    return mail


def text_of(mail: CapturedMail) -> str:
    return Desk.text(mail).replace("\r\n", "\n")


def html_of(mail: CapturedMail) -> str:
    body = mail.message.get_body(("html",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def words_of(text: str) -> set[str]:
    """The ASCII words of a mail, without addresses, links, markup and commands."""
    text = re.sub(r"(?:mailto|https?):\S+|\S+@\S+|<[^>]*>|&\w+;|#\w+|\b\w+/[\w.+-]+", " ", text)
    return set(re.findall(r"[A-Za-z][A-Za-z0-9]+", text))


class Life:
    """A ticket's whole life, counting what each person got at every step."""

    def __init__(self, desk: Desk, side: Side) -> None:
        self.desk, self.side = desk, side
        self.people = (side.requester, side.copied, ENG1, ENG_ZH)

    def counts(self) -> Counter[str]:
        return Counter({p: len(self.desk.mails_to(p)) for p in self.people})

    def step(self, act: Callable[[], None], expected: dict[str, int]) -> None:
        before = self.counts()
        act()
        got = {p: self.counts()[p] - before[p] for p in self.people}
        assert got == {p: expected.get(p, 0) for p in self.people}, got

    def latest(self, address: str) -> CapturedMail:
        return self.desk.mails_to(address)[-1]

    def live(self) -> None:
        desk, side = self.desk, self.side
        everyone = {side.requester: 1, side.copied: 0, ENG1: 1, ENG_ZH: 1}
        self.step(
            lambda: desk.customer_writes(first_mail(side).as_bytes(), side.requester), everyone
        )
        # The Chinese engineer follows the ticket, so they hear of it after ENG1 takes it.
        follow = lambda: desk.engineer_replies(self.latest(ENG_ZH), ENG_ZH, "#follow")  # noqa: E731
        self.step(follow, {ENG_ZH: 1})
        customers = {side.requester: 1, side.copied: 1}
        asked = lambda: desk.engineer_replies(self.latest(ENG1), ENG1, side.asked)  # noqa: E731
        self.step(asked, customers | {ENG_ZH: 1, ENG1: 1})
        answer = lambda: desk.customer_replies(  # noqa: E731
            self.latest(side.requester), side.answer, side.requester
        )
        # Their answer takes the ticket off `waiting`: one mail about that to each customer.
        self.step(answer, customers | {ENG1: 1, ENG_ZH: 1})
        resolve = lambda: desk.engineer_replies(  # noqa: E731
            self.latest(ENG1), ENG1, side.resolve
        )
        self.step(resolve, customers | {ENG_ZH: 1, ENG1: 1})
        reopen = lambda: desk.customer_replies(  # noqa: E731
            self.latest(side.requester), side.not_fixed, side.requester
        )
        self.step(reopen, customers | {ENG1: 1, ENG_ZH: 1})
        self.step(resolve, customers | {ENG_ZH: 1, ENG1: 1})
        confirm = lambda: desk.customer_replies(  # noqa: E731
            self.latest(side.requester), side.fixed, side.requester
        )
        self.step(confirm, customers | {ENG1: 1, ENG_ZH: 1})


@pytest.fixture
def life_desk(make_direct_gateway: Callable[..., Any], sink: Sink) -> Desk:
    engineers = (Engineer(ENG1), Engineer(ENG_ZH, "L1", "zh"))
    return Desk(make_direct_gateway(engineers=engineers, support_name=TEAM), sink)


@pytest.mark.parametrize("side", [ENGLISH, CHINESE], ids=["en", "zh"])
def test_a_ticket_life_mails_each_person_once_per_message_in_their_words(
    life_desk: Desk, side: Side
) -> None:
    Life(life_desk, side).live()
    for address, name in ((side.requester, side.signed), (side.copied, side.copied_name)):
        relayed = [check_customer_mail(mail, side, name) for mail in life_desk.mails_to(address)]
        assert False in relayed and True in relayed, "greeted mail and engineers' words both"
    customer_words = words_of(" ".join((side.from_header, side.subject, side.first_words)))
    customer_words |= words_of(" ".join((side.answer, side.not_fixed, side.fixed)))
    customer_words |= words_of(f"{side.asked} {side.resolve}")  # the other engineer's words
    for mail in life_desk.mails_to(ENG_ZH):
        check_chinese(mail, COMMAND_WORDS | customer_words)
        assert mail.message["Content-Language"] == "zh"


def check_customer_mail(mail: CapturedMail, side: Side, name: str) -> bool:
    """Checks one mail to a customer; whether it relays an engineer's words."""
    subject, text, html = Desk.subject(mail), text_of(mail), html_of(mail)
    for wording in ENGINEER_WORDING:
        assert wording not in text and wording not in html, (wording, subject)
    assert not RAW_TRANSITION.search(text) and not RAW_TRANSITION.search(html), subject
    assert mail.message["Content-Language"] == side.language
    ticket = re.search(r"#(\d+)", subject)
    assert ticket is not None
    relayed = mail.message["Auto-Submitted"] is None  # an engineer's words, no greeting
    if side.language == "zh":
        check_chinese(mail, set())
        greeting = f"{name}，您好："
        assert TEAM in text and f"回复本邮件，即可补充到工单 #{ticket[1]}" in text
    else:
        greeting = f"Hello {name},"
        assert TEAM in text and f"Reply to this mail to add to ticket #{ticket[1]}" in text
    assert text.startswith(greeting) is not relayed, (subject, text[:40])
    assert "@" not in text.splitlines()[0], "never greeted by an address"
    return relayed


def check_chinese(mail: CapturedMail, allowed: set[str]) -> None:
    """No English sentence in the subject, text or HTML; no space between Chinese
    sentences in the HTML (outside the customer's own, preformatted words)."""
    subject, text, html = Desk.subject(mail), text_of(mail), html_of(mail)
    for part in (subject, text, html):
        stray = words_of(part) - ALLOWED_WORDS - allowed
        assert not stray, (subject, stray)
    rendered = re.sub(r"<(blockquote|div)[^>]*pre-wrap[^>]*>.*?</\1>", "", html, flags=re.S)
    assert not SPACE_BETWEEN_CJK.search(rendered), SPACE_BETWEEN_CJK.findall(rendered)


def test_greetings_sizes_and_the_thanks_of_the_one_who_confirmed(life_desk: Desk) -> None:
    Life(life_desk, ENGLISH).live()
    ack = life_desk.mails_to(ENGLISH.requester)[0]
    assert text_of(ack).startswith("Hello Dave,")  # signed "Dave", not "Dave Customer"
    assert "logcat.txt (120 KB)" in text_of(ack) and "120 KB" in html_of(ack)
    closed_for_dave = life_desk.mails_to(ENGLISH.requester)[-1]
    closed_for_carol = life_desk.mails_to(ENGLISH.copied)[-1]
    assert "Thank you for confirming" in text_of(closed_for_dave)
    assert "Thank you" not in text_of(closed_for_carol)
    assert "Dave confirmed that the problem is fixed" in text_of(closed_for_carol)
    assert text_of(closed_for_carol).startswith("Hello Carol Copy,")


def test_nobody_known_is_greeted_neutrally(life_desk: Desk) -> None:
    mail = EmailMessage()
    mail["From"] = "nobody@customer.example"
    mail["To"] = SUPPORT
    mail["Subject"] = "SDK question"
    mail.set_content("Which Android versions does the SDK support?")
    life_desk.customer_writes(mail.as_bytes(), "nobody@customer.example")
    [ack] = life_desk.mails_to("nobody@customer.example")
    assert text_of(ack).startswith("Hello,\n")
    assert "<p>Hello,</p>" in html_of(ack)


def test_a_relayed_reply_is_a_persons_mail_and_a_notice_is_automatic(life_desk: Desk) -> None:
    Life(life_desk, ENGLISH).live()
    for mail in life_desk.mails_to(ENGLISH.requester):
        headers = mail.message
        ticket = headers["X-Support-Ticket"]
        assert ticket is not None
        assert re.fullmatch(rf"<.+\.t{ticket}@example\.com>", headers["Message-ID"])
        relayed = "Fixed in SDK" in text_of(mail) or Desk.subject(mail).startswith("Re:")
        assert (headers["Auto-Submitted"] is None) is relayed, Desk.subject(mail)
        assert (headers["X-Auto-Response-Suppress"] is None) is relayed


def test_relayed_replies_do_not_use_up_the_cap_on_automatic_mail(
    make_direct_gateway: Callable[..., Any], sink: Sink
) -> None:
    desk = Desk(make_direct_gateway(engineers=(Engineer(ENG1),), auto_mail_per_ticket=2), sink)
    desk.open_ticket()
    alice = "alice@customer.example"
    for words in ("Looking at it.", "Still looking.", "Nearly there."):
        desk.engineer_replies(desk.mails_to(ENG1)[0], ENG1, words)
    assert len(desk.mails_to(alice)) == 4  # the acknowledgement and three replies
    desk.engineer_replies(desk.mails_to(ENG1)[0], ENG1, "#status waiting")
    assert len(desk.mails_to(alice)) == 5, "one automatic mail left after the acknowledgement"
    desk.engineer_replies(desk.mails_to(ENG1)[0], ENG1, "#status open")
    assert len(desk.mails_to(alice)) == 5, "the cap holds for automatic mail"


@pytest.mark.parametrize(
    ("text", "display", "name"),
    [
        ("It crashes.\n\nDave", "Dave Customer", "Dave"),
        ("It crashes.\nThanks, Dave", "", "Dave"),
        ("It crashes.\n— Dave", "", "Dave"),
        ("还是不行。\n谢谢！\n小王", "王伟", "小王"),
        ("Logs attached.\nBest regards,\nLi Wei", "", "Li Wei"),
        ("Fixed, thank you!", "Alice", ""),
        ("Thanks, will test tomorrow", "", ""),
        ("谢谢，还是不行", "", ""),
        ("Still broken\n\nFixed", "Alice", ""),
        ("Works.\n-- \nAlice Smith\nACME Corp", "Alice Smith", ""),
        ("ok\n\nOn Mon, Bob wrote:\n> Thanks,\n> Dave", "", ""),
    ],
)
def test_the_signed_name_is_read_from_the_sign_off_only(text: str, display: str, name: str) -> None:
    assert signed_name(text, display) == name


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (900, "900 B"), (120 * 1024, "120 KB"), (6 * 1024**2, "6 MB"), (1536, "1.5 KB")],
)
def test_sizes_read_as_people_say_them(size: int, shown: str) -> None:
    assert filesize(size) == shown
