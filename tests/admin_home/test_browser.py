"""The admin at 1,280 × 800 in a real browser: no page is wider than the window."""

from pathlib import Path

import pytest
from django.conf import settings

from entitlements.models import AccessPackage, ApprovalStage, Assignment, AssignmentPolicy
from tests.browser import chromium
from tests.factories import (
    GroupFactory,
    GroupResourceFactory,
    add_approver,
    add_subject,
    grant_role,
)
from tests.foundation.admin_support import admin_url
from tests.services import require_postgres

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]

ARTIFACTS = Path(settings.BASE_DIR) / "tests" / "artifacts"
WIDTH, HEIGHT = 1280, 800


@pytest.fixture
def admin_page(live_server, client, admin_user):
    require_postgres()
    client.force_login(admin_user)
    with chromium() as browser:
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": WIDTH, "height": HEIGHT}
        )
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        context.set_default_timeout(15000)
        yield context.new_page()
        context.close()


def _too_wide(page, path, name):
    """The elements that reach past the window on ``path`` (the page itself, or a table that
    scrolls inside its box); a screenshot of the page is saved either way."""
    response = page.goto(path)
    assert response.status == 200, path
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
    return page.evaluate(
        """(width) => {
            const wide = [];
            if (document.documentElement.scrollWidth > width) {
                wide.push("page " + document.documentElement.scrollWidth);
            }
            const boxes = "table, input, select, textarea, .select2";
            for (const el of document.querySelectorAll(boxes)) {
                const right = Math.ceil(el.getBoundingClientRect().right);
                if (right > width) {
                    wide.push(`${el.tagName}.${el.className}#${el.name || ""} ${right}`);
                }
            }
            return wide;
        }""",
        WIDTH,
    )


def test_no_admin_page_an_administrator_builds_a_package_on_is_wider_than_the_window(
    admin_page, policy, stage, approver
):
    package = policy.access_package
    package.is_hidden = True
    package.save(update_fields=["is_hidden"])
    grant_role(package, GroupResourceFactory(catalog=package.catalog).roles.first())
    add_approver(
        stage,
        purpose="fallbackPrimaryApprover",
        subject_type="groupMembers",
        group=GroupFactory(display_name="Finance approvers of the northern region"),
    )
    add_approver(
        stage, purpose="escalationApprover", subject_type="requestorManager", manager_level=2
    )
    add_subject(
        policy,
        "allowedTarget",
        "groupMembers",
        group=GroupFactory(display_name="Contractors of the northern region"),
    )
    add_subject(
        policy,
        "allowedTarget",
        "attributeRuleMembers",
        membership_rule='user.department -eq "Sales" -and user.jobTitle -in ["Buyer", "Seller"]',
    )
    pages = {
        "home": "/admin/",
        "package": admin_url(AccessPackage, "change", package.pk),
        "policy": admin_url(AssignmentPolicy, "change", policy.pk),
        "stage": admin_url(ApprovalStage, "change", stage.pk),
        "assignments": admin_url(Assignment, "changelist"),
        "policies": admin_url(AssignmentPolicy, "changelist"),
    }

    too_wide = {name: _too_wide(admin_page, path, name) for name, path in pages.items()}

    assert {name: found for name, found in too_wide.items() if found} == {}


def test_the_package_link_can_be_copied_and_reads_as_a_link_without_javascript(admin_page, policy):
    package = policy.access_package
    admin_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    admin_page.goto(admin_url(AccessPackage, "change", package.pk))
    link = admin_page.locator("a.myaccess-link")
    assert link.inner_text().endswith(f"/access-packages/{package.pk}/")

    admin_page.get_by_role("button", name="Copy link").click()

    admin_page.wait_for_selector(".copy-done:not([hidden])")
    assert admin_page.evaluate("navigator.clipboard.readText()") == link.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin_page.screenshot(path=str(ARTIFACTS / "admin-package-link.png"))
