"""The bulk service: the same refusals as one direct assignment, set-based, resumable."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from directory.models import GroupMembership
from entitlements.errors import InvalidRequest, PermissionDenied
from entitlements.models import (
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AuditEvent,
    BulkJob,
    RequestState,
    RequestType,
)
from entitlements.services.bulk import bulk_job_prepare, bulk_job_run, bulk_job_start
from tests.factories import GroupFactory, UserFactory
from tests.lifecycle.assignment_helpers import assign, package_giving

from .conftest import people

pytestmark = pytest.mark.django_db


def prepare(actor, package, policy, users, kind=BulkJob.Kind.ADD, **kw):
    return bulk_job_prepare(
        actor=actor,
        kind=kind,
        access_package=package,
        policy=policy,
        users=[(u, n) for n, u in enumerate(users, start=1)],
        justification="Project Falcon",
        **kw,
    )


def run(actor, job, **kw):
    bulk_job_start(actor=actor, job=job)
    return bulk_job_run(job_id=job.pk, **kw)


def test_it_assigns_everyone_who_may_have_the_package_and_reports_the_others_with_reasons(
    owner, package, policy, resource
):
    ok = people(3)
    holder = UserFactory(display_name="Hal Holder")
    assign(holder, package, policy)
    disabled = UserFactory(display_name="Dora Disabled", is_active=False)
    guest = UserFactory(display_name="Gus Guest", user_type="Guest")
    other, _p = package_giving(resource)
    package.incompatible_access_packages.add(other)
    conflicted = UserFactory(display_name="Cy Conflict")
    assign(conflicted, other, other.assignment_policies.get())

    job = prepare(owner, package, policy, [*ok, holder, disabled, guest, conflicted])

    reasons = {r["name"]: r["reason"] for r in job.results}
    assert reasons == {
        "Hal Holder": "Hal Holder already has this access package.",
        "Dora Disabled": "Dora Disabled's account is disabled.",
        "Gus Guest": f"Gus Guest is not in the scope of the policy {policy.display_name}.",
        "Cy Conflict": f"This access package is incompatible with the access package "
        f"{other.display_name}, which Cy Conflict already has (separation of duties).",
    }
    assert job.total == 3 and not AssignmentRequest.objects.filter(requestor=owner).exists()

    job = run(owner, job)

    assert job.state == BulkJob.State.DONE
    assert job.counts() == {"done": 3, "refused": 4}
    requests = AssignmentRequest.objects.filter(requestor=owner)
    assert {r.target_id for r in requests} == {u.pk for u in ok}
    assert {(r.request_type, r.state, r.justification) for r in requests} == {
        (RequestType.ADMIN_ADD, RequestState.DELIVERING, "Project Falcon")
    }
    assert Assignment.objects.filter(target__in=ok, access_package=package).count() == 3
    assert AssignmentResourceRole.objects.filter(target__in=ok).count() == 3
    for action in ("request.submit", "request.fulfilled", "assignment.created"):
        assert AuditEvent.objects.filter(action=action, target__in=ok).count() == 3
    assert AuditEvent.objects.filter(action="bulkJob.finished", actor=owner).exists()


def test_people_outside_the_policys_scope_are_assigned_when_the_admin_says_so(
    owner, package, policy
):
    guest = UserFactory(user_type="Guest")
    job = run(owner, prepare(owner, package, policy, [guest], include_out_of_scope=True))
    assert job.counts() == {"done": 1, "refused": 0}


def test_a_group_incompatible_with_the_package_refuses_its_members(owner, package, policy):
    group = GroupFactory(display_name="Auditors")
    package.incompatible_groups.add(group)
    member = UserFactory(display_name="Mia Member")
    GroupMembership.objects.create(group=group, user=member)
    job = prepare(owner, package, policy, [member])
    assert job.results[0]["reason"] == (
        "This access package is incompatible with the group Auditors, which Mia Member "
        "already has (separation of duties)."
    )


def test_a_future_start_schedules_the_requests_without_assignments(owner, package, policy):
    start = timezone.now() + timedelta(days=2)
    job = run(owner, prepare(owner, package, policy, people(2), schedule_start=start))
    assert job.counts()["done"] == 2
    assert set(
        AssignmentRequest.objects.filter(requestor=owner).values_list("state", flat=True)
    ) == {RequestState.SCHEDULED}
    assert not Assignment.objects.filter(access_package=package).exists()


def test_a_bad_period_is_refused_before_anything_is_saved(owner, package, policy):
    with pytest.raises(InvalidRequest, match="The end must be after the start"):
        prepare(
            owner,
            package,
            policy,
            people(1),
            schedule_start=timezone.now() + timedelta(days=2),
            schedule_end=timezone.now() + timedelta(days=1),
        )
    assert not BulkJob.objects.exists()


def test_the_wrong_person_can_neither_prepare_nor_start_a_job(owner, reader, package, policy):
    with pytest.raises(PermissionDenied):
        prepare(reader, package, policy, people(1))
    job = prepare(owner, package, policy, people(1, prefix="x"))
    with pytest.raises(PermissionDenied):
        bulk_job_start(actor=reader, job=job)
    assert BulkJob.objects.get().state == BulkJob.State.PREVIEW


def test_a_run_that_is_repeated_does_nothing_twice(owner, package, policy):
    job = run(owner, prepare(owner, package, policy, people(5)), batch_size=2)
    BulkJob.objects.filter(pk=job.pk).update(state=BulkJob.State.RUNNING)
    job = bulk_job_run(job_id=job.pk, batch_size=2)
    assert job.counts() == {"done": 5, "refused": 0}
    assert Assignment.objects.filter(access_package=package).count() == 5


def test_someone_assigned_between_preview_and_run_is_refused_then(owner, package, policy):
    first, second = people(2)
    job = prepare(owner, package, policy, [first, second])
    assign(second, package, policy)
    job = run(owner, job)
    assert job.counts() == {"done": 1, "refused": 1}
    assert job.results[-1]["reason"] == f"{second.display_name} already has this access package."


def test_bulk_removal_ends_the_package_for_those_who_have_it(owner, package, policy):
    holders = people(3)
    for person in holders:
        assign(person, package, policy)
    stranger = UserFactory(display_name="Sam Stranger")
    job = prepare(owner, package, None, [*holders, stranger], kind=BulkJob.Kind.REMOVE)
    assert job.results[0]["reason"] == "Sam Stranger does not have this access package."

    job = run(owner, job)

    assert job.counts() == {"done": 3, "refused": 1}
    assert not Assignment.objects.filter(target__in=holders, state="delivered").exists()
    assert set(
        AssignmentRequest.objects.filter(requestor=owner).values_list("request_type", flat=True)
    ) == {RequestType.ADMIN_REMOVE}


# Queries of one run of a batch. PostgreSQL writes 1,000 people's rows in one INSERT per table
# (and their 3,000 audit events in two); SQLite splits each INSERT at 999 variables.
RUN_QUERIES = {("postgresql", 10): 22, ("postgresql", 1000): 23, ("sqlite", 10): 26}


@pytest.mark.parametrize("count", [10, 1000])
def test_the_queries_do_not_grow_with_the_number_of_people(
    owner, package, policy, count, django_assert_num_queries, django_assert_max_num_queries
):
    users = people(count)
    with django_assert_num_queries(10):
        job = prepare(owner, package, policy, users)
    bulk_job_start(actor=owner, job=job)
    with django_assert_max_num_queries(RUN_QUERIES.get((connection.vendor, count), 129)):
        job = bulk_job_run(job_id=job.pk, batch_size=1000)
    assert job.counts()["done"] == count


@pytest.mark.parametrize("notify", [True, False])
def test_a_bulk_removal_emails_the_people_only_when_asked(
    owner, package, policy, notify, django_capture_on_commit_callbacks
):
    from notifications.models import Notification, NotificationKind

    holders = people(2)
    for person in holders:
        assign(person, package, policy)
    job = prepare(owner, package, None, holders, kind=BulkJob.Kind.REMOVE, notify=notify)
    with django_capture_on_commit_callbacks(execute=True):
        run(owner, job)
    emailed = Notification.objects.filter(kind=NotificationKind.ACCESS_ENDED, recipient__in=holders)
    assert emailed.count() == (2 if notify else 0)


def test_the_task_runs_the_job_on_the_periodic_queue(owner, package, policy):
    from config.celery import app
    from entitlements.tasks import run_bulk_job

    job = prepare(owner, package, policy, people(2))
    bulk_job_start(actor=owner, job=job)
    assert run_bulk_job.apply(args=[str(job.pk)]).get() == {"state": "done", "processed": 2}
    route = app.amqp.router.route({}, "entitlements.tasks.run_bulk_job")
    assert route["queue"].name == "periodic"


def test_a_job_whose_worker_was_lost_is_queued_again_and_resumes(
    owner, package, policy, django_capture_on_commit_callbacks
):
    job = prepare(owner, package, policy, people(3))
    bulk_job_start(actor=owner, job=job)
    later = timezone.now() + timedelta(minutes=2)
    with django_capture_on_commit_callbacks() as sent:
        bulk_job_start(actor=owner, job=job, now=later)  # the first message was lost
    assert len(sent) == 1
    job = bulk_job_run(job_id=job.pk)
    assert job.counts() == {"done": 3, "refused": 0}
