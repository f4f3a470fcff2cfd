"""Emails go out through a real SMTP server, once per person and event, in their language."""

import re

import pytest

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements.models import Channel
from entitlements.services.requests import request_submit
from notifications.models import Notification, NotificationKind
from notifications.services import notification_send, notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(approval_policy, requester, smtp_server, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=requester,
            target=requester,
            access_package=approval_policy.access_package,
            justification="Quarter-end close",
            channel=Channel.PORTAL,
        )
    return request


def links_in(text):
    return re.findall(r"https?://\S+/approvals/email/decide/\S+", text)


def test_each_approver_gets_one_email_with_approve_and_deny_links(
    submitted, smtp_server, approver, second_approver, requester
):
    smtp_server.wait_for(2)
    to_approver = smtp_server.to(approver.email)
    assert len(to_approver) == 1
    message = to_approver[0]
    assert message["Subject"].startswith("Action required: Approve or deny request by")
    text = smtp_server.text(message)
    assert "Rita Requester requests access to Finance reports" in text
    assert "Quarter-end close" in text
    approve, deny = links_in(text)
    assert approve.endswith("?decision=approve") and deny.endswith("?decision=deny")
    assert 'href="' in smtp_server.html(message)
    assert len(smtp_server.to(second_approver.email)) == 1
    assert smtp_server.to(requester.email) == []


def test_the_links_of_two_approvers_differ(submitted, smtp_server, approver, second_approver):
    smtp_server.wait_for(2)
    first = links_in(smtp_server.text(smtp_server.to(approver.email)[0]))
    second = links_in(smtp_server.text(smtp_server.to(second_approver.email)[0]))
    assert set(first).isdisjoint(second)


def test_a_decision_tells_the_requestor_and_the_other_approver(
    submitted,
    smtp_server,
    approver,
    second_approver,
    requester,
    django_capture_on_commit_callbacks,
):
    smtp_server.wait_for(2)
    stage = submitted.approval_stages.get()
    with django_capture_on_commit_callbacks(execute=True):
        stage_decide(
            actor=approver,
            stage=stage,
            decision=ReviewResult.DENIED,
            justification="Not in the finance team",
            channel=Channel.PORTAL,
        )
    smtp_server.wait_for(4)
    denied = smtp_server.to(requester.email)
    assert [m["Subject"] for m in denied] == ["Your request for Finance reports has been denied"]
    assert "Not in the finance team" in smtp_server.text(denied[0])
    other = smtp_server.to(second_approver.email)
    assert other[-1]["Subject"] == "Request has been denied: Finance reports"
    assert "Arno Approver denied this request" in smtp_server.text(other[-1])


def test_the_same_event_notified_twice_sends_one_email(
    submitted, smtp_server, approver, django_capture_on_commit_callbacks
):
    smtp_server.wait_for(2)
    stage = submitted.approval_stages.get()
    with django_capture_on_commit_callbacks(execute=True):
        again = notify(
            kind=NotificationKind.APPROVAL_REQUIRED,
            recipients=[approver],
            key=f"{stage.pk}",
            request=submitted,
            about=stage,
        )
    assert again == []
    assert len(smtp_server.to(approver.email)) == 1


def test_sending_a_sent_notification_again_sends_nothing(submitted, smtp_server, approver):
    smtp_server.wait_for(2)
    notification = Notification.objects.get(recipient=approver)
    assert notification.state == Notification.State.SENT
    assert notification_send(notification_id=notification.pk) is False
    assert len(smtp_server.to(approver.email)) == 1


def test_an_smtp_failure_keeps_the_notification_pending_for_a_retry(
    pending_stage, approver, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    settings.EMAIL_TIMEOUT = 2
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (notification,) = notify(
            kind=NotificationKind.APPROVAL_REQUIRED,
            recipients=[approver],
            key=f"{pending_stage.pk}",
            request=pending_stage.request,
            about=pending_stage,
        )
    assert len(callbacks) == 1  # sending is enqueued after commit, never inside the request
    with pytest.raises(OSError):
        notification_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.state == Notification.State.PENDING
    assert notification.attempts == 1
    assert notification.error


def test_a_policy_with_notifications_off_sends_the_requestor_nothing(
    approval_policy, requester, approver, smtp_server, django_capture_on_commit_callbacks
):
    approval_policy.is_assignment_notification_disabled = True
    approval_policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=requester,
            target=requester,
            access_package=approval_policy.access_package,
            justification="Quarter-end close",
            channel=Channel.PORTAL,
        )
        stage_decide(
            actor=approver,
            stage=request.approval_stages.get(),
            decision=ReviewResult.DENIED,
            justification="No",
            channel=Channel.PORTAL,
        )
    # Approvers still need their emails to decide; the requestor gets none.
    assert smtp_server.to(approver.email)
    assert smtp_server.to(requester.email) == []


def test_an_email_is_written_in_the_recipients_language(
    approval_policy, requester, approver, smtp_server, django_capture_on_commit_callbacks
):
    approver.preferred_language = "xx"  # no such translation: falls back to English
    approver.save()
    with django_capture_on_commit_callbacks(execute=True):
        request_submit(
            actor=requester,
            target=requester,
            access_package=approval_policy.access_package,
            justification="Quarter-end close",
            channel=Channel.PORTAL,
        )
    smtp_server.wait_for(2)
    assert smtp_server.to(approver.email)[0]["Subject"].startswith("Action required")
