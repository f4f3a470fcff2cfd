"""Bulk direct assignment and removal: a preview, then one job that works in batches.

The preview (``bulk_job_prepare``) checks everyone at once and writes only the job row: who
would be assigned (or lose the package) and who is refused, and why. ``bulk_job_start``
queues it; ``bulk_job_run`` (the task's service) works through the users in batches of
``BATCH_SIZE``, each batch one transaction that locks its users' rows (as ``request_submit``
locks one), checks them again with the same set-based checks, writes the requests,
assignments, grants and audit events with a few INSERTs, advances the job's progress and,
on commit, enqueues the batch's delivery. A run is safe to repeat: it resumes after the last
committed batch. The single-user path (``request_submit`` with adminAdd) and this one give
the same refusals in the same words (``selectors.Gate``).
"""

import logging
from datetime import timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import GroupMembership, User

from ..audit import audit_bulk, audit_event
from ..errors import DomainError, InvalidRequest, PermissionDenied, StateConflict
from ..extension import extension_steps
from ..models import (
    ADD_REQUEST_TYPES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    BulkJob,
    Channel,
    GrantState,
    OriginSystem,
    RequestState,
    RequestType,
    ResourceRoleScope,
)
from ..permissions import can_manage_assignments
from ..queue import enqueue_named
from ..selectors import Gate, incompatible_packages, package_has_roles, users_in_scope
from ..signals import request_submitted
from .common import lifecycle_event, status_of
from .ending import assignments_end
from .requests import RequestStatus, _clean_schedule, request_submit

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# People checked per set of queries in the preview (SQLite takes at most 32,766 parameters).
CHECK_SIZE = 5000
# The most people one job takes (Entra's tenant limit of assignments is 300,000).
MAX_USERS = 50_000
RUN_TASK = "entitlements.tasks.run_bulk_job"
# An open job may be queued again when it has been queued for a minute, or running with no
# batch committed for ten: its message or its worker may be lost.
QUEUED_STALE_AFTER, STALE_AFTER = timedelta(minutes=1), timedelta(minutes=10)
DONE, REFUSED = "done", "refused"


def _require_manager(actor, access_package):
    if not can_manage_assignments(actor, access_package.catalog):
        raise PermissionDenied(
            _(
                "Only administrators, and owners and access package assignment managers of "
                "the catalog %(catalog)s, can assign its access packages."
            )
            % {"catalog": access_package.catalog.display_name}
        )


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def users_by_email(emails):
    """{lower-cased email: user} for the given emails, one query per CHECK_SIZE of them."""
    wanted = sorted({e.lower() for e in emails})
    found = {}
    for chunk in _chunks(wanted, CHECK_SIZE):
        rows = User.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=chunk)
        found |= {user.email_lower: user for user in rows}
    return found


# --------------------------------------------------------------------------------------
# The checks, for a set of users at once
# --------------------------------------------------------------------------------------


def _conflicts_of(user_ids, access_package):
    """{user id: (held, requested)}: what each user has, or has asked for, that the package
    is incompatible with, in the words of ``separation_of_duties_conflicts``. Four queries."""
    incompatible = incompatible_packages(access_package).values("pk")
    groups = access_package.incompatible_groups.values("pk")
    held_packages, held_groups, requested = {}, {}, {}
    for target_id, name in Assignment.objects.filter(
        target_id__in=user_ids, state__in=OPEN_ASSIGNMENT_STATES, access_package__in=incompatible
    ).values_list("target_id", "access_package__display_name"):
        held_packages.setdefault(target_id, set()).add(name)
    for user_id, name in GroupMembership.objects.filter(
        user_id__in=user_ids, group__in=groups
    ).values_list("user_id", "group__display_name"):
        held_groups.setdefault(user_id, set()).add(name)
    for target_id, name in AssignmentResourceRole.objects.filter(
        target_id__in=user_ids,
        state=GrantState.DELIVERED,
        resource_role__resource__origin_system=OriginSystem.GROUP,
        resource_role__resource__group__in=groups,
    ).values_list("target_id", "resource_role__resource__group__display_name"):
        held_groups.setdefault(target_id, set()).add(name)
    for target_id, name in AssignmentRequest.objects.filter(
        target_id__in=user_ids,
        state__in=OPEN_REQUEST_STATES,
        request_type__in=ADD_REQUEST_TYPES,
        access_package__in=incompatible,
    ).values_list("target_id", "access_package__display_name"):
        requested.setdefault(target_id, set()).add(name)
    result = {}
    for user_id in set(held_packages) | set(held_groups) | set(requested):
        packages = sorted(held_packages.get(user_id, ()))
        held = [_("the access package %(name)s") % {"name": n} for n in packages] + [
            _("the group %(name)s") % {"name": n} for n in sorted(held_groups.get(user_id, ()))
        ]
        asked = [
            _("the access package %(name)s") % {"name": n}
            for n in sorted(requested.get(user_id, ()))
            if n not in packages
        ]
        result[user_id] = (held, asked)
    return result


