"""Debian's Chromium driven by Playwright, for the browser tests (never a downloaded browser)."""

import os
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from tests.services import require_chromium

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
