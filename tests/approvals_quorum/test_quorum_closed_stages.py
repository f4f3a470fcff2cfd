"""What an approver reads who comes to a quorum stage that closed after some approvals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.services import stages_expire_due
from entitlements.errors import StateConflict
from entitlements.models import Channel, QuorumMode
from entitlements.services.requests import request_cancel
from tests.approvals_quorum.setup import decide, quorum_policy, submitted
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann_ben_carl(db):
    return [UserFactory(display_name=name) for name in ("Ann", "Ben", "Carl")]


def two_of_three(requester, people):
    return submitted(requester, quorum_policy(users=people, mode=QuorumMode.SOME_OF, count=2))


def test_the_last_approver_reads_that_the_stage_already_has_its_approvals(requester, ann_ben_carl):
    ann, ben, carl = ann_ben_carl
    request = two_of_three(requester, ann_ben_carl)
    decide(ann, request)
    decide(ben, request)

    with pytest.raises(
        StateConflict, match="already has the approvals it needs; the last was given by Ben"
    ):
        decide(carl, request)


def test_an_approver_of_a_stage_cancelled_after_one_approval_is_not_told_nobody_decided(
    requester, ann_ben_carl
):
    ann, ben, _carl = ann_ben_carl
    request = two_of_three(requester, ann_ben_carl)
    decide(ann, request)
    request_cancel(actor=requester, request=request, channel=Channel.PORTAL)

    with pytest.raises(StateConflict) as refused:
        decide(ben, request)

    assert str(refused.value) == (
        "This request was closed before this stage got all its approvals."
    )


def test_an_approver_of_a_stage_cancelled_undecided_reads_that_nobody_decided(
    requester, ann_ben_carl
):
    _ann, ben, _carl = ann_ben_carl
    request = two_of_three(requester, ann_ben_carl)
    request_cancel(actor=requester, request=request, channel=Channel.PORTAL)

    with pytest.raises(StateConflict, match="closed before anyone decided it"):
        decide(ben, request)


def test_an_approver_of_a_stage_expired_short_of_its_quorum_reads_it_missed_approvals(
    requester, ann_ben_carl
):
    ann, ben, _carl = ann_ben_carl
    request = two_of_three(requester, ann_ben_carl)
    decide(ann, request)
    stages_expire_due(now=timezone.now() + timedelta(days=400))

    with pytest.raises(StateConflict) as refused:
        decide(ben, request)

    assert "did not get all the approvals it needs in time" in str(refused.value)
    assert "Nobody decided" not in str(refused.value)
