"""A whole quarter of a policy's access reviews, moving the clock with time-machine."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from notifications.models import NotificationKind
from reviews.models import ApplyResult, Decision, ReviewInstance, ReviewStatus
from reviews.services import (
    review_item_decide,
    reviews_complete_due,
    reviews_schedule_due,
    reviews_send_reminders,
)
from tests.factories import UserFactory

from .conftest import START, has_open_assignment, is_member

pytestmark = pytest.mark.django_db


def run_beat(on_commit):
    """What the scheduled tasks do each time beat fires them."""
    with on_commit():
        reviews_schedule_due()
        reviews_send_reminders()
        reviews_complete_due()


def kinds_sent_to(reviewer):
    return list(
        reviewer.notifications.filter(kind__startswith="review")
        .order_by("created")
        .values_list("kind", flat=True)
    )


def test_a_quarter_of_reviews_from_start_to_the_next_review(
    policy, deliver, reviewer, group_resource, on_commit, mailoutbox
):
    dora = UserFactory(display_name="Dora Denied", last_login=START - timedelta(days=2))
    alan = UserFactory(display_name="Alan Approved", last_login=START - timedelta(days=2))
    with time_machine.travel(START - timedelta(days=30), tick=False):
        deliver(policy, dora)
        deliver(policy, alan)

    with time_machine.travel(START - timedelta(minutes=1), tick=False):
        run_beat(on_commit)
    assert not ReviewInstance.objects.exists()

    with time_machine.travel(START + timedelta(minutes=1), tick=False):
        run_beat(on_commit)
    instance = ReviewInstance.objects.get()
    assert (instance.start, instance.end) == (START, START + timedelta(days=14))
    assert instance.items.count() == 2
    assert kinds_sent_to(reviewer) == [NotificationKind.REVIEW_STARTED]

    with time_machine.travel(START + timedelta(days=2), tick=False):
        item = instance.items.select_related("instance__policy").get(target=dora)
        review_item_decide(actor=reviewer, item=item, decision=Decision.DENY, justification="Left")

    with time_machine.travel(START + timedelta(days=7, minutes=1), tick=False):
        run_beat(on_commit)
    assert kinds_sent_to(reviewer)[-1] == NotificationKind.REVIEW_REMINDER

    with time_machine.travel(START + timedelta(days=9), tick=False):
        item = instance.items.select_related("instance__policy").get(target=alan)
        review_item_decide(actor=reviewer, item=item, decision=Decision.DONT_KNOW)
        review_item_decide(actor=reviewer, item=item, decision=Decision.APPROVE)

    with time_machine.travel(START + timedelta(days=13, minutes=1), tick=False):
        run_beat(on_commit)
    # Everything is decided, so the last reminder finds nobody to remind.
    assert kinds_sent_to(reviewer) == [
        NotificationKind.REVIEW_STARTED,
        NotificationKind.REVIEW_REMINDER,
    ]
    instance.refresh_from_db()
    assert instance.ending_reminder_datetime == START + timedelta(days=13, minutes=1)
    assert is_member(group_resource, dora)

    with time_machine.travel(START + timedelta(days=14, minutes=1), tick=False):
        run_beat(on_commit)
    instance.refresh_from_db()
    assert instance.status == ReviewStatus.APPLIED
    assert not is_member(group_resource, dora)
    assert not has_open_assignment(policy, dora)
    assert is_member(group_resource, alan)
    assert dict(instance.items.values_list("target__display_name", "apply_result")) == {
        "Dora Denied": ApplyResult.REMOVED,
        "Alan Approved": ApplyResult.KEPT,
    }

    with time_machine.travel(datetime(2025, 3, 31, 23, 59, tzinfo=UTC), tick=False):
        run_beat(on_commit)
    assert ReviewInstance.objects.count() == 1

    with time_machine.travel(datetime(2025, 4, 1, 0, 1, tzinfo=UTC), tick=False):
        run_beat(on_commit)
    following = ReviewInstance.objects.exclude(pk=instance.pk).get()
    assert following.start == datetime(2025, 4, 1, tzinfo=UTC)
    assert [i.target for i in following.items.all()] == [alan]
    assert kinds_sent_to(reviewer)[-1] == NotificationKind.REVIEW_STARTED
