"""The reports in a real browser (Debian's Chromium): every page fits 1,280 px with no
Content-Security-Policy complaint, a filter narrows the rows, and the CSV downloads."""

from pathlib import Path

import pytest

from reports.views import REPORTS
from tests.browser import SCREENSHOTS, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def test_the_reports_fit_the_window_filter_and_export(page, catalog_owner, ours):
    sign_in(page, catalog_owner, "/admin/")
    page.get_by_role("link", name="Who has access to what").first.click()
    page.wait_for_url("**/admin/reports/access/")
    assert page.locator("#result_list tbody tr").count() == 20

    page.fill('input[name="user"]', ours.people[4].email)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/admin/reports/access/?*")
    assert page.locator("#result_list tbody tr").count() == 2
    assert "2 rows" in page.locator(".report-count").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report-access.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("User,Resource,Role")

    for slug in REPORTS:
        page.goto(f"/admin/reports/{slug}/")
        assert page.locator(".report-count").is_visible(), slug
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, slug
    page.screenshot(path=str(SCREENSHOTS / "report-inactive.png"), full_page=True)
    assert not [c for c in page.complaints if "Content Security Policy" in c], page.complaints
