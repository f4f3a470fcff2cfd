"""What a caller of the API may call: the one place that turns token permissions into answers.

Permissions are Microsoft Graph's names. An application's token carries application
permissions; a person's token (or the browser's session) carries delegated ones, and acts
only within that person's own roles. Which rows a caller sees and changes is decided after
this, by ``Model.objects.restrict`` and the services, exactly as for the portal and admin.

Every API view declares the permissions that let a caller read (``read_permissions``) and
write (``write_permissions``); an action may name its own in ``action_permissions``.
"""

from rest_framework import permissions

from entitlements.permissions import holds_admin_role

# Graph's permission names
EM_READ = "EntitlementManagement.Read.All"
EM_READWRITE = "EntitlementManagement.ReadWrite.All"
SUBJECT_ACCESS = "EntitlementMgmt-SubjectAccess.ReadWrite"
REVIEW_READ = "AccessReview.Read.All"
REVIEW_READWRITE = "AccessReview.ReadWrite.All"
USER_READ = "User.Read"
USER_READ_ALL = "User.Read.All"
GROUP_READ_ALL = "Group.Read.All"
GROUP_MEMBER_READ_ALL = "GroupMember.Read.All"
DIRECTORY_READ_ALL = "Directory.Read.All"

# What an application may be granted, and what a person's token may carry.
APPLICATION_PERMISSIONS = (
    EM_READ,
    EM_READWRITE,
    REVIEW_READ,
    REVIEW_READWRITE,
    USER_READ_ALL,
    GROUP_READ_ALL,
    GROUP_MEMBER_READ_ALL,
    DIRECTORY_READ_ALL,
)
DELEGATED_PERMISSIONS = (
    EM_READ,
    EM_READWRITE,
    SUBJECT_ACCESS,
    REVIEW_READ,
    REVIEW_READWRITE,
    USER_READ,
    USER_READ_ALL,
    GROUP_READ_ALL,
    GROUP_MEMBER_READ_ALL,
    DIRECTORY_READ_ALL,
)
# Application permissions that act product-wide, not within catalog roles.
PRODUCT_WIDE = {EM_READ, EM_READWRITE, REVIEW_READ, REVIEW_READWRITE}

# What an application holding catalog roles (and no product-wide permission) may call: it
# then acts within those roles, as a person does (Entra lets a service principal hold them).
CATALOG_ROLE_PERMISSIONS = frozenset({EM_READ, EM_READWRITE})

# What each kind of resource accepts
ENTITLEMENTS_READ = (EM_READ, EM_READWRITE)
ENTITLEMENTS_WRITE = (EM_READWRITE,)
# My Access actions: requesting for oneself, deciding one's approvals, one's own lists
MY_ACCESS = (SUBJECT_ACCESS, EM_READWRITE)
MY_ACCESS_READ = (SUBJECT_ACCESS, EM_READ, EM_READWRITE)
REVIEWS_READ = (REVIEW_READ, REVIEW_READWRITE)
REVIEWS_WRITE = (REVIEW_READWRITE,)
USERS_READ = (USER_READ_ALL, DIRECTORY_READ_ALL)
GROUPS_READ = (GROUP_READ_ALL, GROUP_MEMBER_READ_ALL, DIRECTORY_READ_ALL)
ME = (USER_READ, USER_READ_ALL, DIRECTORY_READ_ALL)


def granted(request):
    """The permissions the caller holds: the token's, or every delegated one for the
    browser's session (a person acting as themselves, within their roles). An application
    token without a product-wide permission whose service principal holds catalog roles
    may also read and write entitlement management within those catalogs."""
    token = request.auth
    if token is None:
        return frozenset(DELEGATED_PERMISSIONS) if request.user.is_authenticated else frozenset()
    held = frozenset(token.permissions)
    if (
        getattr(token, "application_id", None) is not None
        and not held & PRODUCT_WIDE
        and holds_admin_role(request.user)
    ):
        held |= CATALOG_ROLE_PERMISSIONS
    return held


def needed(request, view):
    """The permissions that let the caller do what it asks of ``view`` (any one will do)."""
    by_action = getattr(view, "action_permissions", {})
    action = getattr(view, "action", None)
    if action in by_action:
        return by_action[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_permissions", ())
    return getattr(view, "write_permissions", ())


class GraphPermission(permissions.BasePermission):
    """Allows a call when the caller is signed in and holds one of the permissions the
    view (or its action) accepts; a view that accepts none is closed."""

    message = "The caller does not have the permission this call needs."

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        accepted = set(needed(request, view))
        held = granted(request)
        if accepted & held:
            return True
        self.message = (
            "Either the caller lacks the permission for this call or the token was granted "
            f"none of: {', '.join(sorted(accepted)) or 'none'}."
        )
        return False
