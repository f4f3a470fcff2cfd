"""The review's findings on direct and bulk assignment, each pinned (review_assign 1-7)."""

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from directory.models import User
from entitlements.errors import StateConflict
from entitlements.models import Assignment, AuditEvent, BulkJob, RoleAssignment
from entitlements.services import bulk
from entitlements.services.bulk import bulk_job_run, bulk_job_start
from tests.factories import UserFactory

from .conftest import people
from .test_admin_views import csv_file, post_assign, url
from .test_bulk_service import prepare, run

pytestmark = pytest.mark.django_db


def _no_batches(*args, **kwargs):
    raise IntegrityError("someone else assigned one of them meanwhile")


# 1 -----------------------------------------------------------------------------------


def test_the_one_by_one_fallback_checks_the_policys_scope(owner, package, policy, monkeypatch):
    member, guest = people(1)[0], UserFactory(user_type="Guest", display_name="Gus Guest")
    job = prepare(owner, package, policy, [member, guest], include_out_of_scope=True)
    job.include_out_of_scope = False  # as if prepared in scope, the guest one in the list
    job.save(update_fields=["include_out_of_scope"])
    monkeypatch.setattr(bulk, "_run_batch", _no_batches)
    job = run(owner, job)
    assert job.counts() == {"done": 1, "refused": 1}
    refused = next(r for r in job.results if r["outcome"] == "refused")
    assert refused["reason"] == (
        f"Gus Guest is not in the scope of the policy {policy.display_name}."
    )
    assert not Assignment.objects.filter(target=guest).exists()


def test_the_fallback_assigns_out_of_scope_people_when_the_admin_said_so(
    owner, package, policy, monkeypatch
):
    guest = UserFactory(user_type="Guest")
    job = prepare(owner, package, policy, [guest], include_out_of_scope=True)
    monkeypatch.setattr(bulk, "_run_batch", _no_batches)
    assert run(owner, job).counts() == {"done": 1, "refused": 0}


# 2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["assign", "bulk_remove"])
def test_a_value_that_is_not_an_id_is_refused_with_a_message_not_a_500(
    client, owner, package, policy, name
):
    client.force_login(owner)
    response = client.post(
        url(name, package),
        {"policy": policy.pk, "users": ["not-a-uuid", str(owner.pk)], "justification": "x"},
    )
    assert response.status_code == 200
    assert "“not-a-uuid” is not a valid UUID." in response.content.decode()
    assert not BulkJob.objects.exists()


# 3 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"email\na@example.com\x00\n", b"email\n\x07b@example.com\n"])
def test_a_file_with_control_characters_is_refused_and_nothing_saved(
    client, owner, package, policy, content
):
    client.force_login(owner)
    response = post_assign(client, package, policy, csv_file=csv_file(content))
    assert response.status_code == 200
    assert "The file holds a control character" in response.content.decode()
    assert not BulkJob.objects.exists()


# 4 -----------------------------------------------------------------------------------


def test_a_period_that_ended_before_the_run_refuses_everyone(owner, package, policy):
    now = timezone.now()
    job = prepare(owner, package, policy, people(2), schedule_end=now + timedelta(hours=1))
    bulk_job_start(actor=owner, job=job)
    job = bulk_job_run(job_id=job.pk, now=now + timedelta(hours=3))
    assert job.state == BulkJob.State.DONE
    assert job.counts() == {"done": 0, "refused": 2}
    assert {r["reason"] for r in job.results} == {"The requested period ended before the job ran."}
    assert not Assignment.objects.filter(access_package=package).exists()


def test_a_start_that_has_passed_by_the_run_starts_now(owner, package, policy):
    now = timezone.now()
    job = prepare(
        owner,
        package,
        policy,
        people(1),
        schedule_start=now + timedelta(hours=1),
        schedule_end=now + timedelta(days=5),
    )
    bulk_job_start(actor=owner, job=job)
    later = now + timedelta(hours=3)
    bulk_job_run(job_id=job.pk, now=later)
    assignment = Assignment.objects.get(access_package=package)
    assert assignment.schedule_start == later
    assert assignment.schedule_end == now + timedelta(days=5)


# 5 -----------------------------------------------------------------------------------


def test_the_status_poll_does_not_load_the_lists(client, owner, package, policy):
    job = run(owner, prepare(owner, package, policy, people(3)))
    client.force_login(owner)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        status = client.get(url("bulk_job_status", package, job.pk)).json()
    assert status["state"] == "done" and status["done"] == 3 and status["refused"] == 0
    job_selects = [q["sql"] for q in queries if 'FROM "entitlements_bulkjob"' in q["sql"]]
    assert job_selects
    assert all('"user_ids"' not in sql and '"results"' not in sql for sql in job_selects)


