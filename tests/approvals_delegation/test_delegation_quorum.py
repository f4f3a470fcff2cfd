"""An approver and their delegate are one say in a stage: counted once, decided once."""

import pytest

from approvals.models import StageApprover
from approvals.selectors import can_decide, pending_stages_for
from entitlements.errors import StateConflict
from entitlements.models import ApprovalStage, QuorumMode, RequestState
from tests.factories import UserFactory

from .conftest import approve, delegate, make_package, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_of(ann, carl):
    """A stage that needs two approvals from different people: Ann's and Carl's."""
    package = make_package("Payroll", ann, carl)
    ApprovalStage.objects.filter(policy__access_package=package).update(
        quorum_mode=QuorumMode.SOME_OF, quorum_count=2
    )
    return package


def test_an_approver_and_their_delegate_count_once_toward_a_some_of_quorum(ann, ben, two_of):
    delegate(ann, ben)
    request = submit(UserFactory(), two_of)
    approve(ann, request)

    with pytest.raises(StateConflict, match="Ann Example already decided this request"):
        approve(ben, request)

    request.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL
    assert StageApprover.objects.get(user=ben).decision == "NotReviewed"


def test_the_approver_is_refused_once_their_delegate_decided_for_them(ann, ben, carl, two_of):
    delegate(ann, ben)
    request = submit(UserFactory(), two_of)
    approve(ben, request)

    with pytest.raises(StateConflict, match="Ben Example already decided this request on your"):
        approve(ann, request)
    approve(carl, request)

    request.refresh_from_db()
    assert request.state != RequestState.PENDING_APPROVAL


def test_the_stage_leaves_the_other_ones_approvals_tab(ann, ben, carl, two_of):
    delegate(ann, ben)
    request = submit(UserFactory(), two_of)
    stage = request.approval_stages.get()
    assert list(pending_stages_for(user=ben)) == [stage]

    approve(ann, request)

    assert list(pending_stages_for(user=ben)) == []
    assert not can_decide(user=ben, stage=stage)
    assert list(pending_stages_for(user=carl)) == [stage]
    assert can_decide(user=carl, stage=stage)


def test_a_quorum_counts_a_delegate_who_approved_alone_as_their_approver(ann, ben, carl, two_of):
    delegate(ann, ben)
    request = submit(UserFactory(), two_of)
    approve(ben, request)
    request.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL

    approve(carl, request)

    request.refresh_from_db()
    assert request.state != RequestState.PENDING_APPROVAL
