"""Eligibility: ending the assignments whose holder has left the policy's scope."""

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from ..audit import audit_bulk, audit_event
from ..models import (
    OPEN_ASSIGNMENT_STATES,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    PolicySubjectSet,
    RequestType,
    SubjectType,
)
from ..selectors import users_in_scope
from .ending import assignments_end


def assignments_remove_ineligible(*, user_ids=None, policy_ids=None, now=None):
    """End the assignments whose holder is no longer eligible; returns how many ended.

    Eligibility is lost when the account is disabled or, except for direct assignments by
    an administrator, when the user has left the policy's scope. Only policies that remove
    access on leaving the scope take part. The first run that sees the loss records when; the
    assignment ends once the policy's grace period has passed, and regaining eligibility
    before then clears the record. ``user_ids`` limits the check to these users' assignments
    (a change in the directory), ``policy_ids`` to these policies; ``None`` checks all.
    Events about an automatic policy name its rule.
    """
    now = now or timezone.now()
    removed = 0
    open_assignments = Assignment.objects.filter(state__in=OPEN_ASSIGNMENT_STATES)
    if user_ids is not None:
        open_assignments = open_assignments.filter(target_id__in=list(user_ids))
    if policy_ids is not None:
        open_assignments = open_assignments.filter(assignment_policy_id__in=list(policy_ids))
    policies = AssignmentPolicy.objects.filter(
        remove_access_when_target_leaves_allowed_targets=True,
        pk__in=open_assignments.values("assignment_policy_id"),
    ).prefetch_related("subject_sets")
    for policy in policies:
        removed += _remove_ineligible_of(policy, open_assignments, now)
    return removed


def _remove_ineligible_of(policy, open_assignments, now):
    open_assignments = open_assignments.filter(assignment_policy=policy)
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
    rule = rule_data(policy)
    _mark_eligibility(policy, lost_now, now, now, "assignment.eligibilityLost", rule)
    _mark_eligibility(policy, regained, None, now, "assignment.eligibilityRegained", rule)
    if rule:
        reason = _("The user no longer matches the rule of this automatic policy.")
    else:
        reason = _("The user is no longer eligible for this access package.")
    ended = assignments_end(
        assignment_ids=due,
        request_type=RequestType.SYSTEM_REMOVE,
        reason=reason,
        notify=True,
        data={"notify": True, **rule} if rule else None,
        now=now,
    )
    return len(ended)


def rule_data(policy):
    """{"rule": ..., "policy": ...} for an automatic policy's events, else {}."""
    if not policy.request_access_for_allowed_targets:
        return {}
    rules = [
        s.membership_rule
        for s in policy.subject_sets.all()
        if s.subject_type == SubjectType.ATTRIBUTE_RULE_MEMBERS
        and s.purpose == PolicySubjectSet.Purpose.ALLOWED_TARGET
    ]
    text = " -or ".join(f"({r})" if len(rules) > 1 else r for r in rules)
    return {"rule": text, "policy": str(policy.pk)}


def _mark_eligibility(policy, rows, value, now, action, rule):
    if not rows:
        return
    with transaction.atomic():
        Assignment.objects.filter(id__in=[pk for pk, _t in rows]).update(
            eligibility_lost_datetime=value, modified=now
        )
        audit_bulk(
            [
                audit_event(
                    action=action,
                    obj=(Assignment, pk),
                    target=target_id,
                    access_package=policy.access_package_id,
                    data={
                        "grace_period": str(policy.grace_period_before_access_removal),
                        **rule,
                    },
                    now=now,
                )
                for pk, target_id in rows
            ]
        )


# --------------------------------------------------------------------------------------
# Reconciliation: nothing lost with the broker
# --------------------------------------------------------------------------------------
