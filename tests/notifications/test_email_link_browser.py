"""In a real browser: the approver opens the Approve link from the email they received."""

import re

import pytest

from entitlements.models import Assignment, AssignmentState, Channel
from entitlements.services.requests import request_submit
from tests.browser import screenshot
from tests.factories import PASSWORD, GroupResourceFactory, grant_role


def sign_in(page, base, email, next_url=None):
    page.goto(next_url or f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action*=login] [type=submit]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_approver_approves_from_the_email_link_and_the_requestor_sees_the_access(
    live_server, settings, smtp_server, browser, approval_policy, requester, approver
):
    settings.SITE_URL = live_server.url
    resource = GroupResourceFactory(catalog=approval_policy.access_package.catalog)
    grant_role(approval_policy.access_package, resource.roles.get(origin_id="Member"))
    request = request_submit(
        actor=requester,
        target=requester,
        access_package=approval_policy.access_package,
        justification="Quarter-end close",
        channel=Channel.PORTAL,
    )
    smtp_server.wait_for(2)
    text = smtp_server.text(smtp_server.to(approver.email)[0])
    approve_link = re.search(r"(http\S+/approvals/email/decide/\S+\?decision=approve)", text)[1]
    assert approve_link.startswith(live_server.url)

    approver_page = browser.new_page()
    approver_page.goto(approve_link)
    # Not signed in: the sign-in page, then straight back to the decision page.
    assert "/accounts/login/" in approver_page.url
    approver_page.fill("input[name=login]", approver.email)
    approver_page.fill("input[name=password]", PASSWORD)
    approver_page.click("form[action*=login] [type=submit]")
    approver_page.wait_for_url(re.compile(r".*/approvals/email/decide/.*"))
    assert approver_page.is_checked("input[name=decision][value=approve]")
    assert "Quarter-end close" in approver_page.content()
    screenshot(approver_page, "email-decision")
    approver_page.fill("textarea[name=justification]", "Needed for the close")
    approver_page.click("button[type=submit].primary")
    approver_page.wait_for_url(re.compile(r".*/approvals/email/decided/"))
    assert "Decision recorded" in approver_page.content()

    assignment = Assignment.objects.get(target=requester)
    assert assignment.state == AssignmentState.DELIVERED

    requestor_page = browser.new_page()
    sign_in(requestor_page, live_server.url, requester.email)
    requestor_page.goto(f"{live_server.url}/requests/{request.pk}/")
    content = requestor_page.content()
    assert "Delivered" in content
    assert "Needed for the close" in content
    screenshot(requestor_page, "request-delivered")

    # The same link, used again, says who decided and changes nothing.
    approver_page.goto(approve_link)
    assert "already approved by Arno Approver" in approver_page.content()
