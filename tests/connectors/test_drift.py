"""Drift reconciliation against a real slapd: members changed by hand are found, and with
"enforce" corrected through the connector and audited."""

import uuid

import pytest

from entitlements.models import (
    AuditEvent,
    DriftItem,
    DriftKind,
    DriftMode,
    GrantState,
    Resource,
)
from entitlements.services.delivery import assignment_deliver
from entitlements.services.drift import drift_item_keep, drift_reconcile_due, system_drift_reconcile
from tests.connectors.helpers import ldap_resource, person
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving

pytestmark = pytest.mark.django_db


def by_hand(server, name, operation, uid):
    conn = server.connection()
    conn.modify(server.group_dn(name), {"member": [(operation, [server.person_dn(uid)])]})
    assert conn.result["result"] == 0, conn.result
    conn.unbind()


@pytest.fixture
def governed(ldap_server, ldap_system):
    """An LDAP group given by a package, with Ann and Bob delivered into it."""
    name = f"drift-{uuid.uuid4().hex[:8]}"
    resource = ldap_resource(ldap_system, ldap_server.add_group(name))
    package, policy = package_giving(resource)
    for uid in ("ann", "bob"):
        assignment = fulfil(approved_request(person(ldap_server, uid), package, policy))
        assert assignment_deliver(assignment_id=assignment.pk).ok
    assert ldap_server.members(name) == {"ann", "bob"}
    return name, resource


def items(report):
    return sorted((i.kind, i.key) for i in report.items.all())


def test_a_group_matching_the_assignments_has_no_drift(ldap_system, governed):
    report = system_drift_reconcile(system_id=ldap_system.pk)

    assert (report.roles_checked, report.missing_count, report.extra_count) == (1, 0, 0)
    assert report.finished and not report.error


def test_report_only_records_members_changed_by_hand_and_changes_nothing(
    ldap_server, ldap_system, governed
):
    name, _resource = governed
    by_hand(ldap_server, name, "MODIFY_ADD", "dora")
    by_hand(ldap_server, name, "MODIFY_DELETE", "ann")

    report = system_drift_reconcile(system_id=ldap_system.pk)

    assert items(report) == [
        (DriftKind.EXTRA_IN_TARGET, "dora@example.org"),
        (DriftKind.MISSING_IN_TARGET, "ann@example.org"),
    ]
    assert not report.items.filter(resolved__isnull=False).exists()
    assert ldap_server.members(name) == {"bob", "dora"}
    assert not AuditEvent.objects.filter(action__startswith="drift.").exists()


def test_enforce_removes_a_member_added_by_hand_and_adds_back_one_removed_audited(
    ldap_server, ldap_system, governed
):
    name, resource = governed
    Resource.objects.filter(pk=resource.pk).update(drift_mode=DriftMode.ENFORCE)
    by_hand(ldap_server, name, "MODIFY_ADD", "dora")
    by_hand(ldap_server, name, "MODIFY_DELETE", "ann")

    report = system_drift_reconcile(system_id=ldap_system.pk)

    assert ldap_server.members(name) == {"ann", "bob"}
    assert report.corrected_count == 2
    assert all(i.resolved for i in report.items.all())
    events = {e.action: e for e in AuditEvent.objects.filter(action__startswith="drift.")}
    assert set(events) == {"drift.memberAdded", "drift.memberRemoved"}
    assert events["drift.memberRemoved"].after == "dora@example.org"
    assert events["drift.memberAdded"].target.email == "ann@example.org"
    assert events["drift.memberAdded"].data["origin_id"] == ldap_server.group_dn(name)
    # Corrected, the next report finds nothing.
    again = system_drift_reconcile(system_id=ldap_system.pk)
    assert items(again) == []


def test_an_extra_member_kept_as_a_direct_membership_is_left_alone(
    ldap_server, ldap_system, governed, admin_user
):
    name, resource = governed
    by_hand(ldap_server, name, "MODIFY_ADD", "eve")
    first = system_drift_reconcile(system_id=ldap_system.pk)
    drift_item_keep(actor=admin_user, item=first.items.get())
    Resource.objects.filter(pk=resource.pk).update(drift_mode=DriftMode.ENFORCE)

    second = system_drift_reconcile(system_id=ldap_system.pk)

    assert items(second) == []
    assert "eve" in ldap_server.members(name)
    assert AuditEvent.objects.filter(action="drift.memberKept", after="eve@example.org").exists()


def test_a_grant_on_its_way_is_not_drift(ldap_server, ldap_system, governed):
    name, resource = governed
    package = resource.roles.get(origin_id="Member").role_scopes.get().access_package
    waiting = fulfil(
        approved_request(person(ldap_server, "cem"), package, package.assignment_policies.get())
    )
    assert waiting.grants.get().state == GrantState.PENDING

    report = system_drift_reconcile(system_id=ldap_system.pk)

    assert items(report) == []


def test_an_unreachable_system_gives_a_report_with_its_error_and_no_items(
    ldap_server, ldap_system, governed
):
    ldap_server.stop_process()

    report = system_drift_reconcile(system_id=ldap_system.pk)

    assert "did not answer" in report.error
    assert not DriftItem.objects.filter(report=report).exists()


def test_the_reconciliation_reads_a_bounded_number_of_rows_whatever_the_group_size(
    ldap_server, ldap_system, governed, django_assert_max_num_queries
):
    name, _resource = governed
    for uid in ("cem", "dora", "eve"):
        by_hand(ldap_server, name, "MODIFY_ADD", uid)

    with django_assert_max_num_queries(12):
        report = system_drift_reconcile(system_id=ldap_system.pk)
    assert report.extra_count == 3


def test_drift_runs_are_enqueued_once_per_interval(ldap_system, governed, settings):
    assert drift_reconcile_due() == 1  # eager here: the run happens at once
    assert drift_reconcile_due() == 0
    ldap_system.settings = {**ldap_system.settings, "drift_interval": 0}
    ldap_system.save()
    assert drift_reconcile_due() == 1
