"""Custom extensions at run time: writing the callouts, sending them, waiting and resuming.

A callout is written in the transaction of the lifecycle change that causes it (through
``entitlements.extension``), and sent by a worker on commit in three steps, as delivery is:
**claim** the row (a lease, committed), **POST** it with no transaction open, **record** the
outcome in a short transaction. A failed POST is retried with exponential backoff; after
``MAX_ATTEMPTS`` the callout is ``calloutFailed``. The reconciler finds callouts whose message
was lost. Lock order: the callout row, then its request.
"""

import time
import uuid
from datetime import timedelta
from functools import partial

import httpx
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from entitlements.approval import approval_steps
from entitlements.audit import audit_bulk, audit_event
from entitlements.connectors.base import ConnectorRefused
from entitlements.errors import InvalidRequest, StateConflict
from entitlements.extension import ExtensionSteps
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    REMOVE_REQUEST_TYPES,
    Assignment,
    AssignmentRequest,
    Channel,
    RequestState,
)
from entitlements.queue import enqueue_named
from entitlements.services.common import lock_request
from entitlements.services.requests import RequestStatus, format_when, request_advance, request_deny

from .models import (
    PRIVATE_ADDRESS_REFUSED,
    WAITABLE_STAGES,
    WAITING_STATES,
    CalloutState,
    CustomExtensionCallout,
    CustomExtensionStageSetting,
    Stage,
    endpoint_address_problem,
)
from .payload import body_bytes, callout_payload, signature_headers

SEND_TASK = "extensions.tasks.send_callout"
MAX_ATTEMPTS = 8
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
# The lease outlasts the call's own timeout, so a live worker never loses its claim.
LEASE_MARGIN = timedelta(seconds=30)
BATCH_SIZE = 500
# The status of a request denied because its extension did not answer in time.
TIMED_OUT = "CallbackTimedOut"
# Callback states that end the request (Graph: Denied or Canceled, at assignmentRequestCreated).
ENDING_CALLBACK_STATES = {"denied", "canceled"}
# Every answer there is: no state (or "") continues; anything else is refused, never continued.
CALLBACK_STATES = {"", *ENDING_CALLBACK_STATES}
EXPIRY_STAGES = (
    # (stage, how far ahead it looks, and the nearer end left to the next stage)
    (Stage.FOURTEEN_DAYS_BEFORE_EXPIRATION, timedelta(days=14), timedelta(days=1)),
    (Stage.ONE_DAY_BEFORE_EXPIRATION, timedelta(days=1), timedelta(0)),
)

EXPIRY = {stage for stage, _ahead, _nearer in EXPIRY_STAGES}


def backoff(attempt_count):
    """How long to wait after the ``attempt_count``-th failure: 30 s doubling, at most 1 h."""
    return min(BACKOFF_FIRST * 2 ** max(attempt_count - 1, 0), BACKOFF_MAX)


# --------------------------------------------------------------------------------------
# Writing callouts (inside the lifecycle change's transaction)
# --------------------------------------------------------------------------------------


def _stage_settings(policy_id, stage):
    return list(
        CustomExtensionStageSetting.objects.filter(policy_id=policy_id, stage=stage)
        .select_related("custom_extension__catalog")
        .order_by("created")
    )


