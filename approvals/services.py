"""Approval at run time: opening stages, deciding them, escalating and expiring them.

Lock order, everywhere: the request row, then its stage rows. Deciding, cancelling,
escalating and expiring all follow it, so they wait for each other instead of deadlocking.
"""

from types import SimpleNamespace

from django.conf import settings
from django.db import transaction
from django.db.models import F, Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import GroupMembership, User
from entitlements.audit import audit_for_request, audit_record
from entitlements.errors import InvalidRequest, NotEligible, PermissionDenied, StateConflict
from entitlements.models import (
    ADD_REQUEST_TYPES,
    ApprovalStage,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    Channel,
    GrantState,
    QuorumMode,
    RequestState,
    RequestType,
    StageApproverSet,
    SubjectType,
)
from entitlements.selectors import (
    APPROVED_REQUEST_STATES,
    Gate,
    separation_of_duties_conflicts,
)
from entitlements.services import bulk_apply
from entitlements.services.common import lock_request
from entitlements.services.ending import assignments_end
from entitlements.services.requests import (
    CLOCK_SKEW,
    RequestStatus,
    format_when,
    request_advance,
    request_deny,
)

from .models import (
    OPEN_STAGE_STATUSES,
    ApprovalDelegation,
    ApprovalRevocation,
    RequestApprovalStage,
    ReviewResult,
    StageApprover,
    StageStatus,
)
from .quorum import entry_label, progress_of, quorum_rule_fields, rule_of, stage_progress
from .selectors import decided_in_place_of
from .signals import approval_revoked, stage_decided, stage_escalated, stage_opened

SetPurpose = StageApproverSet.Purpose
Kind = StageApprover.Kind

# Jobs handle at most this many due rows per run; the next run takes the rest.
BATCH_SIZE = 500


def resolve_approvers(*, approver_sets, request):
    """The active people ``approver_sets`` name for ``request``, never its requestor or target.

    The manager and sponsors are those of the person the access is for, also when someone
    else asked on their behalf.
    """
    target = request.target
    user_ids, group_ids = set(), set()
    for subject in approver_sets:
        kind = subject.subject_type
        if kind == SubjectType.SINGLE_USER:
            user_ids.add(subject.user_id)
        elif kind == SubjectType.GROUP_MEMBERS:
            group_ids.add(subject.group_id)
        elif kind in (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER):
            manager = target.manager_at_level(subject.manager_level or 1)
            if manager is not None:
                user_ids.add(manager.pk)
        elif kind == SubjectType.TARGET_USER_SPONSORS:
            user_ids.update(target.sponsors.values_list("pk", flat=True))
        elif kind in (SubjectType.INTERNAL_SPONSORS, SubjectType.EXTERNAL_SPONSORS):
            org = target.connected_organization
            if org is not None:
                sponsors = (
                    org.internal_sponsors
                    if kind == SubjectType.INTERNAL_SPONSORS
                    else org.external_sponsors
                )
                user_ids.update(sponsors.values_list("pk", flat=True))
    if group_ids:
        user_ids.update(
            GroupMembership.objects.filter(
                group_id__in=group_ids, role=GroupMembership.Role.MEMBER
            ).values_list("user_id", flat=True)
        )
    user_ids -= {request.target_id, request.requestor_id}
    if not user_ids:
        return []
    return list(User.objects.filter(pk__in=user_ids, is_active=True).order_by("display_name"))


def _approvers_for(sets, request, first, fallback):
    """The ``first`` approvers, or the ``fallback`` ones when the first resolve to nobody."""
    people = resolve_approvers(
        approver_sets=[s for s in sets if s.purpose == first], request=request
    )
    if people:
        return people, first
    fallbacks = [s for s in sets if s.purpose == fallback]
    return resolve_approvers(approver_sets=fallbacks, request=request), fallback


KIND_BY_PURPOSE = {
    SetPurpose.PRIMARY: Kind.PRIMARY,
    SetPurpose.FALLBACK_PRIMARY: Kind.FALLBACK_PRIMARY,
    SetPurpose.ESCALATION: Kind.ESCALATION,
    SetPurpose.FALLBACK_ESCALATION: Kind.FALLBACK_ESCALATION,
}


class ApprovalSteps:
    """What entitlements asks of approvals inside a request's transaction
    (``entitlements.approval``); registered in ``ApprovalsConfig.ready``."""

    def open_first_stage(self, *, request, now):
        stage_open(request=request, sequence=1, now=now)

    def close_open_stages(self, *, requests, now):
        RequestApprovalStage.objects.filter(
            request__in=requests, status__in=OPEN_STAGE_STATUSES
        ).update(status=StageStatus.CANCELED, modified=now)


def stage_open(*, request, sequence, now):
    """Open stage ``sequence`` of a pendingApproval request and resolve its approvers.

    Called inside the caller's transaction with the request locked. When nobody can approve,
    the request is denied with status NoApprovers rather than left waiting; returns the stage
    (None when the policy has no such stage).
    """
    policy_stage = (
        ApprovalStage.objects.filter(policy_id=request.assignment_policy_id, sequence=sequence)
        .prefetch_related(
            Prefetch("approver_sets", queryset=StageApproverSet.objects.order_by("created"))
        )
        .first()
    )
    if policy_stage is None:
        request_deny(
            request=request,
            status=RequestStatus.NO_APPROVERS,
            reason=_("The policy requires approval but has no approval stage %(n)s.")
            % {"n": sequence},
            now=now,
        )
        return None
    stage = RequestApprovalStage.objects.create(
        created=now,
        request=request,
        policy_stage=policy_stage,
        sequence=sequence,
        status=StageStatus.IN_PROGRESS,
        opened_datetime=now,
        deadline=now + policy_stage.duration_before_automatic_denial,
        **quorum_rule_fields(policy_stage),
        escalation_datetime=(
            now + policy_stage.duration_before_escalation
            if policy_stage.is_escalation_enabled and policy_stage.duration_before_escalation
            else None
        ),
    )
    sets = list(policy_stage.approver_sets.all())
    approvers, purpose = _approvers_for(
        sets, request, SetPurpose.PRIMARY, SetPurpose.FALLBACK_PRIMARY
    )
    kinds, entries_of, shortfall = {}, {}, ""
    if policy_stage.is_quorum and approvers:
        approvers, kinds, entries_of, shortfall = _quorum_approvers(
            policy_stage, sets, request, approvers, purpose
        )
    if not approvers or shortfall:
        stage.status = StageStatus.CANCELED
        stage.save(update_fields=["status", "modified"])
        reason = shortfall or _("Nobody could be found to approve stage %(n)s of this request.") % {
            "n": sequence
        }
        _audit_stage(stage, "stage.cancel", None, None, StageStatus.NOT_STARTED, now, reason)
        request_deny(
            request=request,
            status=RequestStatus.NO_APPROVERS,
            reason=reason,
            stage=stage,
            now=now,
        )
        return stage
    StageApprover.objects.bulk_create(
        [
            StageApprover(
                created=now,
                stage=stage,
                user=user,
                kind=kinds.get(user.pk, KIND_BY_PURPOSE[purpose]),
                approver_set_ids=entries_of.get(user.pk, []),
            )
            for user in approvers
        ]
    )
    approvers = approvers + _add_delegates(stage, now)
    _audit_stage(
        stage,
        "stage.open",
        None,
        None,
        StageStatus.NOT_STARTED,
        now,
        approvers=[str(u.pk) for u in approvers],
    )
    transaction.on_commit(
        lambda: stage_opened.send(sender=RequestApprovalStage, stage=stage, approvers=approvers)
    )
    return stage


