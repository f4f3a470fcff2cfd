"""Assignments: hand-off from an approved request, delivery, removal, extension and expiry.

Lock order, everywhere: the request row (held by the caller of ``request_fulfil``), then the
assignment row, then the per-user grant lock (``delivery.lock_grants_of``), then the add or
removal request of the assignment. Grant rows change only under their assignment's lock.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..approval import approval_steps
from ..audit import audit_bulk
from ..errors import InvalidRequest, PermissionDenied, StateConflict
from ..models import (
    ADD_REQUEST_TYPES,
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    REMOVE_REQUEST_TYPES,
    UPDATE_REQUEST_TYPES,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    AuditEvent,
    Channel,
    GrantState,
    RequestState,
    RequestType,
    ResourceRoleScope,
)
from ..permissions import can_manage_assignments
from ..selectors import Gate, separation_of_duties_conflicts, users_in_scope
from ..signals import (
    assignment_delivered,
    assignment_delivery_failed,
    assignment_ended,
    assignment_extended,
    assignments_ended,
    request_canceled,
    request_denied,
)
from . import bulk_apply
from .delivery import ConnectorError, connector_for, lock_grants_of

logger = logging.getLogger(__name__)

# Requests waiting to be fulfilled; a request already delivering has been.
FULFILLABLE_REQUEST_STATES = [
    RequestState.SUBMITTED,
    RequestState.PENDING_APPROVAL,
    RequestState.SCHEDULED,
]
REVOKE_BATCH_SIZE = 500
REMOVAL_RETRY = timedelta(minutes=30)
_GRANT_FIELDS = ["state", "attempts", "error", "delivered_datetime", "removed_datetime", "modified"]


@dataclass
class DeliveryOutcome:
    """What one delivery or revocation run did to an assignment's grants."""

    assignment_id: object
    state: str = ""
    done: int = 0
    failed: list = field(default_factory=list)  # error messages, one per failed grant

    @property
    def ok(self):
        return not self.failed


# --------------------------------------------------------------------------------------
# Hand-off from the request flow
# --------------------------------------------------------------------------------------


def request_fulfil(*, request, now):
    """Give what an approved (or approval-free) request asks for; returns the assignment.

    Runs inside the caller's transaction, with ``request`` locked. An add request creates the
    assignment and its grants and hands them to delivery on commit; an extension moves the end
    of the existing assignment.
    """
    if request.state not in FULFILLABLE_REQUEST_STATES:
        raise StateConflict(
            _("This request is %(state)s; it cannot be fulfilled now.")
            % {"state": request.get_state_display().lower()}
        )
    with transaction.atomic(savepoint=False):
        if request.request_type in ADD_REQUEST_TYPES:
            return _fulfil_add(request, now)
        if request.request_type in UPDATE_REQUEST_TYPES:
            return _fulfil_extension(request, now)
    raise InvalidRequest(
        _("A %(kind)s request is not fulfilled here.")
        % {"kind": request.get_request_type_display()}
    )


def _fulfil_add(request, now):
    policy = request.assignment_policy
    already = Assignment.objects.filter(
        target_id=request.target_id,
        access_package_id=request.access_package_id,
        state__in=OPEN_ASSIGNMENT_STATES,
    ).exists()
    if already:
        raise StateConflict(
            _("%(name)s already has this access package.") % {"name": request.target.display_name}
        )
    start = request.schedule_start or now
    assignment = Assignment.objects.create(
        access_package_id=request.access_package_id,
        assignment_policy=policy,
        target_id=request.target_id,
        state=AssignmentState.DELIVERING,
        status="Delivering",
        schedule_start=start,
        schedule_end=request.schedule_end or policy.assignment_end(start),
        created=now,
    )
    # Read after the assignment exists: a role being added to the package meanwhile locks the
    # package row, which this INSERT's foreign key waits for (package_role_add).
    role_ids = ResourceRoleScope.objects.filter(
        access_package_id=request.access_package_id
    ).values_list("role_id", flat=True)
    AssignmentResourceRole.objects.bulk_create(
        [
            AssignmentResourceRole(
                assignment=assignment,
                resource_role_id=role_id,
                target_id=request.target_id,
                created=now,
            )
            for role_id in role_ids
        ]
    )
    before = request.state
    request.assignment = assignment
    request.state = RequestState.DELIVERING
    request.status = "Delivering"
    request.save(update_fields=["assignment", "state", "status", "modified"])
    audit_bulk(
        [
            _event("request.fulfilled", request, before=before, after=request.state, now=now),
            _event("assignment.created", assignment, after=assignment.state, now=now, req=request),
        ]
    )
    transaction.on_commit(partial(_enqueue, "deliver_assignment", assignment.pk))
    return assignment


