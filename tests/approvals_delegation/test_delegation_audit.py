"""A delegate's decisions say on whose behalf in every audit event they cause."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ReviewResult, StageApprover
from entitlements.errors import NotEligible
from entitlements.models import AuditEvent, RequestState
from tests.approvals_quorum.setup import decide, quorum_policy, submitted
from tests.factories import UserFactory

from .conftest import approve, delegate, make_package, submit

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


def test_a_delegates_approval_denied_for_separation_of_duties_says_on_whose_behalf(ann, ben):
    initiate, release = make_package("Initiate payments", ann), make_package("Release", ann)
    delegate(ann, ben)
    rita = UserFactory(display_name="Rita Requester")
    first, second = submit(rita, initiate), submit(rita, release)
    initiate.incompatible_access_packages.add(release)
    approve(ann, first)

    with pytest.raises(NotEligible):
        approve(ben, second)

    second.refresh_from_db()
    assert second.state == RequestState.DENIED
    cancel = AuditEvent.objects.get(action="stage.cancel", request=second)
    assert cancel.actor_id == ben.pk
    assert cancel.data["on_behalf_of"] == str(ann.pk)