def _entries_of(sets, request):
    """The primary approver entries each person is resolved from now, by person's pk."""
    entries_of = {}
    for entry in (s for s in sets if s.purpose == SetPurpose.PRIMARY):
        for person in resolve_approvers(approver_sets=[entry], request=request):
            entries_of.setdefault(person.pk, []).append(str(entry.pk))
    return entries_of


def _quorum_approvers(policy_stage, sets, request, approvers, purpose):
    """The approvers of a quorum stage, the kind of each, the primary entries each was
    resolved from, and why the quorum cannot be met ("" when it can).

    When the primary approvers cannot meet the quorum (an entry resolves to nobody, or fewer
    people than the number needed), the fallback approvers join them and stand in for the
    missing entries, as they stand in for everyone in a stage without a quorum.
    """
    kinds = {}
    entries_of = _entries_of(sets, request) if purpose == SetPurpose.PRIMARY else {}

    def shortfall():
        if policy_stage.quorum_mode == QuorumMode.SOME_OF:
            if len(approvers) < (policy_stage.quorum_count or 1):
                return _(
                    "Stage %(n)s needs %(k)s approvals, but only %(found)s people can approve."
                ) % {
                    "n": policy_stage.sequence,
                    "k": policy_stage.quorum_count,
                    "found": len(approvers),
                }
            return ""
        if any(person.pk not in entries_of for person in approvers):
            return ""  # a fallback approver stands in for the missing entries
        covered = {pk for ids in entries_of.values() for pk in ids}
        missing = [
            entry_label(s)
            for s in sets
            if s.purpose == SetPurpose.PRIMARY and str(s.pk) not in covered
        ]
        if missing:
            return _("Nobody could be found to approve stage %(n)s for %(entries)s.") % {
                "n": policy_stage.sequence,
                "entries": ", ".join(missing),
            }
        return ""

    if shortfall() and purpose == SetPurpose.PRIMARY:
        have = {person.pk for person in approvers}
        fallbacks = resolve_approvers(
            approver_sets=[s for s in sets if s.purpose == SetPurpose.FALLBACK_PRIMARY],
            request=request,
        )
        for person in fallbacks:
            if person.pk not in have:
                approvers.append(person)
                kinds[person.pk] = Kind.FALLBACK_PRIMARY
    return approvers, kinds, entries_of, shortfall()


def _closed_stage_message(stage):
    if stage.status == StageStatus.COMPLETED and stage.reviewed_by_id:
        details = {
            "name": stage.reviewed_by.display_name,
            "when": format_when(stage.reviewed_datetime),
        }
        if stage.review_result != ReviewResult.APPROVED:
            return _("This stage was already denied by %(name)s at %(when)s.") % details
        if stage.approvers.filter(decision=ReviewResult.APPROVED).count() > 1:
            return (
                _(
                    "This stage already has the approvals it needs; the last was given by "
                    "%(name)s at %(when)s."
                )
                % details
            )
        return _("This stage was already approved by %(name)s at %(when)s.") % details
    # A quorum stage can close with some approvals given: not "nobody decided" then.
    partly_approved = stage.approvers.filter(decision=ReviewResult.APPROVED).exists()
    if stage.status == StageStatus.EXPIRED:
        when = {"when": format_when(stage.deadline)}
        if partly_approved:
            return (
                _(
                    "This stage did not get all the approvals it needs in time: the request "
                    "expired at %(when)s."
                )
                % when
            )
        return _("Nobody decided this stage in time: the request expired at %(when)s.") % when
    if stage.status == StageStatus.CANCELED:
        if partly_approved:
            return _("This request was closed before this stage got all its approvals.")
        return _("This request was closed before anyone decided it.")
    return _("This stage is not open for decisions.")


def _separation_of_duties_reason(request):
    """Why approving ``request`` would break separation of duties, or "".

    Takes the person's row lock (as submission does), so that two incompatible requests
    approved at the same moment are checked one after the other: the second sees what the
    first was given. Requests still waiting for approval do not count here, or neither of
    two pending incompatible requests could ever be approved.
    """
    if request.request_type not in ADD_REQUEST_TYPES:
        return ""
    User.objects.select_for_update().filter(pk=request.target_id).values_list("pk").first()
    conflicts = separation_of_duties_conflicts(
        user=request.target,
        access_package=request.access_package,
        request_states=APPROVED_REQUEST_STATES,
        exclude_request=request,
    )
    return Gate(
        name=request.target.display_name,
        conflicts=conflicts.held,
        requested_conflicts=conflicts.requested,
    ).conflict_message


