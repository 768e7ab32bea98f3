"""Debian's headless Chromium, driven through its ChromeDriver, for the tests that read the
web pages in a real browser (the `chromium` fixture of `tests.conftest` starts it), and what
they read it with. Screenshots at phone and desktop width are kept in `test-artifacts/` (or
`$GATEWAY_TEST_ARTIFACTS`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

ARTIFACTS = Path(
    os.environ.get(
        "GATEWAY_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"
    )
)
PHONE = (390, 844)
DESKTOP = (1280, 900)
# The background services Chromium would reach out to, which a closed network refuses.
QUIET = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install -y chromium chromium-driver")
    return found


def start_chromium(profile: Path) -> WebDriver:
    """Headless Chromium in the Los Angeles time zone, far from the team's and the server's."""
    options = webdriver.ChromeOptions()
    options.binary_location = tool("chromium")
    for argument in (*QUIET, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(tool("chromedriver")), options=options)
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/Los_Angeles"})
    driver.set_page_load_timeout(30)
    return driver


def text_of(driver: WebDriver, selector: str) -> str:
    """The element's text; "" while the page it is on is being replaced."""
    try:
        return str(driver.find_element(By.CSS_SELECTOR, selector).text)
    except WebDriverException:
        return ""


def screenshots(driver: WebDriver, name: str) -> list[Path]:
    """The page at phone and desktop width, as tall as its content."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for label, (width, height) in (("phone", PHONE), ("desktop", DESKTOP)):
        driver.set_window_size(width, height)
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(height, int(full) + 120))
        path = ARTIFACTS / f"{name}-{label}.png"
        assert driver.save_screenshot(str(path)), path
        saved.append(path)
    return saved
