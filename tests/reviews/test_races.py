"""Real concurrency on PostgreSQL: decisions racing the apply, schedulers racing each other."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from entitlements.errors import StateConflict
from entitlements.models import OPEN_ASSIGNMENT_STATES
from reviews.models import ApplyResult, Decision, ReviewInstance, ReviewItem, ReviewStatus
from reviews.services import (
    ENDED_MESSAGE,
    review_instance_create,
    review_instance_stop,
    review_item_decide,
    reviews_complete_due,
    reviews_schedule_due,
)
from tests.services import require_postgres

from .conftest import START, many_users, open_assignments

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]
DURING = START + timedelta(days=13, hours=23)
THREADS = 4
ITEMS_PER_THREAD = 40


def in_thread(target, errors):
    def run():
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.parametrize("ending", ["stopped by an admin", "ended on schedule"])
def test_a_decision_racing_the_apply_is_either_applied_or_refused(
    policy, reviewer, admin_user, ending
):
    require_postgres()
    open_assignments(policy, many_users(THREADS * ITEMS_PER_THREAD))
    instance = review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )
    items = list(instance.items.select_related("instance__policy").order_by("pk"))
    chunks = [items[n::THREADS] for n in range(THREADS)]
    outcomes, errors = {}, []
    some_decided = threading.Event()
    start = threading.Barrier(THREADS)

    def decide(chunk):
        start.wait()
        for n, item in enumerate(chunk):
            try:
                review_item_decide(actor=reviewer, item=item, decision=Decision.DENY, now=DURING)
                outcomes[item.pk] = "decided"
            except StateConflict as refused:
                outcomes[item.pk] = refused.message
            if n == 3:
                some_decided.set()

    def end_review():
        some_decided.wait(timeout=30)
        if ending == "stopped by an admin":
            review_instance_stop(actor=admin_user, instance=instance, now=DURING)
        else:
            reviews_complete_due(now=instance.end)

    threads = [in_thread(lambda c=c: decide(c), errors) for c in chunks]
    threads.append(in_thread(end_review, errors))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert set(outcomes) == {item.pk for item in items}
    assert set(outcomes.values()) == {"decided", ENDED_MESSAGE}
    instance.refresh_from_db()
    assert instance.status == ReviewStatus.APPLIED
    rows = ReviewItem.objects.filter(instance=instance).values_list(
        "pk", "decision", "apply_result", "assignment__state"
    )
    for pk, decision, result, state in rows:
        if outcomes[pk] == "decided":
            assert (decision, result) == (Decision.DENY, ApplyResult.REMOVED)
            assert state not in OPEN_ASSIGNMENT_STATES
        else:
            assert (decision, result) == (Decision.NOT_REVIEWED, ApplyResult.KEPT)
            assert state in OPEN_ASSIGNMENT_STATES


def test_schedulers_running_at_once_create_one_review(policy):
    require_postgres()
    open_assignments(policy, many_users(300))
    created, errors = [], []
    start = threading.Barrier(3)

    def schedule():
        start.wait()
        created.append(reviews_schedule_due(now=START + timedelta(minutes=1)))

    threads = [in_thread(schedule, errors) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(created) == [0, 0, 1]
    assert ReviewInstance.objects.get().items.count() == 300
