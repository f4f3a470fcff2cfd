"""The portal in a real browser: request, approve, follow, cancel, deny, bulk approve."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.services import stage_decide
from entitlements.models import Channel
from tests.browser import screenshot, sign_in, sign_out
from tests.factories import UserFactory

from .conftest import local_input, make_package, submit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def test_an_employee_requests_a_package_the_approver_approves_and_it_becomes_active(
    page, requester, approver, approved_package, ticket_question, region_question
):
    page.goto("/accounts/login/")
    screenshot(page, "01-sign-in")
    sign_in(page, requester)
    screenshot(page, "02-overview")

    page.get_by_role("link", name="Access packages", exact=True).click()
    page.get_by_label("Search access packages").fill("CRM")
    page.get_by_role("button", name="Search").click()
    screenshot(page, "03-access-packages")
    page.get_by_role("link", name="Request CRM access").click()

    page.get_by_label("Ticket number?").fill("abc")
    page.get_by_label("Europe").check()
    page.get_by_label("Business justification").fill("Pipeline review")
    end = timezone.now() + timedelta(days=10)
    page.get_by_label("Ends").fill(local_input(end))
    page.get_by_role("button", name="Submit request").click()
    page.get_by_text("not in the expected format").wait_for()
    assert page.get_by_label("Business justification").input_value() == "Pipeline review"
    screenshot(page, "04-request-form-with-error")

    page.get_by_label("Ticket number?").fill("ABC-1234")
    page.get_by_role("button", name="Submit request").click()
    page.get_by_text("Your request is submitted").wait_for()
    assert page.get_by_text("Arno Approver will decide").is_visible()
    screenshot(page, "05-request-submitted")

    page.get_by_role("link", name="Request history").click()
    assert page.get_by_text("Pending approval").first.is_visible()
    screenshot(page, "06-request-history")
    sign_out(page)

    sign_in(page, approver)
    page.get_by_role("link", name="Approvals", exact=True).click()
    assert page.get_by_text("ABC-1234").is_visible()
    screenshot(page, "07-approvals")
    page.get_by_role("link", name="Review Rita Requester's request for CRM access").click()
    page.get_by_label("Approve", exact=True).check()
    page.get_by_label("Reason").fill("Welcome aboard")
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text("You approved Rita Requester's request for CRM access.").wait_for()
    sign_out(page)

    sign_in(page, requester)
    page.goto("/access-packages/active/")
    assert page.get_by_role("link", name="CRM access", exact=True).is_visible()
    assert page.get_by_text("Delivered").is_visible()
    screenshot(page, "08-active-access")
    page.goto("/requests/")
    page.get_by_role("link", name="CRM access", exact=True).click()
    assert page.get_by_text("Welcome aboard").is_visible()
    screenshot(page, "09-request-timeline")


def test_an_employee_cancels_a_pending_request(page, requester, approved_package):
    request_obj = submit(requester, approved_package)
    sign_in(page, requester)

    page.goto(f"/requests/{request_obj.pk}/")
    page.get_by_role("button", name="Cancel request").click()

    page.get_by_text("Your request for CRM access is canceled.").wait_for()
    assert page.locator(".page-head .badge").inner_text() == "Canceled"


def test_a_denied_request_shows_the_approvers_reason(page, requester, approver, approved_package):
    request_obj = submit(requester, approved_package)
    stage_decide(
        actor=approver,
        stage=request_obj.approval_stages.get(),
        decision="Denied",
        justification="Ask your manager first",
        channel=Channel.PORTAL,
    )
    sign_in(page, requester)

    page.goto(f"/requests/{request_obj.pk}/")

    assert page.get_by_text("Stage 1 denied").is_visible()
    assert page.get_by_text("Ask your manager first").is_visible()
    assert page.get_by_role("link", name="Request again").is_visible()
    screenshot(page, "10-denied-request")


def test_a_hidden_package_is_requested_through_its_link(page, requester, catalog):
    hidden = make_package(catalog, "Secret project")
    hidden.is_hidden = True
    hidden.save()
    sign_in(page, requester)

    page.goto(f"/access-packages/{hidden.pk}/")
    page.get_by_role("link", name="Request access").click()
    page.get_by_role("button", name="Submit request").click()

    page.get_by_text("Your request is submitted").wait_for()
    page.goto("/access-packages/active/")
    assert page.get_by_role("link", name="Secret project", exact=True).is_visible()


def test_an_approver_approves_three_requests_at_once(page, approver, approved_package):
    for n in range(3):
        submit(UserFactory(display_name=f"Colleague {n}"), approved_package)
    sign_in(page, approver)

    page.goto("/approvals/")
    for checkbox in page.locator("input[name=stages]").all():
        checkbox.check()
    page.get_by_label("Reason").fill("Team onboarding")
    screenshot(page, "11-bulk-approval")
    page.get_by_role("button", name="Approve selected").click()

    page.get_by_text("You approved 3 requests.").wait_for()
    assert page.get_by_text("No requests wait for your approval").is_visible()


def test_sign_in_pages_share_the_products_layout(page, requester):
    page.goto("/accounts/password/reset/")
    assert page.locator(".site-header").is_visible()
    assert page.get_by_role("button", name="Reset My Password").is_visible()
    screenshot(page, "12-password-reset")

    sign_in(page, requester)
    page.locator(".account-menu summary").click()
    page.get_by_role("link", name="Two-factor authentication").click()
    page.get_by_role("heading", name="Two-Factor Authentication").wait_for()
    screenshot(page, "13-two-factor")