def add_refusals(*, users, access_package, policy, include_out_of_scope=False):
    """{user id: why} for the users who cannot be assigned the package directly now.

    The same checks as a single direct assignment (a disabled account, the package already
    held or asked for, an empty package, separation of duties) and, unless
    ``include_out_of_scope``, the policy's scope. A fixed number of queries, however many
    users.
    """
    ids = [u.pk for u in users]
    open_assignments = {
        a.target_id: a
        for a in Assignment.objects.filter(
            target_id__in=ids, access_package=access_package, state__in=OPEN_ASSIGNMENT_STATES
        )
    }
    open_requests = {
        r.target_id: r
        for r in AssignmentRequest.objects.filter(
            target_id__in=ids,
            access_package=access_package,
            state__in=OPEN_REQUEST_STATES,
            request_type__in=ADD_REQUEST_TYPES,
        )
    }
    conflicts = _conflicts_of(ids, access_package)
    has_roles = package_has_roles(access_package)
    check_scope = (
        not include_out_of_scope and policy.allowed_target_scope != AllowedTargetScope.NOT_SPECIFIED
    )
    in_scope = set()
    if check_scope:
        in_scope = set(users_in_scope(policy).filter(pk__in=ids).values_list("pk", flat=True))
    refusals = {}
    for user in users:
        if not user.is_active:
            refusals[user.pk] = _("%(name)s's account is disabled.") % {"name": user.display_name}
            continue
        held, asked = conflicts.get(user.pk, ([], []))
        gate = Gate(
            name=user.display_name,
            open_assignment=open_assignments.get(user.pk),
            open_request=open_requests.get(user.pk),
            conflicts=held,
            requested_conflicts=asked,
            has_roles=has_roles,
        )
        reason = gate.duplicate_message or gate.empty_message or gate.conflict_message
        if not reason and check_scope and user.pk not in in_scope:
            reason = _("%(name)s is not in the scope of the policy %(policy)s.") % {
                "name": user.display_name,
                "policy": policy.display_name,
            }
        if reason:
            refusals[user.pk] = reason
    return refusals


def remove_targets(*, users, access_package):
    """({user id: open assignment id}, {user id: why not}) for a removal of the package."""
    ids = [u.pk for u in users]
    held = dict(
        Assignment.objects.filter(
            target_id__in=ids, access_package=access_package, state__in=OPEN_ASSIGNMENT_STATES
        ).values_list("target_id", "pk")
    )
    refusals = {
        u.pk: _("%(name)s does not have this access package.") % {"name": u.display_name}
        for u in users
        if u.pk not in held
    }
    return held, refusals


# --------------------------------------------------------------------------------------
# The job: prepare (the preview), start, run
# --------------------------------------------------------------------------------------


def _row(user, outcome, reason="", row=None, email=None):
    return {
        "row": row,
        "email": email if user is None else user.email,
        "name": "" if user is None else user.display_name,
        "outcome": outcome,
        "reason": str(reason),
    }


