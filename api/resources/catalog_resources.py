"""A catalog's resources, their roles and scopes, and ``resourceRequests`` (adding a group,
application, site or directory role to a catalog, or removing one).

- ``catalogs/{id}/resources`` (accessPackageResource), ``$expand=roles,scopes``;
- ``catalogs/{id}/resources/{id}``;
- ``catalogs/{id}/resourceRoles`` (accessPackageResourceRole), ``$expand=resource``;
- ``catalogs/{id}/resourceScopes`` (accessPackageResourceScope);
- ``resourceRequests`` (accessPackageResourceRequest): POST only. The product keeps no
  request rows: an ``adminAdd`` or ``adminRemove`` is done at once (state ``delivered``) and
  recorded in the audit trail; the request's id is the id of that audit event.

Each resource has one scope, its root, as Entra gives a group or an application: its id is
the resource's id, its ``originId`` and ``originSystem`` the resource's, ``isRootScope`` true,
``displayName`` "Root". A role's ``originId`` is the product's (``Member``, ``Owner``, an app
role's id, a site role); Entra's ``Member_<group id>`` form is accepted where a role is named.
"""

import uuid
from types import SimpleNamespace

from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from directory.models import Application, Group, Site
from entitlements.configuration import resource_add, resource_add_check, resource_origin_id
from entitlements.models import (
    AuditEvent,
    Catalog,
    Channel,
    OriginSystem,
    Resource,
    ResourceRole,
    ResourceRoleScope,
)

from ..graph.errors import bad_request, conflict, not_found
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet, api_root
from ..permissions import ENTITLEMENTS_READ, ENTITLEMENTS_WRITE
from .catalogs import CatalogSerializer
from .common import GraphDateTimeField, delete_config, require

ROOT_SCOPE_NAME = "Root"
ROOT_SCOPE_DESCRIPTION = "Root Scope"


class ResourceRoleSerializer(GraphSerializer):
    """accessPackageResourceRole; its originSystem is its resource's."""

    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    description = serializers.CharField(read_only=True)
    originId = serializers.CharField(source="origin_id", read_only=True)
    originSystem = serializers.CharField(source="resource.origin_system", read_only=True)

    @classmethod
    def related_lookups(cls, options, prefix=""):
        selects, prefetches = super().related_lookups(options, prefix)
        return [f"{prefix}resource", *selects], prefetches  # originSystem reads the resource


class ResourceScopeSerializer(GraphSerializer):
    """accessPackageResourceScope: the root scope of a resource, rendered from the resource."""

    id = serializers.UUIDField(read_only=True)
    displayName = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    originId = serializers.CharField(source="origin_id", read_only=True)
    originSystem = serializers.CharField(source="origin_system", read_only=True)
    isRootScope = serializers.SerializerMethodField()

    def get_displayName(self, resource) -> str:  # noqa: N802 - Graph's property name
        return ROOT_SCOPE_NAME

    def get_description(self, resource) -> str:
        return ROOT_SCOPE_DESCRIPTION

    def get_isRootScope(self, resource) -> bool:  # noqa: N802
        return True


class ResourceSerializer(GraphSerializer):
    """accessPackageResource."""

    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    description = serializers.CharField(read_only=True)
    originId = serializers.CharField(source="origin_id", read_only=True)
    originSystem = serializers.CharField(source="origin_system", read_only=True)
    attributes = serializers.SerializerMethodField()
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)

    expandable = {
        "roles": Expand(ResourceRoleSerializer, source="roles", many=True, prefetch="roles"),
        # the one root scope is the resource itself (see the module docstring)
        "scopes": Expand(ResourceScopeSerializer, source="root_scopes", many=True),
    }

    def get_attributes(self, resource) -> list:
        return []  # the product collects no attributes for resources

    def to_representation(self, instance):
        instance.root_scopes = [instance]
        return super().to_representation(instance)


ResourceRoleSerializer.expandable = {
    "resource": Expand(ResourceSerializer, source="resource", select="resource"),
}


RESOURCE_FILTERS = {
    "id": "id",
    "displayName": "display_name",
    "description": "description",
    "originId": "origin_id",
    "originSystem": "origin_system",
    "createdDateTime": "created",
    "modifiedDateTime": "modified",
}
ROLE_FILTERS = {
    "id": "id",
    "displayName": "display_name",
    "description": "description",
    "originId": "origin_id",
    "originSystem": "resource__origin_system",
    "resource/id": "resource__id",
    "resource/originId": "resource__origin_id",
    "resource/displayName": "resource__display_name",
}


