"""Access reviews: scheduling instances, reminders, decisions and applying the results.

Lock order: the instance row, then item rows, then assignment rows (then, in the lifecycle,
the grants). A decision holds its instance FOR SHARE while it re-checks the status and writes,
so decisions run side by side; ending a review takes the instance FOR UPDATE to flip it to
Applying, so every decision either commits before the flip (and is applied) or sees the flip
and is refused with ``ENDED_MESSAGE``.
"""

import calendar
import uuid
from datetime import UTC, date, datetime, time, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from directory.models import GroupMembership, User
from entitlements import permissions
from entitlements.audit import audit_bulk, audit_event, audit_record
from entitlements.errors import InvalidRequest, PermissionDenied, StateConflict
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    Assignment,
    AssignmentPolicy,
    Channel,
    PolicySubjectSet,
    RequestType,
    ReviewExpirationBehavior,
    ReviewRecurrence,
    SubjectType,
)
from entitlements.queue import enqueue_on_commit
from entitlements.services import BulkResult, bulk_apply
from entitlements.services.ending import assignments_end
from notifications.models import NotificationKind
from notifications.services import notify

from . import selectors
from .models import (
    REVIEWER_DECISIONS,
    ApplyResult,
    Decision,
    Recommendation,
    ReviewInstance,
    ReviewItem,
    ReviewItemReviewer,
    ReviewStatus,
)

ENDED_MESSAGE = "This review has ended."
REMOVAL_REASON = "Denied in access review"
ACCEPTED_RECOMMENDATION = "Accepted the recommendation."
# The decision helper recommends denial when the user has not signed in for this long.
INACTIVE_AFTER = timedelta(days=30)
ENDING_NOTICE_BEFORE = timedelta(days=1)
BATCH_SIZE = 2000

MONTHS = {
    ReviewRecurrence.MONTHLY: 1,
    ReviewRecurrence.QUARTERLY: 3,
    ReviewRecurrence.SEMI_ANNUALLY: 6,
    ReviewRecurrence.ANNUALLY: 12,
}
Purpose = PolicySubjectSet.Purpose
Kind = ReviewItemReviewer.Kind


# --------------------------------------------------------------------------------------
# Schedule
# --------------------------------------------------------------------------------------


def _add_months(day, months):
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _occurrence(policy, index):
    first = policy.review_start_date
    if policy.review_recurrence == ReviewRecurrence.WEEKLY:
        return first + timedelta(weeks=index)
    return _add_months(first, MONTHS[policy.review_recurrence] * index)


def review_period(*, policy, today):
    """(start, end) of the policy's review occurrence running on ``today``, or None.

    Occurrences start on ``review_start_date`` and then every recurrence period (counted from
    the first date, so a review started on the 31st runs on the last day of shorter months).
    A review lasts ``review_duration_in_days`` but never runs into the next occurrence.
    """
    first = policy.review_start_date
    if not policy.review_is_enabled or first is None or first > today:
        return None
    if policy.review_recurrence == ReviewRecurrence.WEEKLY:
        index = (today - first).days // 7
    else:
        months = (today.year - first.year) * 12 + today.month - first.month
        index = months // MONTHS[policy.review_recurrence]
        if _occurrence(policy, index) > today:
            index -= 1
    start_day, next_day = _occurrence(policy, index), _occurrence(policy, index + 1)
    start = _midnight(start_day)
    end = min(start + timedelta(days=policy.review_duration_in_days), _midnight(next_day))
    return start, end