def test_the_counters_follow_the_report_rows(owner, package, policy):
    holder, *others = people(4)
    job = prepare(owner, package, policy, [holder, *others])
    assert job.counts() == {"done": 0, "refused": 0}
    job = run(owner, job, batch_size=2)
    job.refresh_from_db()
    assert job.counts() == {"done": 4, "refused": 0}
    again = run(owner, prepare(owner, package, policy, [holder, UserFactory()]))
    again.refresh_from_db()
    assert again.counts() == {"done": 1, "refused": 1}


# 6 -----------------------------------------------------------------------------------


def test_an_open_job_cannot_be_queued_again_until_it_stalls(
    owner, package, policy, django_capture_on_commit_callbacks
):
    job = prepare(owner, package, policy, people(2))
    bulk_job_start(actor=owner, job=job)
    with pytest.raises(StateConflict):
        bulk_job_start(actor=owner, job=job)
    with django_capture_on_commit_callbacks() as sent:
        bulk_job_start(actor=owner, job=job, now=timezone.now() + timedelta(minutes=2))
    assert len(sent) == 1


def test_a_job_whose_author_lost_the_right_to_assign_fails_with_an_audit_event(
    owner, package, policy
):
    job = prepare(owner, package, policy, people(2))
    bulk_job_start(actor=owner, job=job)
    RoleAssignment.objects.filter(principal=owner).delete()
    job = bulk_job_run(job_id=job.pk)
    assert job.state == BulkJob.State.FAILED
    assert job.error == "Olga Owner may no longer assign this access package."
    assert AuditEvent.objects.filter(action="bulkJob.failed").count() == 1
    assert not Assignment.objects.filter(access_package=package).exists()


def test_an_unexpected_error_in_a_batch_fails_the_job_with_the_error(
    owner, package, policy, monkeypatch
):
    job = prepare(owner, package, policy, people(2))
    bulk_job_start(actor=owner, job=job)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(bulk, "_run_batch", broken)
    job = bulk_job_run(job_id=job.pk)
    assert job.state == BulkJob.State.FAILED and job.finished is not None
    assert job.error == "The job stopped: the disk is full"
    event = AuditEvent.objects.get(action="bulkJob.failed")
    assert event.data["error"] == job.error
    assert not Assignment.objects.filter(access_package=package).exists()


# 7 -----------------------------------------------------------------------------------


def test_someone_deleted_before_the_run_is_reported_refused(owner, package, policy):
    kept, gone = people(2)
    job = prepare(owner, package, policy, [kept, gone])
    gone_id = gone.pk
    User.objects.filter(pk=gone_id).delete()
    job = run(owner, job)
    assert job.counts() == {"done": 1, "refused": 1}
    refused = next(r for r in job.results if r["outcome"] == "refused")
    assert refused["row"] == 2
    assert refused["reason"] == f"This person (id {gone_id}) is no longer in the directory."


def test_the_one_by_one_fallback_reports_someone_deleted_too(owner, package, policy, monkeypatch):
    kept, gone = people(2)
    job = prepare(owner, package, policy, [kept, gone])
    User.objects.filter(pk=gone.pk).delete()
    monkeypatch.setattr(bulk, "_run_batch", _no_batches)
    assert run(owner, job).counts() == {"done": 1, "refused": 1}


@pytest.mark.parametrize(
    "text",
    [
        "Name;Email address\nPerson 0;person0@example.com\nPerson 1;person1@example.com\n",
        "id\tE-mail (work)\n1\tperson0@example.com\n2\tperson1@example.com\n",
        "email\nperson0@example.com\nperson1@example.com\n",
        "person0@example.com\nperson1@example.com\n",
    ],
)
def test_a_semicolon_or_tab_csv_and_an_email_address_header_are_read(
    client, owner, package, policy, text
):
    known = people(2)
    client.force_login(owner)
    response = post_assign(client, package, policy, csv_file=csv_file(text))
    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert {pk for pk, _row in job.user_ids} == {str(u.pk) for u in known}
    assert job.results == []


def test_the_file_limit_is_8_mb():
    from entitlements.admin.assign import MAX_CSV_BYTES

    assert MAX_CSV_BYTES == 8 * 1024 * 1024
