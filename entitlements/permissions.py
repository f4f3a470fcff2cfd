"""Who may see and change what: the one place that turns the product's admin roles into answers.

The roles are rows of ``RoleAssignment``, given directly or delivered by an access package.
A catalog owner manages everything in their catalogs; a catalog reader sees it; an access
package manager manages packages and policies; an access package assignment manager manages
requests and assignments. A catalog creator may add catalogs. Superusers may do anything.

Every governed model declares here (or, for the apps above entitlements, from their
AppConfig.ready) which kind of object it is and its lookup path to a catalog, and which rows
a person sees as their own; ``Model.objects.restrict(user, action)`` answers from that. The
admin (querysets, has_*_permission, form choices, autocomplete) and the portal's lists ask
only this module; the API will ask it the same questions.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from .models import (
    AccessPackage,
    AdminRole,
    ApprovalStage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentResourceRole,
    AuditEvent,
    Catalog,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    RequestAnswer,
    Resource,
    ResourceRole,
    ResourceRoleScope,
    RoleAssignment,
    StageApproverSet,
)

OWNER = AdminRole.CATALOG_OWNER
READER = AdminRole.CATALOG_READER
PACKAGE_MANAGER = AdminRole.ACCESS_PACKAGE_MANAGER
ASSIGNMENT_MANAGER = AdminRole.ACCESS_PACKAGE_ASSIGNMENT_MANAGER
CREATOR = AdminRole.CATALOG_CREATOR

ANY_CATALOG_ROLE = (OWNER, READER, PACKAGE_MANAGER, ASSIGNMENT_MANAGER)

# Kinds of object; each kind has the roles that may view it and the roles that may change it.
CATALOG = "catalog"
ROLES = "roles"
RESOURCES = "resources"
PACKAGES = "packages"
ASSIGNMENTS = "assignments"

ROLES_FOR = {
    (CATALOG, "view"): ANY_CATALOG_ROLE,
    (CATALOG, "change"): (OWNER,),
    (ROLES, "view"): ANY_CATALOG_ROLE,
    (ROLES, "change"): (OWNER,),
    (RESOURCES, "view"): ANY_CATALOG_ROLE,
    (RESOURCES, "change"): (OWNER,),
    (PACKAGES, "view"): ANY_CATALOG_ROLE,
    (PACKAGES, "change"): (OWNER, PACKAGE_MANAGER),
    # "change" here means acting on them through services (remove, reprocess, cancel);
    # the rows themselves are never edited by hand.
    (ASSIGNMENTS, "view"): ANY_CATALOG_ROLE,
    (ASSIGNMENTS, "change"): (OWNER, PACKAGE_MANAGER, ASSIGNMENT_MANAGER),
}


@dataclass(frozen=True)
class Scope:
    """Where the rows of one governed model sit: their kind, their path to a catalog, and
    what a person sees of their own rows without an admin role."""

    kind: str
    path: str  # lookup from the model to its catalog; empty for the catalog itself
    personal: dict = field(default_factory=dict)  # action -> (user -> Q over the model)


_SCOPES = {}


def declare_scope(model, kind, path, **personal):
    """Make ``model`` governed: ``restrict(user, action)`` and ``can()`` follow its catalog.

    ``personal`` names the actions open to anybody about their own rows (``own=``: my
    requests; ``approve=``: stages I approve), each a function from the user to a Q. Apps
    above entitlements declare their models from their AppConfig.ready, so this module never
    names them.
    """
    _SCOPES[model._meta.label] = Scope(kind, path, personal)


def _request_parties(user):
    """My requests: the ones I made and the ones made for me."""
    return Q(target=user) | Q(requestor=user)


def _target(user):
    """My assignments: the ones I hold."""
    return Q(target=user)


for _model, _kind, _path, _personal in [
    (Catalog, CATALOG, "", {}),
    (RoleAssignment, ROLES, "catalog", {}),
    (Resource, RESOURCES, "catalog", {}),
    (ResourceRole, RESOURCES, "resource__catalog", {}),
    (AccessPackage, PACKAGES, "catalog", {}),
    (ResourceRoleScope, PACKAGES, "access_package__catalog", {}),
    (AssignmentPolicy, PACKAGES, "access_package__catalog", {}),
    (PolicySubjectSet, PACKAGES, "policy__access_package__catalog", {}),
    (ApprovalStage, PACKAGES, "policy__access_package__catalog", {}),
    (StageApproverSet, PACKAGES, "stage__policy__access_package__catalog", {}),
    (Question, PACKAGES, "policy__access_package__catalog", {}),
    (QuestionChoice, PACKAGES, "question__policy__access_package__catalog", {}),
    (QuestionLocalization, PACKAGES, "question__policy__access_package__catalog", {}),
    (AssignmentRequest, ASSIGNMENTS, "access_package__catalog", {"own": _request_parties}),
    (RequestAnswer, ASSIGNMENTS, "request__access_package__catalog", {}),
    (Assignment, ASSIGNMENTS, "access_package__catalog", {"own": _target}),
    (AssignmentResourceRole, ASSIGNMENTS, "assignment__access_package__catalog", {}),
    (AuditEvent, ASSIGNMENTS, "access_package__catalog", {}),
]:
    declare_scope(_model, _kind, _path, **_personal)

_CACHE = "_entitlement_admin_roles"


# --------------------------------------------------------------------------------------
# The roles a person holds
# --------------------------------------------------------------------------------------


def _role_rows(user):
    """{(role, catalog_id)} for the user, read once per user object (i.e. once per request)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    rows = getattr(user, _CACHE, None)
    if rows is None:
        rows = frozenset(
            RoleAssignment.objects.filter(principal=user).values_list("role", "catalog_id")
        )
        setattr(user, _CACHE, rows)
    return rows


