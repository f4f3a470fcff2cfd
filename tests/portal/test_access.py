"""Every page and action refuses the wrong person, and changes nothing when it does."""

import pytest
from django.urls import reverse

from approvals.models import RequestApprovalStage, ReviewResult
from entitlements.models import AssignmentRequest, RequestState
from tests.factories import AccessPackageFactory, PolicyFactory

from .conftest import submit

pytestmark = pytest.mark.django_db


def page_urls(request_obj, stage, assignment_pk, package):
    return [
        reverse("myaccess:home"),
        reverse("myaccess:packages"),
        reverse("myaccess:active_assignments"),
        reverse("myaccess:package", args=[package.pk]),
        reverse("myaccess:request_create", args=[package.pk]),
        reverse("myaccess:requests"),
        reverse("myaccess:request_detail", args=[request_obj.pk]),
        reverse("myaccess:approvals"),
        reverse("myaccess:approval_history"),
        reverse("myaccess:approval_detail", args=[stage.pk]),
        reverse("myaccess:assignment_remove", args=[assignment_pk]),
        reverse("reviews:list"),
    ]


def test_an_anonymous_visitor_is_sent_to_sign_in_from_every_page(
    client, requester, approved_package
):
    request_obj = submit(requester, approved_package)
    stage = request_obj.approval_stages.get()
    for url in page_urls(request_obj, stage, request_obj.pk, approved_package):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("account_login")), url


def test_another_users_request_is_not_found(client, requester, outsider, approved_package):
    request_obj = submit(requester, approved_package)
    client.force_login(outsider)

    assert client.get(reverse("myaccess:request_detail", args=[request_obj.pk])).status_code == 404
    response = client.post(reverse("myaccess:request_cancel", args=[request_obj.pk]))

    assert response.status_code == 404
    request_obj.refresh_from_db()
    assert request_obj.state == RequestState.PENDING_APPROVAL


def test_another_users_request_is_not_listed_in_my_history(
    client, requester, outsider, approved_package
):
    submit(requester, approved_package)
    client.force_login(outsider)

    response = client.get(reverse("myaccess:requests"))

    assert approved_package.display_name not in response.content.decode()
    assert "No requests yet" in response.content.decode()


def test_an_approval_not_assigned_to_me_is_not_found_and_nothing_changes(
    client, requester, outsider, approved_package
):
    stage = submit(requester, approved_package).approval_stages.get()
    client.force_login(outsider)

    assert client.get(reverse("myaccess:approval_detail", args=[stage.pk])).status_code == 404
    response = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]),
        {"decision": ReviewResult.APPROVED, "justification": "sure"},
    )

    assert response.status_code == 404
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED


def test_a_bulk_decision_ignores_stages_not_assigned_to_me(
    client, requester, outsider, approved_package
):
    stage = submit(requester, approved_package).approval_stages.get()
    client.force_login(outsider)

    response = client.post(
        reverse("myaccess:approval_bulk"),
        {"stages": [str(stage.pk)], "decision": ReviewResult.APPROVED},
        follow=True,
    )

    assert RequestApprovalStage.objects.get(pk=stage.pk).review_result == "NotReviewed"
    assert "it no longer waits for your decision" in response.content.decode()


def test_a_requestor_cannot_approve_their_own_request(client, approver, approved_package):
    stage = submit(approver, approved_package).approval_stages.get()
    client.force_login(approver)

    response = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]),
        {"decision": ReviewResult.APPROVED},
    )

    assert response.status_code == 404
    stage.refresh_from_db()
    assert stage.review_result == ReviewResult.NOT_REVIEWED


def test_a_package_outside_my_scope_says_why_and_refuses_the_request(client, outsider, catalog):
    package = AccessPackageFactory(catalog=catalog, display_name="Board papers")
    PolicyFactory(access_package=package, allowed_target_scope="notSpecified")
    client.force_login(outsider)

    page = client.get(reverse("myaccess:package", args=[package.pk])).content.decode()
    response = client.post(
        reverse("myaccess:request_create", args=[package.pk]),
        {"justification": "Please", "policy": str(package.assignment_policies.get().pk)},
    )

    assert "an administrator assigns it directly" in page
    assert response.status_code == 403
    assert not AssignmentRequest.objects.filter(access_package=package).exists()


def test_someone_elses_assignment_cannot_be_removed_or_extended(
    client, requester, outsider, open_package
):
    assignment = submit(requester, open_package).assignment
    client.force_login(outsider)

    for name in ("myaccess:assignment_remove", "myaccess:assignment_extend"):
        assert client.get(reverse(name, args=[assignment.pk])).status_code == 404
        assert client.post(reverse(name, args=[assignment.pk])).status_code == 404
    assignment.refresh_from_db()
    assert assignment.is_open


def test_state_changes_refuse_a_get(client, requester, approved_package):
    request_obj = submit(requester, approved_package)
    client.force_login(requester)

    assert client.get(reverse("myaccess:request_cancel", args=[request_obj.pk])).status_code == 405
    assert client.get(reverse("myaccess:approval_bulk")).status_code == 405
    request_obj.refresh_from_db()
    assert request_obj.state == RequestState.PENDING_APPROVAL


def test_a_post_without_csrf_token_is_refused(requester, approved_package):
    from django.test import Client

    request_obj = submit(requester, approved_package)
    client = Client(enforce_csrf_checks=True)
    client.force_login(requester)

    response = client.post(reverse("myaccess:request_cancel", args=[request_obj.pk]))

    assert response.status_code == 403
    request_obj.refresh_from_db()
    assert request_obj.state == RequestState.PENDING_APPROVAL
