"""'Preview the effect' in Debian's Chromium with JavaScript turned off: the preview is a plain
form post, and the page comes back with the box and the unsaved change."""

from pathlib import Path

import pytest
from django.conf import settings

from entitlements.models import AllowedTargetScope, AssignmentPolicy
from tests.browser import chromium
from tests.factories import PASSWORD
from tests.foundation.admin_support import admin_url
from tests.services import require_postgres

from .conftest import counts

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
            base_url=live_server.url,
            java_script_enabled=False,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(15000)
        yield context.new_page()
        context.close()


def test_an_administrator_previews_widening_who_may_request_without_javascript(
    page, admin_user, world
):
    policy = world["policy"]
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    page.goto(f"/accounts/login/?next={url}")
    page.fill('input[name="login"]', admin_user.email)
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{url}")
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
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".whatif").screenshot(path=str(ARTIFACTS / "whatif-policy.png"))
    page.screenshot(path=str(ARTIFACTS / "whatif-policy-page.png"))
    assert counts() == before
    policy.refresh_from_db()
    assert policy.allowed_target_scope == AllowedTargetScope.SPECIFIC_DIRECTORY_USERS