def stage_decide(*, actor, stage, decision, justification="", channel, approved_end=None, now=None):
    """Record an approver's decision on an open stage. A denial ends the request; the
    approval that meets the stage's quorum (for most stages: the first one) opens the next
    stage, or after the last one schedules or fulfils the request.

    ``approved_end``, where the policy stage allows it, approves the access until an earlier
    end than the request asks for; the request's schedule is shortened at once, so the
    assignment gets that end when the request is fulfilled.

    An approval that would give someone two incompatible packages denies the request instead
    (committed, with the reason) and raises NotEligible to tell the approver why.
    """
    now = now or timezone.now()
    justification = (justification or "").strip()
    if decision not in (ReviewResult.APPROVED, ReviewResult.DENIED):
        raise InvalidRequest(_("Choose approve or deny."), field="decision")
    request = stage.request
    if actor is None or actor.pk in (request.target_id, request.requestor_id):
        raise PermissionDenied(_("You cannot decide your own request."))
    row = StageApprover.objects.filter(stage=stage, user=actor).first()
    if row is None:
        raise PermissionDenied(_("You are not an approver of this request."))
    if not stage.is_open:
        raise StateConflict(_closed_stage_message(stage))
    if row.decision != ReviewResult.NOT_REVIEWED:
        raise StateConflict(_already_decided_message(row))
    policy_stage = stage.policy_stage
    if policy_stage.is_approver_justification_required and not justification:
        raise InvalidRequest(_("Give a reason for your decision."), field="justification")
    if decision != ReviewResult.APPROVED:
        approved_end = None
    if approved_end is not None:
        approved_end = shortened_end_check(
            policy_stage=policy_stage, request=request, approved_end=approved_end, now=now
        )
    conflict = ""

    with transaction.atomic():
        request = lock_request(request.pk)
        stage = RequestApprovalStage.objects.select_for_update().get(pk=stage.pk)
        stage.request = request
        stage.policy_stage = policy_stage
        # Re-read under the locks: another approver may have decided in the meantime.
        if not stage.is_open:
            raise StateConflict(_closed_stage_message(stage))
        row = StageApprover.objects.filter(pk=row.pk).first()
        if row is None:
            raise PermissionDenied(_("You are no longer an approver of this request."))
        row.user = actor
        stage.decided_as = row  # the audit events of the decision say on whose behalf
        if row.decision != ReviewResult.NOT_REVIEWED:
            raise StateConflict(_already_decided_message(row))
        decided_for_me = decided_in_place_of(row)
        if decided_for_me is not None:
            raise StateConflict(_decided_in_place_message(row, decided_for_me))
        if approved_end is not None:
            # Another approver of the stage may have shortened it meanwhile.
            approved_end = shortened_end_check(
                policy_stage=policy_stage, request=request, approved_end=approved_end, now=now
            )
        if request.state != RequestState.PENDING_APPROVAL:
            raise StateConflict(
                _("This request is %(state)s; it no longer needs a decision.")
                % {"state": request.get_state_display().lower()}
            )
        # The expiry job may not have run yet; the deadline itself is what counts.
        if stage.deadline and stage.deadline <= now:
            raise StateConflict(
                _("The time to decide on this request ended at %(when)s.")
                % {"when": format_when(stage.deadline)}
            )
        if decision == ReviewResult.APPROVED:
            conflict = _separation_of_duties_reason(request)
        if conflict:
            _deny_for_conflict(request, stage, conflict, actor, channel, now)
        else:
            _record_approver_decision(
                row, request, decision, justification, channel, approved_end, now
            )
            if decision == ReviewResult.APPROVED and rule_of(stage).is_quorum:
                progress = stage_progress(stage)
                if not progress.is_met:
                    _audit_stage(
                        stage,
                        "stage.approval",
                        actor,
                        channel,
                        stage.status,
                        now,
                        justification,
                        progress=progress.sentence,
                        **_on_behalf_data(stage),
                    )
                    return stage
            _record_decision(actor, request, stage, decision, justification, channel, now)
    if conflict:
        raise NotEligible(
            _("This request cannot be approved, so it was denied: %(reason)s")
            % {"reason": conflict}
        )
    return stage


def _decided_in_place_message(row, other):
    """Why ``row``'s person may not decide: ``other`` (their approver, or their delegate)
    already decided for the same approver."""
    details = {"name": other.user.display_name, "when": format_when(other.decided_datetime)}
    if row.on_behalf_of_id:
        return (
            _(
                "%(name)s already decided this request at %(when)s; you were asked on their "
                "behalf, so there is nothing left for you to decide."
            )
            % details
        )
    return _("%(name)s already decided this request on your behalf at %(when)s.") % details


def _already_decided_message(row):
    details = {"when": format_when(row.decided_datetime)}
    if row.decision == ReviewResult.APPROVED:
        return _("You already approved this request at %(when)s.") % details
    return _("You already denied this request at %(when)s.") % details


def requested_end_of(request, now):
    """When the access a request asks for would end if approved now (None: never)."""
    if request.schedule_end is not None:
        return request.schedule_end
    return request.assignment_policy.assignment_end(request.schedule_start or now)


def _current_end_of_extended(request):
    """When the access an extension request extends ends now (None: not an extension, or
    the access has no end)."""
    if request.request_type != RequestType.USER_EXTEND or request.assignment_id is None:
        return None
    return request.assignment.schedule_end


def shortened_end_check(*, policy_stage, request, approved_end, now):
    """``approved_end`` if an approver of ``policy_stage`` may approve the request until
    then, None when it is the end the request already has; raises InvalidRequest otherwise.

    It can only shorten: after the access starts, no later than the request asks for and
    never beyond the policy's limit.
    """
    field = "approved_end"
    if not policy_stage.approvers_may_shorten:
        raise InvalidRequest(
            _("This approval stage does not let approvers change the end of the access."),
            field=field,
        )
    start = max(request.schedule_start or now, now)
    if approved_end <= start:
        raise InvalidRequest(
            _("The access must end after it starts (%(when)s).") % {"when": format_when(start)},
            field=field,
        )
    # Beyond the policy's limit or beyond the end the request asks for, each in its own
    # words: a request that took the policy's end is not said to have asked for it.
    limit = request.assignment_policy.assignment_end(request.schedule_start or now)
    requested = request.schedule_end
    if limit is not None and approved_end > limit and (requested is None or requested >= limit):
        raise InvalidRequest(
            _("The policy gives this access until %(when)s at the latest.")
            % {"when": format_when(limit)},
            field=field,
        )
    if requested is not None and approved_end > requested:
        raise InvalidRequest(
            _(
                "You can only shorten the access: choose an end no later than "
                "%(when)s, which the request asks for."
            )
            % {"when": format_when(requested)},
            field=field,
        )
    current_end = _current_end_of_extended(request)
    if current_end is not None and approved_end < current_end:
        raise InvalidRequest(
            _(
                "This request extends access that already lasts until %(when)s: approving "
                "it can't end the access earlier. Choose an end on or after that, or deny it."
            )
            % {"when": format_when(current_end)},
            field=field,
        )
    requested = requested_end_of(request, now)
    if requested is not None and approved_end == requested:
        return None
    return approved_end


