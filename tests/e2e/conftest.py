"""Browser tests: Playwright driving Debian's Chromium against a live server, sandbox bank and cluster.

Playwright's own browser download does not work on our machines, so the tests
launch the system Chromium (``apt-get install chromium``; ``.ci/run`` does it).
Without it they are skipped locally with that instruction, and fail under CI.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"

# Playwright's sync API runs an event loop in this thread; the ORM calls the
# tests make between browser steps are ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed: apt-get install -y chromium (or set CHROMIUM_PATH)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            # Under `make test-shifted` the browser keeps the real clock: libfaketime in
            # Chromium stalls page loads a year ahead (docs/testing.md); the dates that
            # matter are the server's, the database's and the clusters'.
            env={k: v for k, v in os.environ.items() if k not in {"LD_PRELOAD", "FAKETIME"}},
        )
        yield browser
        browser.close()


@pytest.fixture
def login(browser, live_server):
    """``login(user, language="en")`` → a logged-in page in its own browser context."""
    contexts = []

    def open_as(user, language: str = "en"):
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        if language != "en":
            page.select_option("select[name=language]", language)  # submits itself (console.js)
            page.wait_for_selector(f"html[lang='{language}']")
        return page

    yield open_as
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot into docs/screenshots/ when ``E2E_SCREENSHOTS=1``.

    Off by default so that a test run does not rewrite the committed images;
    ``E2E_SCREENSHOTS=1 make test`` refreshes them (docs/console.md).
    """
    if os.environ.get("E2E_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
