"""In a real browser: Ann delegates to Ben, a request arrives, Ben approves on her behalf."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser import screenshot, sign_in, sign_out
from tests.factories import UserFactory

from .conftest import make_package, submit

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def test_ann_delegates_to_ben_who_approves_on_her_behalf_and_the_requestor_sees_it(page):
    ann = UserFactory(email="ann@example.com", display_name="Ann Example")
    ben = UserFactory(email="ben@example.com", display_name="Ben Example")
    rita = UserFactory(email="rita@example.com", display_name="Rita Requester")
    package = make_package("Finance reports", ann)

    sign_in(page, ann)
    page.get_by_role("link", name="Approvals", exact=True).click()
    page.get_by_role("link", name="Delegate my approvals").click()
    page.get_by_label("Delegate's email").fill("ben@example.com")
    end = timezone.localtime() + timedelta(days=7)
    page.get_by_label("Until").fill(end.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Note").fill("On holiday")
    page.get_by_role("button", name="Delegate", exact=True).click()
    page.get_by_text(
        "Ben Example now also receives the requests waiting for your approval."
    ).wait_for()
    assert page.get_by_text("In force").is_visible()
    screenshot(page, "delegation-01-ann-delegates")
    sign_out(page)

    request = submit(rita, package)

    sign_in(page, ben)
    page.get_by_role("link", name="Approvals", exact=True).click()
    assert page.get_by_text("On behalf of Ann Example").is_visible()
    screenshot(page, "delegation-02-ben-sees-on-behalf")
    page.get_by_role("link", name="Review Rita Requester's request for Finance reports").click()
    assert page.get_by_text("You decide on behalf of Ann Example").is_visible()
    page.get_by_label("Approve", exact=True).check()
    page.get_by_label("Reason").fill("Covering for Ann")
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text("You approved Rita Requester's request for Finance reports.").wait_for()
    sign_out(page)

    sign_in(page, rita)
    page.goto(f"/requests/{request.pk}/")
    timeline = page.locator(".timeline")
    timeline.get_by_text("Ben Example on behalf of Ann Example").wait_for()
    assert timeline.get_by_text("Covering for Ann").is_visible()
    screenshot(page, "delegation-03-requestor-timeline")
