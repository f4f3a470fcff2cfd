"""Emails of a quorum stage: those who already approved are not told again or reminded."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from approvals.emails import stages_send_reminders
from notifications.models import Notification, NotificationKind
from notifications.services import render_notification
from tests.approvals_quorum.setup import decide, group_of, quorum_policy, submitted
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return [UserFactory(display_name=name) for name in ("Sam", "Sue", "Dora")]


@pytest.fixture
def request_obj(requester, people):
    sam, sue, dora = people
    return submitted(
        requester, quorum_policy(groups=(group_of("Security", sam, sue), group_of("Data", dora)))
    )


def sent(kind, person):
    return Notification.objects.filter(kind=kind, recipient=person).count()


def test_who_approved_before_the_quorum_was_met_gets_no_decided_by_someone_else_email(
    request_obj, people, django_capture_on_commit_callbacks
):
    sam, sue, dora = people
    with django_capture_on_commit_callbacks(execute=True):
        decide(sam, request_obj)
        decide(dora, request_obj)

    assert sent(NotificationKind.APPROVAL_DECIDED_BY_OTHER, sam) == 0
    assert sent(NotificationKind.APPROVAL_DECIDED_BY_OTHER, sue) == 1


def test_the_reminder_goes_only_to_those_who_have_not_decided(request_obj, people):
    sam, sue, dora = people
    decide(sam, request_obj)

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert stages_send_reminders() == 1

    assert sent(NotificationKind.APPROVAL_REMINDER, sam) == 0
    assert sent(NotificationKind.APPROVAL_REMINDER, sue) == 1
    assert sent(NotificationKind.APPROVAL_REMINDER, dora) == 1


def test_the_reminder_says_how_far_the_stage_is_and_who_is_still_needed(request_obj, people):
    sam, sue, dora = people
    decide(sam, request_obj)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        stages_send_reminders()

    email = Notification.objects.get(kind=NotificationKind.APPROVAL_REMINDER, recipient=dora)
    subject, text, html = render_notification(email)

    assert "1 of 2 approvals; still needed: one from Data." in text
    assert "1 of 2 approvals; still needed: one from Data." in html


def test_the_first_email_says_what_the_stage_needs(
    requester, people, django_capture_on_commit_callbacks
):
    sam, sue, dora = people
    with django_capture_on_commit_callbacks(execute=True):
        submitted(
            requester,
            quorum_policy(groups=(group_of("Security 2", sam), group_of("Data 2", dora))),
        )

    email = Notification.objects.get(kind=NotificationKind.APPROVAL_REQUIRED, recipient=dora)
    subject, text, html = render_notification(email)

    assert "This stage needs one approval from each of: Security 2, Data 2." in text
    assert "This stage needs one approval from each of: Security 2, Data 2." in html
