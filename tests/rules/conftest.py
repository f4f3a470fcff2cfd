"""Automatic policies for the rule tests: a package giving one group, assigned by a rule."""

from datetime import timedelta

import pytest

from entitlements.models import AllowedTargetScope, PolicySubjectSet, SubjectType
from tests.factories import add_subject
from tests.lifecycle.assignment_helpers import group_resources, package_giving


def automatic_policy(rule, *, grace=timedelta(0), resource=None, **fields):
    """(package, policy, resource): the package gives the Member role of a group to whoever
    ``rule`` matches."""
    resource = resource or group_resources(1)[0]
    package, policy = package_giving(
        resource,
        display_name="Automatic",
        allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
        request_access_for_allowed_targets=True,
        enable_targets_to_self_add_access=False,
        is_approval_required_for_add=False,
        grace_period_before_access_removal=grace,
        **fields,
    )
    add_subject(
        policy,
        PolicySubjectSet.Purpose.ALLOWED_TARGET,
        SubjectType.ATTRIBUTE_RULE_MEMBERS,
        membership_rule=rule,
    )
    return package, policy, resource


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
