"""The knowledge base's article pages, against the real `gateway serve`: a customer follows an
article suggested in their acknowledgement, reads it in Chromium and closes the ticket with
"This solved it"; over plain HTTP, only published and indexed articles have pages, raw HTML
in an article is text, and the button needs the customer's own token and the page's CSRF
token. Last, the Markdown renderer alone: no address a browser would run survives it."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select, update

from gateway.web.article_html import article_html
from storage.models import Event, EventKind, KbArticle, TicketStatus
from tests.browser import screenshots, text_of
from tests.conftest import ALICE, CapturedMail, new_mail, wait_until
from tests.test_web import assert_safe_headers
from tests.web import Client, WebDesk, fetch

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ECHO = "echo-on-android-en"
ECHO_ZH = "echo-on-android-zh"
DRAFT = "screen-share-silent-en"
MARKUP = "formatting-sample-en"
ARTICLES = {
    ECHO: """---
title: Remote users hear an echo on Android
lang: en
platforms: [Android]
sdk_versions: ">=4.0"
tags: [echo, audio, AEC]
status: published
---
Remote users hear their own voice back when an Android phone plays the call on its
loudspeaker: the echo canceller is off.

## Fix

1. Turn the echo canceller on before joining:

```java
engine.setAudioProfile(AudioProfile.SPEECH, AudioScenario.MEETING);
```

| SDK | Echo canceller |
|-----|----------------|
| 4.0 | off by default |
| 4.2 | on by default |

