"""The web page in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
Selenium) against a real server: ask with streaming, open a citation, sessions, upload."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import KEY, Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Chromium for the browser test: run `make browser`.")
    pytest.skip(
        "Chromium and chromedriver are not installed (`make browser`)", allow_module_level=True
    )

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(driver: Any, condition: Any, timeout: float = 300) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def test_web_page_asks_cites_keeps_sessions_and_uploads(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    find = browser.find_element
    browser.get(server.url + "/")
    assert browser.title == "Handbook"
    # Without the key the page says what is missing.
    wait(browser, lambda d: "API key" in find(By.ID, "error").text)
    key = find(By.ID, "key")
    key.send_keys(KEY, Keys.TAB)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#documents li")) == 4)
    assert find(By.ID, "error").text == ""

    # A session, a streamed answer, a citation that shows document and page.
    find(By.ID, "new-session").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#sessions li.active"))
    find(By.ID, "question").send_keys("Wie viel Drehmoment für die Radschrauben?")
    find(By.ID, "send").click()
    citations = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#conversation .citation"))
    assert find(By.CSS_SELECTOR, "#conversation .answer").text.strip()
    assert any("p. 2" in c.text or "p. 3" in c.text for c in citations), [c.text for c in citations]
    target = next(c for c in citations if "p. 2" in c.text or "p. 3" in c.text)
    target.click()
    assert find(By.ID, "source").is_displayed()
    assert "Seite" in find(By.ID, "source-where").text
    assert find(By.ID, "source-text").text.strip()

    # The session keeps the turn: reload, open it, the question is there.
    title = wait(browser, lambda d: [
        li.text for li in d.find_elements(By.CSS_SELECTOR, "#sessions li.active")
        if "Drehmoment" in li.text
    ])  # fmt: skip
    assert title
    browser.refresh()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#sessions li"))
    find(By.CSS_SELECTOR, "#sessions li").click()
    wait(browser, lambda d: "Radschrauben" in find(By.ID, "conversation").text)

    # Upload a document and see it indexed and listed.
    manual = tmp_path / "pumpe.md"
    manual.write_text("# Pumpe\n\nDie Pumpe P9 fördert 40 Liter pro Minute.\n", encoding="utf-8")
    find(By.ID, "file").send_keys(str(manual))
    find(By.CSS_SELECTOR, "#upload button").click()
    wait(browser, lambda d: "indexed" in find(By.ID, "upload-status").text)
    wait(browser, lambda d: "pumpe.md" in find(By.ID, "documents").text)
    browser.save_screenshot(str(tmp_path.parent / "web-page.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not [e for e in errors if "401" not in e["message"]], errors
