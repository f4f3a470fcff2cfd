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


def test_a_worker_runs_the_job_and_delivers_every_assignment(
    celery_worker, owner, package, policy, resource
):
    chosen = people(600)
    job = bulk_job_prepare(
        actor=owner,
        kind=BulkJob.Kind.ADD,
        access_package=package,
        policy=policy,
        users=[(u, n) for n, u in enumerate(chosen, start=1)],
    )
    bulk_job_start(actor=owner, job=job)  # enqueued on commit, through Redis

    wait_until(
        lambda: BulkJob.objects.get(pk=job.pk).state == BulkJob.State.DONE,
        timeout=120,
        say=lambda: BulkJob.objects.values_list("state", "processed").get(pk=job.pk),
    )
    job.refresh_from_db()
    assert job.processed == 600 and job.counts() == {"done": 600, "refused": 0}
    wait_until(
        lambda: (
            Assignment.objects.filter(
                access_package=package, state=AssignmentState.DELIVERED
            ).count()
            == 600
        ),
        timeout=180,
        say=lambda: list(
            Assignment.objects.filter(access_package=package)
            .values_list("state")
            .annotate(n=Count("pk"))
        ),
    )
    assert GroupMembership.objects.filter(group=resource.group, user__in=chosen).count() == 600
