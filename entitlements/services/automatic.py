"""Automatic assignment policies: access given and taken away by a rule over user attributes.

An automatic policy (Graph's automaticRequestSettings.requestAccessForAllowedTargets) gives
its package, without a request, to every active user its allowed targets include: usually
an attributeRuleMembers rule such as ``user.department -eq "Sales"``. Each person it adds
gets a ``systemAdd`` request, delivered at once, with its assignment and grants; delivery
then goes through the usual path (``delivery.assignments_deliver``), in batches. People who
stop matching lose eligibility and, after the policy's grace period, the access
(``eligibility``, a ``systemRemove``). Every event names the rule that caused it.

Evaluation is set-based: one query finds who matches and lacks the package, and each batch
is written with a few bulk statements. It runs for the people the directory changed
(``users_reevaluate``), for a whole policy when its rule changes, and on a schedule
(``automatic_policies_evaluate``).
"""

from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from ..audit import audit_bulk, audit_event
from ..models import (
    ADD_REQUEST_TYPES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    PolicySubjectSet,
    RequestState,
    RequestType,
    ResourceRoleScope,
)
from ..permissions import is_superuser
from ..selectors import users_in_scope
from . import common
from .common import status_of
from .eligibility import assignments_remove_ineligible, rule_data

# People added per transaction (5,000: 57 s for 90,638 where 2,000 took 67 s), and
# assignments per delivery task enqueued on its commit.
BATCH_SIZE = 5000
DELIVERY_TASK_SIZE = 1000
DELIVER_BATCH = "entitlements.tasks.deliver_assignments"
EVALUATE_POLICY = "entitlements.tasks.evaluate_automatic_policy"


# --------------------------------------------------------------------------------------
# Who may decide whom a policy assigns without asking
# --------------------------------------------------------------------------------------


def automatic_targets(policy, subject_sets):
    """What decides whom a policy assigns by itself: whether it is automatic, its scope and
    its allowed targets (rules, people, groups, organizations), comparable with ``==``."""
    targets = sorted(
        (
            s.subject_type,
            str(s.user_id or ""),
            str(s.group_id or ""),
            str(s.connected_organization_id or ""),
            s.manager_level or 0,
            (s.membership_rule or "").strip(),
        )
        for s in subject_sets
        if s.purpose == PolicySubjectSet.Purpose.ALLOWED_TARGET
    )
    return (
        bool(policy.request_access_for_allowed_targets),
        policy.allowed_target_scope,
        tuple(targets),
    )


def may_change_automatic(actor):
    """Only an administrator (a superuser, or an application holding a product-wide
    permission) gives access to people without their asking and without approval: a catalog
    owner could otherwise give their catalog to the whole directory, guests included."""
    return is_superuser(actor)


def automatic_change_refused(*, actor, before, after):
    """Why ``actor`` may not make this change, or None. ``before`` and ``after`` are
    ``automatic_targets`` of the policy as it was (None for a new one) and as it would be."""
    if before == after or may_change_automatic(actor):
        return None
    if not (before and before[0]) and not after[0]:
        return None  # neither was automatic
    if before is None or not before[0]:
        return _("Only an administrator may turn on automatic assignment.")
    if not after[0]:
        return _("Only an administrator may turn off automatic assignment.")
    return _("Only an administrator may change whom an automatic policy assigns.")


@dataclass
class Evaluation:
    """What a re-evaluation did: assignments created (systemAdd) and ended (systemRemove)."""

    added: int = 0
    removed: int = 0


def automatic_policies(pks=None):
    """The automatic policies (those of ``pks`` when given), each with its subject sets (two
    queries)."""
    policies = AssignmentPolicy.objects.filter(request_access_for_allowed_targets=True)
    if pks is not None:
        policies = policies.filter(pk__in=pks)
    return list(
        policies.select_related("access_package").prefetch_related("subject_sets").order_by("pk")
    )


def users_to_add(policy, user_ids=None):
    """The active users the automatic policy includes who neither hold its package nor have
    an open request for it: one query."""
    users = users_in_scope(policy)
    if user_ids is not None:
        users = users.filter(pk__in=list(user_ids))
    holds = Assignment.objects.filter(
        target=OuterRef("pk"),
        access_package_id=policy.access_package_id,
        state__in=OPEN_ASSIGNMENT_STATES,
    )
    asked = AssignmentRequest.objects.filter(
        target=OuterRef("pk"),
        access_package_id=policy.access_package_id,
        request_type__in=ADD_REQUEST_TYPES,
        state__in=OPEN_REQUEST_STATES,
    )
    return users.exclude(Exists(holds)).exclude(Exists(asked))


def automatic_policy_add(*, policy, user_ids=None, now=None):
    """Give the package of the automatic ``policy`` to the people it includes who lack it;
    returns how many assignments were created. ``user_ids`` limits it to these people."""
    now = now or timezone.now()
    if not policy.request_access_for_allowed_targets:
        return 0
    candidates = list(users_to_add(policy, user_ids).order_by("pk").values_list("pk", flat=True))
    added = 0
    for start in range(0, len(candidates), BATCH_SIZE):
        added += _add_batch(policy, candidates[start : start + BATCH_SIZE], now)
    return added


