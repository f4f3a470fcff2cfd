"""Access ends when its holder stops being eligible: disabled, or out of the policy's scope."""

from datetime import timedelta

import pytest
from django.utils import timezone

from directory.models import GroupMembership
from entitlements.models import (
    AllowedTargetScope,
    AssignmentState,
    AuditEvent,
    PolicySubjectSet,
    RequestState,
    RequestType,
    SubjectType,
)
from entitlements.services.eligibility import assignments_remove_ineligible
from entitlements.tasks import remove_ineligible_assignments
from tests.factories import GroupFactory, add_member, add_subject
from tests.lifecycle.assignment_helpers import (
    assign,
    group_resources,
    is_member,
    package_giving,
)

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
GRACE = timedelta(days=2)


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def engineers():
    return GroupFactory(display_name="Engineers")


@pytest.fixture
def engineers_only(engineers):
    """A package that members of Engineers may request, removed two days after they leave."""
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
    return resource, package, policy


def leave(group, user):
    GroupMembership.objects.filter(group=group, user=user).delete()


def test_a_disabled_account_loses_its_access(requester, django_capture_on_commit_callbacks):
    resource = group_resources(1)[0]
    package, policy = package_giving(resource)
    assignment = assign(requester, package, policy, now=NOW)
    requester.is_active = False
    requester.save()

    with django_capture_on_commit_callbacks(execute=True):
        removed = assignments_remove_ineligible(now=NOW)

    assignment.refresh_from_db()
    assert removed == 1
    assert assignment.state == AssignmentState.EXPIRED
    removal = assignment.requests.get(request_type=RequestType.SYSTEM_REMOVE)
    assert removal.state == RequestState.DELIVERED
    assert not is_member(requester, resource)


def test_leaving_the_allowed_group_ends_access_after_the_grace_period(
    requester, engineers, engineers_only
):
    resource, package, policy = engineers_only
    add_member(engineers, requester)
    assignment = assign(requester, package, policy, now=NOW)
    leave(engineers, requester)

    assert assignments_remove_ineligible(now=NOW) == 0
    assignment.refresh_from_db()
    assert assignment.eligibility_lost_datetime == NOW
    assert assignment.state == AssignmentState.DELIVERED

    assert assignments_remove_ineligible(now=NOW + GRACE - timedelta(minutes=1)) == 0
    assert assignments_remove_ineligible(now=NOW + GRACE) == 1

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert AuditEvent.objects.filter(action="assignment.eligibilityLost").count() == 1


def test_coming_back_within_the_grace_period_keeps_the_access(requester, engineers, engineers_only):
    resource, package, policy = engineers_only
    add_member(engineers, requester)
    assignment = assign(requester, package, policy, now=NOW)
    leave(engineers, requester)
    assignments_remove_ineligible(now=NOW)

    add_member(engineers, requester)
    assignments_remove_ineligible(now=NOW + timedelta(days=1))
    assert assignments_remove_ineligible(now=NOW + GRACE * 3) == 0

    assignment.refresh_from_db()
    assert assignment.eligibility_lost_datetime is None
    assert assignment.state == AssignmentState.DELIVERED
    assert AuditEvent.objects.filter(action="assignment.eligibilityRegained").count() == 1


def test_without_a_grace_period_access_ends_at_the_first_run(requester, engineers, engineers_only):
    resource, package, policy = engineers_only
    policy.grace_period_before_access_removal = timedelta(0)
    policy.save()
    add_member(engineers, requester)
    assign(requester, package, policy, now=NOW)
    leave(engineers, requester)

    assert assignments_remove_ineligible(now=NOW) == 1


def test_a_direct_assignment_survives_leaving_the_scope_but_not_a_disabled_account(
    requester, engineers, engineers_only
):
    resource, package, policy = engineers_only
    assignment = assign(requester, package, policy, now=NOW, request_type=RequestType.ADMIN_ADD)

    assert assignments_remove_ineligible(now=NOW + GRACE * 2) == 0
    requester.is_active = False
    requester.save()
    assignments_remove_ineligible(now=NOW + GRACE * 2)

    assert assignments_remove_ineligible(now=NOW + GRACE * 4) == 1
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED


def test_a_policy_that_keeps_access_on_leaving_the_scope_removes_nothing(
    requester, engineers, engineers_only
):
    resource, package, policy = engineers_only
    policy.remove_access_when_target_leaves_allowed_targets = False
    policy.save()
    add_member(engineers, requester)
    assignment = assign(requester, package, policy, now=NOW)
    leave(engineers, requester)

    assert assignments_remove_ineligible(now=NOW + GRACE * 2) == 0
    assignment.refresh_from_db()
    assert assignment.eligibility_lost_datetime is None


def test_a_guest_under_a_members_only_policy_is_out_of_scope(requester):
    package, policy = package_giving(*group_resources(1))
    assignment = assign(requester, package, policy, now=NOW)
    requester.user_type = requester.UserType.GUEST
    requester.save()

    remove_ineligible_assignments.delay()

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
