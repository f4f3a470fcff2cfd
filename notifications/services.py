"""The outbox: recording emails, rendering them, sending each one, and finding them again.

``notify`` writes ``Notification`` rows (one per person and event, made unique by
``dedupe_key``) and enqueues their sending. The row is the truth: if the broker is down, the
reconciler finds pending rows and enqueues them again. Sending claims the row (``sending``,
with a lease, committed), calls SMTP with no transaction open, then records the outcome in a
short transaction. Delivery is at least once, de-duplicated by Message-ID: a worker that dies
between sending and recording leaves a lease that runs out, and the message is sent again
with the same Message-ID.
"""

from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from entitlements.audit import audit_record
from entitlements.models import OPEN_ASSIGNMENT_STATES, Assignment, Channel
from entitlements.queue import enqueue, enqueue_on_commit

from . import kinds
from .links import absolute_url
from .models import Notification, NotificationKind

GIVE_UP_AFTER = timedelta(hours=24)
# A claimed notification belongs to its worker this long; the SMTP call is limited to far less.
LEASE = timedelta(minutes=10)
SEND_TIMEOUT_SECONDS = 60
EXPIRY_NOTICE_DAYS = (14, 1)

# The tasks call these services, so the services name the tasks instead of importing them.
SEND_ONE = "notifications.tasks.send_notification"
SEND_BATCH = "notifications.tasks.send_notifications"


def _task(name):
    return current_app.tasks[name]


def _policy_silenced(kind, request=None, assignment=None):
    policy = (request or assignment).assignment_policy if (request or assignment) else None
    return bool(
        policy and policy.is_assignment_notification_disabled and kinds.get(kind).to_requestor
    )


def notify(*, kind, recipients, key, request=None, assignment=None, about=None, context=None):
    """Record one notification per recipient for one event and enqueue their sending.

    ``key`` names the event (e.g. the stage id and its phase); a second call for the same
    event and person adds nothing, so receivers and schedulers may safely run twice.
    ``about`` is the row of the sending app the email is about (an approval stage); the
    kind's registered context reads it back.
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
                        assignment=assignment,
                        about_id=about.pk if about is not None else None,
                        context=context or {},
                    )
                )
        except IntegrityError:
            continue  # already recorded for this event and person
    for notification in created:
        enqueue_on_commit(_task(SEND_ONE), str(notification.pk))
    return created


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
                enqueue_on_commit(_task(SEND_BATCH), [str(pk) for pk in ids[chunk : chunk + 100]])
        created.extend(ids)
    return created


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


# --- Rendering --------------------------------------------------------------------------------


def _context(notification):
    kind = kinds.get(notification.kind)
    request = notification.request
    assignment = notification.assignment
    package = (request or assignment).access_package if (request or assignment) else None
    ctx = {
        "n": notification,
        "recipient": notification.recipient,
        "request": request,
        "assignment": assignment,
        "package": package,
        "site_url": settings.SITE_URL,
        **notification.context,
    }
    if request is not None:
        ctx["answers"] = list(request.answers.select_related("question"))
    if kind.context is not None:
        ctx.update(kind.context(notification))
    if assignment is not None:
        ctx["extend_url"] = absolute_url("myaccess:assignment_extend", assignment.pk)
    if request is not None:
        ctx["request_url"] = absolute_url("myaccess:request_detail", request.pk)
    if kind.links is not None:
        ctx.update(kind.links(notification, ctx))
    return ctx


def render_notification(notification):
    """(subject, text, html) in the recipient's language when a translation exists."""
    language = notification.recipient.preferred_language or settings.LANGUAGE_CODE
    with translation.override(language):
        ctx = _context(notification)
        base = kinds.get(notification.kind).template
        subject = " ".join(render_to_string(f"{base}.subject.txt", ctx).split())
        text = render_to_string(f"{base}.txt", ctx)
        html = render_to_string(f"{base}.html", ctx)
    return subject, text, html


# --- Sending ----------------------------------------------------------------------------------


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


# --- The reconciler and the admin -------------------------------------------------------------


def pending_notifications_requeue(*, older_than=timedelta(minutes=1), now=None):
    """The reconciler's part for email: enqueue notifications still pending after a while,
    and those whose sending worker's lease ran out (it died before recording the outcome)."""
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
        enqueue(_task(SEND_ONE), str(pk))
    return len(ids)


def notifications_retry(*, actor, notifications, now=None):
    """Put failed notifications back in the queue (admin action); returns how many."""
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
                channel=Channel.ADMIN,
                before=Notification.State.FAILED,
                after=Notification.State.PENDING,
                target=notification.recipient,
                now=now,
            )
            enqueue_on_commit(_task(SEND_ONE), str(notification.pk))
        count += 1
    return count
