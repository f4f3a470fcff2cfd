"""Concurrent clicks and submissions on the real PostgreSQL: exactly one wins."""

import threading

import pytest
from django.db import connection

from approvals.models import RequestApprovalStage, ReviewResult
from approvals.services import stage_decide
from entitlements.errors import StateConflict
from entitlements.models import AssignmentRequest, AuditEvent, Channel, RequestState
from entitlements.services.requests import request_submit
from tests.factories import UserFactory
from tests.lifecycle.requests_setup import approval_policy
from tests.services import require_postgres

THREADS = 20

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def run_together(calls):
    """Run each call in its own thread and database connection, all released at once.

    Returns (results, conflicts, other errors).
    """
    barrier = threading.Barrier(len(calls))
    results, conflicts, errors = [], [], []
    lock = threading.Lock()

    def worker(call):
        try:
            barrier.wait(timeout=30)
            outcome = call()
        except StateConflict as exc:
            with lock:
                conflicts.append(exc)
        except Exception as exc:  # any other failure is reported by the assertions
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, conflicts, errors


def test_twenty_approvers_clicking_at_once_record_exactly_one_decision():
    require_postgres()
    approvers = [UserFactory() for _ in range(THREADS)]
    requester = UserFactory()
    # Two stages, so the winner opens stage 2 and the outcome does not depend on delivery.
    policy = approval_policy(approvers=approvers, stages=2)
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )
    stage = RequestApprovalStage.objects.get(request=request, sequence=1)

    def approve(person):
        return lambda: stage_decide(
            actor=person,
            stage=RequestApprovalStage.objects.get(pk=stage.pk),
            decision=ReviewResult.APPROVED,
            channel=Channel.EMAIL,
        )

    results, conflicts, errors = run_together([approve(p) for p in approvers])

    assert errors == []
    assert (len(results), len(conflicts)) == (1, THREADS - 1)
    assert all("already approved by" in str(c) for c in conflicts)
    stage.refresh_from_db()
    assert stage.reviewed_by == results[0].reviewed_by
    assert AuditEvent.objects.filter(action="stage.approve", object_id=str(stage.pk)).count() == 1
    assert RequestApprovalStage.objects.filter(request=request).count() == 2


def test_twenty_identical_submissions_at_once_create_one_request():
    require_postgres()
    requester, approver = UserFactory(), UserFactory()
    policy = approval_policy(approvers=[approver])

    def submit():
        return request_submit(
            actor=requester, target=requester, access_package=policy.access_package
        )

    results, conflicts, errors = run_together([submit] * THREADS)

    assert errors == []
    assert (len(results), len(conflicts)) == (1, THREADS - 1)
    assert AssignmentRequest.objects.filter(target=requester).count() == 1
    assert results[0].state == RequestState.PENDING_APPROVAL