def _midnight(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def reviews_schedule_due(*, now=None):
    """Create the review instances whose start has come; returns how many were created.

    Safe to run at any time and any number of times: an occurrence that already has its
    instance (the unique policy + start constraint) is left alone, and one that has already
    ended is not started late.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    created = 0
    policies = AssignmentPolicy.objects.filter(
        review_is_enabled=True, review_start_date__lte=today
    ).select_related("access_package")
    for policy in policies:
        period = review_period(policy=policy, today=today)
        if period is None or period[1] <= now:
            continue
        start, end = period
        if ReviewInstance.objects.filter(policy=policy, start=start).exists():
            continue
        instance = review_instance_create(policy=policy, start=start, end=end, now=now)
        if instance is not None:
            created += 1
            _send_notice(instance, "started", now)
    return created


def review_instance_create(*, policy, start, end, now=None, batch_size=BATCH_SIZE):
    """Start one review of ``policy``: the instance, one item per open assignment, and the
    resolved reviewers, in one transaction. Returns None when that review already exists.

    Set-based: assignments are read in keyset batches and items inserted with bulk_create.
    """
    now = now or timezone.now()
    with transaction.atomic():
        instance = ReviewInstance(
            policy=policy,
            access_package_id=policy.access_package_id,
            start=start,
            end=end,
            status=ReviewStatus.IN_PROGRESS,
            created=now,
        )
        try:
            # A scheduler running at the same time waits here for our commit, then gets the
            # conflict and leaves the instance to us.
            with transaction.atomic():
                instance.save(force_insert=True)
        except IntegrityError:
            return None
        resolver = _ReviewerResolver(policy, instance)
        ReviewItemReviewer.objects.bulk_create(resolver.instance_rows())
        cutoff = start - INACTIVE_AFTER
        assignments = Assignment.objects.filter(
            assignment_policy=policy, state__in=OPEN_ASSIGNMENT_STATES
        ).order_by("pk")
        total, last = 0, None
        while True:
            batch = assignments.filter(pk__gt=last) if last else assignments
            rows = list(batch.values_list("pk", *_ReviewerResolver.TARGET_FIELDS)[:batch_size])
            if not rows:
                break
            items, reviewers = [], []
            for assignment_id, target_id, *target in rows:
                last_login = target[1]
                item = ReviewItem(
                    id=uuid.uuid4(),
                    created=now,
                    instance=instance,
                    assignment_id=assignment_id,
                    target_id=target_id,
                    recommendation=Recommendation.DENY
                    if last_login is None or last_login < cutoff
                    else Recommendation.APPROVE,
                    last_sign_in=last_login,
                )
                items.append(item)
                reviewers += resolver.item_rows(item, target_id, target)
            ReviewItem.objects.bulk_create(items, batch_size=batch_size)
            ReviewItemReviewer.objects.bulk_create(reviewers, batch_size=batch_size)
            total += len(rows)
            last = rows[-1][0]
            if len(rows) < batch_size:
                break
        audit_record(
            action="reviewInstance.created",
            obj=instance,
            after=instance.status,
            access_package=policy.access_package,
            data={"items": total, "start": start.isoformat(), "end": end.isoformat()},
            now=now,
        )
    return instance


class _ReviewerResolver:
    """Turns a policy's reviewer subject sets into ReviewItemReviewer rows.

    Specific users and group members review every item (one row per instance); the user
    themselves and their manager are per item; the fallback reviewers step in for an item
    that would otherwise have nobody. Nobody reviews their own access except in self-review.
    """

    # Read with each assignment, so resolving reviewers costs no query per item.
    TARGET_FIELDS = (
        "target_id",
        "target__is_active",
        "target__last_login",
        "target__manager_id",
        "target__manager__is_active",
        "target__manager__manager_id",
        "target__manager__manager__is_active",
    )

    def __init__(self, policy, instance):
        self.instance = instance
        self.self_review = policy.review_is_self_review
        sets = list(policy.subject_sets.all())
        primary = [] if self.self_review else _of(sets, Purpose.PRIMARY_REVIEWER)
        self.everyone = _active_users(primary)
        self.manager_levels = {
            s.manager_level or 1 for s in primary if s.subject_type == SubjectType.TARGET_MANAGER
        }
        self.fallback = _active_users(_of(sets, Purpose.FALLBACK_REVIEWER))

    def instance_rows(self):
        return [
            ReviewItemReviewer(instance=self.instance, user_id=pk, kind=Kind.PRIMARY)
            for pk in sorted(self.everyone)
        ]

    def item_rows(self, item, target_id, target):
        is_active, _login, manager_id, manager_active, second_id, second_active = target
        people = {}
        if self.self_review and is_active:
            people[target_id] = Kind.SELF
        if 1 in self.manager_levels and manager_id and manager_active:
            people[manager_id] = Kind.MANAGER
        if 2 in self.manager_levels and second_id and second_active:
            people[second_id] = Kind.MANAGER
        if not self.self_review:
            people.pop(target_id, None)
        if not people and not (self.everyone - {target_id}):
            people = {pk: Kind.FALLBACK for pk in self.fallback if pk != target_id}
        return [
            ReviewItemReviewer(instance=self.instance, item=item, user_id=pk, kind=kind)
            for pk, kind in people.items()
        ]


def _of(subject_sets, purpose):
    return [s for s in subject_sets if s.purpose == purpose]


def _active_users(subject_sets):
    """Ids of the active users named by singleUser and groupMembers subject sets."""
    user_ids = {s.user_id for s in subject_sets if s.subject_type == SubjectType.SINGLE_USER}
    group_ids = {s.group_id for s in subject_sets if s.subject_type == SubjectType.GROUP_MEMBERS}
    if group_ids:
        user_ids |= set(
            GroupMembership.objects.filter(
                group_id__in=group_ids, role=GroupMembership.Role.MEMBER
            ).values_list("user_id", flat=True)
        )
    user_ids.discard(None)
    if not user_ids:
        return set()
    return set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("pk", flat=True))


# --------------------------------------------------------------------------------------
# Emails: started, midpoint reminder, last reminder
# --------------------------------------------------------------------------------------

# notice -> (email kind, the instance field that records it was handled)
NOTICES = {
    "started": (NotificationKind.REVIEW_STARTED, "started_notice_datetime"),
    "midpoint": (NotificationKind.REVIEW_REMINDER, "midpoint_reminder_datetime"),
    "ending": (NotificationKind.REVIEW_ENDING, "ending_reminder_datetime"),
}


def reviews_send_reminders(*, now=None):
    """Send the emails that are due: the start notice (if the scheduler could not), the
    midpoint reminder and the last reminder a day before the end. Returns how many notices
    (instance and kind) were handled.

    Each notice is claimed once on its instance row and each email is made unique by
    notify's dedupe key, so running this twice sends nothing twice. Reminders go only to
    reviewers who still have something to decide.
    """
    now = now or timezone.now()
    running = ReviewInstance.objects.filter(status=ReviewStatus.IN_PROGRESS, end__gt=now)
    ending = running.filter(
        ending_reminder_datetime__isnull=True, end__lte=now + ENDING_NOTICE_BEFORE
    )
    due = [
        ("started", running.filter(started_notice_datetime__isnull=True)),
        ("midpoint", _past_midpoint(running, now)),
        ("ending", ending),
    ]
    ending_ids = set(ending.values_list("pk", flat=True))
    handled = 0
    for notice, instances in due:
        for instance in instances.select_related("policy", "access_package"):
            # A short review reaching its midpoint and its last day together gets one email.
            send = not (notice == "midpoint" and instance.pk in ending_ids)
            handled += _send_notice(instance, notice, now, send=send)
    return handled


def _past_midpoint(running, now):
    """The running instances past their midpoint and not yet reminded. The midpoint is
    computed in Python: halving a date difference in SQL is not portable to SQLite, and
    only the reviews in progress are read."""
    waiting = running.filter(midpoint_reminder_datetime__isnull=True, start__lte=now)
    ids = [
        pk
        for pk, start, end in waiting.values_list("pk", "start", "end")
        if start + (end - start) / 2 <= now
    ]
    return running.filter(pk__in=ids)


def _send_notice(instance, notice, now, send=True):
    kind, field = NOTICES[notice]
    with transaction.atomic():
        claimed = ReviewInstance.objects.filter(
            pk=instance.pk, **{f"{field}__isnull": True}
        ).update(**{field: now})
        if not claimed:
            return 0
        if not send:
            return 1
        counts = selectors.reviewer_item_counts(
            instance=instance, undecided_only=notice != "started"
        )
        people = User.objects.filter(pk__in=[pk for pk, n in counts.items() if n], is_active=True)
        for person in people:
            notify(
                kind=kind,
                recipients=[person],
                key=f"{instance.pk}",
                context={
                    "count": counts[person.pk],
                    "package_name": instance.access_package.display_name,
                    "policy_name": instance.policy.display_name,
                    "end": instance.end.isoformat(),
                    "self_review": instance.policy.review_is_self_review,
                },
            )
    return 1


# --------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------


def review_item_decide(
    *, actor, item, decision, justification="", now=None, channel=Channel.PORTAL
):
    """Record a reviewer's decision on one item; a later decision replaces it until the end.

    Every decision is audited, so the history survives the replacement.
    """
    now = now or timezone.now()
    justification = (justification or "").strip()
    if decision not in REVIEWER_DECISIONS:
        raise InvalidRequest("Choose approve, deny or don't know.", field="decision")
    instance = item.instance
    if actor is None or not selectors.is_reviewer(user=actor, item=item):
        raise PermissionDenied("You are not a reviewer of this access.")
    if not instance.is_open or now >= instance.end:
        raise StateConflict(ENDED_MESSAGE)
    if instance.policy.review_is_reviewer_justification_required and not justification:
        raise InvalidRequest("Give a reason for your decision.", field="justification")
    with transaction.atomic():
        _lock_instance_for_share(instance.pk, now)
        locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
        before = locked.decision
        locked.decision = decision
        locked.justification = justification
        locked.decided_by = actor
        locked.decided_datetime = now
        locked.save(
            update_fields=[
                "decision",
                "justification",
                "decided_by",
                "decided_datetime",
                "modified",
            ]
        )
        audit_record(
            action=f"reviewItem.{decision[:1].lower()}{decision[1:]}",
            obj=locked,
            actor=actor,
            channel=channel,
            before=before,
            after=decision,
            reason=justification,
            target=item.target,
            access_package=instance.access_package,
            data={"instance": str(instance.pk), "assignment": str(locked.assignment_id)},
            now=now,
        )
    for name in ("decision", "justification", "decided_by", "decided_datetime"):
        setattr(item, name, getattr(locked, name))
    return item


def review_items_decide(
    *, actor, items, decision, justification="", now=None, channel=Channel.PORTAL
):
    """Decide many items the same way; each refused one is listed with the reason."""
    now = now or timezone.now()
    return bulk_apply(
        items,
        lambda item: review_item_decide(
            actor=actor,
            item=item,
            decision=decision,
            justification=justification,
            now=now,
            channel=channel,
        ),
    )


def review_accept_recommendations(
    *, actor, instance, justification="", now=None, channel=Channel.PORTAL
):
    """Decide every item of ``instance`` that waits for ``actor`` as the helper recommends.

    Set-based: one UPDATE per decision and one audit row per item.
    """
    now = now or timezone.now()
    if not instance.policy.review_is_recommendation_enabled:
        raise InvalidRequest("This review gives no recommendations.")
    if not instance.is_open or now >= instance.end:
        raise StateConflict(ENDED_MESSAGE)
    justification = (justification or "").strip() or ACCEPTED_RECOMMENDATION
    with transaction.atomic():
        _lock_instance_for_share(instance.pk, now)
        items = list(
            selectors.reviewable_items(user=actor)
            .filter(instance=instance, decision=Decision.NOT_REVIEWED)
            .exclude(recommendation="")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        for recommendation in Recommendation.values:
            ReviewItem.objects.filter(
                pk__in=[i.pk for i in items if i.recommendation == recommendation]
            ).update(
                decision=recommendation,
                justification=justification,
                decided_by=actor,
                decided_datetime=now,
                modified=now,
            )
        audit_bulk(
            [
                audit_event(
                    action=f"reviewItem.{item.recommendation.lower()}",
                    obj=item,
                    actor=actor,
                    channel=channel,
                    before=item.decision,
                    after=item.recommendation,
                    reason=justification,
                    target=item.target_id,
                    access_package=instance.access_package_id,
                    data={"instance": str(instance.pk), "recommendation": True},
                    now=now,
                )
                for item in items
            ]
        )
    for item in items:
        item.decision = item.recommendation
    return BulkResult(done=items)


def _lock_instance_for_share(pk, now):
    """Hold the instance row FOR SHARE until commit; StateConflict if it no longer runs."""
    table = connection.ops.quote_name(ReviewInstance._meta.db_table)
    end_column = connection.ops.quote_name("end")
    sql = f"SELECT status, {end_column} FROM {table} WHERE id = %s"
    if connection.vendor == "postgresql":
        sql += " FOR SHARE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [ReviewInstance._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None or row[0] != ReviewStatus.IN_PROGRESS:
        raise StateConflict(ENDED_MESSAGE)
    end = row[1]
    if isinstance(end, str):  # SQLite returns text
        end = datetime.fromisoformat(end)
    if timezone.is_naive(end):
        end = timezone.make_aware(end, UTC)  # SQLite stores UTC
    if now >= end:
        raise StateConflict(ENDED_MESSAGE)


# --------------------------------------------------------------------------------------
# Ending a review and applying its results
# --------------------------------------------------------------------------------------


def reviews_complete_due(*, now=None):
    """End the running reviews whose end has come and apply their results; returns how many
    ended. Also finishes applying any review left in Applying (a stop whose task was lost)."""
    now = now or timezone.now()
    due = ReviewInstance.objects.filter(status=ReviewStatus.IN_PROGRESS, end__lte=now)
    ended = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            # Waits behind the decisions holding the row FOR SHARE (SKIP LOCKED would skip a
            # busy review), then re-reads its status: a second run finds it already closed.
            instance = (
                ReviewInstance.objects.select_for_update(of=("self",))
                .select_related("policy", "access_package")
                .filter(pk=pk, status=ReviewStatus.IN_PROGRESS)
                .first()
            )
            if instance is None:
                continue
            _close(instance, actor=None, channel=Channel.SYSTEM, action="ended", now=now)
            ended += 1
    applying = ReviewInstance.objects.filter(status=ReviewStatus.APPLYING)
    for pk in applying.values_list("pk", flat=True):
        review_instance_apply_results(instance_id=pk, now=now)
    return ended


def review_instance_stop(*, actor, instance, now=None, channel=Channel.ADMIN):
    """End a running review early (an administrator's "Stop"); with auto-apply on, its
    results are applied in the background at once."""
    now = now or timezone.now()
    _require_manager(actor, instance, "stop this review")
    if not instance.is_open:
        raise StateConflict("This review has already ended.")
    with transaction.atomic():
        locked = _lock_instance(instance.pk)
        if not locked.is_open:
            raise StateConflict("This review has already ended.")
        locked.stopped_by, locked.stopped_datetime = actor, now
        locked.save(update_fields=["stopped_by", "stopped_datetime", "modified"])
        _close(locked, actor=actor, channel=channel, action="stopped", now=now)
    instance.refresh_from_db()
    return instance


def review_instance_apply(*, actor, instance, now=None, channel=Channel.ADMIN):
    """Apply the results of a completed review whose policy does not apply them itself."""
    now = now or timezone.now()
    _require_manager(actor, instance, "apply this review's results")
    if instance.status != ReviewStatus.COMPLETED:
        raise StateConflict(
            "Only a completed review whose results were not applied can be applied."
        )
    with transaction.atomic():
        locked = _lock_instance(instance.pk)
        if locked.status != ReviewStatus.COMPLETED:
            raise StateConflict("This review changed meanwhile; reload the page.")
        _begin_apply(locked, actor=actor, channel=channel, now=now, before=locked.status)
    instance.refresh_from_db()
    return instance


def _close(instance, *, actor, channel, action, now):
    """Flip a locked running instance to Applying (auto-apply) or Completed."""
    before = instance.status
    if instance.policy.review_is_auto_apply_enabled:
        _begin_apply(instance, actor=actor, channel=channel, now=now, before=before, action=action)
        return
    instance.status = ReviewStatus.COMPLETED
    instance.save(update_fields=["status", "modified"])
    _audit_instance(instance, action, actor, channel, before, now)


def _begin_apply(instance, *, actor, channel, now, before, action="apply"):
    instance.status = ReviewStatus.APPLYING
    instance.applied_by = actor
    instance.save(update_fields=["status", "applied_by", "modified"])
    _audit_instance(instance, action, actor, channel, before, now)
    enqueue_on_commit(_apply_task(), str(instance.pk))


def _apply_task():
    from . import tasks  # tasks import this module

    return tasks.apply_review_results


def review_instance_apply_results(*, instance_id, now=None, batch_size=BATCH_SIZE):
    """Apply an instance in Applying, batch by batch; returns the results counted per kind.

    Denied access ends through the lifecycle (removal request, assignment expired, grants
    waiting for removal, revocation enqueued); items nobody decided follow the policy's
    expiration behaviour. Items are claimed with SKIP LOCKED and marked as they are applied,
    so two runs at once share the work and a run cut short is resumed by the next.
    """
    now = now or timezone.now()
    instance = (
        ReviewInstance.objects.select_related("policy", "applied_by")
        .filter(pk=instance_id, status=ReviewStatus.APPLYING)
        .first()
    )
    if instance is None:
        return None
    behavior = instance.policy.review_expiration_behavior
    actor = instance.applied_by
    pending = ReviewItem.objects.filter(instance_id=instance.pk, apply_result=ApplyResult.NEW)
    last = None
    while True:
        with transaction.atomic():
            # Keyset order: the items already applied in this run are not scanned again.
            batch = pending.filter(pk__gt=last) if last else pending
            rows = list(
                batch.select_for_update(skip_locked=True)
                .order_by("pk")
                .values_list("pk", "assignment_id", "decision", "recommendation")[:batch_size]
            )
            if not rows:
                break
            _apply_batch(rows, behavior=behavior, actor=actor, now=now)
        last = rows[-1][0]
        if len(rows) < batch_size:
            break
    return _finish_apply(instance, now)


def _removes_access(decision, recommendation, behavior):
    if decision == Decision.DENY:
        return True
    if decision != Decision.NOT_REVIEWED:
        return False  # Approve and Don't know keep the access
    if behavior == ReviewExpirationBehavior.REMOVE_ACCESS:
        return True
    return (
        behavior == ReviewExpirationBehavior.ACCEPT_ACCESS_RECOMMENDATION
        and recommendation == Recommendation.DENY
    )


def _apply_batch(rows, *, behavior, actor, now):
    assignment_ids = [row[1] for row in rows]
    open_ids = set(
        Assignment.objects.filter(
            pk__in=assignment_ids, state__in=OPEN_ASSIGNMENT_STATES
        ).values_list("pk", flat=True)
    )
    to_remove = {
        aid
        for _pk, aid, decision, rec in rows
        if aid in open_ids and _removes_access(decision, rec, behavior)
    }
    removed = _remove_assignments(to_remove, actor=actor, now=now)
    results = {result: [] for result in ApplyResult.values}
    for pk, aid, _decision, _rec in rows:
        if aid in removed:
            results[ApplyResult.REMOVED].append(pk)
        elif aid in open_ids and aid not in to_remove:
            results[ApplyResult.KEPT].append(pk)
        else:
            results[ApplyResult.ALREADY_ENDED].append(pk)
    for result, pks in results.items():
        if pks:
            ReviewItem.objects.filter(pk__in=pks).update(
                apply_result=result, applied_datetime=now, modified=now
            )


def _remove_assignments(assignment_ids, *, actor, now):
    """End the open assignments among ``assignment_ids`` as a review removal, set-based;
    returns the ids that ended. Mirrors the lifecycle's single removal for many at once."""
    if not assignment_ids:
        return set()
    return set(
        assignments_end(
            assignment_ids=assignment_ids,
            reason=REMOVAL_REASON,
            now=now,
            actor=actor,
            channel=Channel.SYSTEM if actor is None else Channel.ADMIN,
            request_type=RequestType.SYSTEM_REMOVE if actor is None else RequestType.ADMIN_REMOVE,
            data={"notify": True, "review": True},
            batch=True,
        )
    )


def _finish_apply(instance, now):
    """Mark the instance Applied once no item is left to apply; returns its result counts."""
    with transaction.atomic():
        locked = _lock_instance(instance.pk)
        counts = dict(locked.items.values_list("apply_result").annotate(n=Count("pk")).order_by())
        if locked.status == ReviewStatus.APPLYING and not counts.get(ApplyResult.NEW):
            locked.status = ReviewStatus.APPLIED
            locked.applied_datetime = now
            locked.save(update_fields=["status", "applied_datetime", "modified"])
            _audit_instance(
                locked,
                "applied",
                locked.applied_by,
                Channel.SYSTEM,
                ReviewStatus.APPLYING,
                now,
                counts=counts,
            )
    return counts


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _lock_instance(pk):
    return (
        ReviewInstance.objects.select_for_update(of=("self",))
        .select_related("policy", "access_package")
        .get(pk=pk)
    )


def _require_manager(actor, instance, what):
    catalog_id = instance.access_package.catalog_id
    if actor is None or not permissions.can_manage_assignments(actor, catalog_id):
        raise PermissionDenied(f"Only the catalog's owners and assignment managers may {what}.")


def _audit_instance(instance, action, actor, channel, before, now, **data):
    return audit_record(
        action=f"reviewInstance.{action}",
        obj=instance,
        actor=actor,
        channel=channel,
        before=before,
        after=instance.status,
        access_package=instance.access_package,
        data=data,
        now=now,
    )
