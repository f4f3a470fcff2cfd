"""Builders for the request and approval tests: packages with roles, policies with stages."""

from datetime import timedelta

from entitlements.models import (
    Assignment,
    AssignmentResourceRole,
    AssignmentState,
    GrantState,
)
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    GroupResourceFactory,
    PolicyFactory,
    add_approver,
    grant_role,
)


def package_with_roles(roles=1, **package_kw):
    """A package granting the Member role of ``roles`` groups of its catalog."""
    package = AccessPackageFactory(**package_kw)
    for _ in range(roles):
        resource = GroupResourceFactory(catalog=package.catalog)
        grant_role(package, resource.roles.get(origin_id="Member"))
    return package


def open_policy(package=None, **kw):
    """A policy every member may request under, without approval."""
    return PolicyFactory(access_package=package or package_with_roles(), **kw)


def approval_policy(package=None, approvers=(), stages=1, **kw):
    """A policy needing ``stages`` approval stages, each decided by any of ``approvers``."""
    policy = PolicyFactory(
        access_package=package or package_with_roles(), is_approval_required_for_add=True, **kw
    )
    for sequence in range(1, stages + 1):
        stage = ApprovalStageFactory(policy=policy, sequence=sequence)
        for person in approvers:
            add_approver(stage, user=person)
    return policy


def stage_of(policy, sequence=1):
    return policy.approval_stages.get(sequence=sequence)


def give_assignment(user, package, policy=None, *, now=None, grants_delivered=True, **kw):
    """An open assignment as delivery leaves it, with its grants."""
    policy = policy or PolicyFactory(access_package=package)
    fields = {"state": AssignmentState.DELIVERED}
    if now is not None:
        fields.update(schedule_start=now, schedule_end=now + timedelta(days=30))
    fields.update(kw)
    assignment = Assignment.objects.create(
        access_package=package, assignment_policy=policy, target=user, **fields
    )
    for scope in package.resource_role_scopes.all():
        AssignmentResourceRole.objects.create(
            assignment=assignment,
            resource_role=scope.role,
            target=user,
            state=GrantState.DELIVERED if grants_delivered else GrantState.PENDING,
        )
    return assignment
