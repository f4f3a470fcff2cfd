"""Emails: who gets which message when something happens, and sending each one.

Receivers of the lifecycle signals write ``Notification`` rows (one per person and event,
made unique by ``dedupe_key``) and enqueue their sending. The row is the truth: if the broker
is down, the reconciler finds pending rows and enqueues them again. Sending claims the row
(``sending``, with a lease, committed), calls SMTP with no transaction open, then records the
outcome in a short transaction. Delivery is at least once, de-duplicated by Message-ID: a
worker that dies between sending and recording leaves a lease that runs out, and the message
is sent again with the same Message-ID.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.utils import timezone, translation

from entitlements import signals as lifecycle
from entitlements.models import OPEN_ASSIGNMENT_STATES, ApprovalStage, Assignment
from entitlements.queue import enqueue_on_commit

from . import signals
from .links import decision_url
from .models import Notification, NotificationKind, ReviewResult, StageStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # quick retries by the task; the reconciler keeps trying after them
GIVE_UP_AFTER = timedelta(hours=24)
# A claimed notification belongs to its worker this long; the SMTP call is limited to far less.
LEASE = timedelta(minutes=10)
SEND_TIMEOUT_SECONDS = 60
EXPIRY_NOTICE_DAYS = (14, 1)

# Emails to the person who holds or asked for access; a policy can switch these off.
REQUESTOR_KINDS = {
    NotificationKind.STAGE_APPROVED,
    NotificationKind.REQUEST_DENIED,
    NotificationKind.REQUEST_EXPIRED,
    NotificationKind.ACCESS_DELIVERED,
    NotificationKind.ACCESS_EXPIRING,
    NotificationKind.ACCESS_ENDED,
}


# Emails that ask an approver to decide, with the approve and deny links and the deadline.
APPROVER_ACTION_KINDS = {
    NotificationKind.APPROVAL_REQUIRED,
    NotificationKind.APPROVAL_REMINDER,
    NotificationKind.APPROVAL_FORWARDED,
}


def _policy_silenced(kind, request=None, assignment=None):
    policy = (request or assignment).assignment_policy if (request or assignment) else None
    return bool(policy and policy.is_assignment_notification_disabled and kind in REQUESTOR_KINDS)


def notify(*, kind, recipients, key, request=None, stage=None, assignment=None, context=None):
    """Record one notification per recipient for one event and enqueue their sending.

    ``key`` names the event (e.g. the stage id and its phase); a second call for the same
    event and person adds nothing, so receivers and schedulers may safely run twice.
    """
    if _policy_silenced(kind, request=request, assignment=assignment):
        return []
    created = []
    for user in {u.pk: u for u in recipients if u is not None and u.is_active}.values():
        try:
            with transaction.atomic():
                created.append(
                    Notification.objects.create(
                        kind=kind,
                        recipient=user,
                        dedupe_key=f"{kind}:{key}:{user.pk}"[:200],
                        request=request,
                        stage=stage,
                        assignment=assignment,
                        context=context or {},
                    )
                )
        except IntegrityError:
            continue  # already recorded for this event and person
    for notification in created:
        enqueue_on_commit(send_notification, str(notification.pk))
    return created


def _requestor_and_target(request):
    return [request.target] + ([request.requestor] if request.requestor_id else [])


def _notify_about_stage(kind, stage, recipients):
    return notify(
        kind=kind, recipients=recipients, key=f"{stage.pk}", request=stage.request, stage=stage
    )


# --- Receivers: lifecycle events → notifications -------------------------------------------


@receiver(signals.stage_opened)
def on_stage_opened(sender, stage, approvers=(), **kwargs):
    _notify_about_stage(NotificationKind.APPROVAL_REQUIRED, stage, approvers)


@receiver(signals.stage_escalated)
def on_stage_escalated(sender, stage, approvers=(), **kwargs):
    _notify_about_stage(NotificationKind.APPROVAL_FORWARDED, stage, approvers)


@receiver(signals.stage_decided)
def on_stage_decided(sender, stage, **kwargs):
    others = [
        a.user for a in stage.approvers.select_related("user") if a.user_id != stage.reviewed_by_id
    ]
    _notify_about_stage(NotificationKind.APPROVAL_DECIDED_BY_OTHER, stage, others)
    if stage.review_result == ReviewResult.APPROVED:
        _notify_about_stage(
            NotificationKind.STAGE_APPROVED, stage, _requestor_and_target(stage.request)
        )


@receiver(lifecycle.request_denied)
def on_request_denied(sender, request, stage=None, reason="", **kwargs):
    notify(
        kind=NotificationKind.REQUEST_DENIED,
        recipients=_requestor_and_target(request),
        key=f"{request.pk}",
        request=request,
        stage=stage,
        context={"reason": reason or (stage.justification if stage else "")},
    )


@receiver(lifecycle.request_expired)
def on_request_expired(sender, request, **kwargs):
    notify(
        kind=NotificationKind.REQUEST_EXPIRED,
        recipients=_requestor_and_target(request),
        key=f"{request.pk}",
        request=request,
    )
    stage = request.approval_stages.order_by("-sequence").first()
    # Approvers hear of it only when their stage ran out of time (not when the period did).
    if stage is not None and stage.status == StageStatus.EXPIRED:
        notify(
            kind=NotificationKind.APPROVAL_EXPIRED,
            recipients=[a.user for a in stage.approvers.select_related("user")],
            key=f"{request.pk}",
            request=request,
            stage=stage,
        )


@receiver(lifecycle.assignment_delivered)
def on_assignment_delivered(sender, assignment, request=None, **kwargs):
    notify(
        kind=NotificationKind.ACCESS_DELIVERED,
        recipients=[assignment.target],
        key=f"{assignment.pk}",
        request=request,
        assignment=assignment,
    )


@receiver(lifecycle.assignment_ended)
def on_assignment_ended(sender, assignment, reason="", **kwargs):
    # The signal's ``notify`` argument (False for a silent admin removal) would shadow notify().
    if kwargs.get("notify") is False:
        return
    notify(
        kind=NotificationKind.ACCESS_ENDED,
        recipients=[assignment.target],
        key=f"{assignment.pk}",
        assignment=assignment,
        context={"reason": reason},
    )


@receiver(lifecycle.assignments_ended)
def on_assignments_ended(sender, assignment_ids, reason="", **kwargs):
    """Set-based twin of on_assignment_ended for the batches of the expiry job."""
    rows = Assignment.objects.filter(
        id__in=assignment_ids,
        target__is_active=True,
        assignment_policy__is_assignment_notification_disabled=False,
    ).values_list("id", "target_id")
    notify_bulk(
        kind=NotificationKind.ACCESS_ENDED,
        rows=[(target_id, f"{pk}", {"assignment_id": pk}) for pk, target_id in rows],
        context={"reason": reason},
    )


def notify_bulk(*, kind, rows, context=None, batch_size=1000):
    """Record many notifications at once: ``rows`` are (recipient id, key, foreign keys).

    For jobs that touch thousands of objects (expiry): one INSERT per batch, conflicts on the
    dedupe key ignored, and one sending task per hundred rows.
    """
    created = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        keys = [f"{kind}:{key}:{recipient_id}"[:200] for recipient_id, key, _fks in batch]
        with transaction.atomic():
            Notification.objects.bulk_create(
                [
                    Notification(
                        kind=kind,
                        recipient_id=recipient_id,
                        dedupe_key=dedupe_key,
                        context=context or {},
                        **fks,
                    )
                    for (recipient_id, _key, fks), dedupe_key in zip(batch, keys, strict=True)
                ],
                ignore_conflicts=True,
            )
            ids = list(
                Notification.objects.filter(
                    dedupe_key__in=keys, state=Notification.State.PENDING, attempts=0
                ).values_list("pk", flat=True)
            )
            for chunk in range(0, len(ids), 100):
                enqueue_on_commit(send_notifications, [str(pk) for pk in ids[chunk : chunk + 100]])
        created.extend(ids)
    return created


# --- Scheduled notices ------------------------------------------------------------------------


def assignments_notify_expiring(*, now=None):
    """Send the 'extend your access' notices 14 days and 1 day before an assignment ends."""
    now = now or timezone.now()
    count = 0
    for days in EXPIRY_NOTICE_DAYS:
        due = Assignment.objects.filter(
            state__in=OPEN_ASSIGNMENT_STATES,
            schedule_end__isnull=False,
            schedule_end__gt=now,
            schedule_end__lte=now + timedelta(days=days),
        ).select_related("target", "access_package", "assignment_policy")
        if connection.features.supports_json_field_contains:  # not SQLite: the demo's database
            due = due.exclude(expiring_notice_sent__contains=[days])
        for assignment in due.iterator(chunk_size=500):
            if days in assignment.expiring_notice_sent:
                continue
            with transaction.atomic():
                notify(
                    kind=NotificationKind.ACCESS_EXPIRING,
                    recipients=[assignment.target],
                    key=f"{assignment.pk}:{days}:{assignment.schedule_end.isoformat()}",
                    assignment=assignment,
                    context={"days": days},
                )
                sent = sorted({*assignment.expiring_notice_sent, days})
                Assignment.objects.filter(pk=assignment.pk).update(expiring_notice_sent=sent)
            count += 1
    return count


def stages_send_reminders(*, now=None):
    """Remind approvers half-way to the deadline of a stage nobody has decided yet."""
    from .models import OPEN_STAGE_STATUSES, RequestApprovalStage

    now = now or timezone.now()
    open_stages = RequestApprovalStage.objects.filter(
        status__in=OPEN_STAGE_STATUSES,
        reminder_sent_datetime__isnull=True,
        deadline__gt=now,
        opened_datetime__isnull=False,
    )
    count = 0
    for stage in open_stages.select_related("request").iterator(chunk_size=500):
        # The half-way point in Python: SQLite cannot halve the difference of two datetimes.
        if stage.opened_datetime + (stage.deadline - stage.opened_datetime) / 2 > now:
            continue
        with transaction.atomic():
            claimed = RequestApprovalStage.objects.filter(
                pk=stage.pk, reminder_sent_datetime__isnull=True
            ).update(reminder_sent_datetime=now)
            if not claimed:
                continue
            notify(
                kind=NotificationKind.APPROVAL_REMINDER,
                recipients=[a.user for a in stage.approvers.select_related("user")],
                key=f"{stage.pk}",
                request=stage.request,
                stage=stage,
            )
        count += 1
    return count


# --- Sending ----------------------------------------------------------------------------------


def _context(notification):
    request = notification.request
    stage = notification.stage
    assignment = notification.assignment
    package = (request or assignment).access_package if (request or assignment) else None
    ctx = {
        "n": notification,
        "recipient": notification.recipient,
        "request": request,
        "stage": stage,
        "assignment": assignment,
        "package": package,
        "site_url": settings.SITE_URL,
        **notification.context,
    }
    if request is not None:
        ctx["answers"] = list(request.answers.select_related("question"))
    if stage is not None and notification.kind == NotificationKind.STAGE_APPROVED:
        count = ApprovalStage.objects.filter(policy_id=request.assignment_policy_id).count()
        ctx["stage_count"] = max(count, stage.sequence)
        ctx["is_last_stage"] = stage.sequence >= ctx["stage_count"]
        ctx["next_stage"] = stage.sequence + 1
    if stage is not None and notification.kind in APPROVER_ACTION_KINDS:
        # Only the people asked to decide read a deadline; to the requestor it means nothing.
        ctx["decide_by"] = stage.deadline
        ctx["approve_url"] = decision_url(
            stage=stage, approver=notification.recipient, decision="approve"
        )
        ctx["deny_url"] = decision_url(
            stage=stage, approver=notification.recipient, decision="deny"
        )
    if assignment is not None:
        ctx["extend_url"] = f"{settings.SITE_URL}/assignments/{assignment.pk}/extend/"
    if request is not None:
        ctx["request_url"] = f"{settings.SITE_URL}/requests/{request.pk}/"
    return ctx


def render_notification(notification):
    """(subject, text, html) in the recipient's language when a translation exists."""
    language = notification.recipient.preferred_language or settings.LANGUAGE_CODE
    with translation.override(language):
        ctx = _context(notification)
        base = f"emails/{notification.kind}"
        subject = " ".join(render_to_string(f"{base}.subject.txt", ctx).split())
        text = render_to_string(f"{base}.txt", ctx)
        html = render_to_string(f"{base}.html", ctx)
    return subject, text, html


