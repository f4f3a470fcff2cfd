"""The reports in a real browser (Debian's Chromium): every page fits 1,280 px with no
Content-Security-Policy complaint, a filter narrows the rows, and the CSV downloads."""

from pathlib import Path

import pytest
from django.conf import settings

from reports.views import REPORTS
from tests.browser import chromium
from tests.factories import PASSWORD
from tests.services import require_postgres

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]
ARTIFACTS = Path(settings.BASE_DIR) / "tests" / "artifacts"


@pytest.fixture
def page(live_server):
    require_postgres()
    with chromium() as browser:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(15000)
        page = context.new_page()
        page.complaints = []
        page.on(
            "console",
            lambda message: message.type == "error" and page.complaints.append(message.text),
        )
        yield page
        context.close()


def test_the_reports_fit_the_window_filter_and_export(page, catalog_owner, ours):
    page.goto("/accounts/login/?next=/admin/")
    page.fill('input[name="login"]', catalog_owner.email)
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Who has access to what").first.click()
    page.wait_for_url("**/admin/reports/access/")
    assert page.locator("#result_list tbody tr").count() == 20

    page.fill('input[name="user"]', ours.people[4].email)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/admin/reports/access/?*")
    assert page.locator("#result_list tbody tr").count() == 2
    assert "2 rows" in page.locator(".report-count").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-access.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("User,Resource,Role")

    for slug in REPORTS:
        page.goto(f"/admin/reports/{slug}/")
        assert page.locator(".report-count").is_visible(), slug
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, slug
    page.screenshot(path=str(ARTIFACTS / "report-inactive.png"), full_page=True)
    assert not [c for c in page.complaints if "Content Security Policy" in c], page.complaints