See the [audio guide](https://docs.example.com/audio) for more.
""",
    ECHO_ZH: """---
title: 安卓通话时对方听到回声
lang: zh
platforms: [Android]
tags: [回声, 音频]
status: published
---
安卓手机用扬声器通话时，对方会听到自己的回声：回声消除没有开启。
""",
    DRAFT: """---
title: Screen sharing has no sound
lang: en
tags: [screen sharing, audio]
status: draft
---
Screen sharing sends no system audio unless it is asked for.
""",
    MARKUP: """---
title: Formatting sample
lang: en
tags: [formatting]
status: published
---
A sample with <script>alert("kb")</script> and <b>raw tags</b> in its words.

<div class="banner">A raw block</div>

[a harmful link](javascript:alert(1)) and [a good one](https://example.com/help).

![A diagram of the call](https://example.com/call.png) and ![a local one](call.png).
""",
}
ARTICLE_LINK = r"^\s*(http://127\.0\.0\.1:\d+/kb/{slug}\?t=([0-9a-z-]+))\r?$"


def write_articles(folder: Path) -> Path:
    folder.mkdir()
    for slug, text in ARTICLES.items():
        (folder / f"{slug}.md").write_text(text, "utf-8")
    return folder


@pytest.fixture
def kb_desk(make_web_desk: Callable[..., WebDesk], tmp_path: Path) -> WebDesk:
    """A served gateway whose knowledge base has the `ARTICLES`, which `serve` indexes
    before it takes mail."""
    folder = write_articles(tmp_path / "kb")
    desk = make_web_desk(GATEWAY_KB_DIR=str(folder), GATEWAY_KB_MIN_SCORE="0.2")
    assert sorted(indexed(desk)) == sorted(ARTICLES)
    return desk


def indexed(desk: WebDesk) -> dict[str, str]:
    """The index's articles and their status, by slug."""
    with desk.gateway.session() as session:
        return {row.slug: row.status for row in session.scalars(select(KbArticle))}


def ask_about_echo(desk: WebDesk) -> tuple[int, CapturedMail]:
    """A new ticket the echo article answers: (its number, the acknowledgement)."""
    desk.customer_writes(
        new_mail(
            "Alice Example <alice@customer.example>",
            "Echo on Android",
            "Remote users hear an echo of their own voice on Android calls, SDK 4.2.1.",
        ).as_bytes()
    )
    ack = desk.wait_mail(ALICE, "Echo on Android")
    return desk.only_ticket().id, ack


def article_link(mail: CapturedMail, slug: str) -> tuple[str, str]:
    """The article's link in the mail's text part, and the status token it carries."""
    body = mail.message.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())  # type: ignore[attr-defined]
    found = re.search(ARTICLE_LINK.format(slug=re.escape(slug)), text, re.MULTILINE)
    assert found, f"no link to {slug} in:\n{text}"
    return found.group(1), found.group(2)


def events_of(desk: WebDesk, ticket_id: int, kind: EventKind) -> list[tuple[str, str]]:
    """(detail, actor) of the ticket's events of `kind`, oldest first."""
    with desk.gateway.session() as session:
        return [
            (event.detail, event.actor)
            for event in session.scalars(
                select(Event)
                .where(Event.ticket_id == ticket_id, Event.type == kind)
                .order_by(Event.id)
            )
        ]


@SQLITE
def test_a_customer_reads_a_suggested_article_and_closes_the_ticket_with_it(
    kb_desk: WebDesk, chromium: WebDriver
) -> None:
    desk = kb_desk
    ticket_id, ack = ask_about_echo(desk)
    link, _ = article_link(ack, ECHO)

    chromium.get(link)
    assert chromium.find_element(By.ID, "title").text == "Remote users hear an echo on Android"
    body = chromium.find_element(By.ID, "body")
    assert body.find_element(By.TAG_NAME, "h2").text == "Fix"
    assert "setAudioProfile" in body.find_element(By.CSS_SELECTOR, "pre code").text
    assert len(body.find_elements(By.CSS_SELECTOR, "table tbody tr")) == 2
    guide = body.find_element(By.LINK_TEXT, "audio guide")
    assert guide.get_attribute("href") == "https://docs.example.com/audio"
    chromium.get(link)
    assert events_of(desk, ticket_id, EventKind.ARTICLE_OPENED) == [(ECHO, ALICE)]
    screenshots(chromium, "article-page")

    chromium.find_element(By.ID, "solved").click()
    wait_until(
        lambda: "/t/" in chromium.current_url and text_of(chromium, "#standing .status"),
        15,
        "the status page after 'This solved it'",
    )
    assert text_of(chromium, "#standing .status") == "Closed"
    assert "You confirmed it is fixed." in text_of(chromium, "#trail")
    assert desk.ticket(ticket_id).status is TicketStatus.CLOSED
    assert events_of(desk, ticket_id, EventKind.SOLVED_BY_ARTICLE) == [(ECHO, ALICE)]
    [(why, actor)] = events_of(desk, ticket_id, EventKind.CONFIRMED)
    assert actor == ALICE and f"article {ECHO} solved it" in why

    chromium.get(link)
    assert chromium.find_element(By.ID, "title").text == "Remote users hear an echo on Android"
    assert not chromium.find_elements(By.ID, "solved"), "a closed ticket has nothing to solve"


def test_only_published_and_indexed_articles_have_pages(kb_desk: WebDesk) -> None:
    desk = kb_desk
    page = fetch(desk.url(f"/kb/{ECHO}"))
    assert page.status == 200 and "Remote users hear an echo on Android" in page.body
    assert_safe_headers(page.headers)
    assert 'id="solved"' not in page.body, "no token, no button"
    chinese = fetch(desk.url(f"/kb/{ECHO_ZH}"))
    assert chinese.status == 200 and '<html lang="zh">' in chinese.body

    for path in (
        f"/kb/{DRAFT}",
        "/kb/no-such-article",
        "/kb/..",
        "/kb/%2e%2e%2fkb%2f" + ECHO,
        "/kb/.hidden",
        f"/kb/{ECHO}.md",
        f"/kb/{ECHO.upper()}",
        "/kb/" + "a" * 300,
    ):
        reply = fetch(desk.url(path))
        assert reply.status == 404, path
        assert "This link opens nothing" in reply.body, path

    # The file says published, the index no longer does.
    with desk.gateway.session() as session, session.begin():
        session.execute(update(KbArticle).where(KbArticle.slug == ECHO_ZH).values(status="draft"))
    assert fetch(desk.url(f"/kb/{ECHO_ZH}")).status == 404
    # The index says published, the file no longer does.
    folder = desk.gateway.settings.knowledge.directory
    assert folder is not None
    (folder / f"{ECHO}.md").write_text(
        ARTICLES[ECHO].replace("status: published", "status: draft"), "utf-8"
    )
    assert fetch(desk.url(f"/kb/{ECHO}")).status == 404
    # An edited file is shown as it reads now, not as it was rendered before.
    assert '<h1 id="title">Formatting sample</h1>' in fetch(desk.url(f"/kb/{MARKUP}")).body
    (folder / f"{MARKUP}.md").write_text(
        ARTICLES[MARKUP].replace("Formatting sample", "Formatting sample, edited"), "utf-8"
    )
    assert '<h1 id="title">Formatting sample, edited</h1>' in fetch(desk.url(f"/kb/{MARKUP}")).body


def test_raw_html_in_an_article_is_shown_as_text(kb_desk: WebDesk) -> None:
    page = fetch(kb_desk.url(f"/kb/{MARKUP}"))
    assert page.status == 200
    assert (
        '<p>A sample with &lt;script&gt;alert("kb")&lt;/script&gt; and &lt;b&gt;raw tags&lt;/b&gt;'
        in page.body
    )
    assert '<p>&lt;div class="banner"&gt;A raw block&lt;/div&gt;</p>' in page.body
    assert "<script>alert" not in page.body and "<b>raw" not in page.body
    assert '<div class="banner"' not in page.body
    assert "javascript:" not in page.body
    assert "<a>a harmful link</a>" in page.body
    assert '<a href="https://example.com/help" rel="nofollow">' in page.body
    # The site loads no image from elsewhere, and has none of its own under /kb/.
    assert "<img" not in page.body
    assert "<p>A diagram of the call and a local one.</p>" in page.body


def test_a_bad_token_shows_the_article_without_the_button(kb_desk: WebDesk) -> None:
    desk = kb_desk
    ticket_id, ack = ask_about_echo(desk)
    link, token = article_link(ack, ECHO)
    changed = token[:-1] + ("a" if token[-1] != "a" else "b")
    for broken in (changed, token[:-1], f"0{token}", "", "x" * 3000):
        page = fetch(desk.url(f"/kb/{ECHO}?t={broken}"))
        assert page.status == 200 and "Remote users hear an echo" in page.body, broken
        assert 'id="solved"' not in page.body, broken
    # A genuine token, but for a ticket this article was never suggested to.
    other = fetch(desk.url(f"/kb/{MARKUP}?t={token}"))
    assert other.status == 200 and 'id="solved"' not in other.body
    assert events_of(desk, ticket_id, EventKind.ARTICLE_OPENED) == []

    # The translation of a suggested article counts as suggested.
    chinese = fetch(desk.url(f"/kb/{ECHO_ZH}?t={token}"))
    assert chinese.status == 200 and "这篇文章解决了我的问题" in chinese.body
    assert events_of(desk, ticket_id, EventKind.ARTICLE_OPENED) == [(ECHO_ZH, ALICE)]
    assert desk.ticket(ticket_id).status is TicketStatus.NEW


def test_this_solved_it_is_a_post_with_the_pages_csrf_token(kb_desk: WebDesk) -> None:
    desk = kb_desk
    ticket_id, ack = ask_about_echo(desk)
    link, token = article_link(ack, ECHO)
    browser = Client()
    page = browser.get(link)
    assert page.status == 200 and 'id="solved"' in page.body
    assert f'name="t" value="{token}"' in page.body
    solved = desk.url(f"/kb/{ECHO}/solved")

    assert fetch(solved).status == 405, "a GET never answers"
    assert browser.post(solved, {"t": token}).status == 403
    assert browser.post(solved, {"t": token, "csrf": "x" * 26}).status == 403
    assert Client().post(solved, {"t": token, "csrf": page.csrf}).status == 403
    assert browser.post(solved, {"t": token[:-1], "csrf": page.csrf}).status == 404
    elsewhere = browser.post(desk.url(f"/kb/{MARKUP}/solved"), {"t": token, "csrf": page.csrf})
    assert elsewhere.status == 303
    assert elsewhere.headers["Location"].endswith(f"/kb/{MARKUP}?t={token}")
    assert desk.ticket(ticket_id).status is TicketStatus.NEW
    assert events_of(desk, ticket_id, EventKind.SOLVED_BY_ARTICLE) == []

    done = browser.post(solved, {"t": token, "csrf": page.csrf})
    assert done.status == 303 and done.headers["Location"].endswith(f"/t/{token}")
    assert desk.ticket(ticket_id).status is TicketStatus.CLOSED
    again = browser.post(solved, {"t": token, "csrf": page.csrf})
    assert again.status == 303 and again.headers["Location"].endswith(f"/kb/{ECHO}?t={token}")
    assert events_of(desk, ticket_id, EventKind.SOLVED_BY_ARTICLE) == [(ECHO, ALICE)]


@contextmanager
def writes_held(desk: WebDesk) -> Iterator[None]:
    """SQLite's write lock held by another connection, as a long write of the workers would."""
    holder = sqlite3.connect(str(desk.gateway.settings.sqlite_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


@SQLITE
def test_an_article_visit_writes_only_its_first_note_and_never_fails_for_it(
    kb_desk: WebDesk, tmp_path: Path
) -> None:
    desk = kb_desk
    ticket_id, ack = ask_about_echo(desk)
    link, token = article_link(ack, ECHO)
    serve_log = tmp_path / "serve.log"
    not_noted = f"ticket #{ticket_id}: article {ECHO} opened, not noted"

    with writes_held(desk):
        other = fetch(desk.url(f"/kb/{MARKUP}?t={token}"))
        first = fetch(link)
    assert other.status == 200 and 'id="solved"' not in other.body
    assert first.status == 200 and 'id="solved"' in first.body, "decided on the read"
    assert events_of(desk, ticket_id, EventKind.ARTICLE_OPENED) == []
    assert serve_log.read_text("utf-8", "replace").count(not_noted) == 1
    assert "Traceback" not in serve_log.read_text("utf-8", "replace")

    assert 'id="solved"' in fetch(link).body
    assert events_of(desk, ticket_id, EventKind.ARTICLE_OPENED) == [(ECHO, ALICE)]
    with writes_held(desk):
        again = fetch(link)
    assert again.status == 200 and 'id="solved"' in again.body
    assert serve_log.read_text("utf-8", "replace").count(not_noted) == 1, "nothing to write"
    assert events_of(desk, ticket_id, EventKind.ARTICLE_OPENED) == [(ECHO, ALICE)]


@pytest.mark.parametrize(
    "markdown",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#115;cript:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](javascript&#58;alert(1))",
        "[x](<java\tscript:alert(1)>)",
        "[x][1]\n\n[1]: vbscript:msgbox",
        "![x](data:image/svg+xml;base64,PHN2Zz4=)",
    ],
)
def test_article_html_drops_addresses_a_browser_would_run(markdown: str) -> None:
    html = article_html(markdown)
    assert "href" not in html and "src" not in html, html


def test_article_html_keeps_web_mail_and_relative_addresses() -> None:
    html = article_html(
        "[web](https://example.com/a?b=1&c=2) [page](other-article) [mail](mailto:s@example.com)"
        "\n\n<https://example.com/auto>"
    )
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow">web</a>' in html
    assert '<a href="other-article">page</a>' in html
    assert '<a href="mailto:s@example.com">mail</a>' in html
    assert '<a href="https://example.com/auto" rel="nofollow">' in html
    assert "noreferrer" not in html, "the site's Referrer-Policy says it for every link"


def test_article_html_shows_images_as_their_alt_text() -> None:
    html = article_html(
        "See ![the dialog](https://example.com/d.png) then ![](x.png)![the button](b.png).\n\n"
        "[![a badge](badge.png)](https://example.com/b)"
    )
    assert "<img" not in html and "src" not in html
    assert "<p>See the dialog then the button.</p>" in html
    assert '<a href="https://example.com/b" rel="nofollow">a badge</a>' in html
