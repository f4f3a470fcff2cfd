"""A package with holders, groups and people around it, for the what-if previews."""

import pytest

from entitlements.models import (
    AllowedTargetScope,
    Assignment,
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    PolicySubjectSet,
    RequestState,
    RequestType,
    SubjectType,
)
from tests.factories import (
    AccessPackageFactory,
    GroupFactory,
    PolicyFactory,
    UserFactory,
    add_member,
    add_subject,
)

PREVIEW = "_whatif"


def hold(policy, user, *, by_admin=False):
    """``user`` holds the policy's package (an open assignment), asked for or given directly."""
    assignment = Assignment.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        target=user,
        state=AssignmentState.DELIVERED,
    )
    AssignmentRequest.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        requestor=user,
        target=user,
        assignment=assignment,
        request_type=RequestType.ADMIN_ADD if by_admin else RequestType.USER_ADD,
        state=RequestState.DELIVERED,
    )
    return assignment


def counts():
    """How many rows the preview could have changed: none, ever."""
    return {
        "assignments": Assignment.objects.count(),
        "requests": AssignmentRequest.objects.count(),
        "subject sets": PolicySubjectSet.objects.count(),
        "audit events": AuditEvent.objects.count(),
    }


@pytest.fixture
def world(db):
    """Finance's package, requested by members of the group Finance under one policy that
    removes access from those who leave; Ann and Ben (Finance) hold it, Cat is in Audit,
    Dan in no group."""
    package = AccessPackageFactory(display_name="Finance reports")
    policy = PolicyFactory(
        access_package=package,
        display_name="Finance staff",
        allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
        remove_access_when_target_leaves_allowed_targets=True,
    )
    finance, audit = GroupFactory(display_name="Finance"), GroupFactory(display_name="Audit")
    add_subject(
        policy, PolicySubjectSet.Purpose.ALLOWED_TARGET, SubjectType.GROUP_MEMBERS, group=finance
    )
    ann = UserFactory(display_name="Ann Accountant", email="ann@example.com")
    ben = UserFactory(display_name="Ben Bookkeeper", email="ben@example.com")
    cat = UserFactory(display_name="Cat Controller", email="cat@example.com")
    dan = UserFactory(display_name="Dan Developer", email="dan@example.com")
    for person in (ann, ben):
        add_member(finance, person)
        hold(policy, person)
    add_member(audit, cat)
    return {
        "package": package,
        "policy": policy,
        "finance": finance,
        "audit": audit,
        "ann": ann,
        "ben": ben,
        "cat": cat,
        "dan": dan,
    }
