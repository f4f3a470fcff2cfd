"""Read-only ``/users``, ``/users/{id}/manager``, ``/groups``, ``/groups/{id}/members`` and
``/me``: the local directory as Graph's user, group and directoryObject.

Who reads what is decided once, in ``sees_directory``: an application (holding User.Read.All,
Group.Read.All or Directory.Read.All, checked by the views' permissions) and a person who may
enter the admin (staff, superusers, anyone holding a catalog role) read the whole directory,
as the admin's people pickers do; anybody else reads only themselves (and, through
``$expand=manager`` or ``/manager``, their own manager) and the groups they belong to, which
is what My Access shows them. Applications' service principals are never listed as users.
Only the properties below are exposed: never a password hash,
the staff or superuser flags, or last sign-in.
"""

import re

from django.db.models import Exists, OuterRef, Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action

from directory.models import Group, GroupMembership, User
from entitlements import permissions

from ..graph.errors import bad_request, not_found
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer
from ..graph.views import GraphViewSet
from ..models import AccessToken, Application
from ..permissions import GROUPS_READ, ME, USERS_READ
from .common import GraphDateTimeField

NOBODY = "00000000-0000-0000-0000-000000000000"


def identity(user, *, principal_name=False):
    """A Graph ``identity`` (``userIdentity`` with ``principal_name``) for ``user``; Graph's
    all-zero identity when there is nobody (a stage or decision not reviewed yet)."""
    data = {"@odata.type": "#microsoft.graph.userIdentity"}
    if user is None:
        data.update(id=NOBODY, displayName="")
        if principal_name:
            data["userPrincipalName"] = ""
        return data
    data.update(id=str(user.pk), displayName=user.display_name)
    if principal_name:
        data["userPrincipalName"] = user.email
    return data


def is_application(request):
    """Whether the caller authenticated as an application (client credentials), not a person."""
    token = getattr(request, "auth", None)
    return token is not None and getattr(token, "kind", "") == AccessToken.Kind.APPLICATION


def sees_directory(request):
    """Whether the caller reads the whole directory, or only themselves (see the docstring)."""
    return is_application(request) or permissions.may_enter_admin(request.user)


def visible_users(request):
    """People only: an application's service principal is a directory row of its own
    (``api.models.Application``), never listed as a user."""
    # NOT EXISTS, not a LEFT JOIN ... IS NULL: PostgreSQL then keeps reading the people in
    # name order from the index and stops at the page (140 ms -> 0.3 ms at 100,000 people).
    users = User.objects.filter(
        ~Exists(Application.objects.filter(service_principal=OuterRef("pk")))
    )
    if not sees_directory(request):
        users = users.filter(pk=request.user.pk)
    return users


def visible_groups(request):
    groups = Group.objects.all()
    if not sees_directory(request):
        groups = groups.filter(
            pk__in=GroupMembership.objects.filter(user=request.user).values("group_id")
        )
    return groups


class BlankAsNullField(serializers.CharField):
    """Graph answers null for a property that was never set; the model keeps ""."""

    def to_representation(self, value):
        return value or None


class UserSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    mail = serializers.EmailField(source="email", read_only=True)
    userPrincipalName = serializers.CharField(source="email", read_only=True)
    jobTitle = BlankAsNullField(source="job_title", read_only=True, allow_null=True)
    department = BlankAsNullField(read_only=True, allow_null=True)
    companyName = BlankAsNullField(source="company_name", read_only=True, allow_null=True)
    employeeId = BlankAsNullField(source="employee_id", read_only=True, allow_null=True)
    userType = serializers.CharField(source="user_type", read_only=True)
    accountEnabled = serializers.BooleanField(source="is_active", read_only=True)
    preferredLanguage = BlankAsNullField(
        source="preferred_language", read_only=True, allow_null=True
    )


class DirectoryUserSerializer(UserSerializer):
    """A user where Graph answers a directoryObject (members, manager): typed."""

    odata_type = "#microsoft.graph.user"


UserSerializer.expandable = {
    "manager": Expand(serializer=DirectoryUserSerializer, source="manager", select="manager")
}
DirectoryUserSerializer.expandable = {}


class GroupSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    description = BlankAsNullField(read_only=True, allow_null=True)
    mail = BlankAsNullField(read_only=True, allow_null=True)
    mailEnabled = serializers.SerializerMethodField()
    securityEnabled = serializers.SerializerMethodField()
    createdDateTime = GraphDateTimeField(source="created", read_only=True)

    def get_mailEnabled(self, group) -> bool:  # noqa: N802 - Graph's name
        return bool(group.mail)

    def get_securityEnabled(self, group) -> bool:  # noqa: N802
        return True