def forget_roles(user):
    """Drop the cached roles after giving or taking one within the same request."""
    if hasattr(user, _CACHE):
        delattr(user, _CACHE)


def is_superuser(user):
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


def holds_admin_role(user):
    return bool(_role_rows(user))


def may_enter_admin(user):
    """Staff, superusers and anyone holding one of the product's admin roles."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or holds_admin_role(user)


def catalog_ids_for(user, *roles):
    """Ids of the catalogs in which the user holds one of ``roles`` (all catalog roles if none)."""
    roles = set(roles or ANY_CATALOG_ROLE)
    return {catalog_id for role, catalog_id in _role_rows(user) if role in roles and catalog_id}


def catalogs_for(user, *roles):
    """The catalogs in which the user holds one of ``roles``; every catalog for a superuser."""
    if is_superuser(user):
        return Catalog.objects.all()
    return Catalog.objects.filter(pk__in=catalog_ids_for(user, *roles))


# --------------------------------------------------------------------------------------
# Named questions
# --------------------------------------------------------------------------------------


def _holds(user, catalog, roles):
    if is_superuser(user):
        return True
    catalog_id = getattr(catalog, "pk", catalog)
    return catalog_id is not None and catalog_id in catalog_ids_for(user, *roles)


def can_create_catalog(user):
    return is_superuser(user) or (CREATOR, None) in _role_rows(user)


def can_view_catalog(user, catalog):
    return _holds(user, catalog, ROLES_FOR[CATALOG, "view"])


def can_change_catalog(user, catalog):
    return _holds(user, catalog, ROLES_FOR[CATALOG, "change"])


def can_manage_packages(user, catalog):
    return _holds(user, catalog, ROLES_FOR[PACKAGES, "change"])


def can_manage_assignments(user, catalog):
    return _holds(user, catalog, ROLES_FOR[ASSIGNMENTS, "change"])


# --------------------------------------------------------------------------------------
# Any object of the configuration model
# --------------------------------------------------------------------------------------


def scope_of(model):
    """The declared Scope of a governed model, else None."""
    return _SCOPES.get(model._meta.label)


def catalog_id_of(obj):
    """The id of the catalog an object belongs to, following its scope path."""
    path = scope_of(type(obj)).path
    if not path:
        return obj.pk if not obj._state.adding else None
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def _verb(action):
    return "view" if action == "view" else "change"


def can(user, action, obj=None, *, model=None):
    """May ``user`` do ``action`` (view, add, change, delete) on objects of ``model``?

    With ``obj``, the answer is for the catalog ``obj`` belongs to (``obj`` may be the parent
    of an inline's rows); without it, for at least one catalog.
    """
    model = model or type(obj)
    if not may_enter_admin(user):
        return False
    if action in ("change", "delete") and _is_delivered_role(obj):
        return False  # remove the access package assignment that delivered it instead
    if action == "delete" and _is_builtin_catalog(obj):
        return False
    if is_superuser(user):
        return True
    kind = scope_of(model).kind
    if kind == CATALOG and obj is None and action in ("add", "view") and can_create_catalog(user):
        return True
    if kind == CATALOG and action == "add":
        return can_create_catalog(user)
    roles = ROLES_FOR[kind, _verb(action)]
    if obj is None:
        return bool(catalog_ids_for(user, *roles))
    return _holds(user, catalog_id_of(obj), roles)


def _is_delivered_role(obj):
    return (
        obj is not None
        and obj._meta.label == "entitlements.RoleAssignment"
        and obj.source == RoleAssignment.Source.ENTITLEMENT
    )


def _is_builtin_catalog(obj):
    return (
        obj is not None
        and obj._meta.label == "entitlements.Catalog"
        and obj.catalog_type == Catalog.CatalogType.SERVICE_DEFAULT
    )


def _limit_to_catalogs(queryset, path, catalog_ids):
    if not path:
        return queryset.filter(pk__in=catalog_ids)
    return queryset.filter(**{f"{path}__in": catalog_ids})


ADMIN_ACTIONS = ("view", "add", "change", "delete")


def restrict(queryset, user, action="view"):
    """Only the rows of ``queryset`` the user may ``action`` (``Model.objects.restrict``).

    An admin action (view, add, change, delete) follows the person's admin roles in each
    row's catalog, and leaves other models' querysets unchanged; any other action is one the
    model declared for people's own rows, whoever they are.
    """
    scope = scope_of(queryset.model)
    if action not in ADMIN_ACTIONS:
        if scope is None or action not in scope.personal:
            raise ValueError(f"{queryset.model._meta.label} has no action {action!r}.")
        if not getattr(user, "is_authenticated", False):
            return queryset.none()
        return queryset.filter(scope.personal[action](user))
    if scope is None or is_superuser(user):
        return queryset
    if not may_enter_admin(user):
        return queryset.none()
    return _limit_to_catalogs(
        queryset, scope.path, catalog_ids_for(user, *ROLES_FOR[scope.kind, _verb(action)])
    )


def choices_for(user, model, field_name, queryset):
    """The rows the user may pick for ``field_name`` of ``model`` (form choices, autocomplete).

    The field that places an object in its catalog (a package's catalog, a policy's package)
    offers only catalogs where the user may change such objects; catalogs chosen for another
    purpose (the admin roles a resource offers) need ownership; anything else needs viewing.
    """
    if is_superuser(user) or scope_of(queryset.model) is None:
        return queryset
    scope = scope_of(model)
    choice = scope_of(queryset.model)
    if scope is not None and field_name == scope.path.split("__")[0]:
        ids = catalog_ids_for(user, *ROLES_FOR[scope.kind, "change"])
    elif choice.kind == CATALOG:
        ids = catalog_ids_for(user, *ROLES_FOR[CATALOG, "change"])
    else:
        return restrict(queryset, user, "view")
    return _limit_to_catalogs(queryset, choice.path, ids)
