"""A reviewer in a real browser denies one person and approves another; the review ends."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import Decision, ReviewItem
from reviews.services import review_instance_create, reviews_complete_due
from tests.browser import sign_in
from tests.factories import UserFactory

from .conftest import has_open_assignment, is_member

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def test_a_reviewer_denies_one_person_and_approves_another_in_the_browser(
    page, policy, reviewer, deliver, group_resource
):
    now = timezone.now()
    dora = UserFactory(display_name="Dora Denied", last_login=now - timedelta(days=90))
    alan = UserFactory(display_name="Alan Approved", last_login=now - timedelta(days=1))
    deliver(policy, dora)
    deliver(policy, alan)
    instance = review_instance_create(
        policy=policy, start=now - timedelta(days=1), end=now + timedelta(days=13), now=now
    )

    sign_in(page, reviewer, "/access-reviews/")
    assert page.get_by_role("heading", name="Finance reports").is_visible()

    page.get_by_label("Dora Denied").check()
    page.get_by_label("Deny", exact=True).check()
    page.get_by_label("Reason").fill("Has not signed in for months")
    page.get_by_role("button", name="Submit decisions").click()
    page.wait_for_selector(".messages .success")
    assert (
        "You denied the access of 1 person: Dora Denied – Finance reports."
        in page.locator(".messages").inner_text()
    )

    page.get_by_label("Alan Approved").check()
    page.get_by_label("Approve", exact=True).check()
    page.get_by_label("Reason").fill("Still on the project")
    page.get_by_role("button", name="Submit decisions").click()
    page.wait_for_selector(".messages .success")
    assert (
        "You approved the access of 1 person: Alan Approved – Finance reports."
        in page.locator(".messages").inner_text()
    )

    assert dict(ReviewItem.objects.values_list("target__display_name", "decision")) == {
        "Dora Denied": Decision.DENY,
        "Alan Approved": Decision.APPROVE,
    }
    reviews_complete_due(now=instance.end)

    assert not is_member(group_resource, dora)
    assert not has_open_assignment(policy, dora)
    assert is_member(group_resource, alan)
    assert has_open_assignment(policy, alan)