USER_FIELDS = {
    "id": "id",
    "displayName": "display_name",
    "mail": "email",
    "userPrincipalName": "email",
    "jobTitle": "job_title",
    "department": "department",
    "companyName": "company_name",
    "employeeId": "employee_id",
    "userType": "user_type",
    "accountEnabled": "is_active",
    "manager/id": "manager__id",
}
GROUP_FIELDS = {
    "id": "id",
    "displayName": "display_name",
    "description": "description",
    "mail": "mail",
}
SEARCHABLE = {
    "displayName": "display_name",
    "mail": "email",
    "userPrincipalName": "email",
    "jobTitle": "job_title",
    "department": "department",
    "description": "description",
}
_TERM = re.compile(r'"(\w+):([^"]*)"')


class DirectoryViewSet(GraphViewSet):
    """What users and groups share: Graph's advanced queries ($count, $search) need the
    ``ConsistencyLevel: eventual`` header, and ``$search`` takes ``"property:text"`` terms."""

    searchable = {}

    def collection(self, queryset, **kwargs):
        params = self.request.query_params
        advanced = params.get("$count", "").lower() == "true" or "$search" in params
        if advanced and self.request.headers.get("ConsistencyLevel", "").lower() != "eventual":
            raise bad_request(
                "$count and $search on directory objects need the header "
                "'ConsistencyLevel: eventual'.",
                code="Request_UnsupportedQuery",
            )
        return super().collection(queryset, **kwargs)

    def search(self, queryset, text):
        terms = _TERM.findall(text)
        rest = _TERM.sub("", text).strip()
        joins = set(rest.split())
        if not terms or not joins <= {"AND", "OR"} or len(joins) > 1:
            raise bad_request(
                '$search takes "property:text" terms joined by AND or OR, e.g. "displayName:ann".'
            )
        condition = None
        for name, value in terms:
            if name not in self.searchable:
                raise bad_request(f"'{name}' is not a property that can be searched.")
            term = Q(**{f"{self.searchable[name]}__icontains": value})
            if condition is None:
                condition = term
            elif "OR" in joins:
                condition |= term
            else:
                condition &= term
        return queryset.filter(condition)


class UserViewSet(DirectoryViewSet):
    context = "users"
    serializer_class = UserSerializer
    read_permissions = USERS_READ
    write_permissions = ()
    filter_fields = USER_FIELDS
    searchable = {k: v for k, v in SEARCHABLE.items() if k != "description"}
    default_order = ("display_name",)
    http_method_names = ["get", "head", "options"]

    def visible(self):
        return visible_users(self.request)

    @graph_schema(response=DirectoryUserSerializer)
    @action(detail=True, url_path="manager", url_name="manager")
    def manager(self, request, pk=None):
        """The user's manager, a directoryObject (404 when the user has none)."""
        user = self.get_object()
        if user.manager_id is None:
            raise not_found("Resource 'manager' does not exist or is not present.")
        return self.entity(
            user.manager,
            serializer_class=DirectoryUserSerializer,
            context=f"users('{user.pk}')/manager",
        )


class GroupViewSet(DirectoryViewSet):
    context = "groups"
    serializer_class = GroupSerializer
    read_permissions = GROUPS_READ
    write_permissions = ()
    filter_fields = GROUP_FIELDS
    searchable = {k: SEARCHABLE[k] for k in ("displayName", "description")} | {"mail": "mail"}
    default_order = ("display_name",)
    http_method_names = ["get", "head", "options"]

    def visible(self):
        return visible_groups(self.request)

    @graph_schema(collection=DirectoryUserSerializer)
    @action(detail=True, url_path="members", url_name="members")
    def members(self, request, pk=None):
        """The group's members the caller may see, as directoryObjects (users)."""
        group = self.get_object()
        members = visible_users(request).filter(
            group_memberships__group=group, group_memberships__role=GroupMembership.Role.MEMBER
        )
        return self.collection(
            members,
            serializer_class=DirectoryUserSerializer,
            context="directoryObjects",
            filter_fields=USER_FIELDS,
        )


class MeViewSet(GraphViewSet):
    """``/me``: the signed-in person; an application has no "me"."""

    context = "users"
    serializer_class = UserSerializer
    read_permissions = ME
    write_permissions = ()
    http_method_names = ["get", "head", "options"]

    lookup_value_regex = "(?!)"  # no /me/{id}: the router's detail route never matches

    def visible(self):
        return User.objects.filter(pk=self.request.user.pk)

    @extend_schema(exclude=True)
    def retrieve(self, request, *args, **kwargs):
        raise not_found()

    @graph_schema(response=UserSerializer)
    def list(self, request, *args, **kwargs):
        if is_application(request):
            raise bad_request("/me request is only valid with delegated authentication flow.")
        return self.entity(self.find(self.visible(), request.user.pk, what="user"))


def register(routers):
    root = routers[""]
    root.register("users", UserViewSet, basename="user")
    root.register("groups", GroupViewSet, basename="group")
    root.register("me", MeViewSet, basename="me")
