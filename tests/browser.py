"""Debian's Chromium driven by Playwright, for the browser tests (never a downloaded browser)."""

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import PASSWORD
from tests.services import require_chromium, require_postgres

SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@contextmanager
def chromium():
    """A launched headless Chromium; Django's ORM stays usable between browser steps."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    previous = os.environ.get(_ASYNC_UNSAFE)
    # Playwright's sync API keeps an event loop in this thread; the tests' ORM calls between
    # browser steps are still synchronous, so Django's async guard is lifted meanwhile.
    os.environ[_ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop(_ASYNC_UNSAFE, None)
        else:
            os.environ[_ASYNC_UNSAFE] = previous
        # Connections opened while the loop ran belong to its context; close them so the
        # test database can be dropped at the end of the run.
        connections.close_all()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# --- Fixtures and steps the browser tests share (a pytest plugin: tests/conftest.py) -------


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (the async guard is lifted only while it runs)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def open_page(browser, live_server, settings):
    """``open_page(**context_options)``: a new page on the live server, in a 1,280 × 900
    window, that waits up to 15 s and keeps the console's errors in ``page.complaints``; tasks
    run eagerly, as the product's one-process setup does. ``javascript=False`` turns it off."""
    require_postgres()
    settings.CELERY_TASK_ALWAYS_EAGER = True
    contexts = []

    def open_(*, javascript=True, timeout=15000, **options):
        options = {"viewport": {"width": 1280, "height": 900}, "accept_downloads": True, **options}
        context = browser.new_context(
            base_url=live_server.url, java_script_enabled=javascript, **options
        )
        context.set_default_timeout(timeout)
        contexts.append(context)
        page = context.new_page()
        page.complaints = []
        page.on(
            "console",
            lambda message: message.type == "error" and page.complaints.append(message.text),
        )
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page):
    return open_page()


def sign_in(page, user, next=None, *, arrive=None, password=PASSWORD):
    """Sign in on the sign-in page (then to ``next``), and wait for the page that follows
    (``arrive``, a URL pattern: ``next`` or the home page when not given)."""
    page.goto("/accounts/login/" + (f"?next={next}" if next else ""))
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(arrive or f"**{next or '/'}")


def sign_out(page):
    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/**")
