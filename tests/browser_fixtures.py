"""What every browser test shares: one headless Debian chromium for the session, a fresh
context per test that fails on uncaught JavaScript errors, logging in, and README screenshots.

The fixtures are registered once, in tests/conftest.py: Playwright's sync API cannot be
started twice in one thread, so two test modules must not each own a session browser.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import PASSWORD

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
# Page checks for every width: nothing scrolls sideways, and what sticks out (empty when nothing does).
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
# What sticks out of the page: elements past its right edge that no scrolling box of theirs clips.
WIDE = """() => {
  const width = document.documentElement.clientWidth;
  const out = e => e.getBoundingClientRect().right > width + 1;
  const clipped = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== "visible") return true; } return false; };
  return [...document.querySelectorAll("body *")].filter(e => out(e) && !clipped(e))
    .slice(0, 8).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + e.className);
}"""

expect.set_options(timeout=15_000)


def chromium_path() -> str | None:
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole session; each test gets a fresh context."""
    executable = chromium_path()
    if not executable:
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    # Playwright's sync API keeps an asyncio loop running on this thread, so Django would
    # refuse every ORM call the tests (and fixtures such as `alice`) make while it is started.
    # The tests stay synchronous: lift Django's guard for as long as Playwright runs.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                                  args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
        finally:
            playwright.stop()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) on the live server; fails on uncaught JS errors."""
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    js_errors: list[str] = []
    tab.on("pageerror", lambda exc: js_errors.append(f"{tab.url}: {exc}"))
    yield tab
    context.close()
    assert not js_errors, f"Uncaught JavaScript errors: {js_errors}"


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot for the README, only when VISIONLAB_SCREENSHOTS is set."""
    folder = os.environ.get("VISIONLAB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def log_in(page: Page, username: str, path: str = "/jobs/") -> None:
    """Open `path` logged out, get sent to the login form, log in, and land back on `path`."""
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login/\?next=" + re.escape(path) + "$"))
    expect(page.get_by_role("heading", name="Log in to VisionLab")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    expect(page.locator(".usermenu .username")).to_have_text(username)
    # The page's scripts (Chart.js among them) come after the markup: wait for them too.
    page.wait_for_load_state("load")