def callouts_write(*, stage, policy, package, request=None, assignment=None, now):
    """Write one callout per extension the policy calls at ``stage`` (once: a second call for
    the same request or assignment writes nothing) and send them on commit; returns the
    callouts written."""
    stage_settings = _stage_settings(policy.pk, stage)
    if not stage_settings:
        return []
    about = request if stage in WAITABLE_STAGES or assignment is None else assignment
    rows = []
    for setting in stage_settings:
        extension = setting.custom_extension
        waits = extension.waits and stage in WAITABLE_STAGES and request is not None
        end = assignment.schedule_end if stage in EXPIRY else None
        dedupe_key = f"{stage}:{about.pk}:{extension.pk}" + (f":{end.isoformat()}" if end else "")
        callout = CustomExtensionCallout(
            id=uuid.uuid4(),
            created=now,
            custom_extension=extension,
            stage=stage,
            request=request,
            assignment=assignment,
            dedupe_key=dedupe_key,
            waits=waits,
            assignment_end=end,
            next_attempt_datetime=None,  # due at once
            wait_until=now + extension.max_wait if waits else None,
        )
        callout.payload = callout_payload(
            callout=callout,
            extension=extension,
            stage=stage,
            request=request,
            assignment=assignment,
            policy=policy,
            package=package,
            now=now,
        )
        rows.append(callout)
    # Insert first, then see which rows are ours: a concurrent writer of the same key wins
    # without an IntegrityError breaking the lifecycle change's transaction.
    CustomExtensionCallout.objects.bulk_create(rows, ignore_conflicts=True)
    written = set(
        CustomExtensionCallout.objects.filter(pk__in=[c.pk for c in rows]).values_list(
            "pk", flat=True
        )
    )
    rows = [c for c in rows if c.pk in written]
    if not rows:
        return []
    audit_bulk(
        [_callout_event(c, "customExtensionCallout.created", "", c.state, now) for c in rows]
    )
    for callout in rows:
        transaction.on_commit(partial(enqueue_named, SEND_TASK, str(callout.pk)))
    return rows


def _callout_event(callout, action, before, after, now, reason="", **data):
    request = callout.request
    assignment = callout.assignment
    target = request.target_id if request else assignment.target_id if assignment else None
    package = (
        request.access_package_id
        if request
        else assignment.access_package_id
        if assignment
        else None
    )
    return audit_event(
        action=action,
        obj=callout,
        channel=Channel.SYSTEM if not data.pop("api", False) else Channel.API,
        before=before,
        after=after,
        reason=reason,
        target=target,
        access_package=package,
        request=request,
        data={
            "customExtension": str(callout.custom_extension_id),
            "stage": callout.stage,
            **data,
        },
        now=now,
    )


class Steps(ExtensionSteps):
    """What entitlements asks of extensions inside a lifecycle change's transaction
    (``entitlements.extension``); registered in ``ExtensionsConfig.ready``."""

    def hold_request(self, *, request, stage, now):
        policy = request.assignment_policy
        if not _stage_settings(policy.pk, stage):
            return False
        if CustomExtensionCallout.objects.filter(request=request, stage=stage).exists():
            return False  # written already: the request is passing here again, resumed
        assignment = request.assignment if request.assignment_id else None
        written = callouts_write(
            stage=stage,
            policy=policy,
            package=request.access_package,
            request=request,
            assignment=assignment,
            now=now,
        )
        return any(c.waits for c in written)

    def calls_on_request(self, *, policy_id):
        return Exists(
            CustomExtensionStageSetting.objects.filter(
                policy_id=policy_id, stage__in=WAITABLE_STAGES
            )
        )

    def assignments_removed(self, *, assignment_ids, now):
        ended = list(
            Assignment.objects.filter(
                pk__in=list(assignment_ids),
                assignment_policy__custom_extension_stage_settings__stage=Stage.REQUEST_REMOVED,
            )
            .distinct()
            .select_related("assignment_policy", "access_package", "target")
        )
        for assignment in ended:
            removal = (
                AssignmentRequest.objects.filter(
                    assignment=assignment, request_type__in=REMOVE_REQUEST_TYPES
                )
                .select_related("requestor", "target")
                .order_by("-created")
                .first()
            )
            callouts_write(
                stage=Stage.REQUEST_REMOVED,
                policy=assignment.assignment_policy,
                package=assignment.access_package,
                request=removal,
                assignment=assignment,
                now=now,
            )


def assignment_granted(*, assignment, request, now=None):
    """Write the assignmentRequestGranted callouts of a just delivered assignment (inside
    the delivering transaction, by the receiver of ``assignment_delivered``)."""
    now = now or timezone.now()
    callouts_write(
        stage=Stage.REQUEST_GRANTED,
        policy=assignment.assignment_policy,
        package=assignment.access_package,
        request=request,
        assignment=assignment,
        now=now,
    )


