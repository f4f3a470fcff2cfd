"""Builders for the assignment tests: packages that give groups, requests ready to fulfil."""

import threading
import time

from django.db import connection, transaction
from django.utils import timezone

from directory.models import GroupMembership
from entitlements.connectors import CONNECTOR_KINDS, BuiltinConnector, ConnectorError
from entitlements.models import AssignmentRequest, ConnectedSystem, RequestState, RequestType
from entitlements.services.delivery import assignment_deliver
from entitlements.services.fulfilment import request_fulfil
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    grant_role,
)


def package_giving(*resources, catalog=None, **policy_fields):
    """A package granting the Member role of each group resource, with one policy."""
    catalog = catalog or (resources[0].catalog if resources else CatalogFactory())
    package = AccessPackageFactory(catalog=catalog)
    for resource in resources:
        grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(access_package=package, **policy_fields)
    return package, policy


def group_resources(count, catalog=None, **kw):
    catalog = catalog or CatalogFactory()
    return [GroupResourceFactory(catalog=catalog, **kw) for _ in range(count)]


def approved_request(target, package, policy, *, request_type=RequestType.USER_ADD, **fields):
    """A request in pendingApproval, as the approval flow leaves it before its last decision."""
    return AssignmentRequest.objects.create(
        access_package=package,
        assignment_policy=policy,
        requestor=target,
        target=target,
        request_type=request_type,
        state=RequestState.PENDING_APPROVAL,
        **fields,
    )


def fulfil(request, now=None):
    """Call request_fulfil the way the request flow does: in its transaction, request locked."""
    with transaction.atomic():
        locked = AssignmentRequest.objects.select_for_update().get(pk=request.pk)
        assignment = request_fulfil(request=locked, now=now or timezone.now())
    request.refresh_from_db()
    return assignment


def assign(target, package, policy, now=None, **fields):
    """An assignment, delivered."""
    assignment = fulfil(approved_request(target, package, policy, **fields), now=now)
    assignment_deliver(assignment_id=assignment.pk, now=now)
    assignment.refresh_from_db()
    return assignment


def use_connector(monkeypatch, connector):
    """Make ``connector`` serve the built-in directory for the rest of the test."""
    monkeypatch.setitem(CONNECTOR_KINDS, ConnectedSystem.Kind.BUILTIN, lambda system: connector)


def is_member(user, resource):
    return GroupMembership.objects.filter(group=resource.group, user=user).exists()


def membership_source(user, resource):
    row = GroupMembership.objects.filter(group=resource.group, user=user).first()
    return row and row.source


class CountingConnector(BuiltinConnector):
    """The built-in connector, counting calls and optionally failing some roles."""

    def __init__(self, failing=()):
        super().__init__()
        self.granted, self.revoked = [], []
        self.failing = set(failing)
        self.granting = threading.Event()  # set while the first grant is in progress
        self.hold = None  # an Event a grant waits for, to run something meanwhile
        self._lock = threading.Lock()

    def grant(self, role, user):
        with self._lock:
            self.granted.append((role.pk, user.pk))
        self.granting.set()
        if self.hold is not None:
            self.hold.wait(timeout=10)
        if role.pk in self.failing:
            raise ConnectorError(f"{role.resource.display_name} is unreachable")
        super().grant(role, user)

    def revoke(self, role, user):
        with self._lock:
            self.revoked.append((role.pk, user.pk))
        if role.pk in self.failing:
            raise ConnectorError(f"{role.resource.display_name} is unreachable")
        super().revoke(role, user)

    def revoke_many(self, role, users):
        for user in users:
            self.revoke(role, user)


def wait_until_a_transaction_waits_for_a_lock(timeout=10.0):
    """Block until another backend of this database is queued behind a lock (or time runs out).

    pg_stat_activity is snapshotted once per transaction, so the snapshot is cleared each time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.01)
    return False


def run_in_threads(*functions):
    """Run each function in its own thread with its own connection; re-raise the first error."""
    errors, results = [], {}

    def run(index, function):
        try:
            results[index] = function()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return [results.get(i) for i in range(len(functions))]