def _record_approver_decision(row, request, decision, justification, channel, approved_end, now):
    """Record one approver's own decision, and shorten the request when they approved it
    until an earlier end."""
    row.decision = decision
    row.decided_datetime = now
    row.justification = justification
    row.channel = channel
    fields = ["decision", "decided_datetime", "justification", "channel", "modified"]
    if approved_end is not None:
        row.requested_end = requested_end_of(request, now)
        row.approved_end = approved_end
        fields += ["requested_end", "approved_end"]
        request.schedule_end = approved_end
        request.save(update_fields=["schedule_end", "modified"])
        audit_for_request(
            request=request,
            action="request.shortened",
            actor=row.user,
            channel=channel,
            before=_iso(row.requested_end),
            after=_iso(approved_end),
            reason=justification,
            data={"on_behalf_of": str(row.on_behalf_of_id)} if row.on_behalf_of_id else None,
            now=now,
        )
    row.save(update_fields=fields)


def _iso(when):
    return when.isoformat() if when else ""


def _deny_for_conflict(request, stage, reason, actor, channel, now):
    """Close the stage undecided and deny the request for separation of duties."""
    before = stage.status
    stage.status = StageStatus.CANCELED
    stage.save(update_fields=["status", "modified"])
    _audit_stage(
        stage, "stage.cancel", actor, channel, before, now, reason, **_on_behalf_data(stage)
    )
    request_deny(
        request=request,
        status=RequestStatus.DENIED,
        reason=reason,
        channel=Channel.SYSTEM,
        now=now,
    )


def _record_decision(actor, request, stage, decision, justification, channel, now):
    """Record the decision on the locked open stage and move the request on."""
    before = stage.status
    stage.status = StageStatus.COMPLETED
    stage.review_result = decision
    stage.reviewed_by = actor
    stage.reviewed_datetime = now
    stage.justification = justification
    stage.channel = channel
    stage.save(
        update_fields=[
            "status",
            "review_result",
            "reviewed_by",
            "reviewed_datetime",
            "justification",
            "channel",
            "modified",
        ]
    )
    action = "stage.approve" if decision == ReviewResult.APPROVED else "stage.deny"
    _audit_stage(
        stage, action, actor, channel, before, now, justification, **_on_behalf_data(stage)
    )
    transaction.on_commit(lambda: stage_decided.send(sender=RequestApprovalStage, stage=stage))

    if decision == ReviewResult.DENIED:
        request_deny(
            request=request,
            status=RequestStatus.DENIED,
            reason=justification,
            actor=actor,
            channel=channel,
            stage=stage,
            now=now,
        )
    elif ApprovalStage.objects.filter(
        policy_id=request.assignment_policy_id, sequence=stage.sequence + 1
    ).exists():
        if request.status != RequestStatus.PENDING_APPROVAL:
            request.status = RequestStatus.PENDING_APPROVAL
            request.save(update_fields=["status", "modified"])
        stage_open(request=request, sequence=stage.sequence + 1, now=now)
    else:
        request_advance(request=request, actor=actor, channel=channel, now=now)


def stages_decide(*, actor, stages, decision, justification="", channel, now=None):
    """Decide many stages the same way (bulk approval); each refused one with the reason."""
    now = now or timezone.now()
    return bulk_apply(
        stages,
        lambda stage: stage_decide(
            actor=actor,
            stage=stage,
            decision=decision,
            justification=justification,
            channel=channel,
            now=now,
        ),
    )


def _due_locked(stage_pk, request_pk):
    """A due stage and its request, locked, or (None, None) when another worker holds the
    request or the stage was decided in the meantime."""
    request = lock_request(request_pk, skip_locked=True)
    if request is None or request.state != RequestState.PENDING_APPROVAL:
        return None, None
    stage = (
        RequestApprovalStage.objects.select_for_update()
        .filter(pk=stage_pk, status__in=OPEN_STAGE_STATUSES)
        .first()
    )
    if stage is None:
        return None, None
    stage.request = request
    return request, stage


def stages_escalate_due(*, now=None):
    """Forward the undecided stages whose escalation time has come to their escalation
    approvers (the primary approvers can still decide); returns how many were escalated."""
    now = now or timezone.now()
    due = RequestApprovalStage.objects.filter(
        status=StageStatus.IN_PROGRESS,
        escalation_datetime__lte=now,
        request__state=RequestState.PENDING_APPROVAL,
    ).values_list("pk", "request_id")
    escalated = 0
    for stage_pk, request_pk in list(due[:BATCH_SIZE]):
        with transaction.atomic():
            request, stage = _due_locked(stage_pk, request_pk)
            if stage is None or stage.status != StageStatus.IN_PROGRESS:
                continue
            if stage.escalation_datetime is None or stage.escalation_datetime > now:
                continue
            sets = list(
                StageApproverSet.objects.filter(
                    stage_id=stage.policy_stage_id,
                    purpose__in=[SetPurpose.ESCALATION, SetPurpose.FALLBACK_ESCALATION],
                )
            )
            approvers, purpose = _approvers_for(
                sets, request, SetPurpose.ESCALATION, SetPurpose.FALLBACK_ESCALATION
            )
            already = set(stage.approvers.values_list("user_id", flat=True))
            approvers = [u for u in approvers if u.pk not in already]
            StageApprover.objects.bulk_create(
                [
                    StageApprover(created=now, stage=stage, user=u, kind=KIND_BY_PURPOSE[purpose])
                    for u in approvers
                ]
            )
            approvers += _add_delegates(stage, now, among=[u.pk for u in approvers])
            stage.status = StageStatus.ESCALATED
            stage.escalated_datetime = now
            stage.save(update_fields=["status", "escalated_datetime", "modified"])
            request.status = RequestStatus.PENDING_APPROVAL_ESCALATED
            request.save(update_fields=["status", "modified"])
            reason = (
                ""
                if approvers
                else _("No escalation approver could be found; the approvers can still decide.")
            )
            _audit_stage(
                stage,
                "stage.escalate",
                None,
                None,
                StageStatus.IN_PROGRESS,
                now,
                reason,
                approvers=[str(u.pk) for u in approvers],
            )
            transaction.on_commit(
                lambda stage=stage, approvers=approvers: stage_escalated.send(
                    sender=RequestApprovalStage, stage=stage, approvers=approvers
                )
            )
            escalated += 1
    return escalated


