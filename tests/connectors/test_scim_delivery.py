"""Delivery to a SCIM application: the real delivery service and tasks, a real SCIM server.

The server (tests/scimserver.py) is told to answer 500 or 429 for its next requests; the
product's delivery machinery does the rest.
"""

import time

import pytest
from celery.exceptions import Retry

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements.models import AssignmentState, Channel, GrantState, RequestState
from entitlements.services.ending import assignment_remove
from entitlements.services.requests import request_submit
from entitlements.tasks import deliver_assignment, revoke_assignment_grants
from tests.factories import AccessPackageFactory, grant_role
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving
from tests.lifecycle.requests_setup import approval_policy
from tests.scimserver import scim_group_resource, scim_system


@pytest.fixture
def wiki(scim_server, monkeypatch):
    return scim_system(scim_server, monkeypatch)


@pytest.fixture
def engineers(scim_server, wiki):
    """The application's Engineers group, added to a catalog as a resource."""
    group = scim_server.create_group("Engineers")
    return group, scim_group_resource(wiki, group)


def _run_like_a_worker(task, *args, runs=10):
    """Run ``task`` as a worker does: again each time it asks to be retried; returns the
    countdowns it asked for."""
    countdowns = []
    for _ in range(runs):
        try:
            task.apply(args=args)
        except Retry as retry:
            countdowns.append(retry.when)
            continue
        return countdowns
    raise AssertionError(f"still retrying after {runs} runs: {countdowns}")


def _successful(server, method):
    return [r for r in server.requests(method) if r["status"] and r["status"] < 300]


@pytest.mark.django_db
def test_an_approved_request_makes_the_requester_a_member_of_the_scim_group(
    requester, approver, scim_server, engineers, django_capture_on_commit_callbacks
):
    group, resource = engineers
    package = AccessPackageFactory(catalog=resource.catalog)
    grant_role(package, resource.roles.get(origin_id="Member"))
    approval_policy(package=package, approvers=[approver])
    request = request_submit(actor=requester, target=requester, access_package=package)
    assert scim_server.member_ids(group["id"]) == []

    with django_capture_on_commit_callbacks(execute=True):
        stage_decide(
            actor=approver,
            stage=request.approval_stages.get(),
            decision=ReviewResult.APPROVED,
            channel=Channel.PORTAL,
        )

    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    assert request.assignment.state == AssignmentState.DELIVERED
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]
    assert scim_server.user_named("requester@example.com")["displayName"] == "Rita Requester"


@pytest.mark.django_db
def test_a_server_answering_500_for_a_while_is_retried_and_delivers_once(
    requester, scim_server, engineers, wiki
):
    group, resource = engineers
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    scim_server.forget_requests()
    scim_server.fail_next(3, status=500, detail="Maintenance")

    countdowns = _run_like_a_worker(deliver_assignment, str(assignment.pk))

    assert len(countdowns) == 3 and all(c > 0 for c in countdowns)
    assignment.refresh_from_db()
    grant = assignment.grants.get()
    assert assignment.state == AssignmentState.DELIVERED
    assert (grant.state, grant.error, grant.attempts) == (GrantState.DELIVERED, "", 4)
    assert [r["status"] for r in scim_server.requests()][:3] == [500, 500, 500]
    assert len(_successful(scim_server, "POST")) == 1  # the user, created once
    assert len(_successful(scim_server, "PATCH")) == 1  # the membership, added once
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]
    wiki.refresh_from_db()
    assert wiki.consecutive_failures == 0 and wiki.last_success_datetime is not None
    assert "Maintenance" in wiki.last_error


@pytest.mark.django_db
def test_too_many_requests_asks_for_a_retry_no_earlier_than_retry_after(
    requester, scim_server, engineers
):
    group, resource = engineers
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    scim_server.fail_next(1, status=429, retry_after=120, detail="Rate limit: 10 a minute")

    countdowns = _run_like_a_worker(deliver_assignment, str(assignment.pk))

    assert len(countdowns) == 1 and countdowns[0] >= 120
    grant = assignment.grants.get()
    assert (grant.state, grant.attempts) == (GrantState.DELIVERED, 2)
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]


