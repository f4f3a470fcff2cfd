"""Changing what a package grants reaches the people who already have it, as in Entra."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from entitlements.errors import InvalidRequest, PermissionDenied
from entitlements.models import (
    AccessPackage,
    AssignmentResourceRole,
    AssignmentState,
    AuditEvent,
    GrantState,
    ResourceRoleScope,
)
from entitlements.services.ending import assignment_remove
from entitlements.services.packages import package_role_add, package_role_remove
from entitlements.services.reconciliation import assignments_reconcile
from tests.factories import GroupResourceFactory, UserFactory
from tests.lifecycle.assignment_helpers import assign, is_member, package_giving

pytestmark = pytest.mark.django_db

# Whatever the number of holders (savepoints included: the test runs in a transaction).
QUERIES = {"package_role_add": 10, "package_role_remove": 8}


def member_role(resource):
    return resource.roles.get(origin_id="Member")


@pytest.fixture
def holders(admin_user):
    """A package giving one group, held by three people; a fourth person's access ended."""
    first = GroupResourceFactory()
    package, policy = package_giving(first)
    people = [UserFactory() for _ in range(4)]
    assignments = [assign(person, package, policy) for person in people]
    assignment_remove(actor=admin_user, assignment=assignments[3], channel="admin")
    return package, policy, people[:3], people[3]


def test_a_role_added_to_a_package_is_delivered_to_everyone_who_has_it(
    admin_user, holders, django_capture_on_commit_callbacks
):
    package, _policy, people, former = holders
    wiki = GroupResourceFactory(catalog=package.catalog)

    with django_capture_on_commit_callbacks(execute=True):
        package_role_add(actor=admin_user, access_package=package, role=member_role(wiki))

    assert [is_member(p, wiki) for p in people] == [True, True, True]
    assert not is_member(former, wiki)
    grants = AssignmentResourceRole.objects.filter(resource_role=member_role(wiki))
    assert sorted(grants.values_list("state", flat=True)) == [GrantState.DELIVERED] * 3
    assert set(package.assignments.filter(target__in=people).values_list("state", flat=True)) == {
        AssignmentState.DELIVERED
    }
    events = AuditEvent.objects.filter(action="accessPackage.roleAdded")
    assert sorted(events.values_list("object_type", flat=True)) == [
        "entitlements.AccessPackage",
        *["entitlements.Assignment"] * 3,
    ]
    assert set(events.exclude(target=None).values_list("target", flat=True)) == {
        p.pk for p in people
    }


def test_a_role_removed_from_a_package_is_taken_from_everyone_who_has_it(
    admin_user, django_capture_on_commit_callbacks
):
    shared = GroupResourceFactory()
    package, policy = package_giving(shared)
    other, other_policy = package_giving(shared)
    alone, doubly = UserFactory(), UserFactory()
    assign(alone, package, policy)
    assign(doubly, package, policy)
    assign(doubly, other, other_policy)  # gives the same group

    with django_capture_on_commit_callbacks(execute=True):
        package_role_remove(actor=admin_user, access_package=package, role=member_role(shared))

    assert not is_member(alone, shared)
    assert is_member(doubly, shared)  # another open assignment still gives it
    assert not ResourceRoleScope.objects.filter(access_package=package).exists()
    removed = AssignmentResourceRole.objects.filter(assignment__access_package=package)
    assert set(removed.values_list("state", flat=True)) == {GrantState.REMOVED}
    assert set(package.assignments.values_list("state", flat=True)) == {AssignmentState.DELIVERED}
    assert AuditEvent.objects.filter(action="accessPackage.roleRemoved").count() == 3


def test_a_role_removed_and_added_again_is_delivered_again(
    admin_user, holders, django_capture_on_commit_callbacks
):
    package, _policy, people, _former = holders
    role = package.resource_role_scopes.get().role

    with django_capture_on_commit_callbacks(execute=True):
        package_role_remove(actor=admin_user, access_package=package, role=role)
    assert not any(is_member(p, role.resource) for p in people)
    with django_capture_on_commit_callbacks(execute=True):
        package_role_add(actor=admin_user, access_package=package, role=role)

    assert all(is_member(p, role.resource) for p in people)
    assert AssignmentResourceRole.objects.filter(resource_role=role).count() == 4  # one a row


def test_removing_the_role_whose_delivery_failed_leaves_the_assignment_delivered(
    admin_user, django_capture_on_commit_callbacks
):
    package, policy = package_giving(GroupResourceFactory())
    broken = GroupResourceFactory(catalog=package.catalog)
    assignment = assign(UserFactory(), package, policy)
    with django_capture_on_commit_callbacks(execute=False):
        package_role_add(actor=admin_user, access_package=package, role=member_role(broken))
    assignment.grants.filter(resource_role=member_role(broken)).update(
        state=GrantState.DELIVERY_FAILED
    )
    assignment.__class__.objects.filter(pk=assignment.pk).update(
        state=AssignmentState.PARTIALLY_DELIVERED
    )

    with django_capture_on_commit_callbacks(execute=True):
        package_role_remove(actor=admin_user, access_package=package, role=member_role(broken))

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED


@pytest.mark.parametrize("change", [package_role_add, package_role_remove])
def test_a_change_takes_the_same_queries_for_two_holders_as_for_twenty(admin_user, change):
    def queries(count):
        resource = GroupResourceFactory()
        package, policy = package_giving(resource)
        for _ in range(count):
            assign(UserFactory(), package, policy)
        role = member_role(resource)
        if change is package_role_add:
            role = member_role(GroupResourceFactory(catalog=package.catalog))
        package = AccessPackage.objects.select_related("catalog").get(pk=package.pk)
        with CaptureQueriesContext(connection) as captured:
            change(actor=admin_user, access_package=package, role=role)
        return len(captured)

    # On SQLite each audit write also reads the chain's last link (docs/audit.md); PostgreSQL
    # links the chain at commit, in its triggers.
    expected = QUERIES[change.__name__] + (connection.vendor != "postgresql")
    assert queries(2) == queries(20) == expected


def test_only_the_catalogs_package_managers_may_change_what_a_package_grants(holders):
    package, *_rest = holders
    role = member_role(GroupResourceFactory(catalog=package.catalog))

    with pytest.raises(PermissionDenied, match="can change what its access packages grant"):
        package_role_add(actor=UserFactory(), access_package=package, role=role)
    assert not ResourceRoleScope.objects.filter(role=role).exists()


def test_a_role_from_another_catalog_is_refused(admin_user, holders):
    package, *_rest = holders

    with pytest.raises(InvalidRequest, match="belongs to a resource of another catalog"):
        package_role_add(
            actor=admin_user, access_package=package, role=member_role(GroupResourceFactory())
        )


def test_the_reconciler_delivers_a_role_added_while_the_broker_was_down(
    admin_user, holders, django_capture_on_commit_callbacks
):
    package, _policy, people, _former = holders
    wiki = GroupResourceFactory(catalog=package.catalog)
    with django_capture_on_commit_callbacks(execute=False):  # the message is lost
        package_role_add(actor=admin_user, access_package=package, role=member_role(wiki))
    assert not any(is_member(p, wiki) for p in people)

    deliveries, _revocations = assignments_reconcile(
        now=timezone.now() + timedelta(hours=1), stuck_after=timedelta(minutes=5)
    )

    assert deliveries == 3
    assert all(is_member(p, wiki) for p in people)
