"""Revoking an approval while the delivery worker runs, on PostgreSQL with real threads."""

import threading

import pytest
from django.db import connection

from approvals import services as approval_services
from approvals.models import ApprovalRevocation, StageApprover
from approvals.services import approval_revoke
from entitlements.models import (
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    Channel,
    RequestState,
    RequestType,
)
from entitlements.services import delivery
from entitlements.services.delivery import assignment_deliver, assignment_revoke
from entitlements.services.requests import RequestStatus
from tests.factories import UserFactory
from tests.lifecycle.assignment_helpers import CountingConnector, run_in_threads, use_connector
from tests.services import require_postgres

from .conftest import approve, make_package, submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


@pytest.fixture(autouse=True)
def postgres():
    require_postgres()


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """The threads below play the worker: what the services enqueue is only recorded."""
    calls = []
    monkeypatch.setattr(
        "entitlements.services.common.enqueue_task",
        lambda name, *args: calls.append((name.rsplit(".", 1)[1], *args)),
    )
    return calls


@pytest.fixture
def counting(monkeypatch):
    connector = CountingConnector()
    use_connector(monkeypatch, connector)
    return connector


@pytest.fixture
def approved(ann):
    package = make_package("Finance reports", ann)
    request = submit(UserFactory(display_name="Rita Requester"), package)
    approve(ann, request)
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERING
    return request, StageApprover.objects.get(user=ann)


def revoke(ann, approval):
    return approval_revoke(
        actor=ann, approval=approval, reason="Approved by mistake", channel=Channel.PORTAL
    )


def test_a_revocation_during_a_running_delivery_removes_the_access_it_gave(ann, approved, counting):
    request, approval = approved
    counting.hold = threading.Event()  # the worker is granting when the approver revokes

    def deliver():
        return assignment_deliver(assignment_id=request.assignment_id)

    def take_back():
        counting.granting.wait(timeout=10)
        try:
            return revoke(ann, approval)
        finally:
            counting.hold.set()

    _delivered, revocation = run_in_threads(deliver, take_back)
    assignment_revoke(assignment_id=request.assignment_id)  # the revocation it enqueued

    assert revocation.outcome == ApprovalRevocation.Outcome.ACCESS_REMOVED
    assert len(counting.granted) == 1
    assert len(counting.revoked) == 1
    assert AssignmentRequest.objects.filter(
        assignment=request.assignment_id, request_type=RequestType.ADMIN_REMOVE
    ).exists()
    request.assignment.refresh_from_db()
    assert request.assignment.state == AssignmentState.EXPIRED
    request.refresh_from_db()
    assert (request.state, request.status) == (RequestState.DENIED, RequestStatus.DENIED)
    denial = AuditEvent.objects.get(request=request, action="request.deny")
    assert denial.reason == "Approval revoked by Ann Example: Approved by mistake"
    assert not AuditEvent.objects.filter(request=request, action="request.canceled").exists()


def test_a_delivery_after_the_revocation_calls_no_connector(ann, approved, counting):
    request, approval = approved

    revocation = revoke(ann, approval)
    assignment_deliver(assignment_id=request.assignment_id)

    assert revocation.outcome == ApprovalRevocation.Outcome.REQUEST_ENDED
    assert counting.granted == []
    request.refresh_from_db()
    assert request.state == RequestState.DENIED


def test_a_revocation_and_the_worker_recording_the_delivery_never_deadlock(
    ann, approved, counting, monkeypatch
):
    """The worker records under the assignment's lock and then settles the request; the
    revocation, pausing right after it locked the request, must already hold the assignment
    (same order), so one waits for the other instead of PostgreSQL killing one of them."""
    request, approval = approved
    worker_holds_assignment, revocation_holds_request = threading.Event(), threading.Event()
    settle, lock_request = delivery._settle_request, approval_services.lock_request

    def settle_slowly(*args, **kwargs):
        worker_holds_assignment.set()
        revocation_holds_request.wait(3)
        return settle(*args, **kwargs)

    def lock_request_slowly(*args, **kwargs):
        row = lock_request(*args, **kwargs)
        revocation_holds_request.set()
        worker_holds_assignment.wait(3)
        return row

    monkeypatch.setattr(delivery, "_settle_request", settle_slowly)
    monkeypatch.setattr(approval_services, "lock_request", lock_request_slowly)
    errors, results = [], {}

    def run(name, work):
        try:
            results[name] = work()
        except BaseException as error:  # noqa: BLE001 - the test reports every failure
            errors.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=run,
            args=("deliver", lambda: assignment_deliver(assignment_id=request.assignment_id)),
        ),
        threading.Thread(target=run, args=("revoke", lambda: revoke(ann, approval))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert results["revoke"].outcome in set(ApprovalRevocation.Outcome)
    request.assignment.refresh_from_db()
    assert not request.assignment.is_open