def callouts_before_expiration(*, now=None):
    """Write the callouts of the assignments ending within 14 days and within 1 day, once
    per assignment, stage and end (an extended assignment is called again for its new end;
    beside the "access ends soon" emails); returns how many."""
    now = now or timezone.now()
    written = 0
    for stage, ahead, nearer in EXPIRY_STAGES:
        policies = CustomExtensionStageSetting.objects.filter(stage=stage).values("policy_id")
        due = (
            Assignment.objects.filter(
                state__in=OPEN_ASSIGNMENT_STATES,
                assignment_policy_id__in=policies,
                schedule_end__gt=now + nearer,
                schedule_end__lte=now + ahead,
            )
            .exclude(
                Exists(
                    CustomExtensionCallout.objects.filter(
                        assignment=OuterRef("pk"),
                        stage=stage,
                        assignment_end=OuterRef("schedule_end"),
                    )
                )
            )
            .select_related("assignment_policy", "access_package", "target")
            .order_by("schedule_end")[:BATCH_SIZE]
        )
        for assignment in due:
            with transaction.atomic():
                written += len(
                    callouts_write(
                        stage=stage,
                        policy=assignment.assignment_policy,
                        package=assignment.access_package,
                        assignment=assignment,
                        now=now,
                    )
                )
    return written


# --------------------------------------------------------------------------------------
# Sending: claim, POST with no transaction open, record
# --------------------------------------------------------------------------------------


def _claim(callout_id, now):
    with transaction.atomic():
        callout = (
            CustomExtensionCallout.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("custom_extension")
            .filter(pk=callout_id, state=CalloutState.PENDING)
            .filter(Q(next_attempt_datetime__isnull=True) | Q(next_attempt_datetime__lte=now))
            .filter(Q(lease_expires__isnull=True) | Q(lease_expires__lte=now))
            .first()
        )
        if callout is None:
            return None
        if callout.stage in WAITABLE_STAGES and _request_ended(callout.request_id):
            _close_unsent(callout, now)
            return None
        callout.claimed_by = uuid.uuid4().hex
        callout.lease_expires = (
            now + timedelta(seconds=callout.custom_extension.timeout_seconds) + LEASE_MARGIN
        )
        callout.save(update_fields=["claimed_by", "lease_expires", "modified"])
    return callout


def _request_ended(request_id):
    return (
        request_id is not None
        and not AssignmentRequest.objects.filter(
            pk=request_id, state__in=OPEN_REQUEST_STATES
        ).exists()
    )


def _close_unsent(callout, now):
    """A callout about a request's progress that ended before it was sent: never sent."""
    reason = _("Not sent: the request ended before the call was made.")
    callout.state, callout.next_attempt_datetime = CalloutState.CALLOUT_FAILED, None
    callout.waits, callout.wait_until = False, None
    callout.attempts = [
        *callout.attempts,
        {"at": now.isoformat(), "status": None, "error": reason, "durationMs": 0},
    ]
    callout.save(
        update_fields=[
            "state",
            "next_attempt_datetime",
            "waits",
            "wait_until",
            "attempts",
            "modified",
        ]
    )
    audit_bulk(
        [
            _callout_event(
                callout,
                "customExtensionCallout.calloutFailed",
                CalloutState.PENDING,
                callout.state,
                now,
                reason,
            )
        ]
    )


def callouts_close(*, request_id, now=None):
    """Stop waiting for the answers to an ended (canceled, denied, expired) request's
    callouts: nothing waits for them any more, the timeout job and the resume call leave
    them alone; returns how many. Called on commit of the request's end."""
    now = now or timezone.now()
    waiting = CustomExtensionCallout.objects.filter(
        request_id=request_id, waits=True, state__in=WAITING_STATES
    )
    if not waiting.exists():
        return 0  # most requests: one query, nothing to close
    with transaction.atomic():
        if not _request_ended(request_id):
            return 0
        callouts = list(
            CustomExtensionCallout.objects.select_for_update(of=("self",))
            .select_related("custom_extension", "request", "assignment")
            .filter(request_id=request_id, waits=True, state__in=WAITING_STATES)
        )
        for callout in callouts:
            callout.waits, callout.wait_until = False, None
            callout.save(update_fields=["waits", "wait_until", "modified"])
        reason = _("The request ended: nothing waits for this answer any more.")
        audit_bulk(
            [
                _callout_event(c, "customExtensionCallout.closed", c.state, c.state, now, reason)
                for c in callouts
            ]
        )
    return len(callouts)


