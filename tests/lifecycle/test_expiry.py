"""Assignments end at their end date: one at a time, or every due one in set-based batches."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from entitlements.models import (
    Assignment,
    AssignmentState,
    AuditEvent,
    GrantState,
    RequestState,
    RequestType,
)
from entitlements.services.ending import assignments_expire_due
from entitlements.signals import assignments_ended
from entitlements.tasks import expire_due_assignments
from tests.factories import UserFactory
from tests.lifecycle.assignment_helpers import (
    approved_request,
    assign,
    group_resources,
    is_member,
    package_giving,
)

pytestmark = pytest.mark.django_db
START = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def week_long():
    """A package giving one group for seven days."""
    resource = group_resources(1)[0]
    package, policy = package_giving(resource, expiration_duration=timedelta(days=7))
    return resource, package, policy


def test_an_assignment_ends_when_its_end_date_comes(requester, week_long):
    resource, package, policy = week_long
    assignment = assign(requester, package, policy, now=START)

    assert assignments_expire_due(now=START + timedelta(days=6)) == 0
    assert assignments_expire_due(now=START + timedelta(days=7)) == 1

    ended = Assignment.objects.get(pk=assignment.pk)
    assert ended.state == AssignmentState.EXPIRED
    assert ended.expired_datetime == START + timedelta(days=7)
    assert ended.grants.get().state == GrantState.PENDING_REMOVAL
    assert AuditEvent.objects.filter(action="assignment.expired", object_id=str(ended.pk)).exists()


def test_expiring_the_due_assignments_removes_the_access_once_committed(
    requester, week_long, django_capture_on_commit_callbacks
):
    resource, package, policy = week_long
    assignment = assign(requester, package, policy, now=START)
    notices = []

    def receive(sender, **kwargs):
        notices.append(kwargs)

    assignments_ended.connect(receive)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            count = assignments_expire_due(now=START + timedelta(days=7, seconds=1))
    finally:
        assignments_ended.disconnect(receive)

    assignment.refresh_from_db()
    assert count == 1
    assert assignment.state == AssignmentState.EXPIRED
    assert assignment.grants.get().state == GrantState.REMOVED
    assert not is_member(requester, resource)
    # One signal per batch, naming every assignment that ended in it.
    assert [n["assignment_ids"] for n in notices] == [[assignment.pk]]


def test_only_assignments_whose_end_has_come_expire(week_long):
    resource, package, policy = week_long
    due = assign(UserFactory(), package, policy, now=START - timedelta(days=8))
    later = assign(UserFactory(), package, policy, now=START)
    endless = assign(
        UserFactory(), package, policy, now=START - timedelta(days=30), schedule_end=None
    )
    endless.schedule_end = None
    endless.save()

    assert assignments_expire_due(now=START) == 1

    for assignment in (due, later, endless):
        assignment.refresh_from_db()
    assert due.state == AssignmentState.EXPIRED
    assert later.state == endless.state == AssignmentState.DELIVERED


def test_due_assignments_are_ended_in_batches_and_each_once(week_long):
    resource, package, policy = week_long
    assignments = [
        assign(UserFactory(), package, policy, now=START - timedelta(days=8)) for _ in range(5)
    ]

    first = assignments_expire_due(now=START, batch_size=2)
    second = assignments_expire_due(now=START, batch_size=2)

    assert (first, second) == (5, 0)
    events = AuditEvent.objects.filter(action="assignment.expired")
    assert sorted(events.values_list("object_id", flat=True)) == sorted(
        str(a.pk) for a in assignments
    )
    assert set(events.values_list("before", "after")) == {("delivered", "expired")}


def test_expiry_cancels_an_open_extension_request(requester, week_long):
    resource, package, policy = week_long
    assignment = assign(requester, package, policy, now=START - timedelta(days=8))
    extension = approved_request(
        requester,
        package,
        policy,
        request_type=RequestType.USER_EXTEND,
        assignment=assignment,
        schedule_end=START + timedelta(days=30),
    )

    assignments_expire_due(now=START)

    extension.refresh_from_db()
    assert extension.state == RequestState.CANCELED


def test_the_scheduled_task_ends_access_a_minute_after_the_end_date(
    requester, week_long, django_capture_on_commit_callbacks
):
    resource, package, policy = week_long
    assign(requester, package, policy, now=START)

    with (
        time_machine.travel(START + timedelta(days=7, minutes=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        expire_due_assignments.delay()

    assert not is_member(requester, resource)
    assert requester.assignments.get().state == AssignmentState.EXPIRED
