"""Concurrency on PostgreSQL: real threads, each with its own connection and transaction."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from entitlements.models import (
    Assignment,
    AssignmentState,
    AuditEvent,
    Channel,
    GrantState,
)
from entitlements.services.delivery import assignment_deliver, assignment_revoke
from entitlements.services.ending import assignment_remove, assignments_expire_due
from tests.factories import UserFactory
from tests.lifecycle.assignment_helpers import (
    CountingConnector,
    approved_request,
    assign,
    fulfil,
    group_resources,
    is_member,
    package_giving,
    run_in_threads,
    use_connector,
    wait_until_a_transaction_waits_for_a_lock,
)
from tests.services import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]
NOW = timezone.now().replace(microsecond=0)


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


def test_two_deliveries_at_once_grant_each_role_once(requester, counting):
    resources = group_resources(3)
    package, policy = package_giving(*resources)
    assignment = fulfil(approved_request(requester, package, policy))
    counting.hold = threading.Event()  # the first run is granting when the second starts

    def first():
        return assignment_deliver(assignment_id=assignment.pk)

    def second():
        counting.granting.wait(timeout=10)
        try:
            return assignment_deliver(assignment_id=assignment.pk)
        finally:
            counting.hold.set()

    outcomes = run_in_threads(first, second)

    assert len(counting.granted) == 3
    assert sorted(o.done for o in outcomes) == [0, 3]
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert all(is_member(requester, r) for r in resources)
    assert AuditEvent.objects.filter(action="grant.delivered").count() == 3
    assert AuditEvent.objects.filter(action="assignment.delivered").count() == 1


def test_a_removal_during_delivery_does_not_wait_and_the_access_is_taken_away_after(
    requester, admin_user, counting, enqueued
):
    resource = group_resources(1)[0]
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    counting.hold = threading.Event()

    def deliver():
        return assignment_deliver(assignment_id=assignment.pk)

    def remove():
        counting.granting.wait(timeout=10)
        try:
            assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)
            # The grant is still claimed by the delivery: revocation leaves it alone.
            return assignment_revoke(assignment_id=assignment.pk).done
        finally:
            counting.hold.set()

    _delivered, revoked_meanwhile = run_in_threads(deliver, remove)
    assert revoked_meanwhile == 0
    assert counting.revoked == []
    # The delivery's record found the assignment ended and asked for the revocation again.
    assert enqueued.count(("revoke_assignment_grants", assignment.pk)) == 2
    assignment_revoke(assignment_id=assignment.pk)

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert assignment.grants.get().state == GrantState.REMOVED
    assert not is_member(requester, resource)


def test_expiry_skips_an_assignment_another_transaction_holds_and_takes_it_next_time():
    package, policy = package_giving(*group_resources(1), expiration_duration=timedelta(days=1))
    busy, free = (assign(UserFactory(), package, policy, now=NOW) for _ in range(2))
    locked, release = threading.Event(), threading.Event()

    def hold_busy():
        with transaction.atomic():
            Assignment.objects.select_for_update().get(pk=busy.pk)
            locked.set()
            release.wait(timeout=10)

    holder = threading.Thread(target=lambda: (hold_busy(), connection.close()))
    holder.start()
    locked.wait(timeout=10)
    try:
        first = assignments_expire_due(now=NOW + timedelta(days=2))
    finally:
        release.set()
        holder.join()
    second = assignments_expire_due(now=NOW + timedelta(days=2))

    assert (first, second) == (1, 1)
    busy.refresh_from_db()
    assert busy.state == AssignmentState.EXPIRED


def test_two_expiry_runs_at_once_end_every_due_assignment_exactly_once():
    package, policy = package_giving(*group_resources(1), expiration_duration=timedelta(days=1))
    assignments = [assign(UserFactory(), package, policy, now=NOW) for _ in range(12)]
    start = threading.Barrier(2)

    def expire():
        start.wait()
        return assignments_expire_due(now=NOW + timedelta(days=2), batch_size=3)

    counts = run_in_threads(expire, expire)

    assert sum(counts) == 12
    ended = AuditEvent.objects.filter(action="assignment.expired")
    assert sorted(ended.values_list("object_id", flat=True)) == sorted(
        str(a.pk) for a in assignments
    )


def test_the_lock_helper_sees_a_waiting_transaction():
    # Guards the race tests above: if this helper never saw a waiter, they would pass vacuously.
    package, policy = package_giving(*group_resources(1))
    assignment = assign(UserFactory(), package, policy)
    locked, seen = threading.Event(), []

    def hold():
        with transaction.atomic():
            Assignment.objects.select_for_update().get(pk=assignment.pk)
            locked.set()
            seen.append(wait_until_a_transaction_waits_for_a_lock(timeout=10))

    def wait():
        locked.wait(timeout=10)
        with transaction.atomic():
            Assignment.objects.select_for_update().get(pk=assignment.pk)

    run_in_threads(hold, wait)

    assert seen == [True]
