"""People who leave while a quorum stage waits: an approval they gave still counts."""

import pytest

from approvals.models import StageApprover, StageStatus
from approvals.services import approvals_reroute_from
from entitlements.models import QuorumMode, RequestState
from tests.approvals_quorum.setup import decide, group_of, quorum_policy, submitted
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def leaves(person):
    person.is_active = False
    person.save(update_fields=["is_active"])
    return approvals_reroute_from(user=person)


def test_an_approval_given_before_leaving_still_counts_towards_the_number(requester):
    sam, sue, dora = UserFactory(), UserFactory(), UserFactory()
    request = submitted(
        requester, quorum_policy(users=[sam, sue, dora], mode=QuorumMode.SOME_OF, count=2)
    )
    decide(sam, request)

    leaves(sam)
    stage = decide(dora, request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED
    assert StageApprover.objects.filter(stage=stage, user=sam).exists()


def test_when_the_only_person_of_a_missing_entry_leaves_the_request_is_denied(requester):
    sam, dora = UserFactory(), UserFactory()
    groups = (group_of("Security", sam), group_of("Data owners", dora))
    request = submitted(requester, quorum_policy(groups=groups))
    decide(sam, request)

    assert leaves(dora) == 1

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert request.status == "NoApprovers"
