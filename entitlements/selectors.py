"""Reads shared by My Access, the admin and the API: who may request what, and why not.

Scope rules follow Entra's allowedTargetScope. When several policies of a package apply to
a user, only those of the most specific kind are offered (Entra's priority):

1. specific users and groups, or specific connected organizations;
2. all members;
3. all users, guests included;
4. all configured connected organizations, or all external users.
"""

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.db.models import CharField, Exists, F, OuterRef, Prefetch, Q, Value
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import ConnectedOrganization, GroupMembership, User
from directory.rules import includes, selecting

from .models import (
    ADD_REQUEST_TYPES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    AccessPackage,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentResourceRole,
    Catalog,
    GrantState,
    OriginSystem,
    PolicySubjectSet,
    RequestState,
    ResourceRoleScope,
    SubjectType,
)

Scope = AllowedTargetScope

SCOPE_PRIORITY = {
    Scope.SPECIFIC_DIRECTORY_USERS: 1,
    Scope.SPECIFIC_CONNECTED_ORGANIZATION_USERS: 1,
    Scope.ALL_MEMBER_USERS: 2,
    Scope.ALL_DIRECTORY_USERS: 3,
    Scope.ALL_CONFIGURED_CONNECTED_ORGANIZATION_USERS: 4,
    Scope.ALL_EXTERNAL_USERS: 4,
}

Purpose = PolicySubjectSet.Purpose


# --------------------------------------------------------------------------------------
# Policy scope
# --------------------------------------------------------------------------------------


def member_group_ids(user):
    """Ids of the groups ``user`` is a member of (one query)."""
    return set(
        GroupMembership.objects.filter(user=user, role=GroupMembership.Role.MEMBER).values_list(
            "group_id", flat=True
        )
    )


def _subject_sets(policy, purpose):
    # Uses the prefetch of policies_with_subjects() when present.
    return [s for s in policy.subject_sets.all() if s.purpose == purpose]


def _in_subject_sets(subject_sets, user, group_ids, *, rules=False):
    for s in subject_sets:
        if s.subject_type == SubjectType.SINGLE_USER and s.user_id == user.pk:
            return True
        if s.subject_type == SubjectType.GROUP_MEMBERS and s.group_id in group_ids:
            return True
        if (
            s.subject_type == SubjectType.CONNECTED_ORGANIZATION_MEMBERS
            and user.connected_organization_id
            and s.connected_organization_id == user.connected_organization_id
        ):
            return True
        if rules and s.subject_type == SubjectType.ATTRIBUTE_RULE_MEMBERS:
            rule = s.parsed_rule
            if rule is not None and includes(rule, user):
                return True
    return False


def rule_q(policy):
    """The users the rules of an automatic policy's allowed targets match, as a Q over User
    (one query for the rules, none when the prefetch of policies_with_subjects has them)."""
    rules = [
        s.parsed_rule
        for s in _subject_sets(policy, Purpose.ALLOWED_TARGET)
        if s.subject_type == SubjectType.ATTRIBUTE_RULE_MEMBERS
    ]
    return reduce(or_, (selecting(rule) for rule in rules if rule is not None), Q(pk__in=[]))


# Who is in a policy's scope: one rule in two forms, kept side by side. policy_applies_to()
# answers for one user in Python (from prefetched subject sets, no query); in_scope_q() is
# the same rule in SQL, for lists. tests/lifecycle/test_scope_rule.py checks that they agree.
# Rules over attributes (attributeRuleMembers) exist only in automatic policies, which nobody
# requests under: in_scope_q() leaves them out, and users_in_scope() adds them for a concrete
# policy (rule_q); tests/rules/test_rule_properties.py checks Python against SQL for them.


