"""Creating review instances from a policy's review settings."""

from datetime import UTC, date, datetime, timedelta

import pytest

from entitlements.models import AssignmentState
from reviews.models import ReviewInstance, ReviewItem, ReviewStatus
from reviews.services import review_period, reviews_schedule_due
from tests.factories import PolicyFactory, UserFactory

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db


def at(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("recurrence", "today", "start", "end"),
    [
        ("quarterly", date(2025, 1, 1), at(2025, 1, 1), at(2025, 1, 15)),
        ("quarterly", date(2025, 3, 31), at(2025, 1, 1), at(2025, 1, 15)),
        ("quarterly", date(2025, 4, 1), at(2025, 4, 1), at(2025, 4, 15)),
        ("monthly", date(2025, 2, 28), at(2025, 2, 28), at(2025, 3, 14)),
        ("weekly", date(2025, 1, 9), at(2025, 1, 8), at(2025, 1, 15)),
        ("semiAnnually", date(2025, 12, 31), at(2025, 7, 31), at(2025, 8, 14)),
        ("annually", date(2026, 1, 31), at(2026, 1, 31), at(2026, 2, 14)),
    ],
)
def test_the_period_follows_the_recurrence_from_the_first_review_date(
    recurrence, today, start, end
):
    first = date(2025, 1, 31) if recurrence in ("monthly", "semiAnnually", "annually") else None
    policy = PolicyFactory.build(
        review_is_enabled=True,
        review_start_date=first or date(2025, 1, 1),
        review_recurrence=recurrence,
        review_duration_in_days=14,
    )

    assert review_period(policy=policy, today=today) == (start, end)


def test_a_weekly_review_never_runs_into_the_next_one():
    policy = PolicyFactory.build(
        review_is_enabled=True,
        review_start_date=date(2025, 1, 1),
        review_recurrence="weekly",
        review_duration_in_days=10,
    )

    assert review_period(policy=policy, today=date(2025, 1, 2)) == (at(2025, 1, 1), at(2025, 1, 8))


def test_there_is_no_period_before_the_first_review_date():
    policy = PolicyFactory.build(review_is_enabled=True, review_start_date=date(2025, 1, 1))

    assert review_period(policy=policy, today=date(2024, 12, 31)) is None


def test_it_creates_an_instance_with_one_item_per_open_assignment(policy):
    users = UserFactory.create_batch(3)
    open_assignments(policy, users)
    open_assignments(policy, [UserFactory()], state=AssignmentState.EXPIRED)

    created = reviews_schedule_due(now=START + timedelta(minutes=5))

    instance = ReviewInstance.objects.get()
    assert created == 1
    assert (instance.start, instance.end) == (START, START + timedelta(days=14))
    assert instance.status == ReviewStatus.IN_PROGRESS
    assert instance.access_package_id == policy.access_package_id
    assert {item.target for item in instance.items.all()} == set(users)


def test_running_the_scheduler_twice_creates_nothing_more(policy):
    open_assignments(policy, UserFactory.create_batch(2))

    first = reviews_schedule_due(now=START + timedelta(hours=1))
    second = reviews_schedule_due(now=START + timedelta(hours=2))

    assert (first, second) == (1, 0)
    assert ReviewInstance.objects.count() == 1
    assert ReviewItem.objects.count() == 2


def test_it_creates_nothing_before_the_first_review_date(policy):
    open_assignments(policy, [UserFactory()])

    assert reviews_schedule_due(now=START - timedelta(minutes=1)) == 0
    assert not ReviewInstance.objects.exists()


def test_it_does_not_start_a_review_whose_period_has_already_passed(policy):
    open_assignments(policy, [UserFactory()])

    assert reviews_schedule_due(now=START + timedelta(days=20)) == 0


def test_a_policy_without_reviews_gets_none(policy):
    policy.review_is_enabled = False
    policy.save()

    assert reviews_schedule_due(now=START) == 0


def test_items_are_inserted_in_batches(policy):
    from reviews.services import review_instance_create

    open_assignments(policy, UserFactory.create_batch(5))

    instance = review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START, batch_size=2
    )

    assert instance.items.count() == 5
    assert review_instance_create(policy=policy, start=START, end=START + timedelta(days=1)) is None
