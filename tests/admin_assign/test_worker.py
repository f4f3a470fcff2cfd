"""A bulk assignment started in the admin is run by a real Celery worker, then delivered."""

import time

import pytest
from django.db.models import Count

from directory.models import GroupMembership
from entitlements.models import Assignment, AssignmentState, BulkJob
from entitlements.services.bulk import bulk_job_prepare, bulk_job_start

from .conftest import people

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def wait_until(check, timeout=60.0, say=lambda: ""):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {say()}"
        time.sleep(0.1)


# Enough people for three batches (25, 25, 10) in well under a minute; the batches, the
# resuming and the query counts at 1,000 people are tested without a worker.
PEOPLE, BATCH = 60, 25


def test_a_worker_runs_the_job_and_delivers_every_assignment(
    celery_worker, owner, package, policy, resource
):
    chosen = people(PEOPLE)
    job = bulk_job_prepare(
        actor=owner,
        kind=BulkJob.Kind.ADD,
        access_package=package,
        policy=policy,
        users=[(u, n) for n, u in enumerate(chosen, start=1)],
    )
    bulk_job_start(actor=owner, job=job, batch_size=BATCH)  # enqueued on commit, through Redis

    wait_until(
        lambda: BulkJob.objects.get(pk=job.pk).state == BulkJob.State.DONE,
        timeout=60,
        say=lambda: BulkJob.objects.values_list("state", "processed").get(pk=job.pk),
    )
    job.refresh_from_db()
    assert job.processed == PEOPLE and job.counts() == {"done": PEOPLE, "refused": 0}
    made = Assignment.objects.filter(access_package=package)
    # Each batch is one transaction, its rows written at one moment.
    assert made.order_by().values("created").distinct().count() == 3
    wait_until(
        lambda: made.filter(state=AssignmentState.DELIVERED).count() == PEOPLE,
        timeout=60,
        say=lambda: list(made.values_list("state").annotate(n=Count("pk"))),
    )
    assert GroupMembership.objects.filter(group=resource.group, user__in=chosen).count() == PEOPLE
