"""What-if: what a change to a policy or a package would do, computed before it is saved.

The admin's "Preview the effect" posts the unsaved form; these functions read its values
(the policy or package as changed in memory, its subject sets as the inline would save them)
and answer with counts, set-based: a few COUNT queries whatever the number of people, and
nothing is written. The rules are the ones the product applies after saving:
``selectors.in_scope_q`` for who may request (here built from unsaved subject sets),
``services.eligibility`` for who loses access on leaving the scope, and
``selectors.separation_of_duties_conflicts`` for incompatibilities.
"""

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from directory.models import ConnectedOrganization, GroupMembership, User
from directory.rules import selecting

from ..models import (
    OPEN_ASSIGNMENT_STATES,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    PolicySubjectSet,
    RequestType,
    SubjectType,
)
from ..selectors import group_sources, in_scope_q, incompatible_packages, users_in_scope

Scope = AllowedTargetScope
Purpose = PolicySubjectSet.Purpose
NAMES_SHOWN = 10
NOBODY = Q(pk__in=[])


@dataclass
class WhatIf:
    """What a change would do: who would lose access, who could newly request (or, for an
    automatic policy, would be assigned), and notes that explain the numbers."""

    losing: int = 0
    losing_names: list = field(default_factory=list)
    gaining: int = 0
    gaining_is_assignment: bool = False  # an automatic policy assigns instead of offering
    blocked: int = 0  # people who could request and no longer could (incompatibilities)
    conflicts: int = 0  # holders who would hold something incompatible with the package
    conflict_names: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _named(users):
    rows = users.order_by("display_name", "email").values_list("display_name", "email")
    return [f"{name} <{email}>" for name, email in rows[:NAMES_SHOWN]]


# --------------------------------------------------------------------------------------
# Who may request: a policy's scope from unsaved values
# --------------------------------------------------------------------------------------


def scope_q(policy, subjects):
    """The users the policy's allowed targets include, as a Q over User, from the values in
    ``policy`` and the subject sets ``subjects`` (unsaved instances are fine): the same rule
    as ``selectors.in_scope_q`` (plus ``rule_q`` for an automatic policy); None when nobody
    may request under it."""
    scope = policy.allowed_target_scope
    allowed = [s for s in subjects if s.purpose == Purpose.ALLOWED_TARGET]

    def ids(kind, attribute):
        return [
            getattr(s, attribute)
            for s in allowed
            if s.subject_type == kind and getattr(s, attribute)
        ]

    org_ids = ids(SubjectType.CONNECTED_ORGANIZATION_MEMBERS, "connected_organization_id")
    same_org = Q(connected_organization_id__in=org_ids) if org_ids else NOBODY
    guest = Q(user_type=User.UserType.GUEST)
    if scope == Scope.SPECIFIC_DIRECTORY_USERS:
        user_ids = ids(SubjectType.SINGLE_USER, "user_id")
        group_ids = ids(SubjectType.GROUP_MEMBERS, "group_id")
        terms = [same_org]
        if user_ids:
            terms.append(Q(pk__in=user_ids))
        if group_ids:
            member = GroupMembership.objects.filter(
                user=OuterRef("pk"), group_id__in=group_ids, role=GroupMembership.Role.MEMBER
            )
            terms.append(Q(Exists(member)))
        if policy.request_access_for_allowed_targets:
            rules = [s.parsed_rule for s in allowed]
            terms += [selecting(rule) for rule in rules if rule is not None]
        return reduce(or_, terms)
    if scope == Scope.SPECIFIC_CONNECTED_ORGANIZATION_USERS:
        return same_org
    if scope == Scope.ALL_MEMBER_USERS:
        return ~guest
    if scope == Scope.ALL_DIRECTORY_USERS:
        return Q()
    if scope == Scope.ALL_CONFIGURED_CONNECTED_ORGANIZATION_USERS:
        return guest & Q(connected_organization__state=ConnectedOrganization.State.CONFIGURED)
    if scope == Scope.ALL_EXTERNAL_USERS:
        return guest
    return None


def _requestable(policy):
    """Whether people may ask for the package under ``policy`` (or it assigns by itself)."""
    if policy.allowed_target_scope == Scope.NOT_SPECIFIED:
        return False
    return policy.request_access_for_allowed_targets or policy.enable_targets_to_self_add_access


def _open_holders(access_package_id):
    return Assignment.objects.filter(
        access_package_id=access_package_id, state__in=OPEN_ASSIGNMENT_STATES
    )


def _others_q(access_package_id, exclude_pk):
    """The users another policy of the package already lets request it, as a Q over User."""
    others = AssignmentPolicy.objects.filter(access_package_id=access_package_id).exclude(
        pk=exclude_pk
    )
    terms = [
        in_scope_q(policy=p.pk, scope=p.allowed_target_scope)
        for p in others.only("pk", "allowed_target_scope", "enable_targets_to_self_add_access")
        if p.allowed_target_scope != Scope.NOT_SPECIFIED and p.enable_targets_to_self_add_access
    ]
    return reduce(or_, (Q(t) for t in terms), NOBODY)