def policy_applies_to(policy, user, group_ids):
    """Whether ``user`` is in the policy's allowed targets, whatever its requestor switches."""
    scope = policy.allowed_target_scope
    if scope == Scope.SPECIFIC_DIRECTORY_USERS:
        return _in_subject_sets(
            _subject_sets(policy, Purpose.ALLOWED_TARGET),
            user,
            group_ids,
            rules=policy.request_access_for_allowed_targets,
        )
    if scope == Scope.SPECIFIC_CONNECTED_ORGANIZATION_USERS:
        return bool(user.connected_organization_id) and any(
            s.subject_type == SubjectType.CONNECTED_ORGANIZATION_MEMBERS
            and s.connected_organization_id == user.connected_organization_id
            for s in _subject_sets(policy, Purpose.ALLOWED_TARGET)
        )
    if scope == Scope.ALL_MEMBER_USERS:
        return not user.is_guest
    if scope == Scope.ALL_DIRECTORY_USERS:
        return True
    if scope == Scope.ALL_CONFIGURED_CONNECTED_ORGANIZATION_USERS:
        return (
            user.is_guest
            and user.connected_organization_id is not None
            and user.connected_organization.state == ConnectedOrganization.State.CONFIGURED
        )
    if scope == Scope.ALL_EXTERNAL_USERS:
        return user.is_guest
    return False


def _scope_terms(policy):
    """{allowed target scope: Q over User} for the policy ``policy`` (a pk, or an OuterRef to
    one in a query over users)."""
    outer_policy = OuterRef(policy) if isinstance(policy, OuterRef) else policy
    allowed = PolicySubjectSet.objects.filter(policy=outer_policy, purpose=Purpose.ALLOWED_TARGET)
    # NULL never equals NULL in SQL, so a user without an organization matches none here.
    same_org = Q(
        subject_type=SubjectType.CONNECTED_ORGANIZATION_MEMBERS,
        connected_organization=OuterRef("connected_organization_id"),
    )
    named = (
        Q(subject_type=SubjectType.SINGLE_USER, user=OuterRef("pk"))
        | Q(
            subject_type=SubjectType.GROUP_MEMBERS,
            group__memberships__user=OuterRef("pk"),
            group__memberships__role=GroupMembership.Role.MEMBER,
        )
        | same_org
    )
    guest = Q(user_type=User.UserType.GUEST)
    return {
        Scope.SPECIFIC_DIRECTORY_USERS: Exists(allowed.filter(named)),
        Scope.SPECIFIC_CONNECTED_ORGANIZATION_USERS: Exists(allowed.filter(same_org)),
        Scope.ALL_MEMBER_USERS: ~guest,
        Scope.ALL_DIRECTORY_USERS: Q(),
        Scope.ALL_CONFIGURED_CONNECTED_ORGANIZATION_USERS: guest
        & Q(connected_organization__state=ConnectedOrganization.State.CONFIGURED),
        Scope.ALL_EXTERNAL_USERS: guest,
    }


def in_scope_q(*, policy, scope):
    """The SQL form of ``policy_applies_to``: a Q over User matching the users in a policy's
    allowed targets.

    ``policy`` is the policy's pk and ``scope`` its allowed_target_scope; in a subquery over
    users run for each policy row, ``OuterRef("pk")`` and ``OuterRef("allowed_target_scope")``.
    """
    terms = _scope_terms(policy)
    if isinstance(scope, str):
        return Q(terms[scope]) if scope in terms else Q(pk__in=[])
    return reduce(or_, (Q(Exact(scope, value)) & Q(term) for value, term in terms.items()))


def policies_applying_to(user):
    """A condition over AssignmentPolicy: the policies whose allowed targets include ``user``."""
    return Exists(
        User.objects.filter(
            in_scope_q(policy=OuterRef("pk"), scope=OuterRef("allowed_target_scope")),
            pk=user.pk,
        )
    )


def users_in_scope(policy):
    """The active users the policy's allowed targets include, as one queryset.

    A policy nobody may request under (direct assignment only) has no scope to leave, so
    it keeps everyone.
    """
    users = User.objects.filter(is_active=True)
    if policy.allowed_target_scope == Scope.NOT_SPECIFIED:
        return users
    scope = in_scope_q(policy=policy.pk, scope=policy.allowed_target_scope)
    if policy.request_access_for_allowed_targets:
        scope = Q(scope) | rule_q(policy)
    return users.filter(scope)