def notification_claim(*, notification_id, now=None):
    """Claim one notification for sending; returns the claim's lease expiry, or None.

    A row can be claimed while pending, or while sending under a lease that ran out (its
    worker died). The claim is one conditional UPDATE in its own transaction, committed before
    anything is sent: of several workers claiming the same row, exactly one changes it. Call it
    outside any transaction, as the tasks do, so the claim is visible to the others at once.
    """
    now = now or timezone.now()
    lease = now + LEASE
    with transaction.atomic():
        claimed = (
            Notification.objects.filter(pk=notification_id)
            .filter(
                Q(state=Notification.State.PENDING)
                | Q(state=Notification.State.SENDING, lease_expires__lte=now)
            )
            .update(
                state=Notification.State.SENDING,
                lease_expires=lease,
                attempts=F("attempts") + 1,
                modified=now,
            )
        )
    return lease if claimed else None


def notification_send(*, notification_id, now=None):
    """Send one notification: claim it, send it with no transaction open, record the outcome.

    Returns False when there is nothing to send (sent already, or claimed by a live worker).
    Delivery is at least once: a worker killed after the SMTP server accepted the message but
    before the outcome was recorded leaves its claim to run out, and the reconciler sends the
    message again with the same Message-ID, by which the receiving systems de-duplicate it.
    """
    now = now or timezone.now()
    lease = notification_claim(notification_id=notification_id, now=now)
    if lease is None:
        return False
    notification = Notification.objects.select_related(
        "recipient",
        "request__access_package",
        "request__assignment_policy",
        "request__target",
        "request__requestor",
        "stage__reviewed_by",
        "assignment__access_package",
        "assignment__target",
    ).get(pk=notification_id)
    try:
        subject, text, html = render_notification(notification)
        message = EmailMultiAlternatives(
            subject=subject,
            body=text,
            to=[notification.recipient.email],
            headers={"Message-ID": notification.message_id},
            # The lease must outlive the SMTP call, so the call always has a time limit.
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT or SEND_TIMEOUT_SECONDS),
        )
        message.attach_alternative(html, "text/html")
        message.send()
    except Exception as exc:
        _record_failure(notification, lease=lease, error=exc, now=now)
        raise
    _record_sent(notification, subject=subject, now=now)
    return True