def policy_whatif(*, policy, subjects):
    """What saving ``policy`` (changed in memory) with the subject sets ``subjects`` would do.

    Losing access: holders under this policy (other than people an administrator assigned
    directly) whom the new scope leaves out, when the policy takes access away from those
    who leave it. Newly able to request: active people in the new scope who were not in the
    saved one, are not in another policy's, and do not hold the package; for an automatic
    policy, those it would assign.
    """
    result = WhatIf(gaining_is_assignment=policy.request_access_for_allowed_targets)
    stored = None
    if policy.pk is not None and not policy._state.adding:
        stored = AssignmentPolicy.objects.filter(pk=policy.pk).first()
    new_scope = scope_q(policy, subjects)

    if stored is not None:
        holders = _open_holders(policy.access_package_id).filter(assignment_policy=stored)
        directly_assigned = AssignmentRequest.objects.filter(
            assignment=OuterRef("pk"), request_type=RequestType.ADMIN_ADD
        )
        leaving = holders.filter(~Exists(directly_assigned))
        if policy.allowed_target_scope == Scope.NOT_SPECIFIED:
            leaving = leaving.none()  # direct assignment only: nobody leaves a scope
        elif new_scope is not None:
            leaving = leaving.exclude(target__in=User.objects.filter(new_scope))
        users = User.objects.filter(pk__in=leaving.values("target_id"))
        count = users.count()
        if policy.remove_access_when_target_leaves_allowed_targets:
            result.losing = count
            result.losing_names = _named(users) if count else []
            if count and policy.grace_period_before_access_removal:
                result.notes.append(
                    _("They lose it once the grace period of %(period)s has passed.")
                    % {"period": policy.grace_period_before_access_removal}
                )
        elif count:
            result.notes.append(
                _(
                    "%(n)d current holders would no longer be in the policy's scope, but keep "
                    "their access: “remove access when the user leaves” is off."
                )
                % {"n": count}
            )

    if new_scope is None or not _requestable(policy):
        if policy.allowed_target_scope != Scope.NOT_SPECIFIED and not _requestable(policy):
            result.notes.append(_("Users may not request under this policy as changed."))
        return result
    gaining = User.objects.filter(is_active=True).filter(new_scope)
    if stored is not None and _requestable(stored):
        was = users_in_scope(stored)
        gaining = gaining.exclude(pk__in=was.values("pk"))
    if not policy.request_access_for_allowed_targets:
        gaining = gaining.exclude(_others_q(policy.access_package_id, policy.pk))
    gaining = gaining.exclude(pk__in=_open_holders(policy.access_package_id).values("target_id"))
    result.gaining = gaining.count()
    return result


# --------------------------------------------------------------------------------------
# Incompatibilities: a package's separation of duties from unsaved values
# --------------------------------------------------------------------------------------


def _conflict_q(package_ids, group_ids):
    """Users who hold one of the packages (an open assignment) or are in one of the groups
    (``group_sources``: any role, or a delivered grant), as a Q over User."""
    terms = [NOBODY]
    if package_ids:
        held = Assignment.objects.filter(
            target=OuterRef("pk"),
            state__in=OPEN_ASSIGNMENT_STATES,
            access_package_id__in=package_ids,
        )
        terms.append(Q(Exists(held)))
    if group_ids:  # a member of any role, or through a delivered grant, as the check counts
        terms += [
            Q(Exists(queryset.filter(**{f"{path}_id__in": group_ids})))
            for queryset, path in group_sources(OuterRef("pk"))
        ]
    return reduce(or_, terms)


def package_whatif(*, access_package, incompatible_packages_after, incompatible_groups_after):
    """What saving the package's incompatible packages and groups as given would do.

    Nobody loses access through an incompatibility (existing conflicts are listed on the
    package's page, not removed); the preview says how many holders would be newly in
    conflict, how many people could no longer request the package, and how many could
    newly request it.
    """
    result = WhatIf()
    package_ids_before = set(incompatible_packages(access_package).values_list("pk", flat=True))
    listing = set(
        access_package.access_packages_incompatible_with.values_list("pk", flat=True)
    )  # packages that list this one stay incompatible whatever this form says
    package_ids_after = {p.pk for p in incompatible_packages_after} | listing
    package_ids_after.discard(access_package.pk)
    group_ids_before = set(access_package.incompatible_groups.values_list("pk", flat=True))
    group_ids_after = {g.pk for g in incompatible_groups_after}
    before = _conflict_q(package_ids_before, group_ids_before)
    after = _conflict_q(package_ids_after, group_ids_after)
    if package_ids_before == package_ids_after and group_ids_before == group_ids_after:
        return result

    holders = User.objects.filter(pk__in=_open_holders(access_package.pk).values("target_id"))
    newly_in_conflict = holders.filter(after).exclude(before)
    result.conflicts = newly_in_conflict.count()
    result.conflict_names = _named(newly_in_conflict) if result.conflicts else []
    if result.conflicts:
        result.notes.append(
            _(
                "They keep their access: a conflict that already exists is listed under "
                "“people already in conflict”, not removed."
            )
        )

    policies = AssignmentPolicy.objects.filter(access_package=access_package)
    terms = [
        in_scope_q(policy=p.pk, scope=p.allowed_target_scope)
        for p in policies.only("pk", "allowed_target_scope", "enable_targets_to_self_add_access")
        if p.allowed_target_scope != Scope.NOT_SPECIFIED and p.enable_targets_to_self_add_access
    ]
    may_request = (
        User.objects.filter(is_active=True)
        .filter(reduce(or_, (Q(t) for t in terms), NOBODY))
        .exclude(pk__in=holders.values("pk"))
    )
    result.gaining = may_request.filter(before).exclude(after).count()
    result.blocked = may_request.filter(after).exclude(before).count()
    return result