def is_on_behalf_requestor(policy, actor, target, actor_group_ids):
    """Whether ``actor`` may request under ``policy`` on behalf of ``target``."""
    if not policy.enable_on_behalf_requestors_to_add_access:
        return False
    for s in _subject_sets(policy, Purpose.ON_BEHALF_REQUESTOR):
        if s.subject_type == SubjectType.TARGET_MANAGER:
            level = s.manager_level or 1
            if level == 1 and target.manager_id == actor.pk:
                return True
            manager = target.manager_at_level(level) if level > 1 else None
            if manager is not None and manager.pk == actor.pk:
                return True
        elif _in_subject_sets([s], actor, actor_group_ids):
            return True
    return False


def policies_with_subjects(access_package):
    """The package's policies with their subject sets, in two queries."""
    return list(
        AssignmentPolicy.objects.filter(access_package=access_package)
        .prefetch_related(Prefetch("subject_sets", queryset=PolicySubjectSet.objects.all()))
        .order_by("display_name", "pk")
    )


def highest_priority(policies):
    """The policies of the most specific scope kind among ``policies``."""
    if not policies:
        return []
    best = min(SCOPE_PRIORITY[p.allowed_target_scope] for p in policies)
    return [p for p in policies if SCOPE_PRIORITY[p.allowed_target_scope] == best]


# --------------------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------------------


@dataclass
class Eligibility:
    """Which policies a user may request a package under, or why they may not."""

    policies: list = field(default_factory=list)
    reasons: list = field(default_factory=list)

    @property
    def can_request(self):
        return bool(self.policies)


@dataclass
class Gate:
    """The checks about a user and a package that do not depend on the policy."""

    open_assignment: Assignment | None = None
    open_request: AssignmentRequest | None = None
    conflicts: list = field(default_factory=list)  # what the user holds that conflicts
    requested_conflicts: list = field(default_factory=list)  # what they asked for that does
    has_roles: bool = True
    name: str = ""  # the person, in messages about someone else; empty for "you"

    @property
    def duplicate_message(self):
        if self.open_assignment is not None:
            if self.name:
                return _("%(name)s already has this access package.") % {"name": self.name}
            return _("You already have this access package.")
        if self.open_request is not None:
            details = {
                "name": self.name,
                "state": self.open_request.get_state_display().lower(),
                "date": f"{timezone.localtime(self.open_request.created):%Y-%m-%d}",
            }
            if self.name:
                return (
                    _(
                        "There is already an open request for this access package "
                        "(%(name)s's, %(state)s, submitted %(date)s)."
                    )
                    % details
                )
            return (
                _(
                    "There is already an open request for this access package "
                    "(yours, %(state)s, submitted %(date)s)."
                )
                % details
            )
        return ""

    @property
    def empty_message(self):
        if self.has_roles:
            return ""
        return _(
            "This access package does not grant any resource roles yet, so there is nothing "
            "to request; the catalog's owners can add them."
        )

    @property
    def conflict_message(self):
        sentences = []
        if self.conflicts:
            things = {"things": join_names(self.conflicts), "name": self.name}
            if self.name:
                message = _(
                    "This access package is incompatible with %(things)s, which %(name)s "
                    "already has (separation of duties)."
                )
            else:
                message = _(
                    "This access package is incompatible with %(things)s, which you already "
                    "have (separation of duties)."
                )
            sentences.append(message % things)
        if self.requested_conflicts:
            things = {"things": join_names(self.requested_conflicts), "name": self.name}
            if self.name:
                message = _(
                    "This access package is incompatible with %(things)s, which has already "
                    "been requested for %(name)s (separation of duties)."
                )
            else:
                message = _(
                    "This access package is incompatible with %(things)s, which you have "
                    "already requested (separation of duties)."
                )
            sentences.append(message % things)
        return " ".join(sentences)


