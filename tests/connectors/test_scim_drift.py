"""Drift reconciliation of a SCIM application's group, against a real SCIM server."""

import pytest

from entitlements.models import AuditEvent, DriftKind, DriftMode
from entitlements.services.drift import system_drift_reconcile
from entitlements.tasks import deliver_assignment
from tests.factories import UserFactory
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving
from tests.scimserver import scim_group_resource, scim_system

pytestmark = pytest.mark.django_db


@pytest.fixture
def wiki(scim_server, monkeypatch):
    return scim_system(scim_server, monkeypatch)


@pytest.fixture
def engineers(scim_server, wiki, requester):
    """The application's Engineers group as a resource, delivered to the requester."""
    group = scim_server.create_group("Engineers")
    resource = scim_group_resource(wiki, group)
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    deliver_assignment.apply(args=[str(assignment.pk)])
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]
    return group, resource


def test_a_member_added_by_hand_is_reported_as_extra_and_left_alone_in_report_only_mode(
    scim_server, wiki, engineers
):
    group, _resource = engineers
    henry = scim_server.create_user("Henry.Hand@example.com")
    scim_server.add_member(group["id"], henry["id"])

    report = system_drift_reconcile(system_id=wiki.pk)

    assert report.error == ""
    assert [(i.kind, i.key) for i in report.items.all()] == [
        (DriftKind.EXTRA_IN_TARGET, "henry.hand@example.com")
    ]
    assert scim_server.member_names(group["id"]) == [
        "Henry.Hand@example.com",
        "requester@example.com",
    ]


def test_enforce_removes_the_extra_member_adds_back_the_missing_one_and_audits_both(
    scim_server, wiki, engineers, requester
):
    group, resource = engineers
    resource.drift_mode = DriftMode.ENFORCE
    resource.save(update_fields=["drift_mode"])
    henry = scim_server.create_user("henry@example.com")
    scim_server.add_member(group["id"], henry["id"])
    rita_id = scim_server.user_named("requester@example.com")["id"]
    scim_server.remove_member(group["id"], rita_id)  # removed by hand in the application

    report = system_drift_reconcile(system_id=wiki.pk)

    assert sorted((i.kind, i.key, bool(i.resolved)) for i in report.items.all()) == [
        (DriftKind.EXTRA_IN_TARGET, "henry@example.com", True),
        (DriftKind.MISSING_IN_TARGET, "requester@example.com", True),
    ]
    assert scim_server.member_names(group["id"]) == ["requester@example.com"]
    actions = set(
        AuditEvent.objects.filter(action__startswith="drift.").values_list("action", "after")
    )
    assert actions == {
        ("drift.memberAdded", "requester@example.com"),
        ("drift.memberRemoved", "henry@example.com"),
    }

    assert system_drift_reconcile(system_id=wiki.pk).items.count() == 0  # in step now


def test_a_group_matching_the_product_shows_no_drift(scim_server, wiki, engineers):
    UserFactory(email="someone-else@example.com")  # in the directory, not in the group

    report = system_drift_reconcile(system_id=wiki.pk)

    assert (report.error, report.roles_checked, report.items.count()) == ("", 1, 0)
