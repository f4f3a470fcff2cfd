"""A quorum stage in a real browser: the first approver approves, the page says who is still
needed, the second approves (shortening the access) and the request moves on."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from entitlements.models import RequestState
from tests.approvals_quorum.setup import group_of, quorum_policy, submitted
from tests.browser import screenshot, sign_in, sign_out
from tests.factories import UserFactory
from tests.portal.conftest import local_input

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def test_two_groups_approve_one_after_the_other_and_the_request_moves_on(page, requester):
    sam = UserFactory(display_name="Sam Security", email="sam@example.com")
    dora = UserFactory(display_name="Dora Data", email="dora@example.com")
    policy = quorum_policy(
        groups=[group_of("Security", sam), group_of("Data owners", dora)],
        approvers_may_shorten=True,
    )
    request = submitted(requester, policy)
    stage = request.approval_stages.get()
    detail = reverse("myaccess:approval_detail", args=[stage.pk])

    sign_in(page, sam)
    page.goto(detail)
    assert page.get_by_test_id("quorum-progress").inner_text() == (
        "0 of 2 approvals; still needed: one from Security, one from Data owners."
    )
    page.get_by_label("Approve", exact=True).check()
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text("You approved Rita Requester's request").wait_for()
    screenshot(page, "quorum-01-first-approval")
    sign_out(page)

    sign_in(page, dora)
    page.get_by_role("link", name="Approvals", exact=True).click()
    page.get_by_role("link", name="Review Rita Requester's request").click()
    assert page.get_by_test_id("quorum-progress").inner_text() == (
        "1 of 2 approvals; still needed: one from Data owners."
    )
    assert page.get_by_text("Approved by Sam Security").is_visible()
    screenshot(page, "quorum-02-still-needed")
    page.get_by_label("Approve", exact=True).check()
    page.get_by_label("Approve until").fill(local_input(timezone.now() + timedelta(days=7)))
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text("You approved Rita Requester's request").wait_for()
    sign_out(page)

    request.refresh_from_db()
    assert request.state in (RequestState.DELIVERING, RequestState.DELIVERED)
    sign_in(page, requester)
    page.goto(reverse("myaccess:request_detail", args=[request.pk]))
    assert page.get_by_text("Stage 1: one approval").is_visible()
    assert page.get_by_text("Stage 1 approved").is_visible()
    assert page.get_by_text("by Dora Data.").is_visible()
    screenshot(page, "quorum-03-requestor-timeline")