def join_names(names):
    """``a``, ``a and b``, ``a, b and c``, in the current language."""
    names = [str(name) for name in names]
    if len(names) == 1:
        return names[0]
    return _("%(names)s and %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


# Requests that are past approval but may not have an assignment yet: what an approval or a
# delivery must not run into.
APPROVED_REQUEST_STATES = [RequestState.SCHEDULED, RequestState.DELIVERING]


def incompatible_packages(access_package):
    """The packages incompatible with ``access_package`` in either direction, as a queryset.

    Entra enforces a package's list only when that package is requested; here a pair is
    incompatible whichever of the two lists the other.
    """
    through = AccessPackage.incompatible_access_packages.through
    listed = through.objects.filter(from_accesspackage=access_package).values("to_accesspackage")
    listing = through.objects.filter(to_accesspackage=access_package).values("from_accesspackage")
    return AccessPackage.objects.filter(Q(pk__in=listed) | Q(pk__in=listing))


def group_sources(user):
    """How ``user`` is in a group for separation of duties, as (queryset, path to the group)
    pairs: a membership of any role (an owner too), or a delivered grant of a group's role.
    ``user`` may be an ``OuterRef``. The one definition the check, the what-if and the
    conflicts report share."""
    return (
        (GroupMembership.objects.filter(user=user), "group"),
        (
            AssignmentResourceRole.objects.filter(
                target=user,
                state=GrantState.DELIVERED,
                resource_role__resource__origin_system=OriginSystem.GROUP,
            ),
            "resource_role__resource__group",
        ),
    )


@dataclass
class Conflicts:
    """What a user holds, and has asked for, that a package is incompatible with (names)."""

    held: list = field(default_factory=list)
    requested: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.held or self.requested)


def _named(queryset, kind, name_path):
    """``queryset`` as (kind, name) rows, ready for a UNION."""
    return (
        queryset.annotate(
            sod_kind=Value(kind, output_field=CharField()),
            sod_name=F(name_path),
        )
        .values_list("sod_kind", "sod_name")
        .order_by()
    )


def separation_of_duties_conflicts(
    *,
    user,
    access_package,
    request_states=OPEN_REQUEST_STATES,
    exclude_request=None,
    delivered_only=False,
):
    """What ``user`` holds or has open requests for that ``access_package`` conflicts with.

    Packages count in both directions, held (an open assignment; with ``delivered_only``, one
    that delivered something) or asked for (an add request in one of ``request_states``,
    other than ``exclude_request``); groups count when the user is a member or a delivered
    grant made them one. One query.
    """
    incompatible = incompatible_packages(access_package).values("pk")
    assignments = Assignment.objects.filter(
        target=user, state__in=OPEN_ASSIGNMENT_STATES, access_package__in=incompatible
    )
    if delivered_only:
        delivered_grant = AssignmentResourceRole.objects.filter(
            assignment=OuterRef("pk"), state=GrantState.DELIVERED
        )
        assignments = assignments.filter(Exists(delivered_grant))
    groups = access_package.incompatible_groups.values("pk")
    parts = [
        _named(assignments, "package", "access_package__display_name"),
        *(
            _named(queryset.filter(**{f"{path}__in": groups}), "group", f"{path}__display_name")
            for queryset, path in group_sources(user)
        ),
    ]
    if request_states:
        requests = AssignmentRequest.objects.filter(
            target=user,
            state__in=request_states,
            request_type__in=ADD_REQUEST_TYPES,
            access_package__in=incompatible,
        )
        if exclude_request is not None:
            requests = requests.exclude(pk=exclude_request.pk)
        parts.append(_named(requests, "requested", "access_package__display_name"))
    rows = set(parts[0].union(*parts[1:]))
    packages = sorted(name for kind, name in rows if kind == "package")
    in_groups = sorted(name for kind, name in rows if kind == "group")
    requested = sorted(name for kind, name in rows if kind == "requested" and name not in packages)
    return Conflicts(
        held=[_("the access package %(name)s") % {"name": n} for n in packages]
        + [_("the group %(name)s") % {"name": n} for n in in_groups],
        requested=[_("the access package %(name)s") % {"name": n} for n in requested],
    )


