"""Movers: a person who leaves the group a policy is for loses its access after the grace period."""

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
from identity.services import Source, group_members_change
from tests.factories import GroupFactory, add_member, add_subject
from tests.lifecycle.assignment_helpers import assign, group_resources, is_member, package_giving

pytestmark = pytest.mark.django_db

GRACE = timedelta(days=2)
LDAP = Source(kind=Source.LDAP, name="Head office")


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
