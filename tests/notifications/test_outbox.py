"""The outbox claims a notification before sending it: a worker that dies after the SMTP
server took the message, before recording it, causes one re-send with the same Message-ID."""

import html
import threading
from datetime import timedelta

import pytest
import time_machine
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connection
from django.utils import timezone

from notifications import services as outbox
from notifications.models import Notification, NotificationKind
from notifications.services import notification_send, pending_notifications_requeue
from tests.services import require_postgres

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class WorkerKilled(BaseException):
    """Stands for the worker process dying: nothing after it runs, nothing catches it."""


class DiesAfterSendingBackend(SMTPBackend):
    """A real SMTP send, after which the worker 'dies' before the outcome is recorded."""

    def send_messages(self, email_messages):
        super().send_messages(email_messages)
        raise WorkerKilled


def an_approval_email(stage, approver):
    return Notification.objects.create(
        kind=NotificationKind.APPROVAL_REQUIRED,
        recipient=approver,
        dedupe_key=f"{NotificationKind.APPROVAL_REQUIRED}:{stage.pk}:{approver.pk}",
        request=stage.request,
        about_id=stage.pk,
    )


@pytest.mark.smtp
@pytest.mark.django_db
def test_a_resend_after_a_crash_between_sending_and_recording_has_the_same_message_id(
    pending_stage, approver, smtp_server, settings
):
    notification = an_approval_email(pending_stage, approver)
    crashed_at = timezone.now()
    settings.EMAIL_BACKEND = "tests.notifications.test_outbox.DiesAfterSendingBackend"
    with time_machine.travel(crashed_at, tick=False), pytest.raises(WorkerKilled):
        notification_send(notification_id=notification.pk)
    smtp_server.wait_for(1)

    settings.EMAIL_BACKEND = SMTP_BACKEND
    with time_machine.travel(crashed_at + timedelta(hours=1), tick=False):
        assert pending_notifications_requeue() == 1  # the reconciler finds the dead claim
    first, second = smtp_server.wait_for(2)

    assert second["Message-ID"] == first["Message-ID"]
    domain = settings.SITE_URL.split("://", 1)[1].split(":")[0].split("/")[0]
    assert first["Message-ID"] == f"<notification.{notification.pk}@{domain}>"
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT
    assert notification.attempts == 2
    assert notification.lease_expires is None


@pytest.mark.django_db
def test_a_claim_is_committed_as_sending_with_a_lease_before_anything_is_sent(
    pending_stage, approver, settings
):
    notification = an_approval_email(pending_stage, approver)
    now = timezone.now()

    lease = outbox.notification_claim(notification_id=notification.pk, now=now)

    notification.refresh_from_db()
    assert lease == now + outbox.LEASE
    assert notification.state == Notification.State.SENDING
    assert notification.lease_expires == lease
    assert notification.attempts == 1


@pytest.mark.django_db
def test_a_live_lease_is_not_claimed_again_nor_requeued(pending_stage, approver, mailoutbox):
    notification = an_approval_email(pending_stage, approver)
    now = timezone.now()
    outbox.notification_claim(notification_id=notification.pk, now=now)
    almost = now + outbox.LEASE - timedelta(seconds=1)

    assert outbox.notification_claim(notification_id=notification.pk, now=almost) is None
    assert notification_send(notification_id=notification.pk, now=almost) is False
    assert pending_notifications_requeue(now=almost) == 0
    assert mailoutbox == []
    notification.refresh_from_db()
    assert notification.state == Notification.State.SENDING
    assert notification.attempts == 1


@pytest.mark.django_db
def test_an_expired_lease_is_claimed_again_and_the_email_sent(pending_stage, approver, mailoutbox):
    notification = an_approval_email(pending_stage, approver)
    now = timezone.now()
    outbox.notification_claim(notification_id=notification.pk, now=now)
    expired = now + outbox.LEASE

    assert notification_send(notification_id=notification.pk, now=expired) is True

    notification.refresh_from_db()
    assert notification.state == Notification.State.SENT
    assert notification.attempts == 2
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [notification.message_id]


@pytest.mark.django_db
def test_a_failed_send_releases_the_claim_for_a_retry(pending_stage, approver, settings):
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    settings.EMAIL_TIMEOUT = 2
    notification = an_approval_email(pending_stage, approver)

    with pytest.raises(OSError):
        notification_send(notification_id=notification.pk)

    notification.refresh_from_db()
    assert notification.state == Notification.State.PENDING
    assert notification.lease_expires is None
    assert notification.error


def claim_together(notification_id, claimers, now):
    """``claimers`` threads, each with its own connection, claim the row at the same moment."""
    barrier = threading.Barrier(claimers)
    leases, errors = [], []

    def claim():
        try:
            barrier.wait(timeout=30)
            leases.append(outbox.notification_claim(notification_id=notification_id, now=now))
        except Exception as exc:  # reported by the assertions
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return leases, errors


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_of_two_workers_claiming_the_same_notification_exactly_one_wins(pending_stage, approver):
    require_postgres()
    for _round in range(5):
        notification = an_approval_email(pending_stage, approver)
        leases, errors = claim_together(notification.pk, 2, timezone.now())
        assert errors == []
        assert len([lease for lease in leases if lease is not None]) == 1
        notification.refresh_from_db()
        assert notification.attempts == 1
        notification.delete()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_of_ten_workers_reclaiming_an_expired_lease_exactly_one_wins(pending_stage, approver):
    require_postgres()
    notification = an_approval_email(pending_stage, approver)
    now = timezone.now()
    outbox.notification_claim(notification_id=notification.pk, now=now)

    leases, errors = claim_together(notification.pk, 10, now + outbox.LEASE)

    assert errors == []
    assert len([lease for lease in leases if lease is not None]) == 1
    notification.refresh_from_db()
    assert notification.attempts == 2


@pytest.mark.django_db
def test_the_admin_shows_a_notifications_message_id_for_tracing_duplicates(
    client, admin_user, pending_stage, approver
):
    notification = an_approval_email(pending_stage, approver)
    client.force_login(admin_user)

    page = client.get(f"/admin/notifications/notification/{notification.pk}/change/")

    assert page.status_code == 200
    assert html.escape(notification.message_id) in page.content.decode()
