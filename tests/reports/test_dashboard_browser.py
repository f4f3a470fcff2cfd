"""The dashboard in a real browser (Debian's Chromium): five charts drawn, nothing wider than
the window, no Content-Security-Policy complaint, and the numbers a click away."""

import pytest

from tests.browser import SCREENSHOTS, sign_in

from .test_dashboard import finance, now, other_catalog  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def test_the_dashboard_draws_its_five_charts_in_the_browser(
    page,
    admin_user,
    finance,  # noqa: F811
    other_catalog,  # noqa: F811
):
    sign_in(page, admin_user, "/admin/reports/dashboard/")

    assert page.get_by_role("heading", name="Requests per week, by outcome").is_visible()
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    for i in range(5):
        box = charts.nth(i).bounding_box()
        assert box["width"] > 300 and box["height"] > 50
    assert page.get_by_role("img", name="Assignments by access package").is_visible()
    assert page.locator("svg.chart text", has_text="Finance reports").count() == 1
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert not [c for c in page.complaints if "Content Security Policy" in c], page.complaints

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.get_by_text("The numbers").nth(3).click()
    table = page.locator("table.dashboard-table").nth(3)
    assert table.is_visible()
    assert "Payroll secrets" in table.inner_text()