def _post(callout):
    """POST the callout; returns (HTTP status or None, error or "")."""
    extension = callout.custom_extension
    if endpoint_address_problem(extension.endpoint_url):
        return None, str(PRIVATE_ADDRESS_REFUSED)
    try:
        body = body_bytes(callout.payload)
        # Signed at the moment it leaves, so the receiver's clock check sees a fresh timestamp.
        headers = signature_headers(
            secret=extension.secret(), callout_id=callout.pk, body=body, now=timezone.now()
        )
        status_code = _post_within(extension, body, headers)
    except ConnectorRefused as exc:
        return None, str(exc)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}".rstrip(": ")
    except Exception as exc:  # noqa: BLE001 - a bad secret or URL: recorded, never raised
        return None, f"{type(exc).__name__}: {exc}".rstrip(": ")
    if 200 <= status_code < 300:
        return status_code, ""
    return status_code, _("The endpoint answered HTTP %(status)s.") % {"status": status_code}


def _post_within(extension, body, headers):
    """POST and return the status as soon as it is known, never reading the body (a slow or
    endless body cannot hold the worker); an answer later than the timeout is a failure."""
    deadline = time.monotonic() + extension.timeout_seconds
    with (
        httpx.Client(timeout=extension.timeout_seconds, follow_redirects=False) as client,
        client.stream("POST", extension.endpoint_url, content=body, headers=headers) as response,
    ):
        if time.monotonic() > deadline:
            raise httpx.TimeoutException(
                _("no answer within %(seconds)s s") % {"seconds": extension.timeout_seconds}
            )
        return response.status_code


def callout_send(*, callout_id, now=None):
    """Send one pending callout if it is due and nobody else is sending it; returns its state
    afterwards, or None when there was nothing to send."""
    now = now or timezone.now()
    callout = _claim(callout_id, now)
    if callout is None:
        return None
    started = time.monotonic()
    status_code, error = _post(callout)
    duration_ms = round((time.monotonic() - started) * 1000)
    return _record(callout.pk, callout.claimed_by, status_code, error, duration_ms, now)


def _record(callout_id, claim, status_code, error, duration_ms, now):
    with transaction.atomic():
        callout = (
            CustomExtensionCallout.objects.select_for_update(of=("self",))
            .select_related("custom_extension", "request", "assignment")
            .get(pk=callout_id)
        )
        callout.attempts = [
            *callout.attempts,
            {
                "at": now.isoformat(),
                "status": status_code,
                "error": error,
                "durationMs": duration_ms,
            },
        ]
        callout.attempt_count += 1
        fields = ["attempts", "attempt_count", "modified"]
        if callout.claimed_by == claim:
            callout.claimed_by, callout.lease_expires = "", None
            fields += ["claimed_by", "lease_expires"]
        before = callout.state
        if before != CalloutState.PENDING:
            # Answered (resumed) while the POST was under way: the answer stands.
            callout.save(update_fields=fields)
            return callout.state
        if not error:
            callout.state = (
                CalloutState.WAITING_FOR_CALLBACK if callout.waits else CalloutState.CALLOUT_SENT
            )
            callout.sent_datetime, callout.next_attempt_datetime = now, None
        elif callout.attempt_count >= MAX_ATTEMPTS:
            callout.state, callout.next_attempt_datetime = CalloutState.CALLOUT_FAILED, None
        else:
            callout.next_attempt_datetime = now + backoff(callout.attempt_count)
            countdown = backoff(callout.attempt_count).total_seconds()
            transaction.on_commit(
                partial(enqueue_named, SEND_TASK, str(callout.pk), countdown=countdown)
            )
        fields += ["state", "sent_datetime", "next_attempt_datetime"]
        callout.save(update_fields=fields)
        if callout.state != before:
            audit_bulk(
                [
                    _callout_event(
                        callout,
                        f"customExtensionCallout.{callout.state}",
                        before,
                        callout.state,
                        now,
                        error,
                    )
                ]
            )
        if callout.state == CalloutState.CALLOUT_FAILED and callout.waits:
            _deny_waiting_request(
                callout,
                RequestStatus.DENIED,
                unreachable_reason(callout.custom_extension),
                now,
            )
    return callout.state