def stages_expire_due(*, now=None):
    """Deny, as Expired, the requests whose open stage reached its deadline undecided;
    returns how many expired."""
    now = now or timezone.now()
    due = RequestApprovalStage.objects.filter(
        status__in=OPEN_STAGE_STATUSES,
        deadline__lte=now,
        request__state=RequestState.PENDING_APPROVAL,
    ).values_list("pk", "request_id")
    expired = 0
    for stage_pk, request_pk in list(due[:BATCH_SIZE]):
        with transaction.atomic():
            request, stage = _due_locked(stage_pk, request_pk)
            if stage is None or stage.deadline > now:
                continue
            before = stage.status
            stage.status = StageStatus.EXPIRED
            stage.save(update_fields=["status", "modified"])
            _audit_stage(stage, "stage.expire", None, None, before, now)
            request_deny(
                request=request,
                status=RequestStatus.EXPIRED,
                reason=_("Nobody decided stage %(n)s by %(when)s.")
                % {"n": stage.sequence, "when": format_when(stage.deadline)},
                stage=stage,
                now=now,
            )
            expired += 1
    return expired


def _audit_stage(stage, action, actor, channel, before, now, reason="", **data):
    audit_for_request(
        request=stage.request,
        obj=stage,
        action=action,
        actor=actor,
        channel=channel or Channel.SYSTEM,
        before=before,
        after=stage.status,
        reason=reason,
        data=data,
        now=now,
    )


# --------------------------------------------------------------------------------------
# People who leave or move: their stages find other approvers
# --------------------------------------------------------------------------------------

MANAGER_SUBJECTS = (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER)
# The approvers a stage resolves, in pairs: first these, or the fallback when they are nobody.
APPROVER_PAIRS = (
    (SetPurpose.PRIMARY, SetPurpose.FALLBACK_PRIMARY),
    (SetPurpose.ESCALATION, SetPurpose.FALLBACK_ESCALATION),
)


def _locked_open_stages(stages):
    """Lock each open stage of ``stages`` (a queryset) with its pendingApproval request, in
    the lock order (request, then stage); yields (request, stage)."""
    rows = list(
        stages.filter(status__in=OPEN_STAGE_STATUSES, request__state=RequestState.PENDING_APPROVAL)
        .order_by("request_id", "sequence")
        .values_list("pk", "request_id")
    )
    for stage_pk, request_pk in rows:
        request = lock_request(request_pk)
        if request is None or request.state != RequestState.PENDING_APPROVAL:
            continue
        stage = (
            RequestApprovalStage.objects.select_for_update()
            .select_related("policy_stage")
            .filter(pk=stage_pk, status__in=OPEN_STAGE_STATUSES)
            .first()
        )
        if stage is None:
            continue
        stage.request = request
        yield request, stage


def _pairs_of(stage):
    """The approver pairs that apply to an open stage: escalation only once it escalated."""
    return APPROVER_PAIRS if stage.status == StageStatus.ESCALATED else APPROVER_PAIRS[:1]


def _resolve_pair(sets, request, pair):
    people, purpose = _approvers_for(sets, request, *pair)
    return [(person, KIND_BY_PURPOSE[purpose]) for person in people]


def _nobody_left(request, stage, reason, now):
    """The stage has no approver any more: it ends as a stage nobody could approve does when
    it opens (canceled, and the request denied with NoApprovers)."""
    before = stage.status
    stage.status = StageStatus.CANCELED
    stage.save(update_fields=["status", "modified"])
    _audit_stage(stage, "stage.cancel", None, None, before, now, reason)
    request_deny(
        request=request, status=RequestStatus.NO_APPROVERS, reason=reason, stage=stage, now=now
    )


def _set_ids(person, kind, entries_of):
    """A new approver's entries: a primary approver's, as the stage opening finds them; a
    fallback or escalation approver comes from none (and stands in for all)."""
    return entries_of.get(person.pk, []) if kind == KIND_BY_PURPOSE[SetPurpose.PRIMARY] else []


def _can_still_meet(stage, people=(), entries_of=None):
    """Whether the approvals given plus those the undecided active approvers (and ``people``,
    (person, kind) pairs about to be asked) could give would meet the stage's quorum."""
    hopeful = [
        SimpleNamespace(
            decision=ReviewResult.APPROVED,
            user=row.user,
            user_id=row.user_id,
            on_behalf_of_id=row.on_behalf_of_id,
            approver_set_ids=row.approver_set_ids,
        )
        for row in stage.approvers.select_related("user")
        if row.decision == ReviewResult.APPROVED
        or (row.decision == ReviewResult.NOT_REVIEWED and row.user.is_active)
    ]
    hopeful += [
        SimpleNamespace(
            decision=ReviewResult.APPROVED,
            user=person,
            user_id=person.pk,
            on_behalf_of_id=None,
            approver_set_ids=_set_ids(person, kind, entries_of or {}),
        )
        for person, kind in people
    ]
    return progress_of(rule=rule_of(stage), approvers=hopeful).is_met


def _add_approvers(stage, people, now, entries_of=None):
    StageApprover.objects.bulk_create(
        [
            StageApprover(
                created=now,
                stage=stage,
                user=user,
                kind=kind,
                approver_set_ids=_set_ids(user, kind, entries_of or {}),
            )
            for user, kind in people
        ]
    )
    asked = [user for user, _kind in people]
    asked += _add_delegates(stage, now, among=[user.pk for user in asked])
    if asked:
        transaction.on_commit(
            lambda: stage_opened.send(sender=RequestApprovalStage, stage=stage, approvers=asked)
        )


