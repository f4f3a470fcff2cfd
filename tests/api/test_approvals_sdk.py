"""The official msgraph-sdk against a live server: an approver lists the approvals waiting for
them and approves a stage, as a Graph script would."""

import asyncio

import pytest
from msgraph.generated.models.approval_stage import ApprovalStage
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from api.permissions import SUBJECT_ACCESS
from approvals.models import RequestApprovalStage, ReviewResult
from entitlements.services.requests import request_submit
from tests.api.sdk import graph_as
from tests.factories import UserFactory
from tests.lifecycle.requests_setup import approval_policy

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_approver_approves_with_the_graph_sdk(live_server, user_token):
    approver, other, requester = UserFactory(), UserFactory(), UserFactory()
    policy = approval_policy(approvers=[approver], stages=2)
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )
    graph = graph_as(live_server, user_token(approver, [SUBJECT_ACCESS]))
    approvals = graph.identity_governance.entitlement_management.access_package_assignment_approvals

    async def journey():
        page = await approvals.filter_by_current_user_with_on("approver").get()
        [approval] = page.value
        stage = approval.stages[0]
        await (
            approvals.by_approval_id(approval.id)
            .stages.by_approval_stage_id(stage.id)
            .patch(ApprovalStage(review_result="Approve", justification="Fine by me"))
        )
        again = await approvals.by_approval_id(approval.id).get()
        return approval, stage, again

    approval, stage, again = asyncio.run(journey())

    assert approval.id == str(request.pk)
    assert (stage.status, stage.review_result, stage.assigned_to_me) == (
        "InProgress",
        "NotReviewed",
        True,
    )
    assert [(s.status, s.review_result) for s in again.stages] == [
        ("Completed", "Approved"),
        ("InProgress", "NotReviewed"),
    ]
    assert again.stages[0].reviewed_by.display_name == approver.display_name
    assert again.stages[0].reviewed_date_time is not None
    decided = RequestApprovalStage.objects.get(request=request, sequence=1)
    assert (decided.review_result, decided.reviewed_by, decided.justification) == (
        ReviewResult.APPROVED,
        approver,
        "Fine by me",
    )

    outsider = graph_as(live_server, user_token(other, [SUBJECT_ACCESS]))
    with pytest.raises(ODataError) as refused:
        asyncio.run(
            outsider.identity_governance.entitlement_management.access_package_assignment_approvals.by_approval_id(
                approval.id
            ).get()
        )
    assert refused.value.response_status_code == 404
    assert refused.value.error.code == "ResourceNotFound"
