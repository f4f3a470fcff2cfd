"""Every way a policy's access ends, followed through request → delivery → expiry.

Each test submits a real request, lets the (eager) tasks deliver it, then runs the expiry
job at the moments around the end the policy promises, and checks the group membership in
the directory, not only the assignment's state.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.errors import InvalidRequest
from entitlements.models import AssignmentState, ExpirationType, RequestState
from entitlements.services.ending import assignments_expire_due
from entitlements.services.requests import request_submit
from tests.lifecycle.assignment_helpers import group_resources, is_member, package_giving

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def requested(
    user, django_capture_on_commit_callbacks, *, now=NOW, schedule_end=None, **policy_fields
):
    """A package giving one group, requested by ``user`` at ``now`` and delivered."""
    resource = group_resources(1)[0]
    package, _ = package_giving(resource, **policy_fields)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=user, target=user, access_package=package, now=now, schedule_end=schedule_end
        )
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    assert is_member(user, resource)
    return request.assignment, resource


def expire_at(moment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assignments_expire_due(now=moment)


def test_access_after_a_duration_in_days_ends_that_many_days_after_delivery(
    requester, django_capture_on_commit_callbacks
):
    assignment, group = requested(
        requester,
        django_capture_on_commit_callbacks,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=30),
    )
    assert assignment.schedule_end == NOW + timedelta(days=30)

    expire_at(NOW + timedelta(days=30) - timedelta(seconds=1), django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert is_member(requester, group)

    expire_at(NOW + timedelta(days=30), django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, group)


def test_access_after_a_duration_in_hours_ends_the_same_day(
    requester, django_capture_on_commit_callbacks
):
    assignment, group = requested(
        requester,
        django_capture_on_commit_callbacks,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(hours=8),
    )
    assert assignment.schedule_end == NOW + timedelta(hours=8)

    expire_at(NOW + timedelta(hours=7, minutes=59), django_capture_on_commit_callbacks)
    assert is_member(requester, group)
    expire_at(NOW + timedelta(hours=8), django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, group)


def test_access_on_a_date_ends_on_that_date_whenever_it_was_requested(
    requester, outsider, django_capture_on_commit_callbacks
):
    end = NOW + timedelta(days=45)
    early, group = requested(
        requester,
        django_capture_on_commit_callbacks,
        expiration_type=ExpirationType.AFTER_DATE_TIME,
        expiration_end_datetime=end,
    )
    assert early.schedule_end == end

    # Someone requesting three weeks later still loses the access on the same date.
    with django_capture_on_commit_callbacks(execute=True):
        late_request = request_submit(
            actor=outsider,
            target=outsider,
            access_package=early.access_package,
            now=NOW + timedelta(days=21),
        )
    late_request.refresh_from_db()
    late = late_request.assignment
    assert late.schedule_end == end

    expire_at(end - timedelta(seconds=1), django_capture_on_commit_callbacks)
    assert is_member(requester, group)
    assert is_member(outsider, group)

    expire_at(end, django_capture_on_commit_callbacks)
    early.refresh_from_db()
    late.refresh_from_db()
    assert early.state == late.state == AssignmentState.EXPIRED
    assert not is_member(requester, group)
    assert not is_member(outsider, group)


def test_access_that_never_expires_is_still_there_years_later(
    requester, django_capture_on_commit_callbacks
):
    assignment, group = requested(
        requester,
        django_capture_on_commit_callbacks,
        expiration_type=ExpirationType.NO_EXPIRATION,
        expiration_duration=None,
    )
    assert assignment.schedule_end is None

    expire_at(NOW + timedelta(days=3660), django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED
    assert is_member(requester, group)


def test_a_shorter_period_asked_for_ends_when_asked(requester, django_capture_on_commit_callbacks):
    assignment, group = requested(
        requester,
        django_capture_on_commit_callbacks,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=30),
        allow_custom_assignment_schedule=True,
        schedule_end=NOW + timedelta(days=14),
    )
    assert assignment.schedule_end == NOW + timedelta(days=14)

    expire_at(NOW + timedelta(days=14), django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, group)


def test_a_period_longer_than_the_policy_allows_is_refused(requester):
    resource = group_resources(1)[0]
    package, _ = package_giving(
        resource,
        expiration_type=ExpirationType.AFTER_DURATION,
        expiration_duration=timedelta(days=30),
        allow_custom_assignment_schedule=True,
    )

    with pytest.raises(InvalidRequest):
        request_submit(
            actor=requester,
            target=requester,
            access_package=package,
            schedule_end=NOW + timedelta(days=31),
            now=NOW,
        )
    assert not is_member(requester, resource)
    assert not package.assignments.exists()
