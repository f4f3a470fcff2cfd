"""What the emails say about delegation and a revoked approval, as their readers read them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ReviewResult, StageApprover, StageStatus
from approvals.services import approval_revoke, stage_decide, stages_escalate_due
from entitlements.models import Channel
from notifications.models import Notification, NotificationKind
from notifications.services import render_notification
from tests.factories import UserFactory, add_approver
from tests.notifications.test_email_wording import read_html, words

from .conftest import approve, delegate, submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def rita(db):
    return UserFactory(email="rita@example.com", display_name="Rita Requester")


def read(kind, recipient):
    subject, text, body = render_notification(
        Notification.objects.get(kind=kind, recipient=recipient)
    )
    return subject, words(text), read_html(body)


def test_the_delegate_is_told_on_whose_behalf_they_are_asked(
    ann, ben, rita, package, django_capture_on_commit_callbacks
):
    delegate(ann, ben)
    with django_capture_on_commit_callbacks(execute=True):
        submit(rita, package)

    _subject, text, body = read(NotificationKind.APPROVAL_REQUIRED, ben)
    _subject, ann_text, _body = read(NotificationKind.APPROVAL_REQUIRED, ann)

    sentence = "You are asked on behalf of Ann Example, who delegated their approvals to you."
    assert sentence in text
    assert sentence in body
    assert "on behalf of" not in ann_text


def test_the_requestor_reads_who_approved_on_whose_behalf(
    ann, ben, rita, package, django_capture_on_commit_callbacks
):
    delegate(ann, ben)
    with django_capture_on_commit_callbacks(execute=True):
        request = submit(rita, package)
    with django_capture_on_commit_callbacks(execute=True):
        approve(ben, request)

    _subject, text, body = read(NotificationKind.STAGE_APPROVED, rita)

    sentence = "Ben Example on behalf of Ann Example approved your request for Finance reports."
    assert sentence in text
    assert sentence in body


def test_the_requestor_reads_that_an_approval_was_revoked_before_delivery(
    ann, rita, package, django_capture_on_commit_callbacks
):
    request = submit(rita, package)
    approve(ann, request)  # not delivered: the delivery enqueued on commit never runs here
    with django_capture_on_commit_callbacks(execute=True):
        approval_revoke(
            actor=ann,
            approval=StageApprover.objects.get(user=ann),
            reason="Approved the wrong person",
            channel=Channel.PORTAL,
        )

    subject, text, body = read(NotificationKind.APPROVAL_REVOKED, rita)

    assert subject == "Approval revoked: your request for Finance reports"
    sentence = (
        "Ann Example revoked the approval of your request for Finance reports. Your request "
        "has been denied; no access was given. Reason: “Approved the wrong person”"
    )
    assert sentence in text
    assert sentence in body
    assert not Notification.objects.filter(kind=NotificationKind.REQUEST_DENIED).exists()
    assert request.approval_stages.get().status == StageStatus.COMPLETED


def test_the_requestor_reads_that_the_access_is_being_removed_when_a_delegate_revoked(
    ann, ben, rita, package, django_capture_on_commit_callbacks
):
    delegate(ann, ben)
    request = submit(rita, package)
    with django_capture_on_commit_callbacks(execute=True):
        approve(ben, request)
    with django_capture_on_commit_callbacks(execute=True):
        approval_revoke(
            actor=ben,
            approval=StageApprover.objects.get(user=ben),
            reason="Ann says no",
            channel=Channel.PORTAL,
        )

    _subject, text, body = read(NotificationKind.APPROVAL_REVOKED, rita)

    sentence = (
        "Ben Example on behalf of Ann Example revoked the approval of your request for Finance "
        "reports. The access it gave is being removed. Reason: “Ann says no”"
    )
    assert sentence in text
    assert sentence in body


def test_the_requestor_reads_who_denied_on_whose_behalf(
    ann, ben, rita, package, django_capture_on_commit_callbacks
):
    delegate(ann, ben)
    request = submit(rita, package)
    with django_capture_on_commit_callbacks(execute=True):
        stage_decide(
            actor=ben,
            stage=request.approval_stages.get(),
            decision=ReviewResult.DENIED,
            justification="Not in finance",
            channel=Channel.PORTAL,
        )

    _subject, text, body = read(NotificationKind.REQUEST_DENIED, rita)

    sentence = "Denied by Ben Example on behalf of Ann Example. Reason: “Not in finance”"
    assert sentence in text
    assert sentence in body


def test_the_delegate_of_an_escalation_approver_is_told_on_whose_behalf_it_is_forwarded(
    ann, ben, carl, rita, package, django_capture_on_commit_callbacks
):
    stage = package.assignment_policies.get().approval_stages.get()
    stage.is_escalation_enabled = True
    stage.duration_before_escalation = timedelta(days=1)
    stage.save()
    add_approver(stage, user=carl, purpose="escalationApprover")
    dora = UserFactory(display_name="Dora Example")
    delegate(carl, dora, days=10)
    submit(rita, package)
    with django_capture_on_commit_callbacks(execute=True):
        stages_escalate_due(now=timezone.now() + timedelta(days=2))

    _subject, text, body = read(NotificationKind.APPROVAL_FORWARDED, dora)

    sentence = "You are asked on behalf of Carl Example, who delegated their approvals to you."
    assert sentence in text
    assert sentence in body
