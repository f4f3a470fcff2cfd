"""Two approvers of a two-group quorum stage clicking at once, on the real PostgreSQL."""

import pytest

from approvals.models import RequestApprovalStage, ReviewResult, StageStatus
from approvals.services import stage_decide
from entitlements.models import Assignment, AuditEvent, Channel, QuorumMode
from entitlements.services.requests import request_submit
from tests.approvals_quorum.setup import group_of, quorum_policy
from tests.factories import ApprovalStageFactory, UserFactory, add_approver
from tests.lifecycle.test_races_requests import run_together
from tests.services import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]

ROUNDS = 5


def approve(person, stage):
    return lambda: stage_decide(
        actor=person,
        stage=RequestApprovalStage.objects.get(pk=stage.pk),
        decision=ReviewResult.APPROVED,
        channel=Channel.EMAIL,
    )


def two_group_request(*, next_stage, n):
    sam, dora, requester = UserFactory(), UserFactory(), UserFactory()
    policy = quorum_policy(
        groups=[group_of(f"Security {n}", sam), group_of(f"Data owners {n}", dora)],
        mode=QuorumMode.ONE_FROM_EACH,
    )
    if next_stage:
        add_approver(ApprovalStageFactory(policy=policy, sequence=2), user=UserFactory())
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )
    return sam, dora, request, request.approval_stages.get(sequence=1)


@pytest.mark.parametrize("next_stage", [True, False], ids=["opens-stage-2", "fulfils"])
def test_two_approvers_from_two_groups_at_once_complete_the_stage_exactly_once(next_stage):
    require_postgres()
    for n in range(ROUNDS):
        sam, dora, request, stage = two_group_request(next_stage=next_stage, n=n)

        results, conflicts, errors = run_together([approve(sam, stage), approve(dora, stage)])

        assert (errors, conflicts, len(results)) == ([], [], 2)
        stage.refresh_from_db()
        assert (stage.status, stage.review_result) == (StageStatus.COMPLETED, "Approved")
        completions = AuditEvent.objects.filter(action="stage.approve", object_id=str(stage.pk))
        partials = AuditEvent.objects.filter(action="stage.approval", object_id=str(stage.pk))
        assert (completions.count(), partials.count()) == (1, 1)
        if next_stage:
            assert request.approval_stages.filter(sequence=2).count() == 1
        else:
            assert Assignment.objects.filter(target=request.target).count() == 1
