"""Ending assignments: removal, expiry and every other end, through one set-based path.

``assignments_end`` is the only place an assignment ends. It locks the rows itself (in id
order, or skipping the locked ones for background jobs), ends the open ones with a few
UPDATEs, creates their removal requests, cancels their open extension requests (and, through
``entitlements.approval``, those requests' waiting stages), writes the audit events in one
INSERT and, on commit, tells the receivers and enqueues the revocation.
"""

from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..approval import approval_steps
from ..audit import audit_bulk, audit_event
from ..errors import PermissionDenied, StateConflict
from ..extension import extension_steps
from ..models import (
    ADD_REQUEST_TYPES,
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    UPDATE_REQUEST_TYPES,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    Channel,
    GrantState,
    RequestState,
    RequestType,
)
from ..permissions import can_manage_assignments
from ..signals import assignment_ended, assignments_ended, request_canceled
from . import bulk_apply, common
from .common import lifecycle_event, status_of

# The Graph statuses of an ended assignment and of the requests its end closes.
REMOVED, EXPIRED, ASSIGNMENT_ENDED = "Removed", "Expired", "AssignmentEnded"
# What assignments_end reads of each row it locks, in this order.
END_FIELDS = ("id", "state", "target_id", "access_package_id", "assignment_policy_id")


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
    ended = assignments_end(
        assignment_ids=[assignment.pk],
        actor=actor,
        channel=channel,
        request_type=request_type,
        reason=reason,
        notify=notify,
        now=now,
    )
    if not ended:
        raise StateConflict(_("This access has already ended."))
    assignment.refresh_from_db()
    return ended[assignment.pk]


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


def assignments_expire_due(*, now=None, batch_size=1000):
    """End every open assignment whose end date has come; returns how many ended.

    Set-based, one transaction per batch: rows another transaction holds (a delivery, a
    removal) are skipped and picked up on the next run, so this job never waits on them.
    """
    now = now or timezone.now()
    total = 0
    while True:
        due = list(
            Assignment.objects.filter(state__in=OPEN_ASSIGNMENT_STATES, schedule_end__lte=now)
            .order_by("schedule_end")
            .values_list("id", flat=True)[:batch_size]
        )
        if not due:
            break
        ended = assignments_end(
            assignment_ids=due,
            due_by=now,
            skip_locked=True,
            batch=True,
            reason=_("The assignment reached its end date."),
            data={},
            now=now,
        )
        total += len(ended)
        if len(due) < batch_size or not ended:
            break
    return total


def assignments_end(
    *,
    assignment_ids,
    reason,
    now,
    actor=None,
    channel=Channel.SYSTEM,
    request_type=None,
    notify=True,
    data=None,
    due_by=None,
    skip_locked=False,
    batch=False,
):
    """End the open assignments among ``assignment_ids``; returns {id: removal request}.

    Locks the rows itself, in id order (``skip_locked``: rows another transaction holds are
    left for the next run), inside its own transaction or the caller's. ``due_by``: only those
    whose end date has come by then. Without ``request_type`` they simply expired; with one,
    each gets its removal request. On commit, ``assignment_ended`` is sent for each (or, with
    ``batch``, ``assignments_ended`` once) and their revocation is enqueued.
    """
    with transaction.atomic():
        locked = Assignment.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        locked = locked.filter(pk__in=list(assignment_ids), state__in=OPEN_ASSIGNMENT_STATES)
        if due_by is not None:
            locked = locked.filter(schedule_end__lte=due_by)
        rows = list(locked.order_by("pk").values_list(*END_FIELDS))
        if not rows:
            return {}
        ids = [row[0] for row in rows]
        Assignment.objects.filter(id__in=ids).update(
            state=AssignmentState.EXPIRED,
            status=REMOVED if request_type else EXPIRED,
            expired_datetime=now,
            modified=now,
        )
        # A grant a worker is delivering right now keeps its claim: revocation waits for it.
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
                        status=status_of(RequestState.DELIVERING),
                        justification=reason,
                        created=now,
                    )
                    for pk, _state, target_id, package_id, policy_id in rows
                ],
                batch_size=1000,
            )
        events = [
            lifecycle_event(
                "request.submitted",
                request,
                actor=actor,
                channel=channel,
                after=request.state,
                reason=reason,
                now=now,
            )
            for request in requests
            if request is not None and not batch
        ]
        events += [
            audit_event(
                action="assignment.removed" if request_type else "assignment.expired",
                obj=(Assignment, pk),
                actor=actor,
                channel=channel,
                before=state,
                after=AssignmentState.EXPIRED,
                reason=reason,
                target=target_id,
                access_package=package_id,
                request=request,
                data={"notify": notify} if data is None else data,
                now=now,
            )
            for (pk, state, target_id, package_id, _p), request in zip(rows, requests, strict=True)
        ]
        canceled = _close_requests_of_ended(ids, actor, events, now)
        audit_bulk(events)
        extension_steps().assignments_removed(assignment_ids=ids, now=now)
        transaction.on_commit(partial(_after_end, ids, canceled, reason, notify, actor, batch))
    return {row[0]: request for row, request in zip(rows, requests, strict=True)}


def _after_end(ids, canceled, reason, notify, actor, batch):
    if batch:
        assignments_ended.send(sender=Assignment, assignment_ids=ids, reason=reason)
    else:
        for assignment in Assignment.objects.select_related(
            "target", "access_package", "assignment_policy"
        ).filter(pk__in=ids):
            assignment_ended.send(
                sender=Assignment, assignment=assignment, reason=reason, notify=notify
            )
    for extension in canceled:
        request_canceled.send(sender=AssignmentRequest, request=extension, actor=actor)
    if batch:
        common.enqueue_task(common.REVOKE_BATCH, [str(pk) for pk in ids])
    else:
        for pk in ids:
            common.enqueue_task(common.REVOKE, pk)


def _close_requests_of_ended(assignment_ids, actor, events, now):
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
        events.append(extension_cancel_event(extension, actor, now))
        extension.state, extension.status = RequestState.CANCELED, ASSIGNMENT_ENDED
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
            lifecycle_event(
                "request.canceled",
                request,
                actor=actor,
                before=request.state,
                after=RequestState.CANCELED,
                reason=_("The access ended before it was delivered."),
                now=now,
            )
        )
        request.state, request.status = RequestState.CANCELED, ASSIGNMENT_ENDED
        request.completed_datetime = now
        request.modified = now
    if stuck:
        AssignmentRequest.objects.bulk_update(
            stuck, ["state", "status", "completed_datetime", "modified"]
        )


def extension_cancel_event(extension, actor, now):
    return lifecycle_event(
        "request.canceled",
        extension,
        actor=actor,
        before=extension.state,
        after=RequestState.CANCELED,
        reason=_("The access it would extend has ended."),
        now=now,
    )


def require_admin(actor, access_package, what):
    if actor is not None and not can_manage_assignments(actor, access_package.catalog):
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
    if can_manage_assignments(actor, assignment.access_package.catalog):
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