def _add_batch(policy, user_ids, now, attempts=3):
    try:
        with transaction.atomic():
            # One evaluation of a policy at a time: a second one waits here, then finds
            # these people already assigned.
            AssignmentPolicy.objects.select_for_update().filter(pk=policy.pk).first()
            taken = _holding_or_asking(policy, user_ids)
            return _create_assignments(policy, [pk for pk in user_ids if pk not in taken], now)
    except IntegrityError:
        # Someone requested the package between the check and the insert: look again.
        if attempts <= 1:
            raise
        return _add_batch(policy, user_ids, now, attempts - 1)


def _holding_or_asking(policy, user_ids):
    """Which of ``user_ids`` hold the package or have an open request for it now.

    Looked up by person through the indexes on (target, state) and (target, package), not
    with the anti-join of ``users_to_add``: its plan over a table growing batch after batch
    (statistics not yet updated) took seconds per batch by the end of 90,000 people."""
    package = policy.access_package_id
    holding = Assignment.objects.filter(
        target_id__in=user_ids, access_package_id=package, state__in=OPEN_ASSIGNMENT_STATES
    ).values_list("target_id", flat=True)
    asking = AssignmentRequest.objects.filter(
        target_id__in=user_ids,
        access_package_id=package,
        request_type__in=ADD_REQUEST_TYPES,
        state__in=OPEN_REQUEST_STATES,
    ).values_list("target_id", flat=True)
    return set(holding) | set(asking)


def _create_assignments(policy, user_ids, now):
    if not user_ids:
        return 0
    end = policy.assignment_end(now)
    delivering = AssignmentState.DELIVERING
    assignments = [
        Assignment(
            access_package_id=policy.access_package_id,
            assignment_policy=policy,
            target_id=user_id,
            state=delivering,
            status=status_of(delivering),
            schedule_start=now,
            schedule_end=end,
            created=now,
            modified=now,
        )
        for user_id in user_ids
    ]
    Assignment.objects.bulk_create(assignments, batch_size=BATCH_SIZE)
    reason = _("Assigned automatically: the user matches the policy's rule.")
    requests = [
        AssignmentRequest(
            access_package_id=policy.access_package_id,
            assignment_policy=policy,
            target_id=assignment.target_id,
            assignment=assignment,
            request_type=RequestType.SYSTEM_ADD,
            state=RequestState.DELIVERING,
            status=status_of(RequestState.DELIVERING),
            justification=reason,
            created=now,
            modified=now,
        )
        for assignment in assignments
    ]
    AssignmentRequest.objects.bulk_create(requests, batch_size=BATCH_SIZE)
    role_ids = list(
        ResourceRoleScope.objects.filter(access_package_id=policy.access_package_id).values_list(
            "role_id", flat=True
        )
    )
    AssignmentResourceRole.objects.bulk_create(
        [
            AssignmentResourceRole(
                assignment=assignment,
                resource_role_id=role_id,
                target_id=assignment.target_id,
                created=now,
                modified=now,
            )
            for assignment in assignments
            for role_id in role_ids
        ],
        batch_size=BATCH_SIZE,
    )
    data = rule_data(policy)
    # One event per person: the assignment created, naming its request and the rule.
    audit_bulk(
        [
            audit_event(
                action="assignment.created",
                obj=assignment,
                after=delivering,
                reason=reason,
                target=assignment.target_id,
                access_package=policy.access_package_id,
                request=request,
                data=data,
                now=now,
            )
            for request, assignment in zip(requests, assignments, strict=True)
        ]
    )
    ids = [str(a.pk) for a in assignments]
    for start in range(0, len(ids), DELIVERY_TASK_SIZE):
        chunk = ids[start : start + DELIVERY_TASK_SIZE]
        transaction.on_commit(partial(common.enqueue_task, DELIVER_BATCH, chunk))
    return len(assignments)


def automatic_policies_evaluate(*, policies=None, now=None):
    """Apply automatic policies to everyone: add the people their rules match, and mark (or,
    after the grace period, end) the access of those who no longer match. ``policies`` limits
    it to these (rows or ids); None means every automatic policy. The schedule runs this, and
    a changed rule runs it for its policy."""
    now = now or timezone.now()
    selected = automatic_policies(
        None if policies is None else [getattr(p, "pk", p) for p in policies]
    )
    result = Evaluation()
    for policy in selected:
        result.added += automatic_policy_add(policy=policy, now=now)
    if selected:
        result.removed = assignments_remove_ineligible(policy_ids=[p.pk for p in selected], now=now)
    return result


def automatic_policy_changed(policy):
    """A door saved ``policy`` or its rule: evaluate it for everyone once that commits."""
    if policy.request_access_for_allowed_targets:
        transaction.on_commit(partial(common.enqueue_task, EVALUATE_POLICY, policy.pk))


def users_reevaluate(*, user_ids, now=None):
    """Re-evaluate the access of the users ``user_ids`` after a change in the directory.

    Automatic policies give their package to those of them who now match, and their
    assignments are checked for eligibility: losing it is recorded the first time it is seen
    and ends the assignment after the policy's grace period (``eligibility``).
    """
    now = now or timezone.now()
    user_ids = sorted({str(pk) for pk in user_ids})
    result = Evaluation()
    if not user_ids:
        return result
    for policy in automatic_policies():
        result.added += automatic_policy_add(policy=policy, user_ids=user_ids, now=now)
    result.removed = assignments_remove_ineligible(user_ids=user_ids, now=now)
    return result
