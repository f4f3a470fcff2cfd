"""Removals are not delayed by emails: each kind of work has its own queue and worker."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app
from directory.models import GroupMembership
from entitlements.models import Assignment, AssignmentState, Channel
from entitlements.services.requests import request_submit
from entitlements.tasks import expire_due_assignments
from notifications.models import Notification, NotificationKind
from notifications.services import notify
from tests.factories import (
    AccessPackageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    grant_role,
)


def wait_until(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def queue_of(name):
    return app.amqp.router.route({}, name)["queue"].name


def test_deliveries_removals_and_their_reconciler_go_to_the_delivery_queue():
    app.loader.import_default_modules()
    for name in (
        "entitlements.tasks.deliver_assignment",
        "entitlements.tasks.deliver_assignments",
        "entitlements.tasks.revoke_assignment_grants",
        "entitlements.tasks.revoke_grants_batch",
        "entitlements.tasks.expire_due_assignments",
        "entitlements.tasks.reconcile_assignments",
        "entitlements.tasks.resume_connected_system",
    ):
        assert queue_of(name) == "delivery", name
    assert queue_of("notifications.tasks.send_notification") == "notifications"
    assert queue_of("notifications.tasks.send_notifications") == "notifications"
    assert queue_of("reviews.tasks.apply_review_results") == "periodic"


def test_every_task_goes_to_a_declared_queue_and_beats_jobs_leave_delivery_for_removals():
    app.loader.import_default_modules()
    declared = set(settings.CELERY_TASK_QUEUES)
    for name in app.tasks:
        if not name.startswith("celery."):
            assert queue_of(name) in declared, name
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    on_delivery = {name for name in scheduled if queue_of(name) == "delivery"}
    assert on_delivery == {
        "entitlements.tasks.expire_due_assignments",
        "entitlements.tasks.reconcile_assignments",
    }


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_removal_is_done_at_once_while_the_notifications_queue_holds_slow_emails(
    start_worker, slow_smtp
):
    # As docker-compose.yml runs them: delivery alone, emails and periodic work together.
    start_worker(queues="delivery", concurrency=2)
    mail = start_worker(queues="notifications,periodic", concurrency=1, email_url=slow_smtp.url)
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog)
    grant_role(package, resource.roles.get(origin_id="Member"))
    PolicyFactory(access_package=package)  # no approval: delivered on submission
    holder = UserFactory()
    request_submit(actor=holder, target=holder, access_package=package, channel=Channel.PORTAL)
    assignment = wait_until(
        lambda: Assignment.objects.filter(target=holder, state=AssignmentState.DELIVERED).first()
    )
    assert GroupMembership.objects.filter(group=resource.group, user=holder).exists()

    # 30 emails at a second each for the one email worker.
    notify(
        kind=NotificationKind.ACCESS_DELIVERED,
        recipients=UserFactory.create_batch(30),
        key="backlog",
        assignment=assignment,
    )
    wait_until(lambda: slow_smtp.count >= 1)

    Assignment.objects.filter(pk=assignment.pk).update(
        schedule_end=timezone.now() - timedelta(seconds=1)
    )
    started = time.monotonic()
    expire_due_assignments.delay()
    wait_until(
        lambda: not GroupMembership.objects.filter(group=resource.group, user=holder).exists(),
        timeout=10,
    )
    removed_after = time.monotonic() - started
    waiting = Notification.objects.filter(state=Notification.State.PENDING).count()
    print(f"\nremoved {removed_after:.2f} s after expiry, {waiting} emails still waiting")
    assert removed_after < 5.0
    assert waiting >= 20  # the emails were still queued: the removal did not wait for them
    assert mail.proc.poll() is None