def _record_sent(notification, *, subject, now):
    with transaction.atomic():
        # Sent is the truth even if this worker's lease ran out and another one took over.
        Notification.objects.filter(pk=notification.pk).exclude(
            state=Notification.State.SENT
        ).update(
            state=Notification.State.SENT,
            subject=subject[:400],
            sent_datetime=now,
            error="",
            lease_expires=None,
            modified=now,
        )


def _record_failure(notification, *, lease, error, now):
    # Give up after a day, not after a number of tries: an SMTP outage of a few minutes
    # must not fail every email sent during it.
    gave_up = now - notification.created >= GIVE_UP_AFTER
    with transaction.atomic():
        # Only this worker's own claim is released; a newer claim belongs to another worker.
        Notification.objects.filter(
            pk=notification.pk, state=Notification.State.SENDING, lease_expires=lease
        ).update(
            state=Notification.State.FAILED if gave_up else Notification.State.PENDING,
            error=str(error)[:2000],
            lease_expires=None,
            modified=now,
        )


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
    return notification_send(notification_id=notification_id)


@shared_task(acks_late=True)
def send_notifications(notification_ids):
    """Send a batch; one failure does not stop the others, and the reconciler retries it."""
    failed = 0
    for pk in notification_ids:
        try:
            notification_send(notification_id=pk)
        except OSError as exc:
            failed += 1
            logger.warning("Notification %s not sent yet: %s", pk, exc)
    return failed