class CatalogChildMixin:
    """A collection under ``catalogs/{catalog_id}/``: the catalog must be one the caller
    sees (404 otherwise), and so must each row."""

    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    segment = ""

    @property
    def context(self):
        return f"{BASE}/catalogs('{self.kwargs.get('catalog_id', '')}')/{self.segment}"

    def catalog(self):
        if not hasattr(self, "_catalog"):
            self._catalog = self.find(
                Catalog.objects.restrict(self.request.user, "view"),
                self.kwargs.get("catalog_id"),
                what="catalog",
            )
        return self._catalog


class CatalogResourceViewSet(CatalogChildMixin, GraphViewSet):
    serializer_class = ResourceSerializer
    segment = "resources"
    filter_fields = RESOURCE_FILTERS
    default_order = ("display_name",)

    def visible(self):
        catalog = self.catalog()
        return Resource.objects.restrict(self.request.user, "view").filter(catalog=catalog)


class CatalogResourceScopeViewSet(CatalogChildMixin, GraphViewSet):
    serializer_class = ResourceScopeSerializer
    segment = "resourceScopes"
    filter_fields = {"id": "id", "originId": "origin_id", "originSystem": "origin_system"}
    default_order = ("display_name",)

    def visible(self):
        catalog = self.catalog()
        return Resource.objects.restrict(self.request.user, "view").filter(catalog=catalog)


class CatalogResourceRoleViewSet(CatalogChildMixin, GraphViewSet):
    serializer_class = ResourceRoleSerializer
    segment = "resourceRoles"
    filter_fields = ROLE_FILTERS
    default_order = ("resource__display_name", "display_name")

    def visible(self):
        catalog = self.catalog()
        return ResourceRole.objects.restrict(self.request.user, "view").filter(
            resource__catalog=catalog
        )


# --------------------------------------------------------------------------------------
# resourceRequests
# --------------------------------------------------------------------------------------

ADMIN_ADD = "adminAdd"
ADMIN_REMOVE = "adminRemove"
DELIVERED = "delivered"


class ResourceRequestSerializer(GraphSerializer):
    """accessPackageResourceRequest, as answered to a POST."""

    id = serializers.UUIDField(read_only=True)
    requestType = serializers.CharField(source="request_type", read_only=True)
    state = serializers.CharField(read_only=True)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    catalog = CatalogSerializer(read_only=True)
    resource = ResourceSerializer(read_only=True)


def optional_text():
    return serializers.CharField(required=False, allow_null=True, allow_blank=True)


class CatalogReference(InputSerializer):
    id = serializers.CharField()


class ResourceReference(InputSerializer):
    """The resource to add (originId and originSystem) or to remove (id, or the same)."""

    id = optional_text()
    displayName = optional_text()
    description = optional_text()
    originId = optional_text()
    originSystem = optional_text()


class ResourceRequestBody(InputSerializer):
    """What a POST may say; the resource is read further by the view (by origin system)."""

    requestType = serializers.ChoiceField(choices=[ADMIN_ADD, ADMIN_REMOVE])
    catalog = CatalogReference()
    resource = ResourceReference()
    justification = optional_text()


def _uuid(value, what):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise bad_request(f"{what} must be an id (a GUID).") from None


def _string(body, name, what):
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{what} is required.")
    return value.strip()


def _origin_object(origin_system, origin_id):
    """The local object a resource of ``origin_system`` is added for: {field: object}."""
    if origin_system == OriginSystem.GROUP:
        model, lookup, what = Group, {"pk": _uuid(origin_id, "resource.originId")}, "group"
    elif origin_system == OriginSystem.APPLICATION:
        model, lookup = Application, {"pk": _uuid(origin_id, "resource.originId")}
        what = "application"
    elif origin_system == OriginSystem.SITE:
        model, lookup, what = Site, {"url": origin_id}, "site"
    else:  # a directory role: the catalog whose roles it grants, or "product"
        if origin_id == "product":
            return {"role_catalog": None}
        model, lookup = Catalog, {"pk": _uuid(origin_id, "resource.originId")}
        what = "catalog"
    try:
        obj = model.objects.get(**lookup)
    except model.DoesNotExist:
        raise not_found(f"No {what} has the originId '{origin_id[:200]}'.") from None
    field = "role_catalog" if origin_system == OriginSystem.DIRECTORY_ROLE else what
    return {field: obj}


class _Absent:
    """An inherited method this viewset does not have: the router maps no route to it."""

    def __get__(self, instance, owner):
        raise AttributeError("not served here")