def package_has_roles(access_package):
    """Whether the package grants at least one resource role (uses a prefetch when there)."""
    prefetched = getattr(access_package, "_prefetched_objects_cache", {})
    if "resource_role_scopes" in prefetched:
        return bool(prefetched["resource_role_scopes"])
    return access_package.resource_role_scopes.exists()


def package_gate(*, user, access_package, you=True):
    """Duplicates, an empty package and separation of duties for ``user`` and the package."""
    conflicts = separation_of_duties_conflicts(user=user, access_package=access_package)
    return Gate(
        name="" if you else user.display_name,
        open_assignment=Assignment.objects.filter(
            target=user, access_package=access_package, state__in=OPEN_ASSIGNMENT_STATES
        ).first(),
        open_request=AssignmentRequest.objects.filter(
            target=user,
            access_package=access_package,
            state__in=OPEN_REQUEST_STATES,
            request_type__in=ADD_REQUEST_TYPES,
        ).first(),
        conflicts=conflicts.held,
        requested_conflicts=conflicts.requested,
        has_roles=package_has_roles(access_package),
    )


def catalog_reasons(*, user, access_package, you=True):
    """Why the account or the catalog keeps ``user`` from requesting (empty when nothing)."""
    catalog = access_package.catalog
    reasons = []
    if not user.is_active:
        if you:
            reasons.append(_("Your account is disabled."))
        else:
            reasons.append(_("%(name)s's account is disabled.") % {"name": user.display_name})
    if not catalog.is_enabled:
        reasons.append(
            _("The catalog %(catalog)s is disabled, so its access packages cannot be requested.")
            % {"catalog": catalog.display_name}
        )
    elif user.is_guest and not catalog.is_externally_visible:
        reasons.append(
            _("The catalog %(catalog)s is not enabled for users from outside the organization.")
            % {"catalog": catalog.display_name}
        )
    return reasons


def scope_reason(policies, *, you=True):
    """Why none of ``policies`` (all of which do not apply) lets the user request."""
    if not any(p.is_request_allowed for p in policies):
        return _(
            "Requests are turned off for this access package; an administrator assigns it directly."
        )
    if you:
        return _("You are not in the scope of any policy of this access package.")
    return _("This user is not in the scope of any policy of this access package.")


def eligibility(*, user, access_package, now=None):
    """Whether ``user`` may request ``access_package`` for themselves, and under which policies.

    A hidden package is requestable (through its link) like any other.
    """
    return self_eligibility(user=user, access_package=access_package)[1]


def self_eligibility(*, user, access_package):
    """eligibility() and the Gate it was computed from (submission tells duplicates apart)."""
    reasons = catalog_reasons(user=user, access_package=access_package)
    gate = package_gate(user=user, access_package=access_package)
    for message in (gate.duplicate_message, gate.empty_message, gate.conflict_message):
        if message:
            reasons.append(message)

    policies = policies_with_subjects(access_package)
    group_ids = member_group_ids(user)
    applicable = highest_priority(
        [p for p in policies if p.is_request_allowed and policy_applies_to(p, user, group_ids)]
    )
    if not applicable:
        reasons.append(scope_reason(policies))
    return gate, Eligibility(policies=[] if reasons else applicable, reasons=reasons)


def on_behalf_policies(*, actor, target, access_package, policies=None):
    """The highest-priority policies under which ``actor`` may request for ``target``."""
    if policies is None:
        policies = policies_with_subjects(access_package)
    target_groups = member_group_ids(target)
    actor_groups = member_group_ids(actor)
    return highest_priority(
        [
            p
            for p in policies
            if p.allowed_target_scope != Scope.NOT_SPECIFIED
            and policy_applies_to(p, target, target_groups)
            and is_on_behalf_requestor(p, actor, target, actor_groups)
        ]
    )


