"""Requests the Graph API accepts that the portal and the admin express differently.

Graph names every change to an assignment as an ``accessPackageAssignmentRequest``: removals
(``userRemove``, ``adminRemove``), an administrator's change of the end date
(``adminUpdate``), the retry of a failed delivery (``reprocess``) and a dry run
(``isValidationOnly``). Each is composed of the services the other doors call, with the
checks that the request type adds.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..audit import audit_for_request
from ..errors import InvalidRequest, NotEligible, PermissionDenied, StateConflict
from ..models import (
    ADD_REQUEST_TYPES,
    AssignmentRequest,
    Channel,
    RequestAnswer,
    RequestState,
    RequestType,
)
from ..permissions import can_manage_assignments
from ..signals import request_submitted
from .delivery import assignment_reprocess
from .ending import assignment_remove, assignments_end, require_admin
from .requests import RequestStatus, format_when, request_advance


class _Undone(Exception):
    """Carries a dry run's result out of the transaction it rolls back."""

    def __init__(self, result):
        super().__init__("dry run")
        self.result = result


def request_validate(submit):
    """What ``submit()`` (a call of one request service) would do, with nothing changed.

    The service runs for real inside a transaction that is then rolled back: every check it
    makes, and the state the request would reach, are exactly those of the real call, while
    its rows, its audit events and the work it would enqueue on commit are all discarded.
    A refused request raises the service's own error. Returns the request as it would have
    been (not saved; its answers are kept in memory).
    """
    try:
        with transaction.atomic():
            request = submit()
            answers = list(RequestAnswer.objects.filter(request=request).select_related("question"))
            raise _Undone((request, answers))
    except _Undone as undone:
        request, answers = undone.result
    request._prefetched_objects_cache = {"answers": answers}
    return request


def request_remove(*, actor, assignment, request_type, justification="", channel, now=None):
    """End ``assignment`` as a ``userRemove`` (by its holder, when the policy lets them) or
    an ``adminRemove`` (by an administrator of its catalog); returns the removal request."""
    now = now or timezone.now()
    justification = (justification or "").strip()
    if request_type == RequestType.USER_REMOVE:
        if actor is None or actor.pk != assignment.target_id:
            raise PermissionDenied(
                _("Only the person who has this access can remove it with a userRemove request.")
            )
        if not assignment.assignment_policy.enable_targets_to_self_remove_access:
            raise PermissionDenied(
                _(
                    "This access package's policy does not let you remove your own access; "
                    "ask the catalog's owner."
                )
            )
        return assignment_remove(
            actor=actor, assignment=assignment, channel=channel, reason=justification, now=now
        )
    if actor is None:
        raise PermissionDenied(_("An adminRemove request needs an administrator."))
    require_admin(actor, assignment.access_package, _("remove someone's access"))
    if not assignment.is_open:
        raise StateConflict(_("This access has already ended."))
    ended = assignments_end(
        assignment_ids=[assignment.pk],
        actor=actor,
        channel=channel,
        request_type=RequestType.ADMIN_REMOVE,
        reason=justification,
        notify=False,
        now=now,
    )
    if not ended:
        raise StateConflict(_("This access has already ended."))
    assignment.refresh_from_db()
    return ended[assignment.pk]


def request_admin_update(
    *, actor, assignment, justification="", schedule_end=None, channel=Channel.API, now=None
):
    """An administrator moves the end of an open assignment (adminUpdate), without approval:
    to ``schedule_end``, or as far as the policy allows from now."""
    now = now or timezone.now()
    justification = (justification or "").strip()
    package = assignment.access_package
    if actor is None or not can_manage_assignments(actor, package.catalog):
        raise PermissionDenied(
            _(
                "Only administrators, and owners and access package assignment managers of "
                "the catalog %(catalog)s, can change its assignments."
            )
            % {"catalog": package.catalog.display_name}
        )
    if not assignment.is_open:
        raise StateConflict(_("This access has ended; assign the access package again."))
    policy = assignment.assignment_policy
    latest = policy.assignment_end(now)
    if latest is not None and latest <= now:
        raise NotEligible(
            _("Access under the policy %(policy)s ended on %(end)s; it cannot be extended.")
            % {"policy": policy.display_name, "end": format_when(latest)}
        )
    if schedule_end is None:
        if latest is None and assignment.schedule_end is None:
            raise StateConflict(_("This access does not end, so there is nothing to extend."))
        schedule_end = latest
    elif schedule_end <= now:
        raise InvalidRequest(_("Choose an end in the future."), field="schedule_end")
    elif latest is not None and schedule_end > latest:
        raise InvalidRequest(
            _("Access under this policy can be extended to %(end)s at most.")
            % {"end": format_when(latest)},
            field="schedule_end",
        )
    try:
        with transaction.atomic():
            locked = type(assignment).objects.select_for_update(of=("self",)).get(pk=assignment.pk)
            if not locked.is_open:
                raise StateConflict(_("This access has ended; assign the access package again."))
            request = AssignmentRequest.objects.create(
                created=now,
                access_package=package,
                assignment_policy=policy,
                requestor=actor,
                target=locked.target,
                assignment=locked,
                request_type=RequestType.ADMIN_UPDATE,
                state=RequestState.SUBMITTED,
                status=RequestStatus.ACCEPTED,
                justification=justification,
                schedule_end=schedule_end,
            )
            audit_for_request(
                request=request,
                action="request.submit",
                actor=actor,
                channel=channel,
                before="",
                after=request.state,
                reason=justification,
                now=now,
            )
            transaction.on_commit(
                lambda: request_submitted.send(sender=AssignmentRequest, request=request)
            )
            request_advance(request=request, actor=actor, channel=channel, now=now)
    except IntegrityError as exc:
        raise StateConflict(_("This access already has an open extension request.")) from exc
    assignment.refresh_from_db()
    return request


# States of a request whose delivery can be tried again.
REPROCESSABLE_STATES = [RequestState.DELIVERY_FAILED, RequestState.PARTIALLY_DELIVERED]


def request_reprocess(*, actor, request, channel, now=None):
    """Deliver again what a request's failed delivery left out (Graph's request reprocess)."""
    now = now or timezone.now()
    if actor is None:
        raise PermissionDenied(_("Reprocessing a request needs an administrator."))
    require_admin(actor, request.access_package, _("reprocess this request"))
    if (
        request.state not in REPROCESSABLE_STATES
        or request.request_type not in ADD_REQUEST_TYPES
        or request.assignment_id is None
    ):
        raise StateConflict(
            _(
                "Only a request whose delivery failed, fully or partly, can be reprocessed; "
                "this one is %(state)s."
            )
            % {"state": request.get_state_display().lower()}
        )
    assignment_reprocess(actor=actor, assignment=request.assignment, channel=channel, now=now)
    request.refresh_from_db()
    return request
