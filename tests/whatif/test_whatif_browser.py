"""'Preview the effect' in Debian's Chromium with JavaScript turned off: the preview is a plain
form post, and the page comes back with the box and the unsaved change."""

import pytest

from entitlements.models import AllowedTargetScope, AssignmentPolicy
from tests.browser import SCREENSHOTS, sign_in
from tests.foundation.admin_support import admin_url

from .conftest import counts

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(open_page):
    return open_page(javascript=False)


def test_an_administrator_previews_widening_who_may_request_without_javascript(
    page, admin_user, world
):
    policy = world["policy"]
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    sign_in(page, admin_user, url)
    before = counts()

    page.select_option('select[name="allowed_target_scope"]', AllowedTargetScope.ALL_MEMBER_USERS)
    page.get_by_role("button", name="Preview the effect").click()
    page.wait_for_selector(".whatif")

    box = page.locator(".whatif").inner_text()
    assert "0 current holders would lose access" in box
    assert "3 people would newly be able to request" in box
    assert "Nothing has been saved yet" in box
    selected = page.locator('select[name="allowed_target_scope"]').input_value()
    assert selected == AllowedTargetScope.ALL_MEMBER_USERS
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".whatif").screenshot(path=str(SCREENSHOTS / "whatif-policy.png"))
    page.screenshot(path=str(SCREENSHOTS / "whatif-policy-page.png"))
    assert counts() == before
    policy.refresh_from_db()
    assert policy.allowed_target_scope == AllowedTargetScope.SPECIFIC_DIRECTORY_USERS