# --------------------------------------------------------------------------------------
# My Access lists
# --------------------------------------------------------------------------------------


# States in which the requestor or the person the access is for may still cancel.
CANCELABLE_STATES = [
    RequestState.SUBMITTED,
    RequestState.PENDING_APPROVAL,
    RequestState.SCHEDULED,
]
# An administrator may also cancel a request whose delivery is under way or failed.
ADMIN_CANCELABLE_STATES = [
    *CANCELABLE_STATES,
    RequestState.DELIVERING,
    RequestState.DELIVERY_FAILED,
]


def request_cancelable(*, request, by_admin=False):
    """Whether ``request`` may still be canceled: by the person it is for or its requestor,
    or (``by_admin``) by an administrator of its catalog. ``request_cancel`` enforces it and
    My Access shows its Cancel button from it."""
    return request.state in (ADMIN_CANCELABLE_STATES if by_admin else CANCELABLE_STATES)


def requestable_packages(*, user, search=""):
    """Packages listed for ``user`` in My Access: not hidden, catalog enabled (and enabled for
    external users when the user is a guest), granting at least one resource role, and a
    policy that lets the user request."""
    if not user.is_active:
        return AccessPackage.objects.none()
    policies = AssignmentPolicy.objects.filter(
        policies_applying_to(user),
        access_package=OuterRef("pk"),
        enable_targets_to_self_add_access=True,
    ).exclude(allowed_target_scope=Scope.NOT_SPECIFIED)
    packages = AccessPackage.objects.filter(
        Exists(policies),
        Exists(ResourceRoleScope.objects.filter(access_package=OuterRef("pk"))),
        is_hidden=False,
        catalog__state=Catalog.State.PUBLISHED,
    )
    if user.is_guest:
        packages = packages.filter(catalog__is_externally_visible=True)
    search = search.strip()
    if search:
        # Three sets, each read through its trigram index (migration 0011), instead of three
        # substring tests on every package.
        named = AccessPackage.objects.filter(display_name__icontains=search).values("pk")
        described = AccessPackage.objects.filter(description__icontains=search).values("pk")
        by_resource = ResourceRoleScope.objects.filter(
            role__resource__display_name__icontains=search
        ).values("access_package_id")
        # One IN over their union lets the planner start from the matches when they are few.
        packages = packages.filter(
            pk__in=named.order_by().union(described.order_by(), by_resource.order_by())
        )
    return packages.select_related("catalog").order_by("display_name", "pk")


def user_assignments(*, user, active=True):
    """The user's assignments: open ones, or (active=False) the ones that ended."""
    assignments = Assignment.objects.restrict(user, "own")
    if active:
        assignments = assignments.filter(state__in=OPEN_ASSIGNMENT_STATES)
    else:
        assignments = assignments.exclude(state__in=OPEN_ASSIGNMENT_STATES)
    return assignments.select_related(
        "access_package", "access_package__catalog", "assignment_policy"
    ).order_by("-created")


def user_requests(*, user):
    """Requests the user made or that are for the user, newest first."""
    return (
        AssignmentRequest.objects.restrict(user, "own")
        .select_related("access_package", "assignment_policy", "target", "requestor")
        .order_by("-created")
    )


def direct_reports_for_on_behalf(*, user, access_package):
    """The user's active direct reports for whom the user may request ``access_package``."""
    policies = [
        p
        for p in policies_with_subjects(access_package)
        if p.enable_on_behalf_requestors_to_add_access
        and p.allowed_target_scope != Scope.NOT_SPECIFIED
    ]
    reports = User.objects.filter(manager=user, is_active=True).select_related(
        "connected_organization"
    )
    if not policies:
        return reports.none()
    reports = list(reports)
    memberships = {}
    for user_id, group_id in GroupMembership.objects.filter(
        user__in=reports, role=GroupMembership.Role.MEMBER
    ).values_list("user_id", "group_id"):
        memberships.setdefault(user_id, set()).add(group_id)
    actor_groups = member_group_ids(user)
    allowed = [
        report.pk
        for report in reports
        if any(
            policy_applies_to(p, report, memberships.get(report.pk, set()))
            and is_on_behalf_requestor(p, user, report, actor_groups)
            for p in policies
        )
    ]
    return User.objects.filter(pk__in=allowed).order_by("display_name")


