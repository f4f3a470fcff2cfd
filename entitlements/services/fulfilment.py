"""Fulfilment: what an approved (or approval-free) request gives, handed to delivery."""

from functools import partial

from django.db import transaction
from django.utils.translation import gettext as _

from ..audit import audit_bulk
from ..errors import InvalidRequest, StateConflict
from ..models import (
    ADD_REQUEST_TYPES,
    OPEN_ASSIGNMENT_STATES,
    UPDATE_REQUEST_TYPES,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    RequestState,
    ResourceRoleScope,
)
from ..signals import assignment_extended, request_canceled
from . import common
from .common import iso, lifecycle_event, status_of
from .ending import ASSIGNMENT_ENDED, extension_cancel_event

# Requests waiting to be fulfilled; a request already delivering has been.
FULFILLABLE_REQUEST_STATES = [
    RequestState.SUBMITTED,
    RequestState.PENDING_APPROVAL,
    RequestState.SCHEDULED,
]


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
        status=status_of(AssignmentState.DELIVERING),
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
    request.status = status_of(RequestState.DELIVERING)
    request.save(update_fields=["assignment", "state", "status", "modified"])
    audit_bulk(
        [
            lifecycle_event(
                "request.fulfilled", request, before=before, after=request.state, now=now
            ),
            lifecycle_event(
                "assignment.created", assignment, after=assignment.state, now=now, req=request
            ),
        ]
    )
    transaction.on_commit(partial(common.enqueue_task, common.DELIVER, assignment.pk))
    return assignment


def _fulfil_extension(request, now):
    assignment = (
        Assignment.objects.select_for_update(of=("self",)).filter(pk=request.assignment_id).first()
    )
    if assignment is None or not assignment.is_open:
        # Removed or expired while the extension waited: nothing left to extend.
        audit_bulk([extension_cancel_event(request, None, now)])
        request.state, request.status = RequestState.CANCELED, ASSIGNMENT_ENDED
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
    request.status = status_of(RequestState.DELIVERED)
    request.completed_datetime = now
    request.save(update_fields=["state", "status", "completed_datetime", "modified"])
    audit_bulk(
        [
            lifecycle_event(
                "request.fulfilled", request, before=before, after=request.state, now=now
            ),
            lifecycle_event(
                "assignment.extended",
                assignment,
                before=assignment.state,
                after=assignment.state,
                req=request,
                now=now,
                data={"from": iso(old_end), "to": iso(assignment.schedule_end)},
            ),
        ]
    )
    transaction.on_commit(
        partial(assignment_extended.send, sender=Assignment, assignment=assignment, request=request)
    )
    return assignment