def bulk_job_prepare(
    *,
    actor,
    kind,
    access_package,
    users,
    policy=None,
    schedule_start=None,
    schedule_end=None,
    justification="",
    notify=None,
    include_out_of_scope=False,
    problems=(),
    now=None,
):
    """Check ``users`` ([(user, row number or None)]) and save the job's preview; returns it.

    ``problems`` are rows refused before any user was found ([(row, email, why)]: an unknown
    email, a duplicate), reported with the rest. Nothing but the job row is written.
    ``notify``: whether each person is told by email (access delivered, or ended); None is the
    kind's default: an assignment tells them (as its policy's email setting allows), a
    removal does not.
    """
    now = now or timezone.now()
    if notify is None:
        notify = kind == BulkJob.Kind.ADD
    _require_manager(actor, access_package)
    justification = (justification or "").strip()
    if len(users) > MAX_USERS:
        raise InvalidRequest(
            _("A bulk job takes at most %(n)d people; split the list.") % {"n": MAX_USERS}
        )
    if not users and not problems:
        raise InvalidRequest(_("Choose at least one person."), field="users")
    if kind == BulkJob.Kind.ADD:
        if policy is None:
            raise InvalidRequest(_("Choose a policy."), field="policy")
        if policy.access_package_id != access_package.pk:
            raise InvalidRequest(
                _("The policy %(policy)s belongs to another access package.")
                % {"policy": policy.display_name},
                field="policy",
            )
        _clean_schedule(policy, schedule_start, schedule_end, now, custom_allowed=True)
    else:
        policy = schedule_start = schedule_end = None
    refusals = {}
    for chunk in _chunks([user for user, _row_number in users], CHECK_SIZE):
        if kind == BulkJob.Kind.ADD:
            refusals |= add_refusals(
                users=chunk,
                access_package=access_package,
                policy=policy,
                include_out_of_scope=include_out_of_scope,
            )
        else:
            refusals |= remove_targets(users=chunk, access_package=access_package)[1]
    results = [_row(None, REFUSED, why, row=row, email=email) for row, email, why in problems]
    results += [
        _row(user, REFUSED, refusals[user.pk], row=row)
        for user, row in users
        if user.pk in refusals
    ]
    accepted = [[str(user.pk), row] for user, row in users if user.pk not in refusals]
    return BulkJob.objects.create(
        kind=kind,
        access_package=access_package,
        assignment_policy=policy,
        actor=actor,
        schedule_start=schedule_start,
        schedule_end=schedule_end,
        justification=justification,
        notify=notify,
        include_out_of_scope=include_out_of_scope,
        user_ids=accepted,
        results=results,
        refused_count=len(results),
        total=len(accepted),
        created=now,
    )


def bulk_job_start(*, actor, job, batch_size=None, now=None):
    """Queue a previewed job (or queue again one whose worker was lost); returns it.

    ``batch_size``: people per transaction of the run (``BATCH_SIZE`` when not given)."""
    now = now or timezone.now()
    _require_manager(actor, job.access_package)
    with transaction.atomic():
        job = BulkJob.objects.select_for_update().get(pk=job.pk)
        if job.actor_id != actor.pk:
            raise PermissionDenied(_("Only the person who prepared this job can start it."))
        if job.state not in (BulkJob.State.PREVIEW, *BulkJob.OPEN_STATES):
            raise StateConflict(_("This job has already finished."))
        if not job.user_ids:
            raise StateConflict(_("Nobody in this job can be changed; there is nothing to start."))
        if job.is_open and not job_is_stale(job, now):
            raise StateConflict(
                _(
                    "This job is already queued or running; it can be queued again only if it "
                    "makes no progress for a while."
                )
            )
        if job.state == BulkJob.State.PREVIEW:
            job.state = BulkJob.State.QUEUED
            job.save(update_fields=["state", "modified"])
            audit_bulk([_job_event(job, "bulkJob.started", now)])
        sizes = {"batch_size": batch_size} if batch_size else {}
        transaction.on_commit(partial(enqueue_named, RUN_TASK, str(job.pk), **sizes))
    return job


