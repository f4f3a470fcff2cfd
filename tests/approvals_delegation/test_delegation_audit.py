"""A delegate's decisions say on whose behalf in every audit event they cause."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ReviewResult, StageApprover
from entitlements.models import AuditEvent
from tests.approvals_quorum.setup import decide, quorum_policy, submitted

from .conftest import delegate

pytestmark = pytest.mark.django_db


def test_a_delegate_who_shortens_the_access_is_recorded_on_behalf_of_the_approver(
    requester, ann, ben
):
    policy = quorum_policy(users=[ann], mode="anyOne", approvers_may_shorten=True)
    policy.expiration_duration = timedelta(days=365)
    policy.allow_custom_assignment_schedule = True
    policy.save()
    delegate(ann, ben)
    asked_end = timezone.now() + timedelta(days=100)
    request = submitted(requester, policy, schedule_end=asked_end)

    decide(ben, request, approved_end=asked_end - timedelta(days=30))

    assert StageApprover.objects.get(user=ben).decision == ReviewResult.APPROVED
    event = AuditEvent.objects.get(action="request.shortened")
    assert event.actor_id == ben.pk
    assert event.data == {"on_behalf_of": str(ann.pk)}
