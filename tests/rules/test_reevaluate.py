"""Re-evaluating the access of people the directory changed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from directory.models import GroupMembership
from entitlements.models import AllowedTargetScope, AssignmentState, PolicySubjectSet, SubjectType
from entitlements.services.automatic import users_reevaluate
from entitlements.tasks import users_reevaluate as users_reevaluate_task
from tests.factories import GroupFactory, UserFactory, add_member, add_subject
from tests.lifecycle.assignment_helpers import assign, group_resources, package_giving

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def engineers():
    return GroupFactory(display_name="Engineers")


@pytest.fixture
def engineers_only(engineers):
    package, policy = package_giving(
        *group_resources(1),
        allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
        grace_period_before_access_removal=timedelta(0),
    )
    add_subject(
        policy, PolicySubjectSet.Purpose.ALLOWED_TARGET, SubjectType.GROUP_MEMBERS, group=engineers
    )
    return package, policy


def test_a_changed_user_who_left_the_scope_loses_the_access(requester, engineers, engineers_only):
    package, policy = engineers_only
    add_member(engineers, requester)
    assignment = assign(requester, package, policy, now=NOW)
    GroupMembership.objects.filter(group=engineers, user=requester).delete()

    assert users_reevaluate(user_ids=[requester.pk], now=NOW).removed == 1

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED


def test_only_the_changed_users_are_looked_at(requester, engineers, engineers_only):
    package, policy = engineers_only
    other = UserFactory()
    for user in (requester, other):
        add_member(engineers, user)
    mine, theirs = (assign(user, package, policy, now=NOW) for user in (requester, other))
    GroupMembership.objects.filter(group=engineers).delete()

    assert users_reevaluate(user_ids=[requester.pk], now=NOW).removed == 1

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == AssignmentState.EXPIRED
    assert theirs.state == AssignmentState.DELIVERED


def test_the_task_re_evaluates_a_disabled_account(requester):
    package, policy = package_giving(*group_resources(1))
    assignment = assign(requester, package, policy, now=NOW)
    requester.is_active = False
    requester.save()

    users_reevaluate_task.delay([requester.pk])

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED


def test_no_users_means_nothing_to_do(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert users_reevaluate(user_ids=[], now=NOW).removed == 0