def job_is_stale(job, now=None):
    """Whether an open job may be queued again (its message or worker may be lost)."""
    now = now or timezone.now()
    wait = QUEUED_STALE_AFTER if job.state == BulkJob.State.QUEUED else STALE_AFTER
    return job.is_open and job.modified < now - wait


def _job_event(job, action, now, data=None):
    return audit_event(
        action=action,
        obj=job,
        actor=job.actor,
        channel=Channel.ADMIN,
        access_package=job.access_package_id,
        reason=job.justification,
        data={"kind": job.kind, "users": job.total, **(data or {})},
        now=now,
    )


def bulk_job_run(*, job_id, batch_size=None, now=None):
    """Work through a queued job batch by batch; returns the job. Safe to run twice.

    A batch that fails for any other reason than a refusal ends the job as failed, with the
    error and a ``bulkJob.failed`` event: it does not stay queued or running."""
    try:
        return _run_batches(job_id, batch_size or BATCH_SIZE, now)
    except Exception as exc:
        logger.exception("Bulk job %s failed", job_id)
        with transaction.atomic():
            job = BulkJob.objects.select_for_update().select_related("actor").get(pk=job_id)
            if job.is_open:
                _fail(job, now or timezone.now(), _("The job stopped: %(e)s") % {"e": exc})
        return job


def _fail(job, now, error):
    job.state, job.finished, job.error = BulkJob.State.FAILED, now, error
    job.save(update_fields=["state", "started", "finished", "error", "modified"])
    audit_bulk([_job_event(job, "bulkJob.failed", now, data={"error": error})])


def _run_batches(job_id, batch_size, now):
    while True:
        with transaction.atomic():
            job = (
                BulkJob.objects.select_for_update(of=("self",))
                .select_related("access_package__catalog", "assignment_policy", "actor")
                .annotate(
                    calls_extensions=extension_steps().calls_on_request(
                        policy_id=OuterRef("assignment_policy_id")
                    )
                )
                .get(pk=job_id)
            )
            if job.state not in BulkJob.OPEN_STATES:
                return job
            moment = now or timezone.now()
            if job.started is None:
                job.started = moment
            job.state = BulkJob.State.RUNNING
            if not can_manage_assignments(job.actor, job.access_package.catalog):
                error = _("%(name)s may no longer assign this access package.") % {
                    "name": job.actor.display_name
                }
                _fail(job, moment, error)
                return job
            chunk = job.user_ids[job.processed : job.processed + batch_size]
            if chunk and job.kind == BulkJob.Kind.ADD and job.calls_extensions:
                # The created/approved custom extensions are called by request_submit only.
                rows = _run_one_by_one(job, chunk, moment)
            elif chunk:
                try:
                    with transaction.atomic():
                        rows = _run_batch(job, chunk, moment)
                except IntegrityError:
                    # Someone else assigned one of them meanwhile: go one by one instead.
                    rows = _run_one_by_one(job, chunk, moment)
            if chunk:
                job.add_results(rows)
                job.processed += len(chunk)
            if job.processed >= len(job.user_ids):
                job.state, job.finished = BulkJob.State.DONE, moment
                counts = job.counts()
                audit_bulk([_job_event(job, "bulkJob.finished", moment, data=counts)])
            job.save(
                update_fields=[
                    *("state", "started", "finished", "processed", "results"),
                    *("done_count", "refused_count", "modified"),
                ]
            )
            if job.state == BulkJob.State.DONE:
                return job


