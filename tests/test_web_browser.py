"""The web pages in a real browser: Debian's headless Chromium, driven through its ChromeDriver,
against the real `gateway serve`. A customer opens the link of a mail the gateway really
sent, reads the trail in their own time zone, presses "Not fixed" and sees the ticket
reopen; an engineer signs in and reads the queue (`tests.browser` keeps their screenshots).
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from storage.models import TicketStatus
from tests.browser import screenshots, text_of
from tests.conftest import ALICE, ENG1, LEAD, load_case, run_gateway, wait_until
from tests.web import (
    WebDesk,
    status_link,
)

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE
def test_a_customer_reads_the_trail_and_reopens_with_not_fixed(
    web_desk: WebDesk, chromium: WebDriver
) -> None:
    desk = web_desk
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, "#note\nInternal: the customer runs a forked SDK.")
    desk.engineer_replies(
        notice, ENG1, "#resolve\nFixed in 5.2.2: update and <b>restart</b> the pusher."
    )
    solved = desk.wait_mail(ALICE, "Solved")

    chromium.get(status_link(solved))
    status = chromium.find_element(By.CSS_SELECTOR, "#standing .status").text
    assert status == "Solved: please confirm"
    trail = chromium.find_element(By.ID, "trail").text
    assert "Fixed in 5.2.2: update and <b>restart</b> the pusher." in trail
    assert "our app crashes as soon as the pusher starts" in trail
    dom = chromium.page_source
    for hidden in ("forked SDK", "Internal:", ENG1, ALICE, "eng1@"):
        assert hidden not in dom, hidden
    assert not chromium.find_elements(By.CSS_SELECTOR, ".text b, .text script")
    times = [t.text for t in chromium.find_elements(By.CSS_SELECTOR, "time[data-local]")]
    assert times and all("PST" in shown for shown in times), times
    saved = screenshots(chromium, "status-page-resolved")
    assert all(path.stat().st_size > 5000 for path in saved)

    chromium.find_element(By.ID, "note").send_keys("Still crashes on the Pixel 8.")
    chromium.find_element(By.ID, "not-fixed").click()
    wait_until(
        lambda: "You reopened it." in text_of(chromium, "#trail"), 15, "the page to show the reopen"
    )
    assert chromium.find_element(By.CSS_SELECTOR, "#standing .status").text == (
        "An engineer is investigating"
    )
    assert not chromium.find_elements(By.ID, "not-fixed")
    assert desk.ticket(ticket_id).status is TicketStatus.OPEN
    screenshots(chromium, "status-page-reopened")


@SQLITE
def test_an_engineer_signs_in_and_reads_the_queue(web_desk: WebDesk, chromium: WebDriver) -> None:
    desk = web_desk
    ticket_id, _ = desk.open_ticket()
    notice = desk.wait_mail(ENG1, "New (P3)")
    desk.engineer_replies(notice, ENG1, "#note Check the encoder path first.")
    desk.gateway.wait_idle()
    link = run_gateway(desk.gateway.env, "login-link", ENG1).stdout.strip()

    chromium.get(link)
    chromium.find_element(By.ID, "sign-in").click()
    wait_until(lambda: chromium.current_url.endswith("/queue"), 15, "the queue after sign-in")
    rows = chromium.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
    assert len(rows) == 1 and "Live stream crashes" in rows[0].text
    screenshots(chromium, "queue")

    chromium.find_element(By.LINK_TEXT, str(ticket_id)).click()
    notes = [e.text for e in chromium.find_elements(By.CSS_SELECTOR, ".internal")]
    assert any("Check the encoder path first." in text for text in notes)


@SQLITE
def test_a_chinese_customer_and_a_chinese_lead_read_in_chinese(
    web_desk: WebDesk, chromium: WebDriver
) -> None:
    desk = web_desk
    desk.customer_writes(load_case("customer_zh_gbk.eml"), sender="li@example.cn")
    desk.gateway.wait_for_receipts(1)
    [ticket] = desk.gateway.tickets()
    chromium.get(status_link(desk.wait_mail(ticket.requester, "")))
    assert chromium.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh"
    assert chromium.find_element(By.CSS_SELECTOR, "#trail h2").text == "全部记录"
    screenshots(chromium, "status-page-zh")

    chromium.get(run_gateway(desk.gateway.env, "login-link", LEAD).stdout.strip())
    chromium.find_element(By.ID, "sign-in").click()
    wait_until(lambda: chromium.current_url.endswith("/queue"), 15, "the queue after sign-in")
    headings = [th.text for th in chromium.find_elements(By.CSS_SELECTOR, "table.queue th")]
    assert "优先级" in headings and "客户最近来信" in headings
    screenshots(chromium, "queue-zh")
