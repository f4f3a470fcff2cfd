"""Delivery outside database transactions: claim, call the connector, record; leases; timeouts."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements.connectors import CONNECTOR_KINDS, Connector, ConnectorError, ConnectorTimeout
from entitlements.models import (
    AssignmentState,
    Channel,
    ConnectedSystem,
    GrantState,
    RequestState,
)
from entitlements.services.delivery import _claim_delivery, assignment_deliver
from entitlements.services.ending import assignment_remove
from entitlements.services.reconciliation import assignments_reconcile
from entitlements.services.requests import request_submit
from entitlements.tasks import deliver_assignment
from tests.factories import GroupResourceFactory
from tests.lifecycle.assignment_helpers import (
    CountingConnector,
    approved_request,
    fulfil,
    group_resources,
    is_member,
    package_giving,
    run_in_threads,
    use_connector,
)
from tests.lifecycle.requests_setup import approval_policy
from tests.services import require_postgres

NOW = timezone.now().replace(microsecond=0)


def _locks_held():
    """The locks this connection holds besides the one its own query needs."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT locktype, mode FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND locktype NOT IN ('virtualxid') "
            "AND NOT (locktype = 'relation' AND mode = 'AccessShareLock')"
        )
        return cursor.fetchall()


class SlowSystem(Connector):
    """A system that answers after up to 10 s (or when the test lets it), checking that no
    transaction or lock of this database is held meanwhile."""

    in_thread = False  # in the caller's thread, so the checks see the caller's connection
    seen = []
    running = threading.Event()
    release = threading.Event()

    def grant(self, role, user):
        self._check()
        SlowSystem.running.set()
        SlowSystem.release.wait(timeout=10)

    def revoke(self, role, user):
        self._check()

    def _check(self):
        SlowSystem.seen.append(
            {
                "atomic": connection.in_atomic_block,
                "autocommit": connection.get_autocommit(),
                "locks": _locks_held() if connection.vendor == "postgresql" else [],
            }
        )


@pytest.fixture
def slow_system(monkeypatch):
    SlowSystem.seen = []
    SlowSystem.running, SlowSystem.release = threading.Event(), threading.Event()
    monkeypatch.setitem(CONNECTOR_KINDS, ConnectedSystem.Kind.LDAP, SlowSystem)
    yield ConnectedSystem.objects.create(kind=ConnectedSystem.Kind.LDAP, name="Slow LDAP")
    SlowSystem.release.set()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_slow_connector_does_not_block_an_approver_deciding_another_request_of_the_user(
    requester, approver, slow_system, settings
):
    require_postgres()
    slow = GroupResourceFactory(connected_system=slow_system)
    slow_package, slow_policy = package_giving(slow)
    slow_assignment = fulfil(approved_request(requester, slow_package, slow_policy))
    policy = approval_policy(approvers=[approver])
    other = policy.access_package.resource_role_scopes.get().role.resource
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the approval's delivery runs in its thread
    decided = {}

    def deliver_slowly():
        return assignment_deliver(assignment_id=slow_assignment.pk)

    def decide():
        assert SlowSystem.running.wait(timeout=10)
        began = time.monotonic()
        stage_decide(
            actor=approver,
            stage=request.approval_stages.get(),
            decision=ReviewResult.APPROVED,
            channel=Channel.PORTAL,
        )
        decided["seconds"] = time.monotonic() - began
        decided["member"] = is_member(requester, other)
        SlowSystem.release.set()

    run_in_threads(deliver_slowly, decide)

    assert decided["seconds"] < 3
    assert decided["member"]  # delivered while the slow system was still busy
    request.refresh_from_db()
    slow_assignment.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    assert slow_assignment.state == AssignmentState.DELIVERED


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_lock_is_held_while_the_connector_grants_or_revokes(
    requester, admin_user, slow_system
):
    require_postgres()
    SlowSystem.release.set()
    package, policy = package_giving(GroupResourceFactory(connected_system=slow_system))
    assignment = fulfil(approved_request(requester, package, policy))

    assignment_deliver(assignment_id=assignment.pk)
    assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    assert len(SlowSystem.seen) == 2  # one grant, one revoke
    assert SlowSystem.seen == [{"atomic": False, "autocommit": True, "locks": []}] * 2
    assert assignment.grants.get().state == GrantState.REMOVED


@pytest.mark.django_db
def test_an_expired_lease_is_claimed_again_by_the_reconciler_and_delivered_once(
    requester, monkeypatch, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    counting = CountingConnector()
    use_connector(monkeypatch, counting)
    resource = group_resources(1)[0]
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy), now=NOW)
    _claim_delivery(assignment.pk, NOW)  # a worker claims the grant, then dies
    grant = assignment.grants.get()
    assert grant.claimed_by and grant.lease_expires > NOW

    assert assignment_deliver(assignment_id=assignment.pk, now=NOW).done == 0
    assert counting.granted == []  # the claim holds until its lease runs out

    with time_machine.travel(grant.lease_expires + timedelta(seconds=1), tick=False):
        assert assignments_reconcile() == (1, 0)
        assert assignments_reconcile() == (0, 0)

    assignment.refresh_from_db()
    grant.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert len(counting.granted) == 1
    assert is_member(requester, resource)
    assert (grant.state, grant.claimed_by, grant.lease_expires) == (GrantState.DELIVERED, "", None)


class UnansweringSystem(Connector):
    """A network system that never answers in time."""

    def grant(self, role, user):
        threading.Event().wait(timeout=2)


@pytest.mark.django_db
def test_a_connector_that_exceeds_its_timeout_is_recorded_as_a_retryable_error(
    requester, monkeypatch
):
    monkeypatch.setitem(CONNECTOR_KINDS, ConnectedSystem.Kind.SCIM, UnansweringSystem)
    system = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.SCIM, name="Payroll SCIM", settings={"timeout": 0.2}
    )
    package, policy = package_giving(GroupResourceFactory(connected_system=system))
    assignment = fulfil(approved_request(requester, package, policy))

    began = time.monotonic()
    outcome = assignment_deliver(assignment_id=assignment.pk)

    assert time.monotonic() - began < 1.5
    grant = assignment.grants.get()
    assert grant.state == GrantState.DELIVERY_FAILED
    assert grant.error == "Payroll SCIM did not answer within 0.2 seconds."
    assert (grant.attempts, grant.claimed_by, grant.lease_expires) == (1, "", None)
    assert not outcome.ok
    assert issubclass(ConnectorTimeout, ConnectorError) and ConnectorTimeout.retryable
    system.refresh_from_db()
    assert system.consecutive_failures == 1 and "did not answer" in system.last_error
    with pytest.raises(ConnectorError, match="did not answer"):
        deliver_assignment.run(str(assignment.pk))  # Celery retries it with backoff