def unreachable_reason(extension):
    """What the requestor reads when the extension failed: the attempts' details (addresses,
    library errors) stay in the admin."""
    return _("The extension %(name)s could not be reached.") % {"name": extension.display_name}


def _deny_waiting_request(callout, status, reason, now, channel=Channel.SYSTEM):
    request = lock_request(callout.request_id)
    if request is not None and request.is_open:
        request_deny(request=request, status=status, reason=reason, channel=channel, now=now)


def callouts_reconcile(*, now=None):
    """Enqueue again the pending callouts that are due and not claimed (their message was
    lost, or their worker died and the lease ran out); returns how many."""
    now = now or timezone.now()
    due = list(
        CustomExtensionCallout.objects.filter(state=CalloutState.PENDING)
        .filter(Q(next_attempt_datetime__isnull=True) | Q(next_attempt_datetime__lte=now))
        .filter(Q(lease_expires__isnull=True) | Q(lease_expires__lte=now))
        .order_by("next_attempt_datetime")
        .values_list("pk", flat=True)[:BATCH_SIZE]
    )
    for pk in due:
        enqueue_named(SEND_TASK, str(pk))
    return len(due)


# --------------------------------------------------------------------------------------
# Waiting: resumed by the extension, or timed out
# --------------------------------------------------------------------------------------


def callouts_time_out(*, now=None):
    """Deny the requests whose extension did not answer within its maximum wait
    (callbackTimedOut); returns how many callouts timed out."""
    now = now or timezone.now()
    due = list(
        CustomExtensionCallout.objects.filter(
            waits=True,
            state__in=WAITING_STATES,
            wait_until__lte=now,
            request__state__in=OPEN_REQUEST_STATES,
        ).values_list("pk", flat=True)[:BATCH_SIZE]
    )
    timed_out = 0
    for pk in due:
        with transaction.atomic():
            callout = (
                CustomExtensionCallout.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("custom_extension", "request", "assignment")
                .filter(pk=pk, state__in=WAITING_STATES, wait_until__lte=now)
                .first()
            )
            if callout is None:
                continue
            _time_out(callout, now)
            timed_out += 1
    return timed_out


def _time_out(callout, now):
    """The wait of ``callout`` (locked) ran out: callbackTimedOut, and its request denied."""
    before = callout.state
    callout.state = CalloutState.CALLBACK_TIMED_OUT
    callout.claimed_by, callout.lease_expires, callout.next_attempt_datetime = "", None, None
    callout.save(
        update_fields=["state", "claimed_by", "lease_expires", "next_attempt_datetime", "modified"]
    )
    reason = _("%(name)s did not answer by %(when)s.") % {
        "name": callout.custom_extension.display_name,
        "when": format_when(callout.wait_until),
    }
    audit_bulk(
        [
            _callout_event(
                callout,
                "customExtensionCallout.callbackTimedOut",
                before,
                callout.state,
                now,
                reason,
            )
        ]
    )
    _deny_waiting_request(callout, TIMED_OUT, reason, now)
    return reason


def callout_for_resume(*, request_id, callout_id):
    """The callout a resume names, with its extension (to check the signature), or None."""
    try:
        callout_id = uuid.UUID(str(callout_id))
    except ValueError:
        return None
    return (
        CustomExtensionCallout.objects.select_related("custom_extension")
        .filter(pk=callout_id, request_id=request_id)
        .first()
    )


def callout_id_taken(message_id):
    """Whether ``message_id`` (a webhook-id) is one of our callouts' ids: an answer carrying
    one is a callout played back to us."""
    try:
        message_id = uuid.UUID(str(message_id))
    except ValueError:
        return False
    return CustomExtensionCallout.objects.filter(pk=message_id).exists()


