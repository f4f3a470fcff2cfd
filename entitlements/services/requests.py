"""Submitting, extending, cancelling and starting assignment requests.

Approval runs in ``approvals.services`` and fulfilment (the assignment and its delivery) in
``entitlements.services.assignments``. Approvals builds on this app, so its one entry point,
``stage_open``, is imported inside the function that opens the first stage.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from directory.models import User

from ..approval import approval_steps
from ..audit import audit_for_request
from ..errors import InvalidRequest, NotEligible, PermissionDenied, StateConflict
from ..extension import ExtensionStage, extension_steps
from ..models import (
    ADD_REQUEST_TYPES,
    OPEN_REQUEST_STATES,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Channel,
    ExpirationType,
    Question,
    RequestAnswer,
    RequestState,
    RequestType,
)
from ..permissions import can_manage_assignments
from ..selectors import (
    catalog_reasons,
    highest_priority,
    is_on_behalf_requestor,
    member_group_ids,
    package_gate,
    policies_with_subjects,
    policy_applies_to,
    request_cancelable,
    self_eligibility,
)
from ..signals import request_canceled, request_denied, request_expired, request_submitted
from . import bulk_apply
from .ending import assignment_remove
from .fulfilment import request_fulfil


class RequestStatus:
    """Values of ``AssignmentRequest.status``: the detail of the state, as Graph names them."""

    ACCEPTED = "Accepted"
    PENDING_APPROVAL = "PendingApproval"
    PENDING_APPROVAL_ESCALATED = "PendingApprovalEscalated"
    SCHEDULED = "PendingNotBefore"
    DENIED = "Denied"
    EXPIRED = "Expired"
    NO_APPROVERS = "NoApprovers"
    CANCELED = "Canceled"


# Clocks of browsers and servers differ a little; a start this far back still counts as now.
CLOCK_SKEW = timedelta(minutes=1)
DUPLICATE_CONSTRAINTS = {
    "one_open_request_per_target_package": gettext_lazy(
        "There is already an open request for this package."
    ),
    "one_open_assignment_per_target_package": gettext_lazy(
        "This user already has this access package."
    ),
    "one_open_update_request_per_assignment": gettext_lazy(
        "This access already has an open extension request."
    ),
}


def format_when(moment):
    """A date and time as people read it, in the current time zone."""
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _describe_duration(duration):
    if duration.days and not duration.seconds:
        days = duration.days
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    hours = round(duration.total_seconds() / 3600)
    return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}


# --------------------------------------------------------------------------------------
# Checks of the input
# --------------------------------------------------------------------------------------


def _choose_policy(candidates, policy, access_package):
    if policy is not None:
        if policy.access_package_id != access_package.pk:
            raise InvalidRequest(
                _("The policy %(policy)s belongs to another access package.")
                % {"policy": policy.display_name},
                field="policy",
            )
        for candidate in candidates:
            if candidate.pk == policy.pk:
                return candidate
        raise InvalidRequest(
            _("The policy %(policy)s does not apply to this request; choose %(choices)s.")
            % {"policy": policy.display_name, "choices": _one_of(candidates)},
            field="policy",
        )
    if len(candidates) == 1:
        return candidates[0]
    raise InvalidRequest(
        _("Choose a policy: %(choices)s.") % {"choices": _one_of(candidates)}, field="policy"
    )


def _one_of(policies):
    names = [p.display_name for p in policies]
    if len(names) == 1:
        return names[0]
    return _("%(names)s or %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


def _clean_answers(policy, answers):
    """Unsaved RequestAnswer rows for ``answers`` ({question id: str | list[str]})."""
    answers = {str(key): value for key, value in (answers or {}).items()}
    questions = list(
        Question.objects.filter(policy=policy).prefetch_related("choices").order_by("sequence")
    )
    if set(answers) - {str(q.pk) for q in questions}:
        raise InvalidRequest(
            _("An answer was given to a question this policy does not ask."), field="answers"
        )
    rows = []
    for question in questions:
        raw = answers.get(str(question.pk))
        field = f"answers.{question.pk}"
        if question.question_type == Question.QuestionType.MULTIPLE_CHOICE:
            value, display = _clean_choices(question, raw, field)
        else:
            value = display = _clean_text(question, raw, field)
        if value:
            rows.append(RequestAnswer(question=question, value=value, display_value=display))
        elif question.is_required:
            raise InvalidRequest(
                _("Answer the question “%(question)s”.") % {"question": question.text},
                field=field,
            )
    return rows


def _clean_text(question, raw, field):
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidRequest(
            _("Answer “%(question)s” with text.") % {"question": question.text}, field=field
        )
    value = raw.strip()
    if not value:
        return ""
    if question.is_single_line_question and ("\n" in value or "\r" in value):
        raise InvalidRequest(
            _("The answer to “%(question)s” must fit on one line.") % {"question": question.text},
            field=field,
        )
    # Length capped, pattern matched in linear time (RE2): no answer can hold a worker.
    problem = question.answer_problem(value)
    if problem:
        raise InvalidRequest(problem, field=field)
    return value


def _clean_choices(question, raw, field):
    if raw is None or raw == "":
        return "", ""
    picked = [raw] if isinstance(raw, str) else raw
    if not isinstance(picked, list | tuple) or not all(isinstance(v, str) for v in picked):
        raise InvalidRequest(
            _("Choose an answer to “%(question)s”.") % {"question": question.text}, field=field
        )
    picked = list(dict.fromkeys(v for v in picked if v))
    if len(picked) > 1 and not question.is_multiple_selection_allowed:
        raise InvalidRequest(
            _("Choose only one answer to “%(question)s”.") % {"question": question.text},
            field=field,
        )
    choices = {c.actual_value: c for c in question.choices.all()}
    for value in picked:
        if value not in choices:
            raise InvalidRequest(
                _("“%(value)s” is not one of the answers to “%(question)s”.")
                % {"value": value, "question": question.text},
                field=field,
            )
    return "\n".join(picked), ", ".join(choices[v].text for v in picked)


def _clean_schedule(policy, start, end, now, *, custom_allowed):
    if (start or end) and not custom_allowed:
        raise InvalidRequest(
            _("This policy does not let you choose when the access starts or ends."),
            field="schedule_start" if start else "schedule_end",
        )
    if start is not None and start < now - CLOCK_SKEW:
        raise InvalidRequest(_("The start cannot be in the past."), field="schedule_start")
    policy_end = (
        policy.expiration_end_datetime
        if policy.expiration_type == ExpirationType.AFTER_DATE_TIME
        else None
    )
    if start is not None and policy_end is not None and start >= policy_end:
        raise InvalidRequest(
            _("Access under this policy ends on %(end)s; choose a start before then.")
            % {"end": format_when(policy_end)},
            field="schedule_start",
        )
    if end is None:
        return
    begin = start or now
    if end <= begin:
        raise InvalidRequest(_("The end must be after the start."), field="schedule_end")
    duration = policy.expiration_duration
    is_by_duration = policy.expiration_type == ExpirationType.AFTER_DURATION and duration
    if is_by_duration and end - begin > duration:
        raise InvalidRequest(
            _(
                "Access under this policy lasts at most %(duration)s; choose an end no later "
                "than %(latest)s."
            )
            % {"duration": _describe_duration(duration), "latest": format_when(begin + duration)},
            field="schedule_end",
        )
    if policy_end is not None and end > policy_end:
        raise InvalidRequest(
            _("Access under this policy ends on %(end)s; choose an end no later than that.")
            % {"end": format_when(policy_end)},
            field="schedule_end",
        )


def _raise_for_gate(gate):
    if gate.duplicate_message:
        raise StateConflict(gate.duplicate_message)
    if gate.empty_message:
        raise NotEligible(gate.empty_message)
    if gate.conflict_message:
        raise NotEligible(gate.conflict_message)


def _raise_for_duplicate(exc):
    """Turn a unique-constraint violation into the conflict it means. PostgreSQL names the
    constraint; SQLite names the constrained columns instead."""
    text = str(exc)
    for model in (AssignmentRequest, Assignment):
        table = model._meta.db_table
        for constraint in model._meta.constraints:
            message = DUPLICATE_CONSTRAINTS.get(constraint.name)
            columns = ", ".join(
                f"{table}.{model._meta.get_field(field).column}"
                for field in getattr(constraint, "fields", ())
            )
            if message and (constraint.name in text or (columns and text.endswith(columns))):
                raise StateConflict(message) from exc
    raise exc


def _policies_for(*, actor, target, access_package, request_type):
    """The policies the request may use, after the checks that depend on who asks."""
    if request_type == RequestType.USER_ADD:
        if actor is None or actor.pk != target.pk:
            raise PermissionDenied(
                _(
                    "You can request access only for yourself; to request for a direct "
                    "report, request on their behalf."
                )
            )
        gate, result = self_eligibility(user=target, access_package=access_package)
        if gate.duplicate_message:
            raise StateConflict(gate.duplicate_message)
        if not result.can_request:
            raise NotEligible(" ".join(result.reasons))
        return result.policies

    if request_type == RequestType.ON_BEHALF_ADD:
        if actor is None or actor.pk == target.pk:
            raise InvalidRequest(
                _("To request access for yourself, make a normal request."), field="target"
            )
        reasons = catalog_reasons(user=target, access_package=access_package, you=False)
        if reasons:
            raise NotEligible(" ".join(reasons))
        _raise_for_gate(package_gate(user=target, access_package=access_package, you=False))
        actor_groups = member_group_ids(actor)
        allowed = [
            p
            for p in policies_with_subjects(access_package)
            if is_on_behalf_requestor(p, actor, target, actor_groups)
        ]
        if not allowed:
            raise PermissionDenied(
                _("You may not request %(package)s on behalf of %(name)s.")
                % {"package": access_package.display_name, "name": target.display_name}
            )
        target_groups = member_group_ids(target)
        in_scope = highest_priority(
            [
                p
                for p in allowed
                if p.allowed_target_scope != AllowedTargetScope.NOT_SPECIFIED
                and policy_applies_to(p, target, target_groups)
            ]
        )
        if not in_scope:
            raise NotEligible(
                _(
                    "%(name)s is not in the scope of any policy that lets you request this "
                    "access package for them."
                )
                % {"name": target.display_name}
            )
        return in_scope

    if request_type == RequestType.ADMIN_ADD:
        if not can_manage_assignments(actor, access_package.catalog):
            raise PermissionDenied(
                _(
                    "Only administrators, and owners and access package assignment managers "
                    "of the catalog %(catalog)s, can assign its access packages directly."
                )
                % {"catalog": access_package.catalog.display_name}
            )
        if not target.is_active:
            raise NotEligible(_("%(name)s's account is disabled.") % {"name": target.display_name})
        _raise_for_gate(package_gate(user=target, access_package=access_package, you=False))
        # Direct assignment may use any of the package's policies, whoever they let request.
        return list(AssignmentPolicy.objects.filter(access_package=access_package))

    raise InvalidRequest(_("This kind of request cannot be submitted here."), field="request_type")


# --------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------


def request_submit(
    *,
    actor,
    target,
    access_package,
    policy=None,
    request_type=RequestType.USER_ADD,
    justification="",
    answers=None,
    schedule_start=None,
    schedule_end=None,
    channel=Channel.PORTAL,
    notify=True,
    now=None,
):
    """Submit a request for ``target`` to get ``access_package``.

    userAdd: for oneself; onBehalfAdd: by a manager (or another on-behalf requestor the policy
    names) for someone else; adminAdd: a direct assignment by a catalog's administrator, which
    ignores who the policy lets request and never needs approval. The request then waits for
    approval, waits for its start, or goes to fulfilment. ``notify`` false: the target gets no
    "access delivered" email for it (a silent direct assignment).
    """
    now = now or timezone.now()
    justification = (justification or "").strip()
    is_admin = request_type == RequestType.ADMIN_ADD
    candidates = _policies_for(
        actor=actor, target=target, access_package=access_package, request_type=request_type
    )
    policy = _choose_policy(candidates, policy, access_package)
    if not is_admin and policy.is_requestor_justification_required and not justification:
        raise InvalidRequest(_("Give a business justification."), field="justification")
    answer_rows = [] if is_admin else _clean_answers(policy, answers)
    _clean_schedule(
        policy,
        schedule_start,
        schedule_end,
        now,
        custom_allowed=is_admin or policy.allow_custom_assignment_schedule,
    )

    try:
        with transaction.atomic():
            # One person's requests are serialised so that the duplicate and
            # separation-of-duties checks still hold when two arrive at once.
            User.objects.select_for_update().filter(pk=target.pk).values_list("pk").first()
            you = request_type == RequestType.USER_ADD
            _raise_for_gate(package_gate(user=target, access_package=access_package, you=you))
            request = AssignmentRequest.objects.create(
                created=now,
                access_package=access_package,
                assignment_policy=policy,
                requestor=actor,
                target=target,
                request_type=request_type,
                state=RequestState.SUBMITTED,
                status=RequestStatus.ACCEPTED,
                justification=justification,
                schedule_start=schedule_start,
                schedule_end=schedule_end,
                notify=notify,
            )
            for row in answer_rows:
                row.request = request
            RequestAnswer.objects.bulk_create(answer_rows)
            _audit_request(
                request,
                "request.submit",
                actor,
                channel,
                "",
                now,
                justification,
                **({} if notify else {"notify": False}),
            )
            transaction.on_commit(
                lambda: request_submitted.send(sender=AssignmentRequest, request=request)
            )
            if not is_admin and policy.is_approval_required_for_add:
                request_await_approval(request=request, actor=actor, channel=channel, now=now)
            else:
                request_advance(request=request, actor=actor, channel=channel, now=now)
    except IntegrityError as exc:
        _raise_for_duplicate(exc)
    return request


def requests_admin_add(
    *,
    actor,
    targets,
    access_package,
    policy,
    justification="",
    schedule_start=None,
    schedule_end=None,
    channel=Channel.ADMIN,
    now=None,
):
    """Assign ``access_package`` directly to each of ``targets``; each one in its own
    transaction, so one refused user (with the reason) does not stop the others."""
    now = now or timezone.now()
    if not can_manage_assignments(actor, access_package.catalog):
        raise PermissionDenied(
            _(
                "Only administrators, and owners and access package assignment managers of "
                "the catalog %(catalog)s, can assign its access packages."
            )
            % {"catalog": access_package.catalog.display_name}
        )
    return bulk_apply(
        targets,
        lambda target: request_submit(
            actor=actor,
            target=target,
            access_package=access_package,
            policy=policy,
            request_type=RequestType.ADMIN_ADD,
            justification=justification,
            schedule_start=schedule_start,
            schedule_end=schedule_end,
            channel=channel,
            now=now,
        ),
    )


def request_extend(*, actor, assignment, justification="", schedule_end=None, channel, now=None):
    """Ask to extend one's own open assignment (userExtend), to ``schedule_end`` or as far as
    the policy allows from now; through approval when the policy requires it for updates."""
    now = now or timezone.now()
    justification = (justification or "").strip()
    if actor is None or actor.pk != assignment.target_id:
        raise PermissionDenied(_("Only the person who has this access can ask to extend it."))
    if not assignment.is_open:
        raise StateConflict(_("This access has ended; request the access package again."))
    policy = AssignmentPolicy.objects.prefetch_related("subject_sets").get(
        pk=assignment.assignment_policy_id
    )
    target = assignment.target
    if not target.is_active:
        raise NotEligible(_("Your account is disabled."))
    if not policy.enable_targets_to_self_update_access:
        raise NotEligible(
            _("The policy %(policy)s does not let users extend access.")
            % {"policy": policy.display_name}
        )
    if not policy_applies_to(policy, target, member_group_ids(target)):
        raise NotEligible(
            _(
                "You are no longer in the scope of the policy %(policy)s, so this access "
                "cannot be extended."
            )
            % {"policy": policy.display_name}
        )
    if policy.is_requestor_justification_required and not justification:
        raise InvalidRequest(_("Give a business justification."), field="justification")
    new_end = _extension_end(policy, assignment, schedule_end, now)

    try:
        with transaction.atomic():
            assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
            if not assignment.is_open:
                raise StateConflict(_("This access has ended; request the access package again."))
            request = AssignmentRequest.objects.create(
                created=now,
                access_package=assignment.access_package,
                assignment_policy=policy,
                requestor=actor,
                target=target,
                assignment=assignment,
                request_type=RequestType.USER_EXTEND,
                state=RequestState.SUBMITTED,
                status=RequestStatus.ACCEPTED,
                justification=justification,
                schedule_end=new_end,
            )
            _audit_request(request, "request.submit", actor, channel, "", now, justification)
            transaction.on_commit(
                lambda: request_submitted.send(sender=AssignmentRequest, request=request)
            )
            if policy.is_approval_required_for_update:
                request_await_approval(request=request, actor=actor, channel=channel, now=now)
            else:
                request_advance(request=request, actor=actor, channel=channel, now=now)
    except IntegrityError as exc:
        _raise_for_duplicate(exc)
    return request


def _extension_end(policy, assignment, schedule_end, now):
    """The end an extension asks for: ``schedule_end`` checked against the policy, else the
    latest the policy allows from now."""
    latest = policy.assignment_end(now)
    if latest is not None and latest <= now:
        raise NotEligible(
            _("Access under the policy %(policy)s ended on %(end)s; it cannot be extended.")
            % {"policy": policy.display_name, "end": format_when(latest)}
        )
    if assignment.schedule_end is None:
        raise StateConflict(_("This access does not end, so there is nothing to extend."))
    if schedule_end is None:
        if latest is not None and latest <= assignment.schedule_end:
            raise NotEligible(_("This access already lasts as long as its policy allows."))
        return latest
    if schedule_end <= assignment.schedule_end:
        raise InvalidRequest(
            _("Choose an end after the current one, %(end)s.")
            % {"end": format_when(assignment.schedule_end)},
            field="schedule_end",
        )
    if latest is not None and schedule_end > latest:
        raise InvalidRequest(
            _("Access under this policy can be extended to %(end)s at most.")
            % {"end": format_when(latest)},
            field="schedule_end",
        )
    return schedule_end


def request_cancel(*, actor, request, channel, reason="", now=None):
    """Cancel a request: its requestor or the person it is for while it waits (for approval
    or its start); an administrator of the package's catalog until it is delivered, which
    also ends the assignment a failed or running delivery left. Open approval stages close.
    The system (``actor`` None: the requests of someone who left) cancels what an
    administrator could, giving its ``reason``."""
    now = now or timezone.now()
    is_party = actor is not None and actor.pk in (request.requestor_id, request.target_id)
    is_admin = actor is None or can_manage_assignments(actor, request.access_package.catalog)
    if not is_party and not is_admin:
        raise PermissionDenied(
            _(
                "Only the requestor, the person it is for or an administrator can cancel "
                "this request."
            )
        )
    with transaction.atomic():
        request = (
            AssignmentRequest.objects.select_for_update(of=("self",))
            .select_related("target", "access_package")
            .get(pk=request.pk)
        )
        if not request_cancelable(request=request, by_admin=is_admin):
            raise StateConflict(
                _("This request is %(state)s and can no longer be canceled.")
                % {"state": request.get_state_display().lower()}
            )
        before = request.state
        request.state = RequestState.CANCELED
        request.status = RequestStatus.CANCELED
        request.completed_datetime = now
        request.save(update_fields=["state", "status", "completed_datetime", "modified"])
        _close_open_stages(request, now)
        _audit_request(request, "request.cancel", actor, channel, before, now, reason)
        if request.assignment_id and request.request_type in ADD_REQUEST_TYPES:
            assignment = Assignment.objects.get(pk=request.assignment_id)
            if assignment.is_open:
                assignment_remove(
                    actor=actor,
                    assignment=assignment,
                    channel=channel,
                    reason=reason or _("The request that gave this access was canceled."),
                    now=now,
                )
        transaction.on_commit(
            lambda: request_canceled.send(sender=AssignmentRequest, request=request, actor=actor)
        )
    return request


def _close_open_stages(request, now):
    approval_steps().close_open_stages(requests=[request], now=now)


def requests_start_due(*, now=None):
    """Fulfil the scheduled requests whose start has come; returns how many started.

    Each request is locked with SKIP LOCKED, so two schedulers never start one twice.
    """
    now = now or timezone.now()
    due = AssignmentRequest.objects.filter(
        state=RequestState.SCHEDULED, schedule_start__lte=now
    ).values_list("pk", flat=True)
    started = 0
    for pk in list(due[:1000]):
        with transaction.atomic():
            request = (
                AssignmentRequest.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=RequestState.SCHEDULED)
                .first()
            )
            if request is None:
                continue
            request_fulfil(request=request, now=now)
            started += 1
    return started


# --------------------------------------------------------------------------------------
# Steps shared with approvals (called inside the caller's transaction, rows locked)
# --------------------------------------------------------------------------------------


def request_await_approval(*, request, actor, channel, now):
    """Move a submitted request to pendingApproval and open its first stage."""
    before = request.state
    request.state = RequestState.PENDING_APPROVAL
    request.status = RequestStatus.PENDING_APPROVAL
    request.save(update_fields=["state", "status", "modified"])
    _audit_request(request, "request.await_approval", actor, channel, before, now)
    # A custom extension may hold the request before its first stage opens (launch and wait).
    if extension_steps().hold_request(
        request=request, stage=ExtensionStage.REQUEST_CREATED, now=now
    ):
        return
    approval_steps().open_first_stage(request=request, now=now)


def request_advance(*, request, actor, channel, now):
    """A request needing no (more) approval: wait for its start, or fulfil it now."""
    # Custom extensions may hold it first (launch and wait); each stage's callouts are
    # written once, so the resumed request passes here again without waiting twice.
    steps = extension_steps()
    if request.state == RequestState.SUBMITTED and steps.hold_request(
        request=request, stage=ExtensionStage.REQUEST_CREATED, now=now
    ):
        return
    if steps.hold_request(request=request, stage=ExtensionStage.REQUEST_APPROVED, now=now):
        return
    if request.schedule_start is not None and request.schedule_start > now:
        before = request.state
        request.state = RequestState.SCHEDULED
        request.status = RequestStatus.SCHEDULED
        request.save(update_fields=["state", "status", "modified"])
        _audit_request(request, "request.schedule", actor, channel, before, now)
        return
    if request.schedule_end is not None and request.schedule_end <= now:
        request_deny(
            request=request,
            status=RequestStatus.EXPIRED,
            reason=_("The requested period ended before the request was approved."),
            actor=actor,
            channel=channel,
            now=now,
        )
        return
    request_fulfil(request=request, now=now)


def request_deny(
    *, request, status, reason="", actor=None, channel=Channel.SYSTEM, stage=None, now
):
    """End an open request as denied; ``status`` says why (Denied, Expired, NoApprovers)."""
    if request.state not in OPEN_REQUEST_STATES:
        raise StateConflict(
            _("This request is already %(state)s.") % {"state": request.get_state_display().lower()}
        )
    before = request.state
    request.state = RequestState.DENIED
    request.status = status
    request.completed_datetime = now
    request.save(update_fields=["state", "status", "completed_datetime", "modified"])
    action = "request.expire" if status == RequestStatus.EXPIRED else "request.deny"
    _audit_request(request, action, actor, channel, before, now, reason, status=status)
    if status == RequestStatus.EXPIRED:
        transaction.on_commit(
            lambda: request_expired.send(sender=AssignmentRequest, request=request)
        )
    else:
        transaction.on_commit(
            lambda: request_denied.send(
                sender=AssignmentRequest, request=request, stage=stage, reason=reason
            )
        )


def _audit_request(request, action, actor, channel, before, now, reason="", **data):
    audit_for_request(
        request=request,
        action=action,
        actor=actor,
        channel=channel,
        before=before,
        after=request.state,
        reason=reason,
        data=data,
        now=now,
    )