def _fulfil_extension(request, now):
    assignment = (
        Assignment.objects.select_for_update(of=("self",)).filter(pk=request.assignment_id).first()
    )
    if assignment is None or not assignment.is_open:
        # Removed or expired while the extension waited: nothing left to extend.
        audit_bulk([_cancel_event(request, None, now)])
        request.state, request.status = RequestState.CANCELED, "AssignmentEnded"
        request.completed_datetime = now
        request.save(update_fields=["state", "status", "completed_datetime", "modified"])
        transaction.on_commit(
            partial(request_canceled.send, sender=AssignmentRequest, request=request, actor=None)
        )
        return assignment
    old_end = assignment.schedule_end
    assignment.schedule_end = request.schedule_end or request.assignment_policy.assignment_end(now)
    assignment.expiring_notice_sent = []
    assignment.save(update_fields=["schedule_end", "expiring_notice_sent", "modified"])
    before = request.state
    request.state = RequestState.DELIVERED
    request.status = "Delivered"
    request.completed_datetime = now
    request.save(update_fields=["state", "status", "completed_datetime", "modified"])
    audit_bulk(
        [
            _event("request.fulfilled", request, before=before, after=request.state, now=now),
            _event(
                "assignment.extended",
                assignment,
                before=assignment.state,
                after=assignment.state,
                req=request,
                now=now,
                data={"from": _iso(old_end), "to": _iso(assignment.schedule_end)},
            ),
        ]
    )
    transaction.on_commit(
        partial(assignment_extended.send, sender=Assignment, assignment=assignment, request=request)
    )
    return assignment


# --------------------------------------------------------------------------------------
# Delivery and revocation (run by the worker)
# --------------------------------------------------------------------------------------


