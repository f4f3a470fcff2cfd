"""Notices that time brings: reminders, escalations, expired requests, access ending soon."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.emails import stages_send_reminders
from approvals.services import stages_escalate_due, stages_expire_due
from entitlements.models import Assignment, Channel
from entitlements.services.ending import assignment_remove, assignments_expire_due
from entitlements.services.requests import request_submit
from notifications.models import Notification, NotificationKind
from notifications.services import assignments_notify_expiring
from tests.factories import (
    AccessPackageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_approver,
    grant_role,
)

pytestmark = pytest.mark.django_db


def kinds_to(user):
    return sorted(Notification.objects.filter(recipient=user).values_list("kind", flat=True))


@pytest.fixture
def submit(approval_policy, requester, django_capture_on_commit_callbacks):
    def submit_now():
        with django_capture_on_commit_callbacks(execute=True):
            return request_submit(
                actor=requester,
                target=requester,
                access_package=approval_policy.access_package,
                justification="Quarter-end close",
                channel=Channel.PORTAL,
            )

    return submit_now


def test_approvers_are_reminded_once_half_way_to_the_deadline(
    submit, approver, django_capture_on_commit_callbacks
):
    submit()
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert stages_send_reminders(now=now + timedelta(days=1)) == 0
        assert stages_send_reminders(now=now + timedelta(days=1, hours=13)) == 1
        assert stages_send_reminders(now=now + timedelta(days=2)) == 0
    assert kinds_to(approver) == ["approvalReminder", "approvalRequired"]


def test_escalation_approvers_are_told_the_request_was_forwarded(
    approval_policy, submit, approver, django_capture_on_commit_callbacks
):
    escalation = UserFactory(email="escalation@example.com", display_name="Esme Escalation")
    stage = approval_policy.approval_stages.get()
    stage.is_escalation_enabled = True
    stage.duration_before_escalation = timedelta(days=1)
    stage.save()
    add_approver(stage, user=escalation, purpose="escalationApprover")
    submit()
    with django_capture_on_commit_callbacks(execute=True):
        assert stages_escalate_due(now=timezone.now() + timedelta(days=1, minutes=1)) == 1
    assert kinds_to(escalation) == ["approvalForwarded"]
    assert kinds_to(approver) == ["approvalRequired"]


def test_a_request_nobody_decided_tells_the_requestor_and_the_approvers(
    submit, requester, approver, django_capture_on_commit_callbacks
):
    submit()
    with django_capture_on_commit_callbacks(execute=True):
        assert stages_expire_due(now=timezone.now() + timedelta(days=3, minutes=1)) == 1
    assert kinds_to(requester) == ["requestExpired"]
    assert kinds_to(approver) == ["approvalExpired", "approvalRequired"]


@pytest.fixture
def delivered(requester, django_capture_on_commit_callbacks):
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog, display_name="Contractor access")
    grant_role(package, resource.roles.get(origin_id="Member"))
    PolicyFactory(access_package=package, expiration_duration=timedelta(days=30))
    with django_capture_on_commit_callbacks(execute=True):
        request_submit(
            actor=requester, target=requester, access_package=package, channel=Channel.PORTAL
        )
    return Assignment.objects.get(target=requester, access_package=package)


def test_the_holder_is_told_fourteen_days_and_one_day_before_access_ends(
    delivered, requester, django_capture_on_commit_callbacks
):
    assert kinds_to(requester) == ["accessDelivered"]
    start = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert assignments_notify_expiring(now=start + timedelta(days=10)) == 0
        assert assignments_notify_expiring(now=start + timedelta(days=16, hours=1)) == 1
        assert assignments_notify_expiring(now=start + timedelta(days=17)) == 0
        assert assignments_notify_expiring(now=start + timedelta(days=29, hours=1)) == 1
        assert assignments_notify_expiring(now=start + timedelta(days=29, hours=2)) == 0
    expiring = Notification.objects.filter(
        recipient=requester, kind=NotificationKind.ACCESS_EXPIRING
    )
    assert sorted(n.context["days"] for n in expiring) == [1, 14]


def test_access_that_ends_on_time_tells_the_holder(
    delivered, requester, django_capture_on_commit_callbacks
):
    later = timezone.now() + timedelta(days=30, minutes=1)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        assert assignments_expire_due() == 1
    assert "accessEnded" in kinds_to(requester)


def test_an_admin_removal_is_silent_unless_the_admin_asks(
    delivered, requester, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assignment_remove(actor=admin_user, assignment=delivered, channel=Channel.ADMIN)
    assert "accessEnded" not in kinds_to(requester)


def test_an_admin_removal_with_notice_tells_the_holder(
    delivered, requester, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assignment_remove(
            actor=admin_user,
            assignment=delivered,
            channel=Channel.ADMIN,
            notify=True,
            reason="Left the project",
        )
    ended = Notification.objects.get(recipient=requester, kind=NotificationKind.ACCESS_ENDED)
    assert ended.context["reason"] == "Left the project"
