"""The emailed decision page and the Approvals history say on whose behalf a delegate decides."""

import pytest
from django.urls import reverse

from approvals.links import decision_url
from entitlements.models import ApprovalStage, QuorumMode
from tests.factories import UserFactory

from .conftest import approve, delegate, make_package, submit

pytestmark = pytest.mark.django_db


def test_the_emailed_decision_page_tells_the_delegate_on_whose_behalf(client, ann, ben, package):
    delegate(ann, ben)
    request = submit(UserFactory(), package)
    stage = request.approval_stages.get()
    client.force_login(ben)

    page = client.get(decision_url(stage=stage, approver=ben, absolute=False))

    assert page.status_code == 200
    assert "You decide on behalf of Ann Example" in page.content.decode()


def test_the_emailed_decision_page_names_nobody_to_the_approver_themselves(
    client, ann, ben, package
):
    delegate(ann, ben)
    request = submit(UserFactory(), package)
    client.force_login(ann)

    page = client.get(
        decision_url(stage=request.approval_stages.get(), approver=ann, absolute=False)
    )

    assert page.status_code == 200
    assert "on behalf of" not in page.content.decode()


def test_the_emailed_page_refuses_the_delegate_once_the_approver_decided(client, ann, ben, carl):
    package = make_package("Payroll", ann, carl)
    ApprovalStage.objects.filter(policy__access_package=package).update(
        quorum_mode=QuorumMode.SOME_OF, quorum_count=2
    )
    delegate(ann, ben)
    request = submit(UserFactory(), package)
    approve(ann, request)
    client.force_login(ben)

    page = client.get(
        decision_url(stage=request.approval_stages.get(), approver=ben, absolute=False)
    )

    assert page.status_code == 410
    assert "Ann Example already decided this request" in page.content.decode()


def test_the_history_says_on_whose_behalf_the_delegate_decided(client, ann, ben, package):
    delegate(ann, ben)
    approve(ben, submit(UserFactory(), package))
    client.force_login(ben)

    page = client.get(reverse("myaccess:approval_history")).content.decode()

    assert "on behalf of Ann Example" in page