def approvals_reroute_from(*, user, reason="", data=None, now=None):
    """Take ``user`` (disabled: they left) off the open stages they were to decide; returns
    how many stages changed.

    A stage that other approvers can still decide simply loses them. A stage they were the
    last approver of resolves its approvers again, as when it opened (its approvers, else its
    fallback approvers; once escalated, also its escalation approvers), and the new approvers
    are asked. When that finds nobody, the stage ends as one nobody could approve does: the
    request is denied with NoApprovers.
    """
    now = now or timezone.now()
    changed = 0
    with transaction.atomic():
        stages = RequestApprovalStage.objects.filter(approvers__user=user)
        for request, stage in _locked_open_stages(stages):
            # An approval they gave a quorum stage before they left still counts; their
            # delegate, asked on their behalf, is no longer asked either.
            StageApprover.objects.filter(
                Q(user=user) | Q(on_behalf_of=user),
                stage=stage,
                decision=ReviewResult.NOT_REVIEWED,
            ).delete()
            details = {"removed": [str(user.pk)], **(data or {})}
            if _can_still_meet(stage):
                _audit_stage(
                    stage, "stage.rerouted", None, None, stage.status, now, reason, **details
                )
                changed += 1
                continue
            sets = list(StageApproverSet.objects.filter(stage_id=stage.policy_stage_id))
            # Who already has a row (a quorum approver who decided) is not asked again.
            present = set(stage.approvers.values_list("user_id", flat=True)) | {user.pk}
            people = [
                pair
                for purposes in _pairs_of(stage)
                for pair in _resolve_pair(sets, request, purposes)
                if pair[0].pk not in present
            ]
            people = list({person.pk: (person, kind) for person, kind in people}.values())
            entries_of = _entries_of(sets, request)
            if not _can_still_meet(stage, people, entries_of):
                # A quorum entry nobody can give any more: the fallback approvers stand in,
                # as when the stage opened short of its quorum.
                asked = present | {person.pk for person, _kind in people}
                people += [
                    (person, Kind.FALLBACK_PRIMARY)
                    for person in resolve_approvers(
                        approver_sets=[s for s in sets if s.purpose == SetPurpose.FALLBACK_PRIMARY],
                        request=request,
                    )
                    if person.pk not in asked
                ]
            if not people or not _can_still_meet(stage, people, entries_of):
                _nobody_left(
                    request,
                    stage,
                    _("Nobody is left to approve stage %(n)s of this request: %(name)s left.")
                    % {"n": stage.sequence, "name": user.display_name},
                    now,
                )
                changed += 1
                continue
            _add_approvers(stage, people, now, entries_of)
            _audit_stage(
                stage,
                "stage.rerouted",
                None,
                None,
                stage.status,
                now,
                reason,
                added=[str(person.pk) for person, _kind in people],
                **details,
            )
            changed += 1
    return changed


def approvals_reresolve_managers(*, target_ids, reason="", data=None, now=None):
    """Resolve again the approvers that open stages took from a manager, for the requests of
    the people ``target_ids`` (whose manager, or manager's manager, changed); returns how many
    stages changed.

    Only stages whose policy names the requestor's or target's manager are looked at; in
    them the approvers of that kind are replaced by what the directory says now, and the
    new ones are asked. When nobody is left to decide, the request is denied with
    NoApprovers, as when a stage opens with nobody.
    """
    now = now or timezone.now()
    changed = 0
    managed = StageApproverSet.objects.filter(subject_type__in=MANAGER_SUBJECTS)
    with transaction.atomic():
        stages = RequestApprovalStage.objects.filter(
            request__target_id__in=list(target_ids),
            policy_stage__in=managed.values("stage_id"),
        )
        for request, stage in _locked_open_stages(stages):
            sets = list(StageApproverSet.objects.filter(stage_id=stage.policy_stage_id))
            rows = list(stage.approvers.all())
            # A delegate's row stays with its approver: it goes only when they go.
            current = {row.user_id: row for row in rows if row.on_behalf_of_id is None}
            present = {row.user_id for row in rows}
            added, removed = [], []
            for pair in _pairs_of(stage):
                if not any(s.subject_type in MANAGER_SUBJECTS for s in sets if s.purpose in pair):
                    continue
                kinds = {KIND_BY_PURPOSE[purpose] for purpose in pair}
                now_resolved = _resolve_pair(sets, request, pair)
                wanted = {person.pk for person, _kind in now_resolved}
                # An approver who already decided keeps their row: their decision stands.
                removed += [
                    row
                    for pk, row in current.items()
                    if row.kind in kinds
                    and pk not in wanted
                    and row.decision == ReviewResult.NOT_REVIEWED
                ]
                # One row per approver: primary and escalation sets may both name the new manager.
                for person, kind in now_resolved:
                    if person.pk not in present and person.pk not in {p.pk for p, _k in added}:
                        added.append((person, kind))
            gone = {row.user_id for row in removed}
            removed = list(
                {
                    row.pk: row for row in removed + [r for r in rows if r.on_behalf_of_id in gone]
                }.values()
            )
            if not added and not removed:
                continue
            StageApprover.objects.filter(pk__in=[row.pk for row in removed]).delete()
            changed += 1
            if not added and not stage.approvers.exists():
                _nobody_left(
                    request,
                    stage,
                    _("Nobody is left to approve stage %(n)s of this request: the manager changed.")
                    % {"n": stage.sequence},
                    now,
                )
                continue
            _add_approvers(stage, added, now, _entries_of(sets, request))
            _audit_stage(
                stage,
                "stage.reresolved",
                None,
                None,
                stage.status,
                now,
                reason,
                added=[str(person.pk) for person, _kind in added],
                removed=[str(row.user_id) for row in removed],
                **(data or {}),
            )
    return changed


# --------------------------------------------------------------------------------------
# Delegation: an approver's delegate is asked as well while the delegation is in force
# --------------------------------------------------------------------------------------


def _on_behalf_data(stage):
    """For a decision's audit event: on whose behalf the approver decided, when a delegate."""
    row = getattr(stage, "decided_as", None)
    if row is None or row.on_behalf_of_id is None:
        return {}
    return {"on_behalf_of": str(row.on_behalf_of_id)}


