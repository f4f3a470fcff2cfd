from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageApprover, StageStatus
from entitlements.models import AssignmentRequest, RequestState, RequestType
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_approver,
    grant_role,
)


@pytest.fixture
def second_approver(db):
    return UserFactory(email="second@example.com", display_name="Sam Second")


@pytest.fixture
def approval_policy(db, approver, second_approver):
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog, display_name="Finance reports")
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(
        access_package=package,
        is_approval_required_for_add=True,
        is_requestor_justification_required=True,
    )
    stage = ApprovalStageFactory(
        policy=policy,
        is_approver_justification_required=False,
        duration_before_automatic_denial=timedelta(days=3),
    )
    add_approver(stage, user=approver)
    add_approver(stage, user=second_approver)
    return policy


@pytest.fixture
def pending_stage(approval_policy, requester, approver, second_approver):
    """A request waiting at stage 1 with two resolved approvers, built row by row."""
    now = timezone.now()
    request = AssignmentRequest.objects.create(
        access_package=approval_policy.access_package,
        assignment_policy=approval_policy,
        requestor=requester,
        target=requester,
        request_type=RequestType.USER_ADD,
        state=RequestState.PENDING_APPROVAL,
        status="PendingApproval",
        justification="Quarter-end close",
    )
    stage = RequestApprovalStage.objects.create(
        request=request,
        policy_stage=approval_policy.approval_stages.get(),
        sequence=1,
        status=StageStatus.IN_PROGRESS,
        opened_datetime=now,
        deadline=now + timedelta(days=3),
    )
    for user in (approver, second_approver):
        StageApprover.objects.create(stage=stage, user=user, kind=StageApprover.Kind.PRIMARY)
    return stage
