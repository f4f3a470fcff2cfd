"""Who may see and change what: the one place that turns the product's admin roles into answers.

The roles are rows of ``RoleAssignment``, given directly or delivered by an access package.
A catalog owner manages everything in their catalogs; a catalog reader sees it; an access
package manager manages packages and policies; an access package assignment manager manages
requests and assignments. A catalog creator may add catalogs. Superusers may do anything.

The admin (querysets, has_*_permission, form choices, autocomplete) asks only this module;
the API and the portal can ask it the same questions.
"""

from .models import AdminRole, Catalog, RoleAssignment

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

# Model label -> (kind, lookup path from the model to its catalog). Labels, not classes,
# so that entitlements does not import the apps built on it.
CATALOG_SCOPED = {
    "entitlements.Catalog": (CATALOG, ""),
    "entitlements.RoleAssignment": (ROLES, "catalog"),
    "entitlements.Resource": (RESOURCES, "catalog"),
    "entitlements.ResourceRole": (RESOURCES, "resource__catalog"),
    "entitlements.AccessPackage": (PACKAGES, "catalog"),
    "entitlements.ResourceRoleScope": (PACKAGES, "access_package__catalog"),
    "entitlements.AssignmentPolicy": (PACKAGES, "access_package__catalog"),
    "entitlements.PolicySubjectSet": (PACKAGES, "policy__access_package__catalog"),
    "entitlements.ApprovalStage": (PACKAGES, "policy__access_package__catalog"),
    "entitlements.StageApproverSet": (PACKAGES, "stage__policy__access_package__catalog"),
    "entitlements.Question": (PACKAGES, "policy__access_package__catalog"),
    "entitlements.QuestionChoice": (PACKAGES, "question__policy__access_package__catalog"),
    "entitlements.QuestionLocalization": (
        PACKAGES,
        "question__policy__access_package__catalog",
    ),
    "entitlements.AssignmentRequest": (ASSIGNMENTS, "access_package__catalog"),
    "entitlements.RequestAnswer": (ASSIGNMENTS, "request__access_package__catalog"),
    "entitlements.Assignment": (ASSIGNMENTS, "access_package__catalog"),
    "entitlements.AssignmentResourceRole": (ASSIGNMENTS, "assignment__access_package__catalog"),
    "entitlements.AuditEvent": (ASSIGNMENTS, "access_package__catalog"),
    "approvals.RequestApprovalStage": (ASSIGNMENTS, "request__access_package__catalog"),
    "approvals.StageApprover": (ASSIGNMENTS, "stage__request__access_package__catalog"),
}

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
    """(kind, lookup path to the catalog) for a catalog-scoped model, else None."""
    return CATALOG_SCOPED.get(model._meta.label)


def catalog_id_of(obj):
    """The id of the catalog an object belongs to, following its scope path."""
    _kind, path = CATALOG_SCOPED[obj._meta.label]
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
    kind, _path = scope_of(model)
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


def restrict(queryset, user, action="view"):
    """Only the rows of ``queryset`` the user may ``action``; unchanged for non-scoped models."""
    scope = scope_of(queryset.model)
    if scope is None or is_superuser(user):
        return queryset
    if not may_enter_admin(user):
        return queryset.none()
    kind, path = scope
    return _limit_to_catalogs(
        queryset, path, catalog_ids_for(user, *ROLES_FOR[kind, _verb(action)])
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
    choice_kind, choice_path = scope_of(queryset.model)
    if scope is not None and field_name == scope[1].split("__")[0]:
        ids = catalog_ids_for(user, *ROLES_FOR[scope[0], "change"])
    elif choice_kind == CATALOG:
        ids = catalog_ids_for(user, *ROLES_FOR[CATALOG, "change"])
    else:
        return restrict(queryset, user, "view")
    return _limit_to_catalogs(queryset, choice_path, ids)
