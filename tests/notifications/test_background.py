"""Background work on a real Celery worker and the real Redis, and what a broker outage loses."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.models import ReviewResult
from approvals.services import stage_decide
from config.celery import app
from directory.models import GroupMembership
from entitlements.models import Assignment, AssignmentState, Channel, RequestState
from entitlements.services.reconciliation import assignments_reconcile
from entitlements.services.requests import request_submit
from entitlements.tasks import expire_due_assignments
from notifications.models import Notification
from notifications.services import pending_notifications_requeue
from tests.conftest import start_celery_worker, use_broker
from tests.factories import AccessPackageFactory, GroupResourceFactory, PolicyFactory, grant_role


def wait_until(check, timeout=15.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def test_every_scheduled_job_names_a_registered_task():
    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name


@pytest.fixture
def group_package(db):
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog, display_name="Payroll")
    grant_role(package, resource.roles.get(origin_id="Member"))
    return package, resource.group


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_request_approval_delivery_and_expiry_run_end_to_end_on_a_worker(
    smtp_server, celery_worker, approval_policy, requester, approver
):
    resource = GroupResourceFactory(catalog=approval_policy.access_package.catalog)
    grant_role(approval_policy.access_package, resource.roles.get(origin_id="Member"))
    group = resource.group

    request = request_submit(
        actor=requester,
        target=requester,
        access_package=approval_policy.access_package,
        justification="Quarter-end close",
        channel=Channel.PORTAL,
    )
    assert request.state == RequestState.PENDING_APPROVAL
    smtp_server.wait_for(2)  # both approvers were mailed by the worker
    assert smtp_server.to(approver.email)[0]["Subject"].startswith("Action required")

    started = time.monotonic()
    stage_decide(
        actor=approver,
        stage=request.approval_stages.get(),
        decision=ReviewResult.APPROVED,
        justification="OK",
        channel=Channel.PORTAL,
    )
    assignment = wait_until(
        lambda: Assignment.objects.filter(target=requester, state=AssignmentState.DELIVERED).first()
    )
    elapsed = time.monotonic() - started
    print(f"\nlast approval -> delivered on a worker: {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0
    assert GroupMembership.objects.filter(group=group, user=requester).exists()
    wait_until(lambda: smtp_server.to(requester.email))

    Assignment.objects.filter(pk=assignment.pk).update(
        schedule_end=timezone.now() - timedelta(seconds=1)
    )
    expire_due_assignments.delay()
    wait_until(lambda: not GroupMembership.objects.filter(group=group, user=requester).exists())
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert celery_worker.proc.poll() is None


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_during_submission_loses_nothing_and_sends_nothing_twice(
    smtp_server, group_package, requester, settings
):
    package, group = group_package
    PolicyFactory(access_package=package)  # no approval: delivery follows submission
    old = use_broker("redis://127.0.0.1:1/0")  # nothing listens there: the broker is down
    try:
        request = request_submit(
            actor=requester, target=requester, access_package=package, channel=Channel.PORTAL
        )
    finally:
        use_broker(*old)
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERING  # saved, waiting for the worker
    assert not GroupMembership.objects.filter(group=group, user=requester).exists()
    assert smtp_server.messages == []

    # The broker is back; the reconciler finds the work in PostgreSQL.
    worker = start_celery_worker(smtp_port=smtp_server.port)
    try:
        past = timezone.now() + timedelta(minutes=10)
        assignments_reconcile(now=past)
        wait_until(lambda: GroupMembership.objects.filter(group=group, user=requester).exists())
        wait_until(
            lambda: Assignment.objects.filter(
                target=requester, state=AssignmentState.DELIVERED
            ).exists()
        )
        pending_notifications_requeue(now=past)
        smtp_server.wait_for(1)
        # A second reconciliation finds nothing left to do.
        assignments_reconcile(now=past)
        pending_notifications_requeue(now=past)
        time.sleep(1.0)
    finally:
        worker.close()
    delivered = [m for m in smtp_server.messages if "You now have access" in m["Subject"]]
    assert len(delivered) == 1
    assert Notification.objects.filter(state=Notification.State.PENDING).count() == 0
    assert GroupMembership.objects.filter(group=group, user=requester).count() == 1


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_sending_loses_no_email(
    smtp_server, approval_policy, requester, approver, second_approver
):
    import signal
    import threading

    first_data = threading.Event()
    release = threading.Event()
    handle = smtp_server.handle_DATA

    async def slow_first_message(server, session, envelope):
        if not first_data.is_set():
            first_data.set()
            import asyncio

            # The worker is killed while it waits for this reply: the message is never
            # accepted, as a real server would not accept it from a dead client.
            while not release.is_set():
                await asyncio.sleep(0.05)
            return "421 Connection lost"
        return await handle(server, session, envelope)

    smtp_server.handle_DATA = slow_first_message
    worker = start_celery_worker(smtp_port=smtp_server.port)
    try:
        request = request_submit(
            actor=requester,
            target=requester,
            access_package=approval_policy.access_package,
            justification="Quarter-end close",
            channel=Channel.PORTAL,
        )
        assert first_data.wait(15), "the worker never started sending"
        worker.proc.send_signal(signal.SIGKILL)  # no warm shutdown, no ack
        worker.proc.wait(10)
    finally:
        release.set()
        worker.close()
    # The dead worker's claim stays until its lease runs out; here it has run out.
    claimed = Notification.objects.filter(state=Notification.State.SENDING)
    assert claimed.exists()
    claimed.update(lease_expires=timezone.now())

    worker = start_celery_worker(smtp_port=smtp_server.port)
    try:
        pending_notifications_requeue(now=timezone.now() + timedelta(minutes=10))
        wait_until(
            lambda: (
                not Notification.objects.filter(request=request)
                .exclude(state=Notification.State.SENT)
                .exists()
            )
        )
    finally:
        worker.close()
    # Every approver got the email. Delivery is at least once: a message the SMTP server
    # accepted from a worker killed before its commit is sent again (the other thread here).
    for person in (approver, second_approver):
        assert [m for m in smtp_server.to(person.email) if "Action required" in m["Subject"]]
    assert set(Notification.objects.filter(request=request).values_list("state", flat=True)) == {
        Notification.State.SENT
    }
