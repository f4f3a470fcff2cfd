"""Quorum stages: one approval from each approver entry, or a number of people."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from approvals.models import ReviewResult, StageApprover, StageStatus
from approvals.quorum import stage_progress
from approvals.services import stages_escalate_due, stages_expire_due
from entitlements.errors import PermissionDenied, StateConflict
from entitlements.models import ApprovalStage, AuditEvent, QuorumMode, RequestState
from tests.approvals_quorum.setup import decide, group_of, quorum_policy, submitted
from tests.factories import UserFactory, add_approver

pytestmark = pytest.mark.django_db

APPROVE, DENY = ReviewResult.APPROVED, ReviewResult.DENIED


def denial_reason(request):
    return AuditEvent.objects.get(action="request.deny", object_id=str(request.pk)).reason


@pytest.fixture
def people(db):
    names = ["Sam Security", "Sue Security", "Dora Data", "Dan Data"]
    return {name.split()[0].lower(): UserFactory(display_name=name) for name in names}


@pytest.fixture
def two_groups(people):
    return (
        group_of("Security", people["sam"], people["sue"]),
        group_of("Data owners", people["dora"], people["dan"]),
    )


def test_one_approval_from_the_first_group_leaves_the_stage_waiting_for_the_second(
    requester, people, two_groups
):
    request = submitted(requester, quorum_policy(groups=two_groups))

    stage = decide(people["sam"], request, justification="Security is fine")

    stage.refresh_from_db()
    request.refresh_from_db()
    assert stage.status == StageStatus.IN_PROGRESS
    assert request.state == RequestState.PENDING_APPROVAL
    assert stage_progress(stage).sentence == (
        "1 of 2 approvals; still needed: one from Data owners."
    )
    row = StageApprover.objects.get(stage=stage, user=people["sam"])
    assert (row.decision, row.justification) == (APPROVE, "Security is fine")
    assert AuditEvent.objects.filter(action="stage.approval", object_id=str(stage.pk)).exists()


def test_a_second_approval_from_the_same_group_does_not_complete_it(requester, people, two_groups):
    request = submitted(requester, quorum_policy(groups=two_groups))
    decide(people["sam"], request)

    stage = decide(people["sue"], request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.IN_PROGRESS
    assert "one from Data owners" in stage_progress(stage).sentence


def test_one_approval_from_each_group_completes_the_stage_and_moves_the_request_on(
    requester, people, two_groups
):
    request = submitted(requester, quorum_policy(groups=two_groups))
    decide(people["sam"], request)

    stage = decide(people["dora"], request)

    stage.refresh_from_db()
    request.refresh_from_db()
    assert (stage.status, stage.review_result, stage.reviewed_by) == (
        StageStatus.COMPLETED,
        APPROVE,
        people["dora"],
    )
    assert request.state in (RequestState.DELIVERING, RequestState.DELIVERED)
    assert request.assignment is not None
    assert AuditEvent.objects.filter(action="stage.approve", object_id=str(stage.pk)).count() == 1


def test_a_person_in_both_groups_satisfies_both_with_one_approval(requester, people):
    both = people["sam"]
    groups = (group_of("Security", both), group_of("Data owners", both, people["dora"]))
    request = submitted(requester, quorum_policy(groups=groups))

    stage = decide(both, request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_the_first_denial_ends_the_stage_and_the_request(requester, people, two_groups):
    request = submitted(requester, quorum_policy(groups=two_groups))
    decide(people["sam"], request)

    stage = decide(people["dora"], request, decision=DENY, justification="Not needed")

    stage.refresh_from_db()
    request.refresh_from_db()
    assert (stage.status, stage.review_result, stage.reviewed_by) == (
        StageStatus.COMPLETED,
        DENY,
        people["dora"],
    )
    assert request.state == RequestState.DENIED


def test_it_refuses_a_second_decision_by_the_same_person(requester, people, two_groups):
    request = submitted(requester, quorum_policy(groups=two_groups))
    decide(people["sam"], request)

    with pytest.raises(StateConflict, match="You already approved this request"):
        decide(people["sam"], request)
    with pytest.raises(StateConflict, match="You already approved this request"):
        decide(people["sam"], request, decision=DENY)

    stage = request.approval_stages.get()
    assert stage.status == StageStatus.IN_PROGRESS
    assert StageApprover.objects.get(stage=stage, user=people["sam"]).decision == APPROVE


def test_the_requestor_never_approves_their_own_request_even_in_a_listed_group(requester, people):
    groups = (group_of("Security", requester, people["sam"]), group_of("Data", people["dora"]))
    request = submitted(requester, quorum_policy(groups=groups))

    with pytest.raises(PermissionDenied):
        decide(requester, request)

    stage = request.approval_stages.get()
    assert not StageApprover.objects.filter(stage=stage, user=requester).exists()
    assert stage_progress(stage).done == 0


def test_someone_outside_the_listed_approvers_is_refused(requester, people, two_groups, outsider):
    request = submitted(requester, quorum_policy(groups=two_groups))

    with pytest.raises(PermissionDenied):
        decide(outsider, request)


def test_k_of_n_counts_people_and_completes_at_the_kth_approval(requester, people):
    policy = quorum_policy(
        users=[people["sam"], people["sue"], people["dora"]], mode=QuorumMode.SOME_OF, count=2
    )
    request = submitted(requester, policy)

    stage = decide(people["sam"], request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.IN_PROGRESS
    assert stage_progress(stage).sentence == "1 of 2 approvals; still needed: 1 more approval."

    decide(people["dora"], request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_a_stage_that_cannot_meet_its_number_denies_the_request_when_it_opens(requester, people):
    policy = quorum_policy(users=[people["sam"]], mode=QuorumMode.SOME_OF, count=2)

    request = submitted(requester, policy)

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert request.status == "NoApprovers"
    assert "needs 2 approvals, but only 1 people can approve" in denial_reason(request)


def test_an_entry_nobody_can_approve_for_denies_the_request_naming_it(requester, people):
    groups = (group_of("Security", people["sam"]), group_of("Empty board"))

    request = submitted(requester, quorum_policy(groups=groups))

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert "Empty board" in denial_reason(request)


def test_fallback_approvers_stand_in_for_an_entry_nobody_can_approve_for(requester, people):
    groups = (group_of("Security", people["sam"]), group_of("Empty board"))
    policy = quorum_policy(groups=groups)
    add_approver(
        policy.approval_stages.get(), purpose="fallbackPrimaryApprover", user=people["dan"]
    )
    request = submitted(requester, policy)
    decide(people["sam"], request)

    stage = decide(people["dan"], request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_escalation_approvers_join_and_stand_in_for_the_missing_entries(
    requester, people, two_groups
):
    boss = UserFactory(display_name="Bea Boss")
    policy = quorum_policy(
        groups=two_groups,
        is_escalation_enabled=True,
        duration_before_escalation=timedelta(days=3),
    )
    add_approver(policy.approval_stages.get(), purpose="escalationApprover", user=boss)
    request = submitted(requester, policy)
    decide(people["sam"], request)

    with time_machine.travel(timezone.now() + timedelta(days=4)):
        assert stages_escalate_due() == 1
        stage = decide(boss, request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_at_the_deadline_a_stage_short_of_its_quorum_expires_as_today(
    requester, people, two_groups
):
    request = submitted(requester, quorum_policy(groups=two_groups))
    decide(people["sam"], request)

    with time_machine.travel(timezone.now() + timedelta(days=15)):
        assert stages_expire_due() == 1

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert request.approval_stages.get().status == StageStatus.EXPIRED


def test_an_any_one_stage_still_completes_at_the_first_approval(requester, people):
    policy = quorum_policy(users=[people["sam"], people["sue"]], mode=QuorumMode.ANY_ONE)
    request = submitted(requester, policy)

    stage = decide(people["sam"], request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED
    assert stage_progress(stage).sentence == ""


@pytest.mark.parametrize(
    ("mode", "count", "field"),
    [
        (QuorumMode.SOME_OF, None, "quorum_count"),
        (QuorumMode.SOME_OF, 0, "quorum_count"),
        (QuorumMode.ONE_FROM_EACH, 2, "quorum_count"),
        (QuorumMode.ANY_ONE, 1, "quorum_count"),
    ],
)
def test_a_policy_stage_refuses_a_nonsense_quorum(mode, count, field):
    stage = ApprovalStage(quorum_mode=mode, quorum_count=count)

    with pytest.raises(ValidationError) as refused:
        stage.clean()

    assert field in refused.value.message_dict
