"""The package page's direct assignment, bulk assignment from a CSV and bulk removal."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from entitlements.models import Assignment, AssignmentRequest, BulkJob
from entitlements.services.bulk import bulk_job_run
from tests.factories import UserFactory
from tests.lifecycle.assignment_helpers import assign

from .conftest import people

pytestmark = pytest.mark.django_db


def url(name, package, *args):
    return reverse(f"admin:entitlements_accesspackage_{name}", args=[package.pk, *args])


def csv_file(text, name="people.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def post_assign(client, package, policy, **data):
    return client.post(
        url("assign", package),
        {"policy": policy.pk, "justification": "Project Falcon", **data},
    )


def test_the_package_page_offers_assignment_to_who_may_assign(client, owner, reader, package):
    change = reverse("admin:entitlements_accesspackage_change", args=[package.pk])
    client.force_login(owner)
    assert url("assign", package) in client.get(change).content.decode()
    client.force_login(reader)
    page = client.get(change)
    assert page.status_code == 200
    assert url("assign", package) not in page.content.decode()


def test_three_people_picked_are_previewed_then_assigned(client, owner, package, policy):
    chosen = people(3)
    client.force_login(owner)
    assert client.get(url("assign", package)).status_code == 200

    response = post_assign(client, package, policy, users=[u.pk for u in chosen])

    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url("bulk_job", package, job.pk)
    preview = client.get(response["Location"]).content.decode()
    assert "3 people would be assigned." in preview
    assert not AssignmentRequest.objects.exists()

    started = client.post(url("bulk_job", package, job.pk))
    assert started["Location"] == url("bulk_job", package, job.pk)
    bulk_job_run(job_id=job.pk)  # what the worker does
    report = client.get(url("bulk_job", package, job.pk)).content.decode()
    assert "3 people assigned." in report
    assert Assignment.objects.filter(target__in=chosen, access_package=package).count() == 3
    status = client.get(url("bulk_job_status", package, job.pk)).json()
    assert status["state"] == "done" and status["done"] == 3


def test_a_csv_reports_unknown_duplicate_and_malformed_rows(client, owner, package, policy):
    known = people(2)
    holder = UserFactory(email="holder@example.com", display_name="Hal Holder")
    assign(holder, package, policy)
    text = (
        "email\n"
        "person0@example.com\n"
        "PERSON1@example.com\n"
        "nobody@example.com\n"
        "person0@example.com\n"
        "not-an-email\n"
        "holder@example.com\n"
        '=HYPERLINK("x")\n'
    )
    client.force_login(owner)
    response = post_assign(client, package, policy, csv_file=csv_file(text))
    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert job.total == 2 and {pk for pk, _row in job.user_ids} == {str(u.pk) for u in known}
    reasons = {r["row"]: r["reason"] for r in job.results}
    assert reasons == {
        4: "Nobody in the directory has this email address.",
        5: "Listed already on row 2.",
        6: "This is not an email address.",
        7: "Hal Holder already has this access package.",
        8: "This is not an email address.",
    }
    page = client.get(url("bulk_job", package, job.pk)).content.decode()
    assert "Listed already on row 2." in page

    report = b"".join(client.get(url("bulk_job_report", package, job.pk)).streaming_content)
    assert "'=HYPERLINK" in report.decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfeperson0@example.com", "The file is not UTF-8 text"),
        (b"", "The submitted file is empty."),
        (b"email\n\n", "The file lists no email addresses."),
        (b"a@example.com\n" * 700_000, "The file is larger than 8 MB"),
    ],
)
def test_an_unreadable_csv_is_refused_with_a_clear_message_and_nothing_saved(
    client, owner, package, policy, content, message
):
    client.force_login(owner)
    response = post_assign(client, package, policy, csv_file=csv_file(content))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BulkJob.objects.exists()


def test_nobody_chosen_is_refused(client, owner, package, policy):
    client.force_login(owner)
    response = post_assign(client, package, policy)
    assert "Choose people, or upload a CSV file of their emails." in response.content.decode()
    assert not BulkJob.objects.exists()


def test_bulk_removal_previews_then_ends_the_package(client, owner, package, policy):
    holders = people(2)
    for person in holders:
        assign(person, package, policy)
    client.force_login(owner)
    response = client.post(
        url("bulk_remove", package),
        {
            "csv_file": csv_file("person0@example.com\nperson1@example.com\n"),
            "justification": "Left",
        },
    )
    job = BulkJob.objects.get()
    assert job.kind == BulkJob.Kind.REMOVE and job.total == 2
    assert "2 people would lose the package." in client.get(response["Location"]).content.decode()
    client.post(url("bulk_job", package, job.pk))
    bulk_job_run(job_id=job.pk)
    assert not Assignment.objects.filter(target__in=holders, state="delivered").exists()


def test_the_wrong_person_is_refused_on_every_url_and_nothing_changes(
    client, owner, reader, package, policy
):
    job = BulkJob.objects.create(
        kind=BulkJob.Kind.ADD,
        access_package=package,
        assignment_policy=policy,
        actor=owner,
        user_ids=[[str(UserFactory().pk), None]],
        total=1,
    )
    outsider = UserFactory(is_staff=True)
    for person in (reader, outsider):
        client.force_login(person)
        for name, args in [
            ("assign", ()),
            ("bulk_remove", ()),
            ("bulk_job", (job.pk,)),
            ("bulk_job_status", (job.pk,)),
            ("bulk_job_report", (job.pk,)),
        ]:
            assert client.get(url(name, package, *args)).status_code == 403, name
            assert client.post(url(name, package, *args), {}).status_code in (403, 405), name
    job.refresh_from_db()
    assert job.state == BulkJob.State.PREVIEW and BulkJob.objects.count() == 1


def test_another_manager_sees_a_job_but_cannot_start_it(client, owner, package, policy):
    job = BulkJob.objects.create(
        kind=BulkJob.Kind.ADD,
        access_package=package,
        assignment_policy=policy,
        actor=owner,
        user_ids=[[str(UserFactory().pk), None]],
        total=1,
    )
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.post(url("bulk_job", package, job.pk))
    assert "Only the person who prepared this job can start it." in page.content.decode()
    job.refresh_from_db()
    assert job.state == BulkJob.State.PREVIEW


def test_starting_needs_csrf(owner, package, policy):
    from django.test import Client

    job = BulkJob.objects.create(
        kind=BulkJob.Kind.ADD,
        access_package=package,
        assignment_policy=policy,
        actor=owner,
        user_ids=[[str(UserFactory().pk), None]],
        total=1,
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(url("bulk_job", package, job.pk)).status_code == 403
    job.refresh_from_db()
    assert job.state == BulkJob.State.PREVIEW


@pytest.mark.parametrize("count", [10, 1000])
def test_the_job_page_reads_a_bounded_number_of_rows(
    client, owner, package, policy, count, django_assert_max_num_queries
):
    from entitlements.services.bulk import bulk_job_prepare

    chosen = people(count)
    job = bulk_job_prepare(
        actor=owner,
        kind=BulkJob.Kind.ADD,
        access_package=package,
        policy=policy,
        users=[(u, None) for u in chosen],
        problems=[(i, f"nobody{i}@example.com", "Nobody.") for i in range(count)],
    )
    client.force_login(owner)
    with django_assert_max_num_queries(12):
        page = client.get(url("bulk_job", package, job.pk))
    assert page.status_code == 200
    assert f"{count} people would be assigned." in page.content.decode()


def test_a_job_left_waiting_offers_to_queue_it_again(client, owner, package, policy):
    from datetime import timedelta

    from django.utils import timezone

    job = BulkJob.objects.create(
        kind=BulkJob.Kind.ADD,
        access_package=package,
        assignment_policy=policy,
        actor=owner,
        state=BulkJob.State.QUEUED,
        user_ids=[[str(UserFactory().pk), None]],
        total=1,
    )
    client.force_login(owner)
    assert "Queue it again" not in client.get(url("bulk_job", package, job.pk)).content.decode()
    BulkJob.objects.filter(pk=job.pk).update(modified=timezone.now() - timedelta(minutes=2))
    assert "Queue it again" in client.get(url("bulk_job", package, job.pk)).content.decode()
