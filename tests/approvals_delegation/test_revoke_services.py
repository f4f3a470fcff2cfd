"""Revoking an approval: before delivery the request ends, after it the access goes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRevocation, ReviewResult, StageApprover, StageStatus
from approvals.services import approval_revoke, stage_decide
from directory.models import GroupMembership
from entitlements.errors import InvalidRequest, PermissionDenied, StateConflict
from entitlements.models import (
    Assignment,
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    Channel,
    RequestState,
    RequestType,
)
from notifications.models import Notification, NotificationKind
from tests.factories import UserFactory, add_approver

from .conftest import approve, delegate, make_package, submit

pytestmark = pytest.mark.django_db
Outcome = ApprovalRevocation.Outcome


@pytest.fixture
def rita(db):
    return UserFactory(email="rita@example.com", display_name="Rita Requester")


def my_approval(user, request, sequence=1):
    return StageApprover.objects.get(stage__request=request, stage__sequence=sequence, user=user)


def revoke(user, request, reason="Approved by mistake", now=None, sequence=1, approval=None):
    return approval_revoke(
        actor=user,
        approval=approval or my_approval(user, request, sequence),
        reason=reason,
        channel=Channel.PORTAL,
        now=now,
    )


def member_of_group(user, package):
    return GroupMembership.objects.filter(
        user=user, group__display_name=f"{package.display_name} group"
    ).exists()


def test_revoking_while_a_later_stage_waits_denies_the_request_and_closes_that_stage(
    ann, rita, django_capture_on_commit_callbacks
):
    package = make_package("Treasury", ann, stages=2)
    bob = UserFactory(display_name="Bob Second")
    second = package.assignment_policies.get().approval_stages.get(sequence=2)
    second.approver_sets.all().delete()
    add_approver(second, user=bob)
    request = submit(rita, package)
    approve(ann, request)

    with django_capture_on_commit_callbacks(execute=True):
        revocation = revoke(ann, request)

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert (
        AuditEvent.objects.get(action="request.deny", request=request).reason
        == "Approval revoked by Ann Example: Approved by mistake"
    )
    assert request.approval_stages.get(sequence=2).status == StageStatus.CANCELED
    assert revocation.outcome == Outcome.REQUEST_ENDED
    assert not Assignment.objects.filter(target=rita).exists()
    kinds = set(Notification.objects.filter(recipient=rita).values_list("kind", flat=True))
    assert NotificationKind.APPROVAL_REVOKED in kinds
    assert NotificationKind.REQUEST_DENIED not in kinds
    event = AuditEvent.objects.get(action="stage.approval_revoked")
    assert event.actor == ann
    assert event.reason == "Approved by mistake"
    assert event.data["outcome"] == Outcome.REQUEST_ENDED


def test_revoking_before_any_worker_claimed_the_delivery_ends_it_undelivered(
    ann, rita, package, django_capture_on_commit_callbacks
):
    request = submit(rita, package)
    approve(ann, request)  # its delivery, enqueued on commit, never runs here
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERING

    with django_capture_on_commit_callbacks(execute=True):
        revocation = revoke(ann, request)

    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert revocation.outcome == Outcome.REQUEST_ENDED
    assert request.assignment.state == AssignmentState.EXPIRED
    assert not member_of_group(rita, package)


def test_revoking_after_delivery_removes_the_access_with_an_admin_removal(
    ann, rita, package, django_capture_on_commit_callbacks
):
    request = submit(rita, package)
    with django_capture_on_commit_callbacks(execute=True):
        approve(ann, request)
    assert member_of_group(rita, package)

    with django_capture_on_commit_callbacks(execute=True):
        revocation = revoke(ann, request, reason="Wrong person")

    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    assert revocation.outcome == Outcome.ACCESS_REMOVED
    removal = AssignmentRequest.objects.get(
        assignment=request.assignment_id, request_type=RequestType.ADMIN_REMOVE
    )
    assert removal.requestor == ann
    assert removal.justification == "Approval revoked by Ann Example: Wrong person"
    assert Assignment.objects.get(pk=request.assignment_id).state == AssignmentState.EXPIRED
    assert not member_of_group(rita, package)
    kinds = set(Notification.objects.filter(recipient=rita).values_list("kind", flat=True))
    assert NotificationKind.APPROVAL_REVOKED in kinds
    assert NotificationKind.ACCESS_ENDED not in kinds


def test_a_delivery_a_worker_already_claimed_counts_as_delivered(ann, rita, package):
    request = submit(rita, package)
    approve(ann, request)
    request.refresh_from_db()
    request.assignment.grants.update(claimed_by="worker-1", lease_expires=timezone.now())

    revocation = revoke(ann, request)

    assert revocation.outcome == Outcome.ACCESS_REMOVED
    assert AssignmentRequest.objects.filter(
        assignment=request.assignment_id, request_type=RequestType.ADMIN_REMOVE
    ).exists()


@pytest.mark.parametrize("who", ["other approver", "requestor", "outsider"])
def test_only_the_approver_who_gave_the_approval_may_revoke_it(ann, ben, rita, who):
    package = make_package("Payroll", ann, ben)
    request = submit(rita, package)
    approve(ann, request)
    actor = {"other approver": ben, "requestor": rita, "outsider": UserFactory()}[who]

    with pytest.raises(PermissionDenied, match="Only the approver who gave"):
        revoke(actor, request, approval=my_approval(ann, request))

    request.refresh_from_db()
    assert request.state == RequestState.DELIVERING
    assert not ApprovalRevocation.objects.exists()


def test_it_refuses_after_the_window_and_when_revoking_is_off(ann, rita, package, settings):
    request = submit(rita, package)
    approved_at = timezone.now()
    approve(ann, request, now=approved_at)

    with pytest.raises(StateConflict, match="The time to revoke this approval ended"):
        revoke(ann, request, now=approved_at + timedelta(days=7, seconds=1))
    settings.APPROVAL_REVOKE_WINDOW = timedelta(0)
    with pytest.raises(StateConflict, match="The time to revoke"):
        revoke(ann, request, now=approved_at + timedelta(minutes=1))
    assert not ApprovalRevocation.objects.exists()
    settings.APPROVAL_REVOKE_WINDOW = timedelta(days=7)
    assert revoke(ann, request, now=approved_at + timedelta(days=6)).outcome


def test_it_needs_a_reason_revokes_once_and_never_a_denial(ann, ben, rita, package):
    request = submit(rita, package)
    approve(ann, request)

    with pytest.raises(InvalidRequest, match="Say why") as refused:
        revoke(ann, request, reason="  ")
    assert refused.value.field == "reason"
    revoke(ann, request)
    with pytest.raises(StateConflict, match="already revoked"):
        revoke(ann, request)

    other = submit(UserFactory(), make_package("Audit", ben))
    stage_decide(
        actor=ben,
        stage=other.approval_stages.get(),
        decision=ReviewResult.DENIED,
        justification="No",
        channel=Channel.PORTAL,
    )
    with pytest.raises(StateConflict, match="Only an approval"):
        revoke(ben, other)


def test_an_approval_given_as_a_delegate_is_revoked_by_the_delegate(ann, ben, rita, package):
    delegate(ann, ben)
    request = submit(rita, package)
    approve(ben, request)

    with pytest.raises(PermissionDenied):
        revoke(ann, request, approval=my_approval(ben, request))
    revocation = revoke(ben, request)

    assert revocation.revoked_by == ben
    assert revocation.approval.on_behalf_of == ann
