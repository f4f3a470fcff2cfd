"""Direct assignment of three people and bulk assignment from a CSV of 1,000, in Chromium."""

import contextlib
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password

from directory.models import User
from entitlements.models import Assignment, BulkJob
from entitlements.services.bulk import bulk_job_run
from tests.browser import screenshot, sign_in
from tests.factories import PASSWORD, UserFactory
from tests.lifecycle.assignment_helpers import assign

pytestmark = [
    pytest.mark.browser,
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
]


def pick(page, name):
    """Choose one person in the admin's autocomplete (select2)."""
    page.locator(".field-users .select2-selection").click()
    page.locator(".select2-search__field").fill(name)
    page.locator(".select2-results__option", has_text=name).first.click()


def test_an_owner_assigns_three_people_directly(page, owner, package, policy):
    chosen = [
        UserFactory(email=f"{first.lower()}@example.com", display_name=f"{first} Example")
        for first in ("Ann", "Ben", "Cleo")
    ]
    sign_in(page, owner)
    page.goto(f"/admin/entitlements/accesspackage/{package.pk}/change/")
    page.get_by_role("link", name="Assign directly").click()
    for person in chosen:
        pick(page, person.display_name)
    page.get_by_label("Justification").fill("Project Falcon starts Monday")
    screenshot(page, "assign-direct-form")
    page.get_by_role("button", name="Preview").click()

    page.get_by_text("3 people would be assigned.").wait_for()
    for person in chosen:
        assert page.locator("#bulk-accepted", has_text=person.display_name).count() == 1
    screenshot(page, "assign-direct-preview")
    page.get_by_role("button", name="Assign 3 people").click()

    page.get_by_text("3 people assigned.").wait_for()
    screenshot(page, "assign-direct-report")
    assert set(
        Assignment.objects.filter(access_package=package).values_list("target__email", flat=True)
    ) == {p.email for p in chosen}


@contextlib.contextmanager
def queued_for_a_worker():
    """Tasks go to the in-memory broker and wait there, as for a worker: the test is that
    worker. (Run eagerly, the thousand assignments would all happen inside the click.)"""
    from config.celery import app

    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = True


def test_a_csv_of_1000_emails_is_assigned_and_the_refused_rows_are_reported(
    page, owner, package, policy
):
    password = make_password(PASSWORD)
    User.objects.bulk_create(
        [
            User(email=f"bulk{i:04d}@example.com", display_name=f"Bulk {i:04d}", password=password)
            for i in range(985)
        ]
    )
    holders = list(User.objects.filter(email__startswith="bulk")[:5])
    for holder in holders:
        assign(holder, package, policy)
    lines = ["email"] + [f"bulk{i:04d}@example.com" for i in range(985)]
    lines += [f"unknown{i}@example.com" for i in range(10)] + ["bulk0001@example.com"] * 5
    assert len(lines) == 1001

    sign_in(page, owner)
    page.goto(f"/admin/entitlements/accesspackage/{package.pk}/assign/")
    page.set_input_files(
        "input[name=csv_file]",
        files=[
            {"name": "joiners.csv", "mimeType": "text/csv", "buffer": "\n".join(lines).encode()}
        ],
    )
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("980 people would be assigned.").wait_for()
    page.get_by_text("20 are refused.").wait_for()
    refused = page.locator("#bulk-refused tbody tr")
    assert refused.count() == 20
    assert page.locator("#bulk-refused", has_text="Nobody in the directory has this email").count()
    assert page.locator("#bulk-refused", has_text="Listed already on row 3.").count()
    assert page.locator("#bulk-refused", has_text="already has this access package").count()
    screenshot(page, "assign-bulk-preview")
    with queued_for_a_worker():
        page.get_by_role("button", name="Assign 980 people").click()
        page.locator("#bulk-progress").wait_for()
        screenshot(page, "assign-bulk-progress")
        job = BulkJob.objects.get(access_package=package)
        # What the worker does; the page follows it. The deliveries it queues wait for
        # another worker: delivery has tests of its own.
        bulk_job_run(job_id=job.pk, batch_size=250)

    page.get_by_text("980 people assigned.").wait_for()
    page.get_by_text("20 refused.").wait_for()
    screenshot(page, "assign-bulk-report")
    assert Assignment.objects.filter(access_package=package).count() == 985
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report (CSV)").click()
    report = Path(download.value.path()).read_text()
    assert report.count("\n") == 1001 and report.count(",refused,") == 20
