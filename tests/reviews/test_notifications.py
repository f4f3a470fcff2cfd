"""Review emails: when a review starts, at its midpoint and a day before it ends."""

from datetime import timedelta

import pytest

from entitlements.models import PolicySubjectSet, SubjectType
from notifications.models import Notification, NotificationKind
from reviews.models import Decision, ReviewInstance
from reviews.services import review_item_decide, reviews_schedule_due, reviews_send_reminders
from tests.factories import UserFactory, add_subject

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db
Purpose = PolicySubjectSet.Purpose


def sent_to(mailoutbox, user):
    return [m for m in mailoutbox if m.to == [user.email]]


@pytest.fixture
def started(policy, on_commit):
    open_assignments(policy, UserFactory.create_batch(3))
    with on_commit():
        reviews_schedule_due(now=START + timedelta(minutes=5))
    return ReviewInstance.objects.get()


def test_each_reviewer_is_told_once_when_the_review_starts_with_how_many_to_review(
    started, reviewer, mailoutbox, on_commit
):
    with on_commit():
        reviews_send_reminders(now=START + timedelta(hours=1))

    [email] = sent_to(mailoutbox, reviewer)
    assert email.subject == "Action required: Review access to Finance reports by Jan. 15, 2025"
    assert "review the access of 3 people" in email.body
    assert "http://127.0.0.1:8000/access-reviews/" in email.body
    assert "3 people" in email.alternatives[0][0]


def test_managers_are_told_about_their_own_reports_only(policy, manager, requester, on_commit):
    policy.subject_sets.all().delete()
    add_subject(policy, Purpose.PRIMARY_REVIEWER, SubjectType.TARGET_MANAGER, manager_level=1)
    other_manager = UserFactory()
    open_assignments(policy, [requester, UserFactory(manager=other_manager)])
    open_assignments(policy, [UserFactory(manager=other_manager)])

    with on_commit():
        reviews_schedule_due(now=START)

    counts = {
        n.recipient: n.context["count"]
        for n in Notification.objects.filter(kind=NotificationKind.REVIEW_STARTED)
    }
    assert counts == {manager: 1, other_manager: 2}


def decide_some(instance, reviewer, count):
    for item in instance.items.select_related("instance__policy").order_by("pk")[:count]:
        review_item_decide(
            actor=reviewer, item=item, decision=Decision.APPROVE, now=START + timedelta(days=1)
        )


def test_reviewers_with_decisions_left_are_reminded_at_the_midpoint(
    started, reviewer, mailoutbox, on_commit
):
    decide_some(started, reviewer, 2)
    mailoutbox.clear()

    with on_commit():
        before = reviews_send_reminders(now=START + timedelta(days=6, hours=23))
        at_midpoint = reviews_send_reminders(now=START + timedelta(days=7))

    assert (before, at_midpoint) == (0, 1)
    [email] = sent_to(mailoutbox, reviewer)
    assert email.subject.startswith("Action required reminder: Review access to Finance reports")
    assert "1 decision is still waiting for you" in email.body


def test_a_reviewer_who_has_decided_everything_is_not_reminded(
    started, reviewer, mailoutbox, on_commit
):
    decide_some(started, reviewer, 3)
    mailoutbox.clear()

    with on_commit():
        reviews_send_reminders(now=START + timedelta(days=7))

    assert sent_to(mailoutbox, reviewer) == []


def test_the_last_reminder_goes_out_a_day_before_the_end(started, reviewer, mailoutbox, on_commit):
    with on_commit():
        reviews_send_reminders(now=START + timedelta(days=7))
    mailoutbox.clear()
    with on_commit():
        reviews_send_reminders(now=START + timedelta(days=12, hours=23))
    assert mailoutbox == []

    with on_commit():
        reviews_send_reminders(now=START + timedelta(days=13))

    [email] = sent_to(mailoutbox, reviewer)
    assert email.subject == (
        "Last reminder: the review of access to Finance reports ends on Jan. 15, 2025"
    )


def test_reminders_sent_twice_are_sent_once(started, reviewer, mailoutbox, on_commit):
    with on_commit():
        for _ in range(3):
            reviews_send_reminders(now=START + timedelta(days=7))

    kinds = Notification.objects.filter(recipient=reviewer).values_list("kind", flat=True)
    assert sorted(kinds) == [NotificationKind.REVIEW_REMINDER, NotificationKind.REVIEW_STARTED]
    assert len(sent_to(mailoutbox, reviewer)) == 2


def test_a_self_review_asks_each_user_about_their_own_access(policy, on_commit, mailoutbox):
    policy.review_is_self_review = True
    policy.save()
    rita = UserFactory(email="rita@example.com")
    open_assignments(policy, [rita])

    with on_commit():
        reviews_schedule_due(now=START)

    [email] = sent_to(mailoutbox, rita)
    assert email.subject.startswith("Action required: Review your access to Finance reports")
    assert "Tell us whether you still need this access" in email.body
