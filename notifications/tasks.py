"""Sending emails and the outbox's periodic work; each task calls one service, safe to run twice.

The services enqueue ``send_notification`` and ``send_notifications`` by name
(``services.SEND_ONE``, ``services.SEND_BATCH``); beat runs the other two.
"""

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # quick retries by the task; the reconciler keeps trying after them


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=MAX_ATTEMPTS,
)
def send_notification(self, notification_id):
    return services.notification_send(notification_id=notification_id)


@shared_task(acks_late=True)
def send_notifications(notification_ids):
    """Send a batch; one failure does not stop the others, and the reconciler retries it."""
    failed = 0
    for pk in notification_ids:
        try:
            services.notification_send(notification_id=pk)
        except OSError as exc:
            failed += 1
            logger.warning("Notification %s not sent yet: %s", pk, exc)
    return failed


@shared_task(acks_late=True)
def notify_expiring_assignments():
    return services.assignments_notify_expiring()


@shared_task(acks_late=True)
def requeue_pending_notifications():
    return services.pending_notifications_requeue()