@pytest.mark.django_db
def test_a_definite_refusal_is_delivery_failed_with_the_applications_message_and_not_retried(
    requester, scim_server, engineers
):
    group, resource = engineers
    scim_server.http.delete(f"/Groups/{group['id']}")  # removed in the application meanwhile
    package, policy = package_giving(resource)
    request = approved_request(requester, package, policy)
    assignment = fulfil(request)
    scim_server.forget_requests()

    assert _run_like_a_worker(deliver_assignment, str(assignment.pk)) == []  # no retry

    assignment.refresh_from_db()
    request.refresh_from_db()
    grant = assignment.grants.get()
    assert grant.state == GrantState.DELIVERY_FAILED
    assert f"Group '{group['id']}' not found" in grant.error
    assert (grant.attempts, grant.refused) == (1, True)
    assert assignment.state == AssignmentState.DELIVERY_FAILED
    assert request.state == RequestState.DELIVERY_FAILED
    assert len(scim_server.requests("PATCH")) == 1  # asked once, never again


@pytest.mark.django_db
def test_a_revoke_of_someone_already_removed_in_the_application_succeeds(
    requester, admin_user, scim_server, engineers, django_capture_on_commit_callbacks
):
    group, resource = engineers
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    deliver_assignment.apply(args=[str(assignment.pk)])
    member_id = scim_server.member_ids(group["id"])[0]
    scim_server.remove_member(group["id"], member_id)  # by hand, in the application

    with django_capture_on_commit_callbacks(execute=True):
        removal = assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    removal.refresh_from_db()
    grant = assignment.grants.get()
    assert (grant.state, grant.error) == (GrantState.REMOVED, "")
    assert removal.state == RequestState.DELIVERED
    assert scim_server.member_ids(group["id"]) == []


@pytest.mark.django_db
def test_a_revoke_answered_500_is_retried_and_removes_the_member(
    requester, admin_user, scim_server, engineers, django_capture_on_commit_callbacks
):
    group, resource = engineers
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    deliver_assignment.apply(args=[str(assignment.pk)])
    scim_server.fail_next(2, status=503, detail="Try again", methods=["PATCH"])

    with pytest.raises(Retry), django_capture_on_commit_callbacks(execute=True):
        assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)
    grant = assignment.grants.get()
    assert (grant.state, grant.error) == (
        GrantState.REMOVAL_FAILED,
        f"Wiki answered 503 while removing 1 member(s) from the group {group['id']}: Try again",
    )
    countdowns = _run_like_a_worker(revoke_assignment_grants, str(assignment.pk))

    assert len(countdowns) == 1  # the second 503; the third call removes her

    grant.refresh_from_db()
    assert (grant.state, grant.error, grant.attempts) == (GrantState.REMOVED, "", 3)
    assert scim_server.member_ids(group["id"]) == []


@pytest.mark.django_db
def test_an_ended_assignment_is_removed_from_the_scim_group(
    requester, admin_user, scim_server, engineers, django_capture_on_commit_callbacks
):
    group, resource = engineers
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    deliver_assignment.apply(args=[str(assignment.pk)])
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]

    with django_capture_on_commit_callbacks(execute=True):
        assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    assert assignment.grants.get().state == GrantState.REMOVED
    assert scim_server.member_ids(group["id"]) == []


@pytest.fixture
def quick_backoff(monkeypatch):
    """The worker started after this fixture backs off from half a second, not 30."""
    monkeypatch.setenv("CONNECTOR_RETRY_BACKOFF_SECONDS", "0.5")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_500s_then_429_are_retried_by_the_worker_and_delivered_once_not_before_retry_after(
    requester, scim_server, engineers, quick_backoff, celery_worker
):
    group, resource = engineers
    package, policy = package_giving(resource)
    scim_server.forget_requests()
    scim_server.fail_next(2, status=500, detail="Maintenance")
    scim_server.fail_next(1, status=429, retry_after=3, detail="Rate limit: 10 a minute")

    assignment = fulfil(approved_request(requester, package, policy))  # the worker delivers

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assignment.refresh_from_db()
        if assignment.state == AssignmentState.DELIVERED:
            break
        time.sleep(0.2)
    assert assignment.state == AssignmentState.DELIVERED, "".join(celery_worker.output[-30:])
    seen = scim_server.requests()
    assert [r["status"] for r in seen[:4]] == [500, 500, 429, 200]
    assert seen[3]["at"] - seen[2]["at"] >= 3  # not before Retry-After
    assert len(_successful(scim_server, "POST")) == 1
    assert len(_successful(scim_server, "PATCH")) == 1
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]
    assert assignment.grants.get().attempts == 4