def assignment_deliver(*, assignment_id, now=None):
    """Grant every waiting or failed grant of an assignment; safe to run twice, or at once.

    The assignment row stays locked while the connectors run: a second run waits and then
    finds nothing left to grant, and a removal waits until it can revoke what was granted.
    Before anything is granted, separation of duties is checked once more (under the user's
    grant lock, so of two incompatible assignments only the first delivered goes through);
    a conflict ends the assignment undelivered and denies its request with the reason.
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _lock_assignment(assignment_id)
        if assignment is None or not assignment.is_open:
            return DeliveryOutcome(assignment_id, state=getattr(assignment, "state", ""))
        lock_grants_of(assignment.target_id)
        grants = list(
            assignment.grants.filter(state__in=HOLDING_GRANT_STATES).select_related(
                "resource_role__resource"
            )
        )
        if not any(g.state == GrantState.DELIVERED for g in grants):
            conflict = _delivery_conflict(assignment)
            if conflict:
                _refuse_delivery(assignment, grants, conflict, now)
                return DeliveryOutcome(assignment.pk, state=assignment.state)
        outcome = DeliveryOutcome(assignment.pk)
        events = []
        waiting = [g for g in grants if g.state in (GrantState.PENDING, GrantState.DELIVERY_FAILED)]
        for grant in waiting:
            before = grant.state
            grant.attempts += 1
            grant.modified = now
            try:
                connector_for(grant.resource_role.resource).grant(
                    grant.resource_role, assignment.target
                )
            except ConnectorError as exc:
                grant.state, grant.error = GrantState.DELIVERY_FAILED, str(exc)
                outcome.failed.append(f"{grant.resource_role}: {exc}")
            else:
                grant.state, grant.error, grant.delivered_datetime = GrantState.DELIVERED, "", now
                outcome.done += 1
            events.append(_grant_event(grant, assignment, before, now))
        if waiting:
            AssignmentResourceRole.objects.bulk_update(waiting, _GRANT_FIELDS)
        state = _delivery_state([g.state for g in grants], GrantState.DELIVERED)
        outcome.state = state
        before = assignment.state
        if state != before:
            assignment.state, assignment.status = state, _status(state)
            assignment.save(update_fields=["state", "status", "modified"])
            events.append(
                _event(f"assignment.{state}", assignment, before=before, after=state, now=now)
            )
        request = _settle_request(assignment, ADD_REQUEST_TYPES, state, events, now)
        audit_bulk(events)
        if state != before and state == AssignmentState.DELIVERED:
            transaction.on_commit(
                partial(
                    assignment_delivered.send,
                    sender=Assignment,
                    assignment=assignment,
                    request=request,
                )
            )
        elif state != before:
            transaction.on_commit(
                partial(assignment_delivery_failed.send, sender=Assignment, assignment=assignment)
            )
    return outcome


def assignments_deliver(*, assignment_ids, now=None):
    """Deliver many assignments, each in its own transaction (a role added to a package)."""
    outcome = DeliveryOutcome(None)
    for assignment_id in assignment_ids:
        one = assignment_deliver(assignment_id=assignment_id, now=now)
        outcome.done += one.done
        outcome.failed += one.failed
    return outcome


def _delivery_conflict(assignment):
    """Why delivering ``assignment`` would break separation of duties, or ""."""
    conflicts = separation_of_duties_conflicts(
        user=assignment.target,
        access_package=assignment.access_package,
        request_states=[],
        delivered_only=True,
    )
    return Gate(name=assignment.target.display_name, conflicts=conflicts.held).conflict_message


def _refuse_delivery(assignment, grants, reason, now):
    """End a locked assignment that delivered nothing, and deny its add request.

    The request is locked with SKIP LOCKED (the lock order is request before assignment): one
    being canceled right now is left to the cancellation.
    """
    events = []
    request = (
        AssignmentRequest.objects.select_for_update(skip_locked=True)
        .filter(
            assignment=assignment,
            request_type__in=ADD_REQUEST_TYPES,
            state__in=OPEN_REQUEST_STATES,
        )
        .first()
    )
    if request is not None:
        before = request.state
        request.state, request.status = RequestState.DENIED, "Denied"
        request.completed_datetime = now
        request.save(update_fields=["state", "status", "completed_datetime", "modified"])
        events.append(
            _event(
                "request.deny",
                request,
                before=before,
                after=request.state,
                reason=reason,
                now=now,
            )
        )
        transaction.on_commit(
            partial(
                request_denied.send,
                sender=AssignmentRequest,
                request=request,
                stage=None,
                reason=reason,
            )
        )
    # Nothing was granted, so nothing needs revoking.
    AssignmentResourceRole.objects.filter(pk__in=[g.pk for g in grants]).update(
        state=GrantState.REMOVED, error="", removed_datetime=now, modified=now
    )
    audit_bulk(events)
    _end(
        assignment,
        actor=None,
        channel=Channel.SYSTEM,
        request_type=None,
        reason=reason,
        notify=False,
        now=now,
    )


def assignment_revoke(*, assignment_id, now=None):
    """Take away the grants of an ended assignment that no other open assignment still needs.

    A role another open assignment of the same user also gives (two packages giving one
    group) is marked removed without calling the connector, so the user keeps it.
    """
    outcome = assignments_revoke(assignment_ids=[assignment_id], now=now)
    outcome.assignment_id = assignment_id
    return outcome


def assignments_revoke(*, assignment_ids, now=None, batch_size=REVOKE_BATCH_SIZE):
    """Revoke the grants of many ended assignments: set-based, one transaction per batch."""
    now = now or timezone.now()
    outcome = DeliveryOutcome(None)
    ids = sorted({str(pk) for pk in assignment_ids})
    for start in range(0, len(ids), batch_size):
        _revoke_batch(ids[start : start + batch_size], now, outcome)
    return outcome


def _save_revoked(grants, now):
    """Write the outcome of a batch with one UPDATE per outcome (a bulk_update's CASE over
    thousands of rows is far slower): shared, removed, and failed per error."""
    groups = defaultdict(list)
    for grant in grants:
        tried = not grant.shared
        groups[(grant.state, grant.error, tried)].append(grant.pk)
    for (state, error, tried), pks in groups.items():
        fields = {"state": state, "error": error, "modified": now}
        if state == GrantState.REMOVED:
            fields["removed_datetime"] = now
        if tried:
            fields["attempts"] = F("attempts") + 1
        AssignmentResourceRole.objects.filter(pk__in=pks).update(**fields)


def _revoke_batch(ids, now, outcome):
    with transaction.atomic():
        # Assignment rows first, in id order, then the users' grant locks (sorted).
        assignments = {
            a.pk: a
            for a in Assignment.objects.select_for_update(of=("self",))
            .select_related("target")
            .filter(pk__in=ids)
            .order_by("pk")
        }
        grants = list(
            AssignmentResourceRole.objects.filter(
                assignment_id__in=list(assignments),
                state__in=[GrantState.PENDING_REMOVAL, GrantState.REMOVAL_FAILED],
            )
            .select_related("resource_role__resource")
            .order_by("pk")
        )
        events = []
        if grants:
            lock_grants_of(*{g.target_id for g in grants})
            needed = _roles_needed_elsewhere({g.target_id for g in grants})
            to_revoke = defaultdict(list)
            for grant in grants:
                grant.before, grant.modified = grant.state, now
                grant.shared = (grant.target_id, _role_key(grant.resource_role)) in needed
                if grant.shared:
                    grant.state, grant.error, grant.removed_datetime = GrantState.REMOVED, "", now
                else:
                    grant.attempts += 1
                    to_revoke[grant.resource_role_id].append(grant)
            for role_grants in to_revoke.values():
                role = role_grants[0].resource_role
                try:
                    connector_for(role.resource).revoke_many(
                        role, [assignments[g.assignment_id].target for g in role_grants]
                    )
                except ConnectorError as exc:
                    for grant in role_grants:
                        grant.state, grant.error = GrantState.REMOVAL_FAILED, str(exc)
                    outcome.failed.append(f"{role} for {len(role_grants)} user(s): {exc}")
                else:
                    for grant in role_grants:
                        grant.state, grant.error, grant.removed_datetime = (
                            GrantState.REMOVED,
                            "",
                            now,
                        )
            _save_revoked(grants, now)
            for grant in grants:
                outcome.done += grant.state == GrantState.REMOVED
                events.append(
                    _grant_event(
                        grant,
                        assignments[grant.assignment_id],
                        grant.before,
                        now,
                        data={"shared": grant.shared},
                    )
                )
        _settle_removal_requests(assignments, events, now)
        audit_bulk(events)
        if len(assignments) == 1:
            outcome.state = next(iter(assignments.values())).state


def _settle_removal_requests(assignments, events, now):
    """Move the removal requests of these ended assignments to the outcome of revocation."""
    ended = [pk for pk, a in assignments.items() if a.state == AssignmentState.EXPIRED]
    requests = list(
        AssignmentRequest.objects.select_for_update()
        .filter(
            assignment_id__in=ended,
            request_type__in=REMOVE_REQUEST_TYPES,
            state__in=[
                RequestState.DELIVERING,
                RequestState.DELIVERY_FAILED,
                RequestState.PARTIALLY_DELIVERED,
            ],
        )
        .order_by("pk")
    )
    if not requests:
        return
    states = defaultdict(list)
    for assignment_id, state in AssignmentResourceRole.objects.filter(
        assignment_id__in=[r.assignment_id for r in requests]
    ).values_list("assignment_id", "state"):
        states[assignment_id].append(state)
    changed = []
    for request in requests:
        state = _delivery_state(states[request.assignment_id], GrantState.REMOVED)
        if state == request.state:
            continue
        events.append(
            _event(f"request.{state}", request, before=request.state, after=state, now=now)
        )
        request.state, request.status, request.modified = state, _status(state), now
        if state == RequestState.DELIVERED:
            request.completed_datetime = now
        changed.append(request)
    AssignmentRequest.objects.bulk_update(
        changed, ["state", "status", "completed_datetime", "modified"]
    )


def assignment_reprocess(*, actor, assignment, channel, now=None):
    """Deliver again the grants that failed (the admin's "Reprocess")."""
    now = now or timezone.now()
    _require_admin(actor, assignment.access_package, _("reprocess this assignment"))
    retryable = [AssignmentState.DELIVERY_FAILED, AssignmentState.PARTIALLY_DELIVERED]
    if assignment.state not in retryable:
        raise StateConflict(
            _(
                "Only an assignment whose delivery failed, fully or partly, can be "
                "reprocessed; this one is %(state)s."
            )
            % {"state": assignment.get_state_display().lower()}
        )
    with transaction.atomic():
        locked = _lock_assignment(assignment.pk)
        if locked.state not in retryable:
            raise StateConflict(_("This assignment changed meanwhile; reload the page."))
        before = locked.state
        locked.state, locked.status = AssignmentState.DELIVERING, "Delivering"
        locked.save(update_fields=["state", "status", "modified"])
        audit_bulk(
            [
                _event(
                    "assignment.reprocessed",
                    locked,
                    actor=actor,
                    channel=channel,
                    before=before,
                    after=locked.state,
                    now=now,
                )
            ]
        )
        transaction.on_commit(partial(_enqueue, "deliver_assignment", locked.pk))
    assignment.refresh_from_db()
    return assignment


# --------------------------------------------------------------------------------------
# Ending assignments
# --------------------------------------------------------------------------------------


def assignment_remove(*, actor, assignment, channel, reason="", notify=None, now=None):
    """End an assignment now, by its holder or an administrator; returns the removal request.

    The holder may remove their own access when the policy allows it (a userRemove request);
    a superuser, catalog owner or assignment manager may remove anyone's (adminRemove), which
    tells the user only when ``notify`` is true. The system (``actor`` None) uses systemRemove.
    """
    now = now or timezone.now()
    request_type = _removal_type(actor, assignment)
    if not assignment.is_open:
        raise StateConflict(_("This access has already ended."))
    if notify is None:
        notify = request_type != RequestType.ADMIN_REMOVE
    with transaction.atomic():
        locked = _lock_assignment(assignment.pk)
        if not locked.is_open:
            raise StateConflict(_("This access has already ended."))
        request = _end(
            locked,
            actor=actor,
            channel=channel,
            request_type=request_type,
            reason=reason,
            notify=notify,
            now=now,
        )
    assignment.refresh_from_db()
    return request


def assignments_remove(*, actor, assignments, channel, reason="", notify=False, now=None):
    """Remove many assignments; each refused one is listed with the reason, the others end."""
    return bulk_apply(
        assignments,
        lambda assignment: assignment_remove(
            actor=actor,
            assignment=assignment,
            channel=channel,
            reason=reason,
            notify=notify,
            now=now,
        ),
    )


def assignment_expire(*, assignment_id, now=None):
    """End one assignment whose end date has come; returns it, or None when nothing was due."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _lock_assignment(assignment_id)
        if (
            assignment is None
            or not assignment.is_open
            or assignment.schedule_end is None
            or assignment.schedule_end > now
        ):
            return None
        _end(
            assignment,
            actor=None,
            channel=Channel.SYSTEM,
            request_type=None,
            reason=_("The assignment reached its end date."),
            notify=True,
            now=now,
        )
    return assignment


def assignments_expire_due(*, now=None, batch_size=1000):
    """End every open assignment whose end date has come; returns how many ended.

    Set-based, one transaction per batch: rows another transaction holds (a delivery, a
    removal) are skipped and picked up on the next run, so this job never waits on them.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            rows = list(
                Assignment.objects.select_for_update(skip_locked=True)
                .filter(state__in=OPEN_ASSIGNMENT_STATES, schedule_end__lte=now)
                .order_by("schedule_end")
                .values_list(*END_MANY_FIELDS)[:batch_size]
            )
            if not rows:
                break
            assignments_end_locked(
                rows=rows, reason=_("The assignment reached its end date."), now=now
            )
        total += len(rows)
        if len(rows) < batch_size:
            break
    return total


# What assignments_end_locked needs of each row, in this order.
END_MANY_FIELDS = ("id", "state", "target_id", "access_package_id", "assignment_policy_id")


def assignments_end_locked(
    *, rows, reason, now, actor=None, channel=Channel.SYSTEM, request_type=None, data=None
):
    """End many open assignments at once, inside the caller's transaction, their rows locked.

    ``rows`` are tuples of END_MANY_FIELDS. Without ``request_type`` they simply expired;
    with one (a review's removal), each gets its removal request. Set-based: a few UPDATEs,
    one INSERT of audit events; on commit one ``assignments_ended`` signal for the batch and
    one revocation task. Returns the ids that ended.
    """
    ids = [row[0] for row in rows]
    if not ids:
        return ids
    Assignment.objects.filter(id__in=ids).update(
        state=AssignmentState.EXPIRED,
        status="Removed" if request_type else "Expired",
        expired_datetime=now,
        modified=now,
    )
    AssignmentResourceRole.objects.filter(
        assignment_id__in=ids, state__in=HOLDING_GRANT_STATES
    ).update(state=GrantState.PENDING_REMOVAL, attempts=0, error="", modified=now)
    requests = [None] * len(rows)
    if request_type:
        requests = AssignmentRequest.objects.bulk_create(
            [
                AssignmentRequest(
                    access_package_id=package_id,
                    assignment_policy_id=policy_id,
                    requestor=actor,
                    target_id=target_id,
                    assignment_id=pk,
                    request_type=request_type,
                    state=RequestState.DELIVERING,
                    status="Delivering",
                    justification=reason,
                    created=now,
                )
                for pk, _state, target_id, package_id, policy_id in rows
            ],
            batch_size=1000,
        )
    events = [
        AuditEvent(
            created=now,
            actor=actor,
            actor_display=str(actor) if actor else "",
            channel=channel,
            action="assignment.removed" if request_type else "assignment.expired",
            object_type=Assignment._meta.label,
            object_id=str(pk),
            before=state,
            after=AssignmentState.EXPIRED,
            reason=reason,
            target_id=target_id,
            access_package_id=package_id,
            request=request,
            data=data or {},
        )
        for (pk, state, target_id, package_id, _policy), request in zip(rows, requests, strict=True)
    ]
    canceled = extensions_cancel_for_ended(ids, actor, events, now)
    audit_bulk(events)
    transaction.on_commit(partial(_after_bulk_end, ids, canceled, reason))
    return ids


def assignments_remove_ineligible(*, now=None):
    """End the assignments whose holder is no longer eligible; returns how many ended.

    Eligibility is lost when the account is disabled or, except for direct assignments by
    an administrator, when the user has left the policy's scope. Only policies that remove
    access on leaving the scope take part. The first run that sees the loss records when; the
    assignment ends once the policy's grace period has passed, and regaining eligibility
    before then clears the record.
    """
    now = now or timezone.now()
    removed = 0
    policies = AssignmentPolicy.objects.filter(
        remove_access_when_target_leaves_allowed_targets=True,
        assignments__state__in=OPEN_ASSIGNMENT_STATES,
    ).distinct()
    for policy in policies:
        removed += _remove_ineligible_of(policy, now)
    return removed


def _remove_ineligible_of(policy, now):
    open_assignments = Assignment.objects.filter(
        assignment_policy=policy, state__in=OPEN_ASSIGNMENT_STATES
    )
    in_scope = set(
        users_in_scope(policy)
        .filter(pk__in=open_assignments.values("target_id"))
        .values_list("pk", flat=True)
    )
    rows = open_assignments.annotate(
        admin_added=Exists(
            AssignmentRequest.objects.filter(
                assignment=OuterRef("pk"), request_type=RequestType.ADMIN_ADD
            )
        )
    ).values_list(
        "id", "target_id", "target__is_active", "admin_added", "eligibility_lost_datetime"
    )
    lost_now, regained, due = [], [], []
    for pk, target_id, is_active, admin_added, lost_at in rows:
        lost = not is_active or (not admin_added and target_id not in in_scope)
        if lost and lost_at is None:
            lost_now.append((pk, target_id))
            lost_at = now
        elif not lost and lost_at is not None:
            regained.append((pk, target_id))
        if lost and lost_at + policy.grace_period_before_access_removal <= now:
            due.append(pk)
    _mark_eligibility(policy, lost_now, now, now, "assignment.eligibilityLost")
    _mark_eligibility(policy, regained, None, now, "assignment.eligibilityRegained")
    removed = 0
    for pk in due:
        with transaction.atomic():
            assignment = _lock_assignment(pk)
            if assignment is None or not assignment.is_open:
                continue
            _end(
                assignment,
                actor=None,
                channel=Channel.SYSTEM,
                request_type=RequestType.SYSTEM_REMOVE,
                reason=_("The user is no longer eligible for this access package."),
                notify=True,
                now=now,
            )
            removed += 1
    return removed


def _mark_eligibility(policy, rows, value, now, action):
    if not rows:
        return
    with transaction.atomic():
        Assignment.objects.filter(id__in=[pk for pk, _t in rows]).update(
            eligibility_lost_datetime=value, modified=now
        )
        audit_bulk(
            [
                AuditEvent(
                    created=now,
                    channel=Channel.SYSTEM,
                    action=action,
                    object_type=Assignment._meta.label,
                    object_id=str(pk),
                    target_id=target_id,
                    access_package_id=policy.access_package_id,
                    data={"grace_period": str(policy.grace_period_before_access_removal)},
                )
                for pk, target_id in rows
            ]
        )


# --------------------------------------------------------------------------------------
# Reconciliation: nothing lost with the broker
# --------------------------------------------------------------------------------------


def assignments_reconcile(*, now=None, stuck_after=None):
    """Enqueue again the deliveries and revocations still waiting after ``stuck_after``.

    Every piece of due work can be found from rows: an open assignment still delivering, or
    an ended one with grants waiting for removal. Returns (deliveries, revocations) enqueued.
    """
    from django.conf import settings

    now = now or timezone.now()
    cutoff = now - (stuck_after or settings.DELIVERY_STUCK_AFTER)
    delivering = list(
        Assignment.objects.filter(
            state=AssignmentState.DELIVERING, modified__lt=cutoff
        ).values_list("id", flat=True)
    )
    # Failed removals are retried too, less often: access must not outlive its assignment.
    retry_failed_before = now - max(stuck_after or settings.DELIVERY_STUCK_AFTER, REMOVAL_RETRY)
    revoking = list(
        AssignmentResourceRole.objects.filter(
            Q(state=GrantState.PENDING_REMOVAL, modified__lt=cutoff)
            | Q(state=GrantState.REMOVAL_FAILED, modified__lt=retry_failed_before)
        )
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    # Grants waiting on an assignment already delivered: a role added to its package.
    delivering += list(
        AssignmentResourceRole.objects.filter(
            state=GrantState.PENDING,
            modified__lt=cutoff,
            assignment__state__in=OPEN_ASSIGNMENT_STATES,
        )
        .exclude(assignment_id__in=delivering)
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    for pk in delivering:
        _enqueue("deliver_assignment", pk)
    for pk in revoking:
        _enqueue("revoke_assignment_grants", pk)
    return len(delivering), len(revoking)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _end(assignment, *, actor, channel, request_type, reason, notify, now):
    """End a locked open assignment; create its removal request unless it simply expired."""
    before = assignment.state
    events = []
    request = None
    if request_type is not None:
        request = AssignmentRequest.objects.create(
            access_package_id=assignment.access_package_id,
            assignment_policy_id=assignment.assignment_policy_id,
            requestor=actor,
            target_id=assignment.target_id,
            assignment=assignment,
            request_type=request_type,
            state=RequestState.DELIVERING,
            status="Delivering",
            justification=reason,
            created=now,
        )
        events.append(
            _event(
                "request.submitted",
                request,
                actor=actor,
                channel=channel,
                after=request.state,
                reason=reason,
                now=now,
            )
        )
    assignment.state = AssignmentState.EXPIRED
    assignment.status = "Removed" if request_type else "Expired"
    assignment.expired_datetime = now
    assignment.save(update_fields=["state", "status", "expired_datetime", "modified"])
    assignment.grants.filter(state__in=HOLDING_GRANT_STATES).update(
        state=GrantState.PENDING_REMOVAL, attempts=0, error="", modified=now
    )
    events.append(
        _event(
            "assignment.removed" if request_type else "assignment.expired",
            assignment,
            actor=actor,
            channel=channel,
            before=before,
            after=assignment.state,
            reason=reason,
            req=request,
            now=now,
            data={"notify": notify},
        )
    )
    canceled = extensions_cancel_for_ended([assignment.pk], actor, events, now)
    audit_bulk(events)

    def after_commit():
        assignment_ended.send(
            sender=Assignment, assignment=assignment, reason=reason, notify=notify
        )
        for extension in canceled:
            request_canceled.send(sender=AssignmentRequest, request=extension, actor=actor)
        _enqueue("revoke_assignment_grants", assignment.pk)

    transaction.on_commit(after_commit)
    return request


def extensions_cancel_for_ended(assignment_ids, actor, events, now):
    """Cancel the open extension requests of assignments that just ended, closing their stages.

    Lock order is request before assignment (an approval locks its request, then fulfils), so
    here, holding the assignment, a request being decided right now is skipped: its fulfilment
    will find the assignment ended and cancel it then.
    """
    _close_undelivered_add_requests(assignment_ids, actor, events, now)
    extensions = list(
        AssignmentRequest.objects.select_for_update(skip_locked=True)
        .filter(
            assignment_id__in=assignment_ids,
            request_type__in=UPDATE_REQUEST_TYPES,
            state__in=OPEN_REQUEST_STATES,
        )
        .order_by("pk")
    )
    if not extensions:
        return extensions
    for extension in extensions:
        events.append(_cancel_event(extension, actor, now))
        extension.state, extension.status = RequestState.CANCELED, "AssignmentEnded"
        extension.completed_datetime = now
        extension.modified = now
    AssignmentRequest.objects.bulk_update(
        extensions, ["state", "status", "completed_datetime", "modified"]
    )
    approval_steps().close_open_stages(requests=extensions, now=now)
    return extensions


def _close_undelivered_add_requests(assignment_ids, actor, events, now):
    """An assignment that ended before its delivery ran leaves its add request delivering, an
    open state that would block every new request for the package: close it as canceled."""
    stuck = list(
        AssignmentRequest.objects.select_for_update(skip_locked=True)
        .filter(
            assignment_id__in=assignment_ids,
            request_type__in=ADD_REQUEST_TYPES,
            state=RequestState.DELIVERING,
        )
        .order_by("pk")
    )
    for request in stuck:
        events.append(
            _event(
                "request.canceled",
                request,
                actor=actor,
                before=request.state,
                after=RequestState.CANCELED,
                reason=_("The access ended before it was delivered."),
                now=now,
            )
        )
        request.state, request.status = RequestState.CANCELED, "AssignmentEnded"
        request.completed_datetime = now
        request.modified = now
    if stuck:
        AssignmentRequest.objects.bulk_update(
            stuck, ["state", "status", "completed_datetime", "modified"]
        )


def _cancel_event(extension, actor, now):
    return _event(
        "request.canceled",
        extension,
        actor=actor,
        before=extension.state,
        after=RequestState.CANCELED,
        reason=_("The access it would extend has ended."),
        now=now,
    )


def _after_bulk_end(ids, canceled, reason):
    assignments_ended.send(sender=Assignment, assignment_ids=ids, reason=reason)
    for extension in canceled:
        request_canceled.send(sender=AssignmentRequest, request=extension, actor=None)
    _enqueue("revoke_grants_batch", [str(pk) for pk in ids])


def _settle_request(assignment, request_types, state, events, now):
    """Move the assignment's add (or removal) request to the outcome of delivery."""
    request = (
        AssignmentRequest.objects.select_for_update()
        .filter(assignment=assignment, request_type__in=request_types)
        .exclude(state__in=[RequestState.DENIED, RequestState.CANCELED])
        .order_by("-created")
        .first()
    )
    if request is None or request.state == state:
        return request
    if request.state not in (
        RequestState.DELIVERING,
        RequestState.DELIVERY_FAILED,
        RequestState.PARTIALLY_DELIVERED,
    ):
        return request
    before = request.state
    request.state, request.status = state, _status(state)
    if state == RequestState.DELIVERED:
        request.completed_datetime = now
    request.save(update_fields=["state", "status", "completed_datetime", "modified"])
    events.append(_event(f"request.{state}", request, before=before, after=state, now=now))
    return request


def _delivery_state(grant_states, done_state):
    """delivered when every grant is done, deliveryFailed when none is, else partial."""
    done = sum(1 for s in grant_states if s == done_state)
    if done == len(grant_states):
        return AssignmentState.DELIVERED
    if done == 0:
        return AssignmentState.DELIVERY_FAILED
    return AssignmentState.PARTIALLY_DELIVERED


def _roles_needed_elsewhere(target_ids):
    """(user id, role origin) of the roles these users' open assignments give or are giving."""
    rows = AssignmentResourceRole.objects.filter(
        target_id__in=list(target_ids),
        state__in=HOLDING_GRANT_STATES,
        assignment__state__in=OPEN_ASSIGNMENT_STATES,
    ).values_list(
        "target_id",
        "resource_role__resource__origin_system",
        "resource_role__resource__origin_id",
        "resource_role__origin_id",
    )
    return {(target_id, tuple(key)) for target_id, *key in rows}


def _role_key(role):
    # By origin, not by row: two catalogs may each hold a resource for the same group.
    return (role.resource.origin_system, role.resource.origin_id, role.origin_id)


def _lock_assignment(pk):
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("target", "access_package", "assignment_policy")
        .filter(pk=pk)
        .first()
    )


def may_administer_assignments(user, access_package):
    """Superusers, and those the catalog's admin roles let act on its assignments."""
    return can_manage_assignments(user, access_package.catalog)


def _require_admin(actor, access_package, what):
    if actor is not None and not may_administer_assignments(actor, access_package):
        raise PermissionDenied(
            _("Only the catalog's owners and assignment managers may %(what)s.") % {"what": what},
            code="forbidden",
        )


def _removal_type(actor, assignment):
    if actor is None:
        return RequestType.SYSTEM_REMOVE
    if actor.pk == assignment.target_id and (
        assignment.assignment_policy.enable_targets_to_self_remove_access
    ):
        return RequestType.USER_REMOVE
    if may_administer_assignments(actor, assignment.access_package):
        return RequestType.ADMIN_REMOVE
    if actor.pk == assignment.target_id:
        raise PermissionDenied(
            _(
                "This access package's policy does not let you remove your own access; ask "
                "the catalog's owner."
            )
        )
    raise PermissionDenied(
        _("Only the catalog's owners and assignment managers may remove someone else's access.")
    )


def _status(state):
    return state[:1].upper() + state[1:]


def _iso(value):
    return value.isoformat() if value else None


def _event(
    action,
    obj,
    *,
    actor=None,
    channel=Channel.SYSTEM,
    before="",
    after="",
    reason="",
    req=None,
    data=None,
    now,
):
    """An unsaved audit event for a request or an assignment, for audit_bulk."""
    request = obj if isinstance(obj, AssignmentRequest) else req
    return AuditEvent(
        created=now,
        actor=actor,
        actor_display=str(actor) if actor else "",
        channel=channel,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        before=before or "",
        after=after or "",
        reason=reason or "",
        target_id=obj.target_id,
        access_package_id=obj.access_package_id,
        request=request,
        data=data or {},
    )


def _grant_event(grant, assignment, before, now, data=None):
    return AuditEvent(
        created=now,
        channel=Channel.SYSTEM,
        action=f"grant.{grant.state}",
        object_type=AssignmentResourceRole._meta.label,
        object_id=str(grant.pk),
        before=before,
        after=grant.state,
        reason=grant.error,
        target_id=assignment.target_id,
        access_package_id=assignment.access_package_id,
        data={
            "assignment": str(assignment.pk),
            "role": str(grant.resource_role),
            "attempts": grant.attempts,
            **(data or {}),
        },
    )


def _enqueue(task_name, *args):
    from entitlements import tasks  # tasks import this module
    from entitlements.queue import enqueue

    # A broker outage must not fail the committed change: the reconciler re-enqueues.
    enqueue(getattr(tasks, task_name), *(str(a) if not isinstance(a, list) else a for a in args))
