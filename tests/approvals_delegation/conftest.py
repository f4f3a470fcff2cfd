"""Ann approves; Ben is the person she names while she is away; Rita asks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ReviewResult, StageApprover
from approvals.services import delegation_create, stage_decide
from entitlements.models import Channel, RequestType
from entitlements.services.requests import request_submit
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_approver,
    grant_role,
)


@pytest.fixture
def ann(db):
    return UserFactory(email="ann@example.com", display_name="Ann Example")


@pytest.fixture
def ben(db):
    return UserFactory(email="ben@example.com", display_name="Ben Example")


@pytest.fixture
def carl(db):
    return UserFactory(email="carl@example.com", display_name="Carl Example")


def make_package(name, *approvers, stages=1):
    """A package giving Member of a group; each of its ``stages`` approved by ``approvers``."""
    catalog = CatalogFactory(display_name=f"{name} catalog")
    package = AccessPackageFactory(catalog=catalog, display_name=name)
    resource = GroupResourceFactory(catalog=catalog, group__display_name=f"{name} group")
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(access_package=package, is_approval_required_for_add=True)
    for sequence in range(1, stages + 1):
        stage = ApprovalStageFactory(policy=policy, sequence=sequence)
        for approver in approvers:
            add_approver(stage, user=approver)
    return package


@pytest.fixture
def package(ann):
    return make_package("Finance reports", ann)


def submit(user, package, **kwargs):
    return request_submit(
        actor=user,
        target=user,
        access_package=package,
        request_type=RequestType.USER_ADD,
        channel=Channel.PORTAL,
        justification=kwargs.pop("justification", "Month-end close"),
        **kwargs,
    )


def delegate(ann, ben, *, days=7, start=None, now=None):
    now = now or timezone.now()
    return delegation_create(
        actor=ann,
        delegate=ben,
        start=start,
        end=(start or now) + timedelta(days=days),
        note="On holiday",
        channel=Channel.PORTAL,
        now=now,
    )


def approvers_of(request):
    stage = request.approval_stages.get(sequence=1)
    return {
        (row.user.display_name, row.on_behalf_of.display_name if row.on_behalf_of else None)
        for row in StageApprover.objects.filter(stage=stage).select_related("user", "on_behalf_of")
    }


def approve(actor, request, sequence=1, justification="Fine by me", now=None):
    stage = request.approval_stages.get(sequence=sequence)
    return stage_decide(
        actor=actor,
        stage=stage,
        decision=ReviewResult.APPROVED,
        justification=justification,
        channel=Channel.PORTAL,
        now=now,
    )
