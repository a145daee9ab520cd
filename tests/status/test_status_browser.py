"""The status page in a real browser: Debian's Chromium driven by Selenium through
chromedriver, against a real daemon probing the real test bed. The page loads without a
console error, the filters work (also with JavaScript turned off), the page refreshes
itself in place when a state changes (alice's password breaks while the page is open), it
can be used from the keyboard, and at a phone's width the body never scrolls sideways."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import bed_account, daemon_config, free_port, running_daemon

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def browser(*, javascript: bool = True, width: int = 1200) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", f"--window-size={width},900"):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(width, 900)
        yield driver
    finally:
        driver.quit()


def rows(driver: webdriver.Chrome) -> dict[str, str]:
    """data-key ("imap/alice") -> the row's state class, read in one script call (the
    page's refresh may swap the rows between two WebDriver calls)."""
    found: dict[str, str] = driver.execute_script(
        "const out = {}; document.querySelectorAll('tr[data-key]').forEach("
        "r => { out[r.dataset.key] = r.className; }); return out;")
    return found


def console(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The browser console's messages since the last call (chromedriver's log)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


async def wait_until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.25)


async def test_status_page_in_chromium(testbed: MailTestBed, tmp_path: Path) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    config = daemon_config(
        tmp_path, port, bed_account(testbed, "alice", "alice", secrets),
        bed_account(testbed, "bob", "bob", secrets, password="Not-Bobs-Pa55"), interval="2s")
    url = f"http://127.0.0.1:{port}/status"
    async with running_daemon(config, port) as daemon:
        async def all_ran() -> bool:
            doc = (await daemon.client.get(f"http://127.0.0.1:{port}/api/v1/status")).json()
            return all(t["ok"] is not None for t in doc["targets"])
        await daemon.wait_for(all_ran, 30, "a result for every target")
        with browser() as driver:
            driver.get(url + "?refresh=2")
            assert driver.title.startswith("Mail status")
            assert rows(driver) == {"imap/alice": "ok", "smtp/alice": "ok",
                                    "imap/bob": "failing", "smtp/bob": "failing"}
            assert "password" in driver.execute_script(
                "return document.querySelector('tr.failing .hint').textContent;")
            # Keyboard: the first Tab reaches the skip link, and it leads to the results.
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
            skip = driver.switch_to.active_element
            assert skip.get_attribute("class") == "skip"
            controls = "form select, form input:not([type=hidden])"
            for control in driver.find_elements(By.CSS_SELECTOR, controls):
                label = driver.find_elements(
                    By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")
                assert label and label[0].text, control.get_attribute("name")
            # The page refreshes itself: alice's password breaks while it is open.
            driver.execute_script("window.notReloaded = true;")
            (secrets / "alice").write_text("Broken-Alice-Pa55\n")
            await wait_until(lambda: rows(driver).get("imap/alice") == "failing", 30,
                             "the open page showing alice failing")
            assert driver.execute_script("return window.notReloaded === true;")
            assert driver.execute_script(  # the bar agrees with the state it shows
                "return document.querySelector(\"tr[data-key='imap/alice'] .bar\")"
                ".lastElementChild.className;") == "down"
            logs = [e for e in console(driver) if e["level"] in ("SEVERE", "WARNING")]
            assert logs == [], logs
            driver.save_screenshot(str(tmp_path / "status-desktop.png"))
            # Filters: state and probe through the form.
            Select(driver.find_element(By.ID, "f-state")).select_by_value("ok")
            Select(driver.find_element(By.ID, "f-probe")).select_by_visible_text("smtp")
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            await wait_until(lambda: "state=ok" in driver.current_url, 10, "the filtered URL")
            assert rows(driver) == {"smtp/alice": "ok"} or rows(driver) == {}
            assert set(rows(driver)) <= {"smtp/alice"}
            assert "probe=smtp" in driver.current_url
        # A phone's width: every row readable, no sideways scrolling of the body.
        with browser(width=375) as phone:
            phone.get(url)
            assert len(rows(phone)) == 4
            wide, inner = phone.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth];")
            assert wide <= inner, (wide, inner)
            hint = phone.find_element(By.CSS_SELECTOR, "tr.failing .hint")
            assert hint.rect["x"] >= 0 and hint.rect["x"] + hint.rect["width"] <= inner
            phone.save_screenshot(str(tmp_path / "status-phone.png"))
            assert [e for e in console(phone) if e["level"] == "SEVERE"] == []
        # Without JavaScript: the same page, filters by the form's plain GET.
        with browser(javascript=False) as plain:
            plain.get(url)
            assert len(rows(plain)) == 4
            Select(plain.find_element(By.ID, "f-state")).select_by_value("failing")
            plain.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            await wait_until(lambda: "state=failing" in plain.current_url, 10, "form GET")
            assert set(rows(plain).values()) == {"failing"}