# --------------------------------------------------------------------------------------
# The package's admin page
# --------------------------------------------------------------------------------------


@dataclass
class PackageConflict:
    """A person who holds the package and something it is incompatible with."""

    user_id: object
    name: str
    email: str
    things: list = field(default_factory=list)  # "the access package X", "the group Y"


def package_conflicts(*, access_package, limit=100):
    """The people who hold ``access_package`` and also an incompatible package (either
    direction) or group, by name; at most ``limit`` of them, and how many there are. One query.
    """
    holders = Assignment.objects.filter(
        access_package=access_package, state__in=OPEN_ASSIGNMENT_STATES
    ).values("target_id")
    packages = (
        Assignment.objects.filter(
            target_id__in=holders,
            state__in=OPEN_ASSIGNMENT_STATES,
            access_package__in=incompatible_packages(access_package).values("pk"),
        )
        .annotate(
            sod_kind=Value("package", output_field=CharField()),
            sod_name=F("access_package__display_name"),
        )
        .values_list("target_id", "target__display_name", "target__email", "sod_kind", "sod_name")
        .order_by()
    )
    groups = (
        GroupMembership.objects.filter(
            user_id__in=holders, group__in=access_package.incompatible_groups.values("pk")
        )
        .annotate(
            sod_kind=Value("group", output_field=CharField()),
            sod_name=F("group__display_name"),
        )
        .values_list("user_id", "user__display_name", "user__email", "sod_kind", "sod_name")
        .order_by()
    )
    people = {}
    for user_id, name, email, kind, thing in packages.union(groups):
        person = people.setdefault(user_id, PackageConflict(user_id, name, email))
        if kind == "package":
            label = _("the access package %(name)s") % {"name": thing}
        else:
            label = _("the group %(name)s") % {"name": thing}
        if label not in person.things:
            person.things.append(label)
    ordered = sorted(people.values(), key=lambda p: (p.name.lower(), p.email))
    for person in ordered:
        person.things.sort()
    return ordered[:limit], len(ordered)


def package_warnings(access_package):
    """What keeps the package from working as configured, for its admin page."""
    warnings = []
    if not package_has_roles(access_package):
        warnings.append(
            _(
                "%(package)s grants no resource roles yet: nobody can request it until you "
                "add at least one."
            )
            % {"package": access_package.display_name}
        )
    return warnings


# --------------------------------------------------------------------------------------
# Automatic assignment
# --------------------------------------------------------------------------------------


@dataclass
class RulePreview:
    """Whom a rule would assign: how many active users it matches, the first few by name
    and, for a saved automatic policy, how many would be added and how many would lose it."""

    count: int
    names: list
    added: int | None = None
    lost: int | None = None


def rule_preview(*, rule, policy=None, limit=20):
    """What ``rule`` (a parsed rule) would do, before it is saved (two queries, four with a
    saved policy)."""
    matching = User.objects.filter(is_active=True).filter(selecting(rule))
    names = matching.order_by("display_name", "id").values_list("display_name", flat=True)
    preview = RulePreview(count=matching.count(), names=list(names[:limit]))
    if policy is not None and not policy._state.adding:
        holders = Assignment.objects.filter(
            access_package_id=policy.access_package_id, state__in=OPEN_ASSIGNMENT_STATES
        )
        preview.added = matching.exclude(pk__in=holders.values("target_id")).count()
        preview.lost = holders.filter(assignment_policy=policy).exclude(target__in=matching).count()
    return preview