def _add_delegates(stage, now, among=None):
    """Ask, as well, the delegates of the stage's approvers (of those in ``among``) whose
    delegation is in force at ``now``; returns the delegates added.

    One level: an approver who is only someone's delegate passes nothing on. A delegate who
    is already an approver of the stage, or the requestor or target, is not added; a person
    who is the delegate of two approvers is asked once, for the first by name. Stages already
    open when a delegation starts keep their approvers (as in Entra, new approvals only).
    """
    rows = StageApprover.objects.filter(stage=stage, on_behalf_of__isnull=True)
    if among is not None:
        rows = rows.filter(user_id__in=list(among))
    rows = {row.user_id: row for row in rows}
    if not rows:
        return []
    request = stage.request
    excluded = set(StageApprover.objects.filter(stage=stage).values_list("user_id", flat=True))
    excluded |= {pk for pk in (request.target_id, request.requestor_id) if pk is not None}
    delegations = (
        ApprovalDelegation.objects.filter(
            delegator_id__in=list(rows), start__lte=now, end__gt=now, delegate__is_active=True
        )
        .exclude(delegate_id__in=list(excluded))
        .select_related("delegate", "delegator")
        .order_by("delegator__display_name", "delegator_id")
    )
    added = {}
    for delegation in delegations:
        if delegation.delegate_id in added:
            continue
        row = rows[delegation.delegator_id]
        added[delegation.delegate_id] = StageApprover(
            created=now,
            stage=stage,
            user=delegation.delegate,
            kind=row.kind,
            approver_set_ids=row.approver_set_ids,
            on_behalf_of=delegation.delegator,
        )
    StageApprover.objects.bulk_create(list(added.values()))
    return [row.user for row in added.values()]


def delegation_create(*, actor, delegate, start, end, note="", channel, now=None):
    """``actor`` names ``delegate`` to be asked as well for the stages opening for them from
    ``start`` until ``end``; returns the delegation.

    Refused: an end not after the start or already past, a start in the past, oneself, a
    person who cannot sign in, a period overlapping another delegation of ``actor``.
    """
    now = now or timezone.now()
    note = (note or "").strip()
    start = start or now
    if start < now - CLOCK_SKEW:
        raise InvalidRequest(_("The delegation cannot start in the past."), field="start")
    start = max(start, now)
    if end is None or end <= now:
        raise InvalidRequest(_("The delegation must end in the future."), field="end")
    if end <= start:
        raise InvalidRequest(_("The delegation must end after it starts."), field="end")
    if delegate is None or delegate.pk == actor.pk:
        raise InvalidRequest(_("Choose someone other than yourself."), field="delegate")
    if not delegate.is_active:
        raise InvalidRequest(
            _("%(name)s cannot sign in, so they cannot approve.") % {"name": delegate.display_name},
            field="delegate",
        )
    with transaction.atomic():
        # The approver's row lock makes two overlapping delegations made at once wait for
        # each other, so the second sees the first (SQLite has no exclusion constraint).
        User.objects.select_for_update().filter(pk=actor.pk).values_list("pk").first()
        overlapping = (
            ApprovalDelegation.objects.filter(delegator=actor, start__lt=end, end__gt=start)
            .exclude(end=F("start"))
            .select_related("delegate")
            .first()
        )
        if overlapping is not None:
            raise StateConflict(
                _(
                    "You already delegate your approvals to %(name)s from %(start)s until "
                    "%(end)s; end that delegation first or choose another period."
                )
                % {
                    "name": overlapping.delegate.display_name,
                    "start": format_when(overlapping.start),
                    "end": format_when(overlapping.end),
                }
            )
        delegation = ApprovalDelegation.objects.create(
            created=now, delegator=actor, delegate=delegate, start=start, end=end, note=note
        )
        _audit_delegation(delegation, "approvalDelegation.created", actor, channel, now)
    return delegation


def delegation_end(*, actor, delegation, channel, now=None):
    """End a delegation early (before it starts: it never applies); only its approver may.

    Stages the delegate was already asked to decide keep them as an approver."""
    now = now or timezone.now()
    if actor is None or actor.pk != delegation.delegator_id:
        raise PermissionDenied(_("Only the approver who delegated can end this delegation."))
    with transaction.atomic():
        delegation = ApprovalDelegation.objects.select_for_update().get(pk=delegation.pk)
        if delegation.ended_datetime is not None or delegation.end <= now:
            raise StateConflict(_("This delegation has already ended."))
        before = delegation.end
        delegation.end = max(now, delegation.start)
        delegation.ended_datetime = now
        delegation.save(update_fields=["end", "ended_datetime", "modified"])
        _audit_delegation(
            delegation,
            "approvalDelegation.ended",
            actor,
            channel,
            now,
            planned_end=before.isoformat(),
        )
    return delegation


def _audit_delegation(delegation, action, actor, channel, now, **data):
    audit_record(
        action=action,
        obj=delegation,
        actor=actor,
        channel=channel,
        reason=delegation.note,
        target=delegation.delegator_id,
        data={
            "delegate": str(delegation.delegate_id),
            "start": delegation.start.isoformat(),
            "end": delegation.end.isoformat(),
            **data,
        },
        now=now,
    )


# --------------------------------------------------------------------------------------
# Revoking an approval
# --------------------------------------------------------------------------------------

# A request in these states has given nothing yet: revoking the approval ends it.
NOT_YET_DELIVERED = (RequestState.SUBMITTED, RequestState.PENDING_APPROVAL, RequestState.SCHEDULED)
# A request in these states gave access (or tried to): revoking removes the assignment.
DELIVERED_OR_TRIED = (
    RequestState.DELIVERING,
    RequestState.DELIVERED,
    RequestState.PARTIALLY_DELIVERED,
    RequestState.DELIVERY_FAILED,
)


def revoke_deadline(approval):
    """Until when ``approval`` (a StageApprover row that approved) may be revoked; None when
    revoking is turned off."""
    window = settings.APPROVAL_REVOKE_WINDOW
    if not window or approval.decided_datetime is None:
        return None
    return approval.decided_datetime + window