@shared_task(acks_late=True)
def notify_expiring_assignments():
    return assignments_notify_expiring()


@shared_task(acks_late=True)
def send_approval_reminders():
    return stages_send_reminders()


@shared_task(acks_late=True)
def requeue_pending_notifications():
    return pending_notifications_requeue()


def pending_notifications_requeue(*, older_than=timedelta(minutes=1), now=None):
    """The reconciler's part for email: enqueue notifications still pending after a while,
    and those whose sending worker's lease ran out (it died before recording the outcome)."""
    from entitlements.queue import enqueue

    now = now or timezone.now()
    rows = Notification.objects.filter(
        state=Notification.State.PENDING, modified__lte=now - older_than
    ).values_list("pk", "attempts", "modified")[:5000]
    # Back off per notification: 1, 2, 4 ... minutes after its last try, at most an hour.
    ids = [
        pk
        for pk, attempts, modified in rows
        if modified <= now - min(older_than * 2 ** min(attempts, 6), timedelta(hours=1))
    ]
    ids += Notification.objects.filter(
        state=Notification.State.SENDING, lease_expires__lte=now
    ).values_list("pk", flat=True)[:5000]
    for pk in ids:
        enqueue(send_notification, str(pk))
    return len(ids)


def notifications_retry(*, actor, notifications, now=None):
    """Put failed notifications back in the queue (admin action); returns how many."""
    from entitlements.audit import audit_record

    now = now or timezone.now()
    count = 0
    for notification in notifications:
        with transaction.atomic():
            claimed = Notification.objects.filter(
                pk=notification.pk, state=Notification.State.FAILED
            ).update(state=Notification.State.PENDING, attempts=0, modified=now)
            if not claimed:
                continue
            audit_record(
                action="notification.retry",
                obj=notification,
                actor=actor,
                channel="admin",
                before=Notification.State.FAILED,
                after=Notification.State.PENDING,
                target=notification.recipient,
                now=now,
            )
            enqueue_on_commit(send_notification, str(notification.pk))
        count += 1
    return count
