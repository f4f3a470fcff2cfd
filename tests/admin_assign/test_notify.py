"""'Tell each person by email' on a direct assignment: off, nobody gets the access-delivered
email; everything else (requests, audit, delivery) is the same. The API's adminAdd and a
single direct assignment keep telling the person, as the policy says."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from directory.models import GroupMembership
from entitlements.models import (
    Assignment,
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    BulkJob,
    Channel,
    RequestState,
    RequestType,
)
from entitlements.services.bulk import bulk_job_prepare, bulk_job_run, bulk_job_start
from entitlements.services.requests import request_submit, requests_start_due
from notifications.models import Notification, NotificationKind

from .conftest import people

pytestmark = pytest.mark.django_db

SUBJECT = "You now have access to {}"


def delivered_emails(users):
    return Notification.objects.filter(kind=NotificationKind.ACCESS_DELIVERED, recipient__in=users)


def run_job(owner, package, policy, users, capture, **kw):
    job = bulk_job_prepare(
        actor=owner,
        kind=BulkJob.Kind.ADD,
        access_package=package,
        policy=policy,
        users=[(u, n) for n, u in enumerate(users, start=1)],
        justification="Project Falcon",
        **kw,
    )
    with capture(execute=True):
        bulk_job_start(actor=owner, job=job)
        job = bulk_job_run(job_id=job.pk)
    return job


@pytest.mark.parametrize("notify", [True, False])
def test_a_bulk_assignment_emails_each_person_only_when_asked(
    owner, package, policy, resource, notify, smtp_server, django_capture_on_commit_callbacks
):
    chosen = people(2)

    job = run_job(owner, package, policy, chosen, django_capture_on_commit_callbacks, notify=notify)

    assert job.notify is notify and job.counts() == {"done": 2, "refused": 0}
    requests = AssignmentRequest.objects.filter(target__in=chosen)
    assert {(r.notify, r.state) for r in requests} == {(notify, RequestState.DELIVERED)}
    # Delivery and the audit trail are the same either way.
    assert (
        Assignment.objects.filter(target__in=chosen, state=AssignmentState.DELIVERED).count() == 2
    )
    assert GroupMembership.objects.filter(group=resource.group, user__in=chosen).count() == 2
    for action in ("request.submit", "request.fulfilled", "assignment.created"):
        assert AuditEvent.objects.filter(action=action, target__in=chosen).count() == 2
    submitted = AuditEvent.objects.filter(action="request.submit", target__in=chosen)
    assert {e.data["notify"] for e in submitted} == {notify}
    # The email itself, through a real SMTP server.
    assert delivered_emails(chosen).count() == (2 if notify else 0)
    if notify:
        smtp_server.wait_for(2)
        for person in chosen:
            [message] = smtp_server.to(person.email)
            assert message["Subject"] == SUBJECT.format(package.display_name)
    else:
        assert all(smtp_server.to(person.email) == [] for person in chosen)


def test_a_bulk_assignment_tells_the_people_unless_told_otherwise(
    owner, package, policy, django_capture_on_commit_callbacks
):
    chosen = people(1)
    job = run_job(owner, package, policy, chosen, django_capture_on_commit_callbacks)
    assert job.notify is True
    assert delivered_emails(chosen).count() == 1


def test_a_silent_assignment_starting_later_stays_silent_when_it_starts(
    owner, package, policy, django_capture_on_commit_callbacks
):
    chosen = people(2)
    start = timezone.now() + timedelta(days=2)
    run_job(
        owner,
        package,
        policy,
        chosen,
        django_capture_on_commit_callbacks,
        notify=False,
        schedule_start=start,
    )
    with django_capture_on_commit_callbacks(execute=True):
        requests_start_due(now=start + timedelta(minutes=1))
    assert (
        Assignment.objects.filter(target__in=chosen, state=AssignmentState.DELIVERED).count() == 2
    )
    assert delivered_emails(chosen).count() == 0


def test_a_policy_with_emails_off_sends_none_even_when_asked(
    owner, package, policy, django_capture_on_commit_callbacks
):
    policy.is_assignment_notification_disabled = True
    policy.save()
    chosen = people(1)
    run_job(owner, package, policy, chosen, django_capture_on_commit_callbacks, notify=True)
    assert delivered_emails(chosen).count() == 0


@pytest.mark.parametrize("notify", [True, False])
def test_one_direct_assignment_follows_its_notify(
    owner, package, policy, notify, django_capture_on_commit_callbacks
):
    [person] = people(1)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=owner,
            target=person,
            access_package=package,
            policy=policy,
            request_type=RequestType.ADMIN_ADD,
            channel=Channel.ADMIN,
            notify=notify,
        )
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED and request.notify is notify
    assert delivered_emails([person]).count() == (1 if notify else 0)
    event = AuditEvent.objects.get(action="request.submit", target=person)
    assert event.data.get("notify", True) is notify


def test_the_apis_admin_add_still_emails_the_person(
    client, owner, package, policy, smtp_server, django_capture_on_commit_callbacks
):
    [person] = people(1)
    client.force_login(owner)
    body = {
        "requestType": "adminAdd",
        "assignment": {
            "accessPackageId": str(package.pk),
            "assignmentPolicyId": str(policy.pk),
            "targetId": str(person.pk),
        },
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/v1.0/identityGovernance/entitlementManagement/assignmentRequests",
            body,
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    assert AssignmentRequest.objects.get(pk=response.json()["id"]).notify is True
    smtp_server.wait_for(1)
    [message] = smtp_server.to(person.email)
    assert message["Subject"] == SUBJECT.format(package.display_name)


def test_the_form_offers_the_choice_ticked_and_carries_it_to_the_job(
    client, owner, package, policy
):
    page_url = reverse("admin:entitlements_accesspackage_assign", args=[package.pk])
    client.force_login(owner)
    form = client.get(page_url).content.decode()
    assert "Tell each person by email that they have the access" in form
    [box] = re.findall(r'<input type="checkbox" name="notify"[^>]*>', form)
    assert " checked" in box

    for sent, expected in (({"notify": "on"}, True), ({}, False)):
        person = people(1, prefix=f"n{int(expected)}")[0]
        response = client.post(
            page_url, {"policy": policy.pk, "users": [person.pk], "justification": "x", **sent}
        )
        assert response.status_code == 302
        job = BulkJob.objects.get(user_ids__0__0=str(person.pk))
        assert job.notify is expected
        preview = client.get(response["Location"]).content.decode()
        assert f'<td id="bulk-notify">{"yes" if expected else "no"}</td>' in preview