def approval_revoke(*, actor, approval, reason, channel, now=None):
    """Take back the approval ``approval`` (``actor``'s own StageApprover row, approved),
    within ``APPROVAL_REVOKE_WINDOW`` of giving it; returns the ApprovalRevocation.

    Before anything was delivered the request ends as denied ("approval revoked by ...") and
    its open stages close; once delivery started (a grant claimed by a worker, or delivered)
    the access it gave is removed (an adminRemove of the assignment, through the one removal
    path). Lock order: the assignment, then the request, then its stages, as delivery does
    (it records under the assignment's lock and then settles the request); a claim either
    happened before (access removed) or finds the assignment ended.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    if actor is None or approval.user_id != actor.pk:
        raise PermissionDenied(_("Only the approver who gave this approval can revoke it."))
    if approval.decision != ReviewResult.APPROVED:
        raise StateConflict(_("Only an approval can be revoked."))
    if not reason:
        raise InvalidRequest(_("Say why you revoke your approval."), field="reason")
    deadline = revoke_deadline(approval)
    if deadline is None or deadline <= now:
        raise StateConflict(
            _("The time to revoke this approval ended at %(when)s.")
            % {"when": format_when(deadline or approval.decided_datetime)}
        )
    with transaction.atomic():
        assignment, request = _lock_assignment_and_request(approval.stage.request_id)
        stage = RequestApprovalStage.objects.select_for_update().get(pk=approval.stage_id)
        stage.request = request
        approval = StageApprover.objects.select_for_update().get(pk=approval.pk)
        if ApprovalRevocation.objects.filter(approval=approval).exists():
            raise StateConflict(_("You already revoked this approval."))
        text = _("Approval revoked by %(name)s: %(reason)s") % {
            "name": actor.display_name,
            "reason": reason,
        }
        outcome = _revoke_effect(request, assignment, actor, channel, text, now)
        revocation = ApprovalRevocation.objects.create(
            created=now, approval=approval, revoked_by=actor, reason=reason, outcome=outcome
        )
        _audit_stage(
            stage,
            "stage.approval_revoked",
            actor,
            channel,
            stage.status,
            now,
            reason,
            approval=str(approval.pk),
            outcome=outcome,
        )
        transaction.on_commit(
            lambda: approval_revoked.send(sender=ApprovalRevocation, revocation=revocation)
        )
    return revocation


def _lock_assignment_and_request(request_id):
    """The request's assignment (or None) and the request, locked in that order (the
    delivery worker's); the assignment is read unlocked first, so it is checked again, and
    when the request got one meanwhile (approved in between), both locks are let go (the
    savepoint) and taken again in that order, never the assignment's while holding the
    request's."""
    while True:
        savepoint = transaction.savepoint()
        assignment_id = (
            AssignmentRequest.objects.filter(pk=request_id)
            .values_list("assignment_id", flat=True)
            .first()
        )
        assignment = None
        if assignment_id is not None:
            assignment = (
                Assignment.objects.select_for_update(of=("self",)).filter(pk=assignment_id).first()
            )
        request = lock_request(request_id)
        if request.assignment_id == assignment_id:
            transaction.savepoint_commit(savepoint)
            return assignment, request
        transaction.savepoint_rollback(savepoint)


def _revoke_effect(request, assignment, actor, channel, text, now):
    """End ``request`` (locked) or remove what it gave (``assignment``, locked before the
    request, or None); returns the revocation's outcome."""
    Outcome = ApprovalRevocation.Outcome
    if request.state not in DELIVERED_OR_TRIED:
        assignment = None
    started = assignment is not None and _delivery_started(assignment.pk)
    if request.state in NOT_YET_DELIVERED or (
        request.state == RequestState.DELIVERING and not started
    ):
        RequestApprovalStage.objects.filter(request=request, status__in=OPEN_STAGE_STATUSES).update(
            status=StageStatus.CANCELED, modified=now
        )
        request_deny(
            request=request,
            status=RequestStatus.DENIED,
            reason=text,
            actor=actor,
            channel=channel,
            now=now,
        )
        if assignment is not None and assignment.is_open:
            # Created, but no worker has claimed it: no connector was called.
            _remove_assignment(assignment, actor, channel, text, now)
        return Outcome.REQUEST_ENDED
    if assignment is None:
        raise StateConflict(
            _("This request is %(state)s; there is nothing left to revoke.")
            % {"state": request.get_state_display().lower()}
        )
    if request.request_type not in ADD_REQUEST_TYPES:
        raise StateConflict(
            _(
                "The extension you approved is already applied; to end this access, ask the "
                "catalog's owners or assignment managers to remove it."
            )
        )
    if not assignment.is_open:
        raise StateConflict(_("The access this approval gave has already ended."))
    if request.state == RequestState.DELIVERING:
        # A worker is delivering it right now: the request ends with the revocation (not as
        # access that "ended before it was delivered"), and what the worker grants is revoked.
        request_deny(
            request=request,
            status=RequestStatus.DENIED,
            reason=text,
            actor=actor,
            channel=channel,
            now=now,
        )
    _remove_assignment(assignment, actor, channel, text, now)
    return Outcome.ACCESS_REMOVED


def _delivery_started(assignment_id):
    """A worker claimed (or delivered) a grant of the assignment: a connector may have run."""
    return (
        AssignmentResourceRole.objects.filter(assignment_id=assignment_id)
        .filter(Q(state=GrantState.DELIVERED) | ~Q(claimed_by=""))
        .exists()
    )


def revoke_removes_access(request):
    """Whether revoking an approval of ``request`` now would remove access (rather than end
    the request before anything was delivered); for the page that asks to confirm."""
    if request.state not in DELIVERED_OR_TRIED or request.assignment_id is None:
        return False
    if request.request_type not in ADD_REQUEST_TYPES:
        return False  # an applied extension is not undone by revoking (approval_revoke)
    return request.state != RequestState.DELIVERING or _delivery_started(request.assignment_id)


def _remove_assignment(assignment, actor, channel, text, now):
    # The approver is no administrator: the right to remove comes from their own approval,
    # checked above, so the one set-based removal path is called directly. Its "access ended"
    # email stays off: the revocation's email tells the requestor.
    assignments_end(
        assignment_ids=[assignment.pk],
        actor=actor,
        channel=channel,
        request_type=RequestType.ADMIN_REMOVE,
        reason=text,
        notify=False,
        now=now,
    )
