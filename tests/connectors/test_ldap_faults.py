"""Faults with a real Celery worker and a real slapd: the server stopped during delivery, a
worker SIGKILLed in the middle of a batch, and the whole flow from approval to the group."""

import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements.models import (
    AssignmentResourceRole,
    AssignmentState,
    AuditEvent,
    Channel,
    GrantState,
)
from entitlements.services.ending import assignment_remove
from entitlements.services.reconciliation import assignments_reconcile
from entitlements.services.requests import request_submit
from tests.conftest import start_celery_worker
from tests.connectors.helpers import ldap_resource, person
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving
from tests.lifecycle.requests_setup import approval_policy

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fast_retries(monkeypatch, settings):
    """The worker (and this process) retry after a fraction of a second, not 30 s."""
    monkeypatch.setenv("CONNECTOR_RETRY_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("CONNECTOR_RETRY_BACKOFF_MAX_SECONDS", "1")
    settings.CONNECTOR_RETRY_BACKOFF, settings.CONNECTOR_RETRY_BACKOFF_MAX = 0.2, 1


def wait_until(condition, timeout=60, every=0.05, between=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if between:
            between()
        time.sleep(every)
    raise AssertionError("timed out")


def delivered_events(grant):
    return AuditEvent.objects.filter(
        object_id=str(grant.pk), action=f"grant.{GrantState.DELIVERED}"
    ).count()


def new_group(ldap_server, ldap_system, **settings):
    if settings:
        ldap_system.settings = {**ldap_system.settings, **settings}
        ldap_system.save()
    name = f"faults-{uuid.uuid4().hex[:8]}"
    resource = ldap_resource(ldap_system, ldap_server.add_group(name))
    return name, resource


def test_an_approval_puts_the_requester_in_the_ldap_group_through_the_worker(
    ldap_server, ldap_system, approver
):
    name, resource = new_group(ldap_server, ldap_system)
    package, _policy = package_giving(resource)
    policy = approval_policy(package=package, approvers=[approver])
    ann = person(ldap_server, "ann")
    request = request_submit(actor=ann, target=ann, access_package=package, policy=policy)
    worker = start_celery_worker()
    try:
        began = time.monotonic()
        stage_decide(
            actor=approver,
            stage=request.approval_stages.get(),
            decision=ReviewResult.APPROVED,
            channel=Channel.PORTAL,
        )
        wait_until(lambda: ldap_server.members(name) == {"ann"}, timeout=30, every=0.02)
        seconds = time.monotonic() - began
    finally:
        worker.close()
    assert seconds < 5, seconds  # the target is 2 s; the CI machine is shared
    request.refresh_from_db()
    assert request.assignment.state == AssignmentState.DELIVERED


def test_slapd_stopped_during_delivery_then_started_delivers_everything_once_in_order(
    ldap_server, ldap_system, admin_user, fast_retries
):
    name, resource = new_group(ldap_server, ldap_system, probe_interval=1)
    package, policy = package_giving(resource)
    ann, bob, cem = (person(ldap_server, uid) for uid in ("ann", "bob", "cem"))
    worker = start_celery_worker()
    try:
        ldap_server.stop_process()
        assignments = [fulfil(approved_request(u, package, policy)) for u in (ann, bob, cem)]
        grants = AssignmentResourceRole.objects.filter(assignment__in=assignments)
        # Every one was tried while the server was down.
        wait_until(lambda: all(g.attempts >= 1 for g in grants.all()), timeout=30)
        assert ldap_server.process is None
        # Ann's access is removed before the server comes back: she must end up out.
        assignment_remove(actor=admin_user, assignment=assignments[0], channel=Channel.ADMIN)
        ldap_server.start_process()

        def done():
            states = dict(grants.values_list("assignment__target_id", "state"))
            return states == {
                ann.pk: GrantState.REMOVED,
                bob.pk: GrantState.DELIVERED,
                cem.pk: GrantState.DELIVERED,
            }

        # The reconciler (beat runs it every minute) hands out what waited.
        wait_until(
            done,
            timeout=90,
            every=0.5,
            between=lambda: assignments_reconcile(stuck_after=timedelta(microseconds=1)),
        )
    finally:
        worker.close()
    assert ldap_server.members(name) == {"bob", "cem"}
    for assignment in assignments[1:]:
        assert delivered_events(assignment.grants.get()) == 1
    ldap_system.refresh_from_db()
    assert ldap_system.consecutive_failures == 0


def test_a_worker_killed_in_the_middle_of_100_grants_delivers_each_exactly_once(
    ldap_server, ldap_system
):
    name, resource = new_group(ldap_server, ldap_system)
    package, policy = package_giving(resource)
    uids = [f"kill{i:03d}" for i in range(100)]
    ldap_server.add_people(uids)
    users = [person(ldap_server, uid) for uid in uids]
    requests = [approved_request(u, package, policy) for u in users]
    grants = AssignmentResourceRole.objects.filter(resource_role__resource=resource)

    worker = start_celery_worker()
    try:
        with transaction.atomic():  # the 100 deliveries are enqueued together, on commit
            for request in requests:
                fulfil(request)
        wait_until(lambda: grants.filter(state=GrantState.DELIVERED).count() >= 5, every=0.005)
        worker.proc.send_signal(signal.SIGKILL)  # no warm shutdown, no ack
        worker.proc.wait(10)
    finally:
        worker.close()
    delivered_at_kill = grants.filter(state=GrantState.DELIVERED).count()
    assert delivered_at_kill < 100, "the worker finished before it was killed"
    # The dead worker's claims stay until their leases run out; here they have run out.
    grants.filter(lease_expires__isnull=False).update(lease_expires=timezone.now())

    worker = start_celery_worker()  # on an emptied broker: the reconciler re-enqueues
    try:
        assignments_reconcile(stuck_after=timedelta(microseconds=1))
        # Exactly once is the point here, not speed: a loaded CI machine gets time.
        wait_until(lambda: grants.filter(state=GrantState.DELIVERED).count() == 100, timeout=300)
    finally:
        worker.close()
    assert ldap_server.members(name) == set(uids)
    assert [delivered_events(g) for g in grants] == [1] * 100
    assert not grants.exclude(claimed_by="").exists()