class ResourceRequestViewSet(GraphViewSet):
    """POST only (see the module docstring): no list or get routes."""

    context = f"{BASE}/resourceRequests"
    list = retrieve = _Absent()
    serializer_class = ResourceRequestSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE

    def visible(self):
        return Resource.objects.none()

    @graph_schema(request=ResourceRequestBody, response=ResourceRequestSerializer, status=201)
    def create(self, request):
        body = self.body(ResourceRequestBody)
        catalog = self.find(
            Catalog.objects.restrict(request.user, "view"),
            body["catalog"].get("id"),
            what="catalog",
        )
        if body["requestType"] == ADMIN_ADD:
            resource, event = self._add(catalog, body["resource"])
        else:
            resource, event = self._remove(catalog, body["resource"])
        request_id = event.pk if event else uuid.uuid4()
        answer = SimpleNamespace(
            pk=request_id,
            id=request_id,
            request_type=body["requestType"],
            state=DELIVERED,
            created=event.created if event else timezone.now(),
            catalog=catalog,
            resource=resource,
        )
        # No resourceRequests/{id} to read back: Location names the catalog's resource.
        location = f"{api_root(self.request)}/{BASE}/catalogs/{catalog.pk}/resources/{resource.pk}"
        return self.created(answer, location=location)

    def _add(self, catalog, data):
        origin_system = _string(data, "originSystem", "resource.originSystem")
        if origin_system not in OriginSystem.values:
            raise bad_request(
                f"resource.originSystem must be one of {', '.join(OriginSystem.values)}."
            )
        origin_id = _string(data, "originId", "resource.originId")
        user = self.request.user
        if origin_system == OriginSystem.DIRECTORY_ROLE:  # administrators only: ask first
            resource_add_check(actor=user, catalog=catalog, origin_system=origin_system)
        chosen = _origin_object(origin_system, origin_id)
        resource_add_check(actor=user, catalog=catalog, origin_system=origin_system, **chosen)
        draft = Resource(catalog=catalog, origin_system=origin_system, **chosen)
        if Resource.objects.filter(
            catalog=catalog, origin_system=origin_system, origin_id=resource_origin_id(draft)
        ).exists():
            raise conflict(
                f"This {OriginSystem(origin_system).label.lower()} is already in the "
                f"catalog {catalog.display_name}."
            )
        display_name = data.get("displayName")
        description = data.get("description")
        with transaction.atomic():
            resource = resource_add(
                actor=user,
                catalog=catalog,
                origin_system=origin_system,
                display_name=display_name if isinstance(display_name, str) else "",
                description=description if isinstance(description, str) else "",
                channel=Channel.API,
                **chosen,
            )
            event = _event_of(resource, "resource.added")
        return resource, event

    def _remove(self, catalog, data):
        resources = Resource.objects.restrict(self.request.user, "view").filter(catalog=catalog)
        if data.get("id") is not None:
            resource = self.find(resources, data["id"], what="resource in this catalog")
        else:
            origin_system = _string(data, "originSystem", "resource.originSystem (or resource.id)")
            origin_id = _string(data, "originId", "resource.originId (or resource.id)")
            resource = resources.filter(origin_system=origin_system, origin_id=origin_id).first()
            if resource is None:
                raise not_found("The catalog has no resource with this originId and originSystem.")
        require(self.request.user, "delete", resource, what="resources of this catalog")
        packages = sorted(
            set(
                ResourceRoleScope.objects.filter(role__resource=resource).values_list(
                    "access_package__display_name", flat=True
                )
            )
        )
        if packages:
            raise conflict(
                f"{resource.display_name} cannot be removed while access packages grant its "
                f"roles ({', '.join(packages[:10])}); remove the roles from them first."
            )
        removed = SimpleNamespace(**{k: getattr(resource, k) for k in _RESOURCE_ATTRS})
        with transaction.atomic():
            delete_config(self.request.user, resource)
            event = _event_of(resource, "resource.deleted")
        return removed, event


_RESOURCE_ATTRS = (
    "pk",
    "id",
    "display_name",
    "description",
    "origin_id",
    "origin_system",
    "created",
    "modified",
)


def _event_of(resource, action):
    """The audit event the service just wrote about ``resource``."""
    return (
        AuditEvent.objects.filter(
            object_type=Resource._meta.label, object_id=str(resource.pk), action=action
        )
        .order_by("-created")
        .first()
    )


def register(routers):
    router = routers["identityGovernance/entitlementManagement"]
    catalog = r"catalogs/(?P<catalog_id>[^/()]+)"
    router.register(f"{catalog}/resources", CatalogResourceViewSet, basename="catalog-resource")
    router.register(
        f"{catalog}/resourceRoles", CatalogResourceRoleViewSet, basename="catalog-resource-role"
    )
    router.register(
        f"{catalog}/resourceScopes", CatalogResourceScopeViewSet, basename="catalog-resource-scope"
    )
    router.register("resourceRequests", ResourceRequestViewSet, basename="resource-request")
