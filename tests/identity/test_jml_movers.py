"""Movers: a person who leaves the group or department a policy is for loses its access after
the grace period; a joiner or mover whom an automatic policy matches gets it."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from entitlements.models import (
    AllowedTargetScope,
    AssignmentState,
    AuditEvent,
    PolicySubjectSet,
    SubjectType,
)
from entitlements.tasks import remove_ineligible_assignments
from identity.services import Source, group_members_change, user_provision, user_update
from tests.factories import GroupFactory, add_member, add_subject
from tests.lifecycle.assignment_helpers import assign, group_resources, is_member, package_giving

pytestmark = pytest.mark.django_db

GRACE = timedelta(days=2)
LDAP = Source(kind=Source.LDAP, name="Head office")
HR = Source(kind=Source.SCIM, name="Workday")


@pytest.fixture
def engineers():
    return GroupFactory(display_name="Engineers")


@pytest.fixture
def engineers_access(requester, engineers):
    """Requester holds a package meant for Engineers, removed two days after leaving it."""
    add_member(engineers, requester)
    resource = group_resources(1)[0]
    package, policy = package_giving(
        resource,
        allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
        grace_period_before_access_removal=GRACE,
    )
    add_subject(
        policy,
        PolicySubjectSet.Purpose.ALLOWED_TARGET,
        SubjectType.GROUP_MEMBERS,
        group=engineers,
    )
    return resource, assign(requester, package, policy)


def test_leaving_the_policys_group_removes_the_access_after_the_grace_period(
    requester, engineers, engineers_access, django_capture_on_commit_callbacks
):
    resource, assignment = engineers_access
    with django_capture_on_commit_callbacks(execute=True):
        group_members_change(group=engineers, remove=[requester], source=LDAP)

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert assignment.eligibility_lost_datetime is not None
    assert is_member(requester, resource)

    later = timezone.now() + GRACE + timedelta(minutes=1)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        remove_ineligible_assignments()

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, resource)
    assert AuditEvent.objects.filter(action="group.membersChanged", data__source="ldap").exists()


def test_coming_back_within_the_grace_period_keeps_the_access(
    requester, engineers, engineers_access, django_capture_on_commit_callbacks
):
    resource, assignment = engineers_access
    with django_capture_on_commit_callbacks(execute=True):
        group_members_change(group=engineers, remove=[requester], source=LDAP)
    with django_capture_on_commit_callbacks(execute=True):
        group_members_change(group=engineers, add=[requester], source=LDAP)

    with time_machine.travel(timezone.now() + GRACE + timedelta(minutes=1)):
        remove_ineligible_assignments()

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert assignment.eligibility_lost_datetime is None
    assert is_member(requester, resource)


def engineering_by_rule(**fields):
    """A package people of the Engineering department may request, removed two days after
    they leave the department."""
    resource = group_resources(1)[0]
    package, policy = package_giving(
        resource,
        allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
        grace_period_before_access_removal=GRACE,
        **fields,
    )
    add_subject(
        policy,
        PolicySubjectSet.Purpose.ALLOWED_TARGET,
        SubjectType.ATTRIBUTE_RULE_MEMBERS,
        membership_rule='user.department -eq "Engineering"',
    )
    return resource, package, policy


def test_a_new_department_removes_access_meant_for_the_old_one_after_the_grace_period(
    requester, django_capture_on_commit_callbacks
):
    resource, package, policy = engineering_by_rule()
    assignment = assign(requester, package, policy)

    with django_capture_on_commit_callbacks(execute=True):
        user_update(user=requester, changes={"department": "Sales"}, source=HR)

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert assignment.eligibility_lost_datetime is not None

    later = timezone.now() + GRACE + timedelta(minutes=1)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        remove_ineligible_assignments()

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, resource)


def test_a_joiner_in_the_department_of_an_automatic_policy_gets_its_access(
    django_capture_on_commit_callbacks,
):
    resource, package, policy = engineering_by_rule(
        request_access_for_allowed_targets=True, enable_targets_to_self_add_access=False
    )

    with django_capture_on_commit_callbacks(execute=True):
        joiner = user_provision(
            attributes={"email": "new@example.com", "department": "Engineering"}, source=HR
        )

    assert is_member(joiner, resource)
    assert joiner.assignments.get().access_package == package
