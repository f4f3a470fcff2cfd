"""Delivery to a real slapd: grants reach the group, refusals are final, failures retried,
and a system that keeps failing is left alone (circuit breaker) until it answers again."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.models import AssignmentState, ConnectedSystem, GrantState
from entitlements.services import common, reconciliation
from entitlements.services.delivery import (
    assignment_deliver,
    assignment_reprocess,
    assignment_revoke,
    retry_countdown,
)
from entitlements.services.ending import assignment_remove
from entitlements.tasks import deliver_assignment
from tests.connectors.helpers import ldap_resource, person
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(ldap_server, ldap_system):
    """A resource for a fresh LDAP group and a package granting its Member role."""
    name = f"delivery-{uuid.uuid4().hex[:8]}"
    resource = ldap_resource(ldap_system, ldap_server.add_group(name))
    package, policy = package_giving(resource)
    return name, resource, package, policy


def test_an_approved_request_puts_the_person_in_the_ldap_group(ldap_server, group):
    name, _resource, package, policy = group
    ann = person(ldap_server, "ann")

    assignment = fulfil(approved_request(ann, package, policy))
    outcome = assignment_deliver(assignment_id=assignment.pk)

    assert outcome.ok and outcome.done == 1
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert ldap_server.members(name) == {"ann"}


def test_removal_takes_the_person_out_and_one_removed_by_hand_already_is_a_success(
    ldap_server, group, admin_user
):
    name, _resource, package, policy = group
    ann, bob = person(ldap_server, "ann"), person(ldap_server, "bob")
    first = fulfil(approved_request(ann, package, policy))
    second = fulfil(approved_request(bob, package, policy))
    for assignment in (first, second):
        assignment_deliver(assignment_id=assignment.pk)
    assert ldap_server.members(name) == {"ann", "bob"}
    conn = ldap_server.connection()
    conn.modify(
        ldap_server.group_dn(name), {"member": [("MODIFY_DELETE", [ldap_server.person_dn("bob")])]}
    )
    conn.unbind()

    for assignment in (first, second):
        assignment_remove(actor=admin_user, assignment=assignment, channel="admin")
        outcome = assignment_revoke(assignment_id=assignment.pk)
        assert outcome.ok, outcome.failed

    assert ldap_server.members(name) == set()
    assert set(first.grants.values_list("state", flat=True)) == {GrantState.REMOVED}
    assert set(second.grants.values_list("state", flat=True)) == {GrantState.REMOVED}


def test_a_person_missing_from_the_directory_is_refused_once_and_not_retried(
    ldap_server, group, admin_user
):
    name, resource, package, policy = group
    stranger = person(ldap_server, "nobody")
    assignment = fulfil(approved_request(stranger, package, policy))

    assert deliver_assignment.run(str(assignment.pk)) == 0  # no retry raised
    deliver_assignment.run(str(assignment.pk))  # a duplicate message calls nothing more

    grant = assignment.grants.get()
    assert (grant.state, grant.refused, grant.attempts) == (GrantState.DELIVERY_FAILED, True, 1)
    assert "no person with mail Nobody (nobody@example.org)" in grant.error
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERY_FAILED
    resource.connected_system.refresh_from_db()
    assert resource.connected_system.consecutive_failures == 0  # it answered
    assert not reconciliation.assignments_reconcile(
        now=timezone.now() + timedelta(hours=2), stuck_after=timedelta(0)
    )[0]

    # An administrator's Reprocess tries again, once the person exists.
    ldap_server.add_people(["nobody"])
    assignment_reprocess(actor=admin_user, assignment=assignment, channel="admin")
    assignment_deliver(assignment_id=assignment.pk)
    assert ldap_server.members(name) == {"nobody"}
    assert assignment.grants.get().refused is False


def test_the_retry_waits_grow_exponentially_with_jitter_or_follow_retry_after(settings):
    settings.CONNECTOR_RETRY_BACKOFF, settings.CONNECTOR_RETRY_BACKOFF_MAX = 10, 300
    waits = {n: {retry_countdown(n) for _ in range(50)} for n in range(8)}

    for n, seen in waits.items():
        ceiling = min(300, 10 * 2**n)
        assert all(ceiling / 2 <= w <= ceiling for w in seen)
        assert len(seen) > 1  # jitter: not every worker retries at the same moment
    assert retry_countdown(3, retry_after=42) == 42


def test_a_failing_system_opens_the_circuit_then_one_probe_closes_it(
    ldap_server, group, monkeypatch
):
    _name, resource, package, policy = group
    system = resource.connected_system
    users = [person(ldap_server, uid) for uid in ("ann", "bob", "cem", "dora", "eve", "ann2")]
    ldap_server.add_people(["ann2"])
    assignments = [fulfil(approved_request(u, package, policy)) for u in users]
    now = timezone.now()
    ldap_server.stop_process()

    for assignment in assignments[:5]:
        outcome = assignment_deliver(assignment_id=assignment.pk, now=now)
        assert outcome.failed and outcome.retryable
    system.refresh_from_db()
    assert system.consecutive_failures == 5 and system.is_unhealthy

    # Open: the next one is not called at all; it waits, with no attempt counted.
    outcome = assignment_deliver(assignment_id=assignments[5].pk, now=now + timedelta(seconds=1))
    assert outcome.waiting and not outcome.failed and not outcome.retryable
    grant = assignments[5].grants.get()
    assert (grant.state, grant.attempts, grant.claimed_by) == (GrantState.PENDING, 0, "")
    assert "unhealthy (5 failures in a row)" in grant.error

    # One probe per interval: it fails while the server is down, and the rest still wait.
    probe_time = now + timedelta(seconds=61)
    assert assignment_deliver(assignment_id=assignments[5].pk, now=probe_time).failed
    assert assignment_deliver(assignment_id=assignments[0].pk, now=probe_time).waiting
    system.refresh_from_db()
    assert system.consecutive_failures == 6

    ldap_server.start_process()
    resumed = []
    with monkeypatch.context() as patch:
        patch.setattr(common, "enqueue_task", lambda name, *args: resumed.append((name, args)))
        later = probe_time + timedelta(seconds=61)
        assert assignment_deliver(assignment_id=assignments[5].pk, now=later).ok
    system.refresh_from_db()
    assert (system.consecutive_failures, system.is_unhealthy) == (0, False)
    assert resumed == [("entitlements.tasks.resume_connected_system", (system.pk,))]

    # The system's waiting work is handed out again, and goes through.
    delivering, _revoking = reconciliation.connected_system_resume(system_id=system.pk)
    assert delivering == 5
    for assignment in assignments:
        assignment.refresh_from_db()
        assert assignment.state == AssignmentState.DELIVERED, assignment.grants.get().error
    assert ldap_server.members(group[0]) == {"ann", "bob", "cem", "dora", "eve", "ann2"}


def test_a_disabled_system_is_not_called_and_its_health_is_untouched(ldap_server, group):
    _name, resource, package, policy = group
    ConnectedSystem.objects.filter(pk=resource.connected_system_id).update(enabled=False)
    assignment = fulfil(approved_request(person(ldap_server, "ann"), package, policy))

    outcome = assignment_deliver(assignment_id=assignment.pk)

    assert outcome.waiting and not outcome.failed
    assert "is disabled" in assignment.grants.get().error
    assert ConnectedSystem.objects.get(pk=resource.connected_system_id).consecutive_failures == 0
