"""Delegation: who is asked while an approver is away, and what the service refuses."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from approvals.models import ApprovalDelegation, ReviewResult, StageApprover
from approvals.services import delegation_create, delegation_end, stages_escalate_due
from entitlements.errors import InvalidRequest, PermissionDenied, StateConflict
from entitlements.models import AuditEvent, Channel, RequestState
from tests.factories import UserFactory, add_approver

from .conftest import approve, approvers_of, delegate, submit

pytestmark = pytest.mark.django_db


def test_a_stage_opening_during_a_delegation_goes_to_the_delegate_as_well(ann, ben, package):
    delegate(ann, ben)
    rita = UserFactory(display_name="Rita Requester")

    request = submit(rita, package)

    assert approvers_of(request) == {("Ann Example", None), ("Ben Example", "Ann Example")}
    ben_row = StageApprover.objects.get(user=ben)
    assert ben_row.kind == StageApprover.objects.get(user=ann).kind
    opened = AuditEvent.objects.get(action="stage.open", request=request)
    assert str(ben.pk) in opened.data["approvers"]


def test_the_delegate_approves_and_the_request_moves_on(
    ann, ben, package, django_capture_on_commit_callbacks
):
    delegate(ann, ben)
    request = submit(UserFactory(), package)

    with django_capture_on_commit_callbacks(execute=True):
        approve(ben, request)

    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    stage = request.approval_stages.get()
    assert stage.reviewed_by == ben
    decision = AuditEvent.objects.get(action="stage.approve", request=request)
    assert decision.actor == ben
    assert decision.data["on_behalf_of"] == str(ann.pk)


def test_an_approvers_own_decision_names_nobody_on_whose_behalf(ann, ben, package):
    delegate(ann, ben)
    request = submit(UserFactory(), package)

    approve(ann, request)

    assert "on_behalf_of" not in AuditEvent.objects.get(action="stage.approve").data


def test_stages_opened_before_or_after_the_period_are_not_delegated(ann, ben, package):
    now = timezone.now()
    before = submit(UserFactory(), package)
    delegate(ann, ben, start=now + timedelta(days=1), days=2, now=now)
    during_not_yet = submit(UserFactory(), package)

    assert approvers_of(before) == {("Ann Example", None)}
    assert approvers_of(during_not_yet) == {("Ann Example", None)}


def test_an_ended_delegation_is_no_longer_used(ann, ben, package):
    delegation = delegate(ann, ben)
    delegation_end(actor=ann, delegation=delegation, channel=Channel.PORTAL)

    request = submit(UserFactory(), package)

    assert approvers_of(request) == {("Ann Example", None)}
    assert AuditEvent.objects.filter(action="approvalDelegation.ended").count() == 1


def test_a_delegates_own_delegate_is_not_used(ann, ben, carl, package):
    delegate(ann, ben)
    delegate(ben, carl)

    request = submit(UserFactory(), package)

    assert approvers_of(request) == {("Ann Example", None), ("Ben Example", "Ann Example")}


def test_a_delegate_is_never_asked_to_decide_their_own_request(ann, ben, package):
    delegate(ann, ben)

    request = submit(ben, package)

    assert approvers_of(request) == {("Ann Example", None)}


def test_a_delegate_row_for_the_requestor_still_cannot_decide_their_request(ann, ben, package):
    """Only Ann approves; her delegate Ben asks. Even given a row on her behalf (written
    around the service, as no delegation code would), Ben cannot decide his own request."""
    delegate(ann, ben)
    request = submit(ben, package)
    stage = request.approval_stages.get()
    StageApprover.objects.create(
        stage=stage, user=ben, kind=StageApprover.Kind.PRIMARY, on_behalf_of=ann
    )

    with pytest.raises(PermissionDenied, match="your own request"):
        approve(ben, request)

    assert StageApprover.objects.get(user=ben).decision == ReviewResult.NOT_REVIEWED


def test_a_delegate_who_cannot_sign_in_is_not_asked(ann, ben, package):
    delegate(ann, ben)
    ben.is_active = False
    ben.save(update_fields=["is_active"])

    request = submit(UserFactory(), package)

    assert approvers_of(request) == {("Ann Example", None)}


def test_escalation_approvers_pass_their_stages_to_their_delegates(ann, ben, carl, package):
    stage = package.assignment_policies.get().approval_stages.get()
    stage.is_escalation_enabled = True
    stage.duration_before_escalation = timedelta(days=1)
    stage.save()
    add_approver(stage, user=carl, purpose="escalationApprover")
    dora = UserFactory(display_name="Dora Example")
    delegate(carl, dora, days=10)
    request = submit(UserFactory(), package)

    assert stages_escalate_due(now=timezone.now() + timedelta(days=2)) == 1

    assert ("Dora Example", "Carl Example") in approvers_of(request)


def test_the_delegation_is_audited(ann, ben):
    delegation = delegate(ann, ben)

    event = AuditEvent.objects.get(action="approvalDelegation.created")
    assert event.actor == ann
    assert event.object_id == str(delegation.pk)
    assert event.data["delegate"] == str(ben.pk)
    assert event.reason == "On holiday"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"end": -1}, "end", "must end in the future"),
        ({"start": -2, "end": 3}, "start", "cannot start in the past"),
        ({"start": 3, "end": 2}, "end", "must end after it starts"),
    ],
)
def test_it_refuses_a_period_that_makes_no_sense(ann, ben, change, field, message):
    now = timezone.now()
    start = now + timedelta(days=change["start"]) if "start" in change else None
    with pytest.raises(InvalidRequest, match=message) as refused:
        delegation_create(
            actor=ann,
            delegate=ben,
            start=start,
            end=now + timedelta(days=change["end"]),
            channel=Channel.PORTAL,
            now=now,
        )
    assert refused.value.field == field
    assert not ApprovalDelegation.objects.exists()


def test_it_refuses_oneself_and_a_person_who_cannot_sign_in(ann, ben):
    with pytest.raises(InvalidRequest, match="other than yourself"):
        delegate(ann, ann)
    ben.is_active = False
    with pytest.raises(InvalidRequest, match="cannot sign in"):
        delegate(ann, ben)
    assert not ApprovalDelegation.objects.exists()


def test_it_refuses_a_second_delegation_overlapping_the_first(ann, ben, carl):
    now = timezone.now()
    delegate(ann, ben, days=7, now=now)

    with pytest.raises(StateConflict, match="already delegate your approvals to Ben Example"):
        delegate(ann, carl, start=now + timedelta(days=6), days=3, now=now)

    assert ApprovalDelegation.objects.count() == 1
    later = delegate(ann, carl, start=now + timedelta(days=7), days=3, now=now)
    assert later.delegate == carl


def test_a_delegation_ended_before_it_began_frees_its_period(ann, ben, carl):
    now = timezone.now()
    planned = delegate(ann, ben, start=now + timedelta(days=1), days=3, now=now)
    delegation_end(actor=ann, delegation=planned, channel=Channel.PORTAL, now=now)

    replacement = delegate(ann, carl, start=now + timedelta(days=1), days=3, now=now)

    assert replacement.delegate == carl


def test_only_the_approver_ends_their_delegation_and_only_once(ann, ben, carl):
    delegation = delegate(ann, ben)

    with pytest.raises(PermissionDenied):
        delegation_end(actor=ben, delegation=delegation, channel=Channel.PORTAL)
    with pytest.raises(PermissionDenied):
        delegation_end(actor=carl, delegation=delegation, channel=Channel.PORTAL)
    delegation_end(actor=ann, delegation=delegation, channel=Channel.PORTAL)
    with pytest.raises(StateConflict, match="already ended"):
        delegation_end(actor=ann, delegation=delegation, channel=Channel.PORTAL)


@pytest.mark.postgres_only
def test_the_database_refuses_overlapping_delegations_written_around_the_service(ann, ben, carl):
    if connection.vendor != "postgresql":
        pytest.fail("runs on PostgreSQL")
    now = timezone.now()
    ApprovalDelegation.objects.create(
        delegator=ann, delegate=ben, start=now, end=now + timedelta(days=5)
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalDelegation.objects.create(
            delegator=ann, delegate=carl, start=now + timedelta(days=1), end=now + timedelta(days=2)
        )