def _locked_users(chunk):
    ids = [pk for pk, _row in chunk]
    # Locked in id order, like request_submit locks its one target: no two writers deadlock.
    users = {
        str(u.pk): u for u in User.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    return [(users[pk], row) for pk, row in chunk if pk in users], [
        _gone_row(pk, row) for pk, row in chunk if pk not in users
    ]


def _gone_row(pk, row):
    why = _("This person (id %(id)s) is no longer in the directory.") % {"id": pk}
    return _row(None, REFUSED, why, row=row, email="")


def _expired(job, now):
    """Why nobody can be assigned any more: the job's period ended before it ran (or "")."""
    if job.kind == BulkJob.Kind.ADD and job.schedule_end is not None and job.schedule_end <= now:
        return _("The requested period ended before the job ran.")
    return ""


def _run_batch(job, chunk, now):
    users, gone = _locked_users(chunk)
    if job.kind == BulkJob.Kind.REMOVE:
        return _remove_batch(job, users, now) + gone
    return _add_batch(job, users, now) + gone


def _add_batch(job, users, now):
    policy = job.assignment_policy
    expired = _expired(job, now)
    if expired:
        return [_row(user, REFUSED, expired, row=row) for user, row in users]
    refusals = add_refusals(
        users=[u for u, _r in users],
        access_package=job.access_package,
        policy=policy,
        include_out_of_scope=job.include_out_of_scope,
    )
    accepted = [user for user, _r in users if user.pk not in refusals]
    scheduled = job.schedule_start is not None and job.schedule_start > now
    # A start that has passed by the time the job runs: the access starts now.
    start = now if job.schedule_start is None else max(job.schedule_start, now)
    end = job.schedule_end or policy.assignment_end(start)
    assignments = []
    if not scheduled:
        assignments = Assignment.objects.bulk_create(
            [
                Assignment(
                    access_package_id=job.access_package_id,
                    assignment_policy=policy,
                    target=user,
                    state=AssignmentState.DELIVERING,
                    status=status_of(AssignmentState.DELIVERING),
                    schedule_start=start,
                    schedule_end=end,
                    created=now,
                )
                for user in accepted
            ],
            batch_size=1000,
        )
        role_ids = list(
            ResourceRoleScope.objects.filter(access_package_id=job.access_package_id).values_list(
                "role_id", flat=True
            )
        )
        AssignmentResourceRole.objects.bulk_create(
            [
                AssignmentResourceRole(
                    assignment=a, resource_role_id=role_id, target_id=a.target_id, created=now
                )
                for a in assignments
                for role_id in role_ids
            ],
            batch_size=2000,
        )
    state = RequestState.SCHEDULED if scheduled else RequestState.DELIVERING
    requests = AssignmentRequest.objects.bulk_create(
        [
            AssignmentRequest(
                created=now,
                access_package_id=job.access_package_id,
                assignment_policy=policy,
                requestor=job.actor,
                target=user,
                assignment=None if scheduled else assignments[i],
                request_type=RequestType.ADMIN_ADD,
                state=state,
                status=RequestStatus.SCHEDULED if scheduled else status_of(state),
                justification=job.justification,
                schedule_start=job.schedule_start,
                schedule_end=job.schedule_end,
                notify=job.notify,
            )
            for i, user in enumerate(accepted)
        ],
        batch_size=1000,
    )
    # The events of request_submit, request_advance and request_fulfil, in their order.
    events = []
    for i, request in enumerate(requests):
        events.append(
            audit_event(
                action="request.submit",
                obj=request,
                actor=job.actor,
                channel=Channel.ADMIN,
                after=RequestState.SUBMITTED,
                reason=job.justification,
                target=request.target_id,
                access_package=request.access_package_id,
                request=request,
                data={"bulk_job": str(job.pk), "notify": job.notify},
                now=now,
            )
        )
        if scheduled:
            events.append(
                audit_event(
                    action="request.schedule",
                    obj=request,
                    actor=job.actor,
                    channel=Channel.ADMIN,
                    before=RequestState.SUBMITTED,
                    after=state,
                    target=request.target_id,
                    access_package=request.access_package_id,
                    request=request,
                    now=now,
                )
            )
        else:
            events.append(
                lifecycle_event(
                    "request.fulfilled",
                    request,
                    before=RequestState.SUBMITTED,
                    after=state,
                    now=now,
                )
            )
            events.append(
                lifecycle_event(
                    "assignment.created",
                    assignments[i],
                    after=AssignmentState.DELIVERING,
                    req=request,
                    now=now,
                )
            )
    audit_bulk(events)
    transaction.on_commit(partial(_after_add, requests, [str(a.pk) for a in assignments]))
    return [
        _row(user, REFUSED, refusals[user.pk], row=row)
        if user.pk in refusals
        else _row(user, DONE, row=row)
        for user, row in users
    ]


def _after_add(requests, assignment_ids):
    for request in requests:
        request_submitted.send(sender=AssignmentRequest, request=request)
    if assignment_ids:
        enqueue_named("entitlements.tasks.deliver_assignments", assignment_ids)


def _remove_batch(job, users, now):
    held, refusals = remove_targets(users=[u for u, _r in users], access_package=job.access_package)
    ended = assignments_end(
        assignment_ids=list(held.values()),
        actor=job.actor,
        channel=Channel.ADMIN,
        request_type=RequestType.ADMIN_REMOVE,
        reason=job.justification,
        notify=job.notify,
        data={"notify": job.notify, "bulk_job": str(job.pk)},
        # The set-based signal sends the "access ended" emails; without them, one per row.
        batch=job.notify,
        now=now,
    )
    rows = []
    for user, row in users:
        if user.pk in refusals:
            rows.append(_row(user, REFUSED, refusals[user.pk], row=row))
        elif held[user.pk] in ended:
            rows.append(_row(user, DONE, row=row))
        else:
            rows.append(_row(user, REFUSED, _("This access has already ended."), row=row))
    return rows


def _run_one_by_one(job, chunk, now):
    """The batch again, through the single-user path, each person in their own transaction."""
    rows = []
    users = {str(u.pk): u for u in User.objects.filter(pk__in=[pk for pk, _r in chunk])}
    for pk, row in chunk:
        user = users.get(pk)
        if user is None:
            rows.append(_gone_row(pk, row))
            continue
        try:
            if job.kind == BulkJob.Kind.ADD:
                # request_submit (adminAdd) does not check the policy's scope; the batch does.
                refusal = _expired(job, now) or add_refusals(
                    users=[user],
                    access_package=job.access_package,
                    policy=job.assignment_policy,
                    include_out_of_scope=job.include_out_of_scope,
                ).get(user.pk)
                if refusal:
                    rows.append(_row(user, REFUSED, refusal, row=row))
                    continue
                request_submit(
                    actor=job.actor,
                    target=user,
                    access_package=job.access_package,
                    policy=job.assignment_policy,
                    request_type=RequestType.ADMIN_ADD,
                    justification=job.justification,
                    schedule_start=job.schedule_start,
                    schedule_end=job.schedule_end,
                    channel=Channel.ADMIN,
                    notify=job.notify,
                    now=now,
                )
            else:
                with transaction.atomic():
                    rows.extend(_remove_batch(job, [(user, row)], now))
                continue
            rows.append(_row(user, DONE, row=row))
        except DomainError as exc:
            rows.append(_row(user, REFUSED, exc.message, row=row))
    return rows


def bulk_job_rows(job):
    """The report's rows, header first, for csvexport.csv_response."""
    yield [_("row"), _("email"), _("name"), _("outcome"), _("reason")]
    labels = {DONE: _("assigned") if job.kind == BulkJob.Kind.ADD else _("removed")}
    labels[REFUSED] = _("refused")
    for r in sorted(job.results, key=lambda r: (r["row"] is None, r["row"] or 0, r["email"])):
        yield [r["row"], r["email"], r["name"], labels[r["outcome"]], r["reason"]]


def policies_for_assignment(access_package):
    """The policies a direct assignment of the package may use."""
    return AssignmentPolicy.objects.filter(access_package=access_package).order_by(
        F("display_name").asc()
    )
