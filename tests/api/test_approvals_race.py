"""Two approvers deciding the same stage through the API at the same moment, on the real
PostgreSQL: exactly one decision is recorded, the other gets 409."""

import threading

import pytest
from django.db import connection
from django.test import Client

from approvals.models import RequestApprovalStage
from entitlements.models import AuditEvent
from entitlements.services.requests import request_submit
from tests.factories import UserFactory
from tests.lifecycle.requests_setup import approval_policy
from tests.services import require_postgres

URL = "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def patch_together(clients, url, bodies):
    """PATCH ``url`` from each client in its own thread and connection, released at once."""
    barrier = threading.Barrier(len(clients))
    answers = []
    lock = threading.Lock()

    def worker(client, body):
        try:
            barrier.wait(timeout=30)
            response = client.patch(url, body, content_type="application/json")
            with lock:
                answers.append(
                    (response.status_code, response.json() if response.content else None)
                )
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=pair) for pair in zip(clients, bodies, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(answers, key=lambda answer: answer[0])


def test_two_approvers_patching_at_once_record_exactly_one_decision():
    require_postgres()
    first, second, requester = UserFactory(), UserFactory(), UserFactory()
    # Two stages, so the winner opens stage 2 and the outcome does not depend on delivery.
    policy = approval_policy(approvers=[first, second], stages=2)
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )
    stage = RequestApprovalStage.objects.get(request=request, sequence=1)
    clients = []
    for person in (first, second):
        client = Client()
        client.force_login(person)
        clients.append(client)

    answers = patch_together(
        clients,
        f"{URL}/{request.pk}/stages/{stage.pk}",
        [{"reviewResult": "Approve"}, {"reviewResult": "Deny"}],
    )

    assert [status for status, _ in answers] == [204, 409]
    assert "already" in answers[1][1]["error"]["message"]
    stage.refresh_from_db()
    assert stage.reviewed_by in (first, second)
    decided = AuditEvent.objects.filter(
        action__in=["stage.approve", "stage.deny"], object_id=str(stage.pk)
    )
    assert decided.count() == 1
