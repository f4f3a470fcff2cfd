"""Leavers and movers: disabling a person ends what they had, a new manager takes over."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import StageApprover, StageStatus
from approvals.services import stage_decide
from approvals.signals import stage_opened
from directory.models import GroupMembership
from entitlements.models import (
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    Channel,
    GrantState,
    RequestState,
    RequestType,
    SubjectType,
)
from entitlements.services.requests import request_cancel, request_submit
from identity.services import Source, user_disable, user_update
from notifications.models import Notification, NotificationKind
from tests.factories import GroupResourceFactory, UserFactory, add_approver, add_subject
from tests.lifecycle.assignment_helpers import assign, is_member, package_giving
from tests.lifecycle.requests_setup import approval_policy, stage_of

pytestmark = pytest.mark.django_db

HR = Source(kind=Source.SCIM, name="Workday")


@pytest.fixture
def opened():
    """The approvers each stage_opened signal asked, in order."""
    calls = []

    def receive(sender, stage, approvers=(), **kwargs):
        calls.append(sorted(a.display_name for a in approvers))

    stage_opened.connect(receive, weak=False)
    yield calls
    stage_opened.disconnect(receive)


def submitted(person, policy):
    return request_submit(actor=person, target=person, access_package=policy.access_package)


def approvers_of(request):
    stage = request.approval_stages.get(sequence=1)
    return sorted((a.user.display_name, a.kind) for a in stage.approvers.select_related("user"))


def test_a_leavers_approval_stays_with_the_other_approver_of_the_stage(requester, approver):
    colleague = UserFactory(display_name="Cleo Colleague")
    request = submitted(requester, approval_policy(approvers=[approver, colleague]))

    user_disable(user=approver, source=HR, reason="Left")

    assert approvers_of(request) == [("Cleo Colleague", StageApprover.Kind.PRIMARY)]
    event = AuditEvent.objects.get(action="stage.rerouted")
    assert event.data["removed"] == [str(approver.pk)]
    assert event.data["source"] == "scim" and event.data["source_name"] == "Workday"
    assert "Arno Approver was disabled (scim Workday)" in event.reason


def test_a_leavers_approval_goes_to_the_fallback_approver_who_is_asked(
    requester, approver, opened, django_capture_on_commit_callbacks
):
    fallback = UserFactory(display_name="Fay Fallback")
    policy = approval_policy(approvers=[approver])
    add_approver(stage_of(policy), purpose="fallbackPrimaryApprover", user=fallback)
    request = submitted(requester, policy)

    with django_capture_on_commit_callbacks(execute=True):
        user_disable(user=approver, source=HR)

    assert approvers_of(request) == [("Fay Fallback", StageApprover.Kind.FALLBACK_PRIMARY)]
    assert opened == [["Fay Fallback"]]
    assert Notification.objects.filter(
        recipient=fallback, kind=NotificationKind.APPROVAL_REQUIRED
    ).exists()
    stage_decide(
        actor=fallback,
        stage=request.approval_stages.get(),
        decision="Approved",
        channel=Channel.PORTAL,
    )
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERING


def test_a_request_whose_only_approver_left_is_denied_as_nobody_can_approve_it(requester, approver):
    request = submitted(requester, approval_policy(approvers=[approver]))

    user_disable(user=approver, source=HR)

    request.refresh_from_db()
    assert (request.state, request.status) == (RequestState.DENIED, "NoApprovers")
    assert request.approval_stages.get().status == StageStatus.CANCELED


def test_a_leavers_access_is_removed_through_the_normal_lifecycle(
    requester, django_capture_on_commit_callbacks
):
    resource = GroupResourceFactory()
    package, policy = package_giving(resource)
    assignment = assign(requester, package, policy)
    assert is_member(requester, resource)
    # What they were told while they worked here (the "Access delivered" email) stays theirs.
    told_before = list(
        Notification.objects.filter(recipient=requester).values_list("pk", flat=True)
    )

    with django_capture_on_commit_callbacks(execute=True):
        user_disable(user=requester, source=HR, reason="Contract ended")

    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, resource)
    assert set(assignment.grants.values_list("state", flat=True)) == {GrantState.REMOVED}
    removal = AssignmentRequest.objects.get(request_type=RequestType.SYSTEM_REMOVE)
    assert removal.target == requester and removal.requestor is None
    assert "Contract ended" in removal.justification
    event = AuditEvent.objects.get(action="assignment.removed")
    assert event.data["source"] == "scim"
    # They are disabled: the end of their access is not emailed to them.
    told_after = Notification.objects.filter(recipient=requester).exclude(pk__in=told_before)
    assert not told_after.exists()
    assert not Notification.objects.filter(kind=NotificationKind.ACCESS_ENDED).exists()


def test_memberships_given_directly_are_the_directorys_and_stay(requester):
    resource = GroupResourceFactory()
    GroupMembership.objects.create(group=resource.group, user=requester)

    user_disable(user=requester, source=HR)

    assert is_member(requester, resource)


def test_a_new_manager_takes_over_the_stages_resolved_from_the_old_one(
    requester, manager, opened, django_capture_on_commit_callbacks
):
    new_manager = UserFactory(display_name="Nina New")
    policy = approval_policy()
    add_approver(stage_of(policy), subject_type=SubjectType.REQUESTOR_MANAGER, manager_level=1)
    request = submitted(requester, policy)
    assert approvers_of(request) == [("Mona Manager", StageApprover.Kind.PRIMARY)]

    with django_capture_on_commit_callbacks(execute=True):
        user_update(user=requester, changes={"manager": new_manager}, source=HR)

    assert approvers_of(request) == [("Nina New", StageApprover.Kind.PRIMARY)]
    assert opened[-1] == ["Nina New"]
    event = AuditEvent.objects.get(action="stage.reresolved")
    assert event.data["removed"] == [str(manager.pk)]
    assert event.data["added"] == [str(new_manager.pk)]


def test_a_new_second_level_manager_takes_over_the_reports_stages(requester, manager):
    old_boss, new_boss = UserFactory(display_name="Old Boss"), UserFactory(display_name="New Boss")
    user_update(user=manager, changes={"manager": old_boss}, source=HR)
    policy = approval_policy()
    add_approver(stage_of(policy), subject_type=SubjectType.REQUESTOR_MANAGER, manager_level=2)
    request = submitted(requester, policy)
    assert approvers_of(request) == [("Old Boss", StageApprover.Kind.PRIMARY)]

    user_update(user=manager, changes={"manager": new_boss}, source=HR)

    assert approvers_of(request) == [("New Boss", StageApprover.Kind.PRIMARY)]


def test_a_stage_with_a_named_approver_is_left_alone_when_the_manager_changes(requester, approver):
    request = submitted(requester, approval_policy(approvers=[approver]))

    user_update(user=requester, changes={"manager": UserFactory()}, source=HR)

    assert approvers_of(request) == [("Arno Approver", StageApprover.Kind.PRIMARY)]
    assert not AuditEvent.objects.filter(action="stage.reresolved").exists()


def test_a_leavers_waiting_requests_are_canceled_by_the_system_with_the_reason(requester, approver):
    request = submitted(requester, approval_policy(approvers=[approver]))

    user_disable(user=requester, source=HR, reason="Left on Friday")

    request.refresh_from_db()
    assert request.state == RequestState.CANCELED
    assert request.approval_stages.get().status == StageStatus.CANCELED
    event = AuditEvent.objects.get(action="request.cancel", request=request)
    assert event.actor is None and event.channel == Channel.SYSTEM
    assert event.reason == "Rita Requester was disabled (scim Workday). Left on Friday"


def test_requests_a_leaver_made_for_someone_else_stay(requester, manager, approver):
    policy = approval_policy(approvers=[approver], enable_on_behalf_requestors_to_add_access=True)
    add_subject(policy, "onBehalfRequestor", "targetManager", manager_level=1)
    request = request_submit(
        actor=manager,
        target=requester,
        access_package=policy.access_package,
        request_type=RequestType.ON_BEHALF_ADD,
    )

    user_disable(user=manager, source=HR)

    request.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL


def test_the_system_cancels_a_request_whatever_its_catalog(requester, approver):
    request = submitted(requester, approval_policy(approvers=[approver]))

    request_cancel(actor=None, request=request, channel=Channel.SYSTEM, reason="Cleaning up")

    request.refresh_from_db()
    assert request.state == RequestState.CANCELED
    assert AuditEvent.objects.get(action="request.cancel").reason == "Cleaning up"


def test_a_leavers_access_ends_in_the_same_number_of_queries_for_three_or_thirty(
    django_capture_on_commit_callbacks,
):
    def leaver_with(count):
        person = UserFactory()
        for _ in range(count):
            package, policy = package_giving(GroupResourceFactory())
            assign(person, package, policy)
        return person

    counts = []
    for person in (leaver_with(3), leaver_with(30)):
        with django_capture_on_commit_callbacks(execute=True):
            with CaptureQueriesContext(connection) as queries:
                user_disable(user=person, source=HR)
            counts.append(len(queries))
        # then, on commit, one revocation task for all of them
        assert not GroupMembership.objects.filter(user=person).exists()

    assert counts[0] == counts[1]