def request_resume(*, request_id, callout_id, stage, state="", detail="", now=None):
    """Resume a request waiting for its extension's answer, once per callout.

    ``state`` Denied or Canceled ends the request denied with ``detail`` as the reason;
    no state continues it (any other state is refused): its first approval stage opens
    (assignmentRequestCreated), or it is fulfilled (assignmentRequestApproved, or a request
    needing no approval). A second answer to the same callout is a StateConflict and changes
    nothing.
    """
    now = now or timezone.now()
    detail = (detail or "").strip()
    if (state or "").lower() not in CALLBACK_STATES:
        raise InvalidRequest(
            _(
                "%(state)s is not an answer: leave the state out to continue, or give Denied or "
                "Canceled."
            )
            % {"state": state},
            field="state",
        )
    late = _resume(request_id, callout_id, stage, state, detail, now)
    if isinstance(late, str):
        # Committed: the callout timed out and its request was denied; the answer is refused.
        raise StateConflict(
            _("The answer came after the wait ended (%(reason)s); the request is denied.")
            % {"reason": late.rstrip(".")}
        )
    return late


def _resume(request_id, callout_id, stage, state, detail, now):
    with transaction.atomic():
        callout = (
            CustomExtensionCallout.objects.select_for_update(of=("self",))
            .select_related("custom_extension", "request", "assignment")
            .filter(pk=callout_id, request_id=request_id)
            .first()
        )
        if callout is None:
            raise InvalidRequest(
                _("No callout %(id)s was made for this request.") % {"id": callout_id},
                field="customExtensionStageInstanceId",
            )
        if stage != callout.stage:
            raise InvalidRequest(
                _("Callout %(id)s was made at %(stage)s, not %(given)s.")
                % {"id": callout_id, "stage": callout.stage, "given": stage},
                field="stage",
            )
        if not callout.waits:
            raise StateConflict(_("This callout does not wait for an answer."))
        if callout.state not in WAITING_STATES:
            raise StateConflict(
                _("This callout was already answered or closed: %(state)s.")
                % {"state": callout.get_state_display().lower()}
            )
        if callout.wait_until is not None and now > callout.wait_until:
            return _time_out(callout, now)
        request = lock_request(request_id)
        if request is None or not request.is_open:
            raise StateConflict(
                _("This request is %(state)s; it no longer waits.")
                % {"state": request.get_state_display().lower() if request else "gone"}
            )
        before = callout.state
        callout.state = CalloutState.CALLBACK_RECEIVED
        callout.callback_datetime = now
        callout.callback_state = (state or "")[:32]
        callout.callback_detail = detail
        callout.claimed_by, callout.lease_expires, callout.next_attempt_datetime = "", None, None
        callout.save(
            update_fields=[
                "state",
                "callback_datetime",
                "callback_state",
                "callback_detail",
                "claimed_by",
                "lease_expires",
                "next_attempt_datetime",
                "modified",
            ]
        )
        callout.request = request
        name = callout.custom_extension.display_name
        audit_bulk(
            [
                _callout_event(
                    callout,
                    "customExtensionCallout.callbackReceived",
                    before,
                    callout.state,
                    now,
                    detail,
                    api=True,
                    callbackState=callout.callback_state,
                )
            ]
        )
        if (state or "").lower() in ENDING_CALLBACK_STATES:
            request_deny(
                request=request,
                status=RequestStatus.DENIED,
                reason=detail or _("%(name)s denied the request.") % {"name": name},
                channel=Channel.API,
                now=now,
            )
            return request
        still_waiting = CustomExtensionCallout.objects.filter(
            request=request, stage=stage, waits=True, state__in=WAITING_STATES
        ).exists()
        if still_waiting:
            return request  # another extension of this stage has not answered yet
        if stage == Stage.REQUEST_CREATED and request.state == RequestState.PENDING_APPROVAL:
            approval_steps().open_first_stage(request=request, now=now)
        else:
            request_advance(request=request, actor=None, channel=Channel.API, now=now)
    return request
