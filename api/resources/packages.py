"""``/identityGovernance/entitlementManagement/accessPackages`` (accessPackage) and what hangs
off a package: ``resourceRoleScopes``, ``assignmentPolicies``, ``incompatibleAccessPackages``,
``incompatibleGroups`` (with ``$ref``), ``accessPackagesIncompatibleWith``,
``filterByCurrentUser(on='allowedRequestor')`` and ``getApplicablePolicyRequirements``; and
``catalogs/{id}/accessPackages``.

Reads go through ``restrict`` (the admin's ``view``), except the two requestor functions,
which answer from the selectors My Access uses: ``filterByCurrentUser`` lists what My Access
lists (``requestable_packages``) and ``getApplicablePolicyRequirements`` answers for any
package, hidden or not, as My Access opens any package by its link (``eligibility``). Writes
go through the audited configuration services and ``package_role_add`` / ``_remove``.
"""

import re

from django.db.models import Prefetch
from django.utils.duration import duration_iso_string
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from directory.models import Group
from entitlements import selectors
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    AccessPackage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Catalog,
    Channel,
    Question,
    Resource,
    ResourceRole,
    ResourceRoleScope,
)
from entitlements.services.packages import package_role_add, package_role_remove

from ..graph.errors import bad_request, conflict, not_found
from ..graph.schema import collection_of, graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet
from ..permissions import ENTITLEMENTS_READ, ENTITLEMENTS_WRITE, MY_ACCESS_READ
from .catalog_resources import (
    CatalogChildMixin,
    ResourceReference,
    ResourceRoleSerializer,
    ResourceScopeSerializer,
    optional_text,
)
from .catalogs import CatalogSerializer
from .common import GraphDateTimeField, delete_config, require, save_config
from .directory import GroupSerializer
from .policies import PolicySerializer, PolicyViewSet
from .policy_serializers import QuestionSerializer

# --------------------------------------------------------------------------------------
# Serializers
# --------------------------------------------------------------------------------------


class RoleScopeSerializer(GraphSerializer):
    """accessPackageResourceRoleScope: a resource role a package grants, at the root scope."""

    id = serializers.UUIDField(read_only=True)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)

    expandable = {
        "role": Expand(ResourceRoleSerializer, source="role", select="role"),
        "scope": Expand(ResourceScopeSerializer, source="role.resource", select="role__resource"),
    }


def visible_policies(request):
    """The policies the caller sees, with what the policy serializer reads prefetched."""
    view = PolicyViewSet()
    view.request = request
    return view.visible()


class PackageSerializer(GraphSerializer):
    """accessPackage's own properties (also what a POST or PATCH may set)."""

    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", max_length=256)
    description = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, default=""
    )
    isHidden = serializers.BooleanField(source="is_hidden", required=False, default=False)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)

    def validate_description(self, value):
        return value or ""


class IdReference(InputSerializer):
    id = serializers.CharField()


class PackageBody(PackageSerializer):
    """A POST: the package's properties and its catalog, ``catalog: {id}`` as Graph's SDK
    binds it (or ``catalogId``)."""

    catalog = IdReference(required=False)
    catalogId = serializers.CharField(required=False)


class RefBody(InputSerializer):
    """``{"@odata.id": "<URL of the object>"}``."""

    def get_fields(self):
        return {"@odata.id": serializers.CharField()}


class AccessPackageSerializer(PackageSerializer):
    """accessPackage with its navigation properties. The incompatible packages are expanded
    and the policies to those the caller may see: the view makes a subclass per request
    (``for_request``)."""

    expandable = {
        "catalog": Expand(CatalogSerializer, source="catalog", select="catalog"),
        "resourceRoleScopes": Expand(
            RoleScopeSerializer,
            source="resource_role_scopes",
            many=True,
            prefetch="resource_role_scopes",
        ),
        "assignmentPolicies": Expand(PolicySerializer, source="none", many=True),
        "incompatibleGroups": Expand(
            GroupSerializer,
            source="incompatible_groups",
            many=True,
            prefetch="incompatible_groups",
        ),
        "incompatibleAccessPackages": Expand(PackageSerializer, source="none", many=True),
        "accessPackagesIncompatibleWith": Expand(PackageSerializer, source="none", many=True),
    }

    @classmethod
    def for_request(cls, request):
        visible = AccessPackage.objects.restrict(request.user, "view")
        expandable = dict(cls.expandable)
        expandable["assignmentPolicies"] = Expand(
            PolicySerializer,
            source="visible_assignment_policies",
            many=True,
            prefetch=Prefetch(
                "assignment_policies",
                queryset=visible_policies(request),
                to_attr="visible_assignment_policies",
            ),
        )
        for name, relation in (
            ("incompatibleAccessPackages", "incompatible_access_packages"),
            ("accessPackagesIncompatibleWith", "access_packages_incompatible_with"),
        ):
            expandable[name] = Expand(
                PackageSerializer,
                source=f"visible_{relation}",
                many=True,
                prefetch=Prefetch(relation, queryset=visible, to_attr=f"visible_{relation}"),
            )
        return type(cls.__name__, (cls,), {"expandable": expandable})


def _schedule(policy):
    """entitlementManagementSchedule of what a request under ``policy`` gets by default."""
    duration = None
    if policy.expiration_type == "afterDuration" and policy.expiration_duration:
        duration = duration_iso_string(policy.expiration_duration)
    end = policy.expiration_end_datetime if policy.expiration_type == "afterDateTime" else None
    return {
        "startDateTime": None,
        "expiration": {
            "type": policy.expiration_type,
            "duration": duration,
            "endDateTime": GraphDateTimeField().to_representation(end),
        },
        "recurrence": None,
    }


class RequirementsSerializer(InputSerializer):
    """accessPackageAssignmentRequestRequirements: what the request form of one policy asks."""

    policyId = serializers.CharField(source="pk")
    policyDisplayName = serializers.CharField(source="display_name")
    policyDescription = serializers.CharField(source="description")
    isApprovalRequiredForAdd = serializers.BooleanField(source="is_approval_required_for_add")
    isApprovalRequiredForUpdate = serializers.BooleanField(source="is_approval_required_for_update")
    isRequestorJustificationRequired = serializers.BooleanField(
        source="is_requestor_justification_required"
    )
    allowCustomAssignmentSchedule = serializers.BooleanField(
        source="allow_custom_assignment_schedule"
    )
    questions = QuestionSerializer(many=True, source="questions.all")
    schedule = serializers.SerializerMethodField()

    def get_schedule(self, policy) -> dict:
        return _schedule(policy)

    def to_representation(self, policy):
        data = super().to_representation(policy)
        return {
            "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestRequirements",
            **data,
        }


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------

PACKAGE_FILTERS = {
    "id": "id",
    "displayName": "display_name",
    "description": "description",
    "isHidden": "is_hidden",
    "createdDateTime": "created",
    "modifiedDateTime": "modified",
    "catalog/id": "catalog__id",
    "catalog/displayName": "catalog__display_name",
}


class PackageListMixin:
    """What every list of packages shares: the shape, the filters and ``$search``."""

    serializer_class = AccessPackageSerializer
    filter_fields = PACKAGE_FILTERS
    default_order = ("display_name",)

    def get_serializer_class(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI: one class, one component
            return AccessPackageSerializer
        if not hasattr(self, "_serializer_class"):
            self._serializer_class = AccessPackageSerializer.for_request(self.request)
        return self._serializer_class

    def search(self, queryset, text):
        text = text.strip().strip('"').strip()
        if text.lower().startswith("displayname:"):
            return queryset.filter(display_name__icontains=text.split(":", 1)[1].strip())
        return queryset.filter(display_name__icontains=text) | queryset.filter(
            description__icontains=text
        )


def _ref_id(request, collection):
    """The id in ``{"@odata.id": ".../{collection}/{id}"}`` (or ``{collection}('{id}')``)."""
    data = request.data if isinstance(request.data, dict) else {}
    value = data.get("@odata.id")
    if not isinstance(value, str):
        raise bad_request('The body must be {"@odata.id": "<URL of the object>"}.')
    match = re.search(rf"{collection}(?:/|\(')([^/()'?#]+)'?\)?/?$", value.strip())
    if match is None:
        raise bad_request(f"@odata.id must name one of {collection}: '.../{collection}/{{id}}'.")
    return match.group(1)


def _body_id(value, what):
    """The id of an object bound in a body as ``{"id": ...}``."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise bad_request(f"{what}.id is required.")
    return value


class AccessPackageViewSet(PackageListMixin, GraphViewSet):
    context = f"{BASE}/accessPackages"
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    action_permissions = {
        "filter_by_current_user": MY_ACCESS_READ,
        "applicable_policy_requirements": MY_ACCESS_READ,
    }

    def visible(self):
        return AccessPackage.objects.restrict(self.request.user, "view")

    @graph_schema(request=PackageBody, response=AccessPackageSerializer, status=201)
    def create(self, request):
        values = self.body(PackageBody)
        catalog_ref = values.pop("catalog", None) or values.pop("catalogId", None)
        values.pop("catalogId", None)
        catalog = self.find(
            Catalog.objects.restrict(request.user, "view"),
            _body_id(catalog_ref, "catalog"),
            what="catalog",
        )
        package = AccessPackage(catalog=catalog, **values)
        require(
            request.user,
            "add",
            package,
            what=f"access packages in the catalog {catalog.display_name}",
        )
        save_config(request.user, package, serializer_class=PackageBody)
        return self.created(package)

    @graph_schema(request=PackageBody)
    def partial_update(self, request, pk=None):
        package = self.get_object()
        require(request.user, "change", package, what="this access package")
        values = self.body(PackageBody, partial=True)
        catalog_ref = values.pop("catalog", None) or values.pop("catalogId", None)
        values.pop("catalogId", None)
        if catalog_ref is not None and _body_id(catalog_ref, "catalog") != str(package.catalog_id):
            raise bad_request(
                "catalog: an access package stays in its catalog; create a new package in the "
                "other catalog instead."
            )
        for name, value in values.items():
            setattr(package, name, value)
        save_config(request.user, package, serializer_class=PackageBody)
        return self.updated(package)

    def destroy(self, request, pk=None):
        package = self.get_object()
        require(request.user, "delete", package, what="this access package")
        open_count = Assignment.objects.filter(
            access_package=package, state__in=OPEN_ASSIGNMENT_STATES
        ).count()
        if open_count:
            raise conflict(
                f"{package.display_name} has {open_count} open assignment(s); remove them "
                "before deleting the access package."
            )
        if (
            AssignmentRequest.objects.filter(access_package=package).exists()
            or Assignment.objects.filter(access_package=package).exists()
        ):
            raise conflict(
                f"{package.display_name} cannot be deleted: its requests and assignments are "
                "kept in its history. Hide it (isHidden) so that nobody requests it any more."
            )
        delete_config(request.user, package)
        return self.no_content()

    # ---- requestor functions -------------------------------------------------------------

    @graph_schema(collection=AccessPackageSerializer, on=("allowedRequestor",))
    @action(
        detail=False,
        methods=["get"],
        url_path=r"filterByCurrentUser\(on='(?P<on>[A-Za-z]+)'\)",
        url_name="filter-by-current-user",
    )
    def filter_by_current_user(self, request, on=None):
        if on != "allowedRequestor":
            raise bad_request("accessPackages/filterByCurrentUser supports on='allowedRequestor'.")
        return self.collection(selectors.requestable_packages(user=request.user))

    @extend_schema(request=None, responses={200: collection_of(RequirementsSerializer)})
    @action(
        detail=True,
        methods=["post"],
        url_path="getApplicablePolicyRequirements",
        url_name="applicable-policy-requirements",
    )
    def applicable_policy_requirements(self, request, pk=None):
        package = self.find(AccessPackage.objects.select_related("catalog"), pk)
        result = selectors.eligibility(user=request.user, access_package=package)
        policies = (
            AssignmentPolicy.objects.filter(pk__in=[p.pk for p in result.policies])
            .prefetch_related(
                Prefetch(
                    "questions",
                    queryset=Question.objects.order_by("sequence", "pk").prefetch_related(
                        "localizations", "choices"
                    ),
                )
            )
            .order_by("display_name", "pk")
        )
        context = "Collection(microsoft.graph.accessPackageAssignmentRequestRequirements)"
        return self._plain_collection(RequirementsSerializer(policies, many=True).data, context)

    def _plain_collection(self, rows, context):
        return Response({"@odata.context": self.context_url(context), "value": rows})

    # ---- lists under a package -------------------------------------------------------------

    @graph_schema(collection=PolicySerializer)
    @action(detail=True, methods=["get"], url_path="assignmentPolicies")
    def assignment_policies(self, request, pk=None):
        package = self.get_object()
        return self.collection(
            visible_policies(request).filter(access_package=package),
            serializer_class=PolicySerializer,
            context=f"{BASE}/accessPackages('{package.pk}')/assignmentPolicies",
            filter_fields={"id": "id", "displayName": "display_name"},
            default_order=("display_name",),
        )

    def _packages_list(self, package, relation, segment):
        return self.collection(
            getattr(package, relation).restrict(self.request.user, "view"),
            context=f"{BASE}/accessPackages('{package.pk}')/{segment}",
        )

    @graph_schema(collection=AccessPackageSerializer)
    @action(detail=True, methods=["get"], url_path="incompatibleAccessPackages")
    def incompatible_access_packages(self, request, pk=None):
        package = self.get_object()
        return self._packages_list(
            package, "incompatible_access_packages", "incompatibleAccessPackages"
        )

    @graph_schema(collection=AccessPackageSerializer)
    @action(detail=True, methods=["get"], url_path="accessPackagesIncompatibleWith")
    def access_packages_incompatible_with(self, request, pk=None):
        package = self.get_object()
        return self._packages_list(
            package, "access_packages_incompatible_with", "accessPackagesIncompatibleWith"
        )

    @graph_schema(collection=GroupSerializer)
    @action(detail=True, methods=["get"], url_path="incompatibleGroups")
    def incompatible_groups(self, request, pk=None):
        package = self.get_object()
        return self.collection(
            package.incompatible_groups.all(),
            serializer_class=GroupSerializer,
            context=f"{BASE}/accessPackages('{package.pk}')/incompatibleGroups",
            filter_fields={"id": "id", "displayName": "display_name"},
            default_order=("display_name",),
        )

    # ---- $ref: separation of duties ---------------------------------------------------------

    def _change_incompatible(self, field, obj, *, add):
        package = self.get_object()
        require(self.request.user, "change", package, what="this access package")
        current = list(getattr(package, field).all())
        if add and obj in current:
            raise conflict(f"{package.display_name} is already incompatible with {obj}.")
        if not add and obj not in current:
            raise not_found(f"{package.display_name} is not incompatible with {obj}.")
        rows = [*current, obj] if add else [row for row in current if row != obj]
        save_config(self.request.user, package, m2m={field: rows})
        return self.no_content()

    @graph_schema(request=RefBody, status=204)
    @action(
        detail=True,
        methods=["post"],
        url_path=r"incompatibleAccessPackages/\$ref",
        url_name="incompatible-access-packages-ref",
    )
    def add_incompatible_access_package(self, request, pk=None):
        other = self.find(self.visible(), _ref_id(request, "accessPackages"), what="access package")
        if str(other.pk) == str(pk):
            raise bad_request("An access package cannot be incompatible with itself.")
        return self._change_incompatible("incompatible_access_packages", other, add=True)

    @graph_schema(status=204)
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"incompatibleAccessPackages/(?P<other_id>[^/()]+)/\$ref",
        url_name="incompatible-access-package-ref",
    )
    def remove_incompatible_access_package(self, request, pk=None, other_id=None):
        other = self.find(self.visible(), other_id, what="access package")
        return self._change_incompatible("incompatible_access_packages", other, add=False)

    @graph_schema(request=RefBody, status=204)
    @action(
        detail=True,
        methods=["post"],
        url_path=r"incompatibleGroups/\$ref",
        url_name="incompatible-groups-ref",
    )
    def add_incompatible_group(self, request, pk=None):
        group = self.find(Group.objects.all(), _ref_id(request, "groups"), what="group")
        return self._change_incompatible("incompatible_groups", group, add=True)

    @graph_schema(status=204)
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"incompatibleGroups/(?P<group_id>[^/()]+)/\$ref",
        url_name="incompatible-group-ref",
    )
    def remove_incompatible_group(self, request, pk=None, group_id=None):
        group = self.find(Group.objects.all(), group_id, what="group")
        return self._change_incompatible("incompatible_groups", group, add=False)


class CatalogPackageViewSet(CatalogChildMixin, PackageListMixin, GraphViewSet):
    """``catalogs/{id}/accessPackages``: the catalog's packages the caller may see."""

    segment = "accessPackages"

    def visible(self):
        catalog = self.catalog()
        return AccessPackage.objects.restrict(self.request.user, "view").filter(catalog=catalog)


# --------------------------------------------------------------------------------------
# accessPackages/{id}/resourceRoleScopes
# --------------------------------------------------------------------------------------


def _role_named(roles, data):
    """The resource role a POST names: by ``id``, or by ``originId`` within
    ``resource`` (by id, or by originId and originSystem). Entra's group role origin ids
    (``Member_<group id>``) are accepted too."""
    if data.get("id"):
        return GraphViewSet.find(roles, data["id"], what="resource role")
    origin_id = data.get("originId")
    resource_ref = data.get("resource")
    if not isinstance(origin_id, str) or not origin_id or not isinstance(resource_ref, dict):
        raise bad_request("role needs its id, or its originId and resource {id}.")
    resources = Resource.objects.filter(pk__in=roles.values("resource_id"))
    if resource_ref.get("id"):
        resource = GraphViewSet.find(resources, resource_ref["id"], what="resource")
    else:
        resource = resources.filter(
            origin_id=resource_ref.get("originId") or "",
            origin_system=resource_ref.get("originSystem") or "",
        ).first()
        if resource is None:
            raise not_found("No resource has this originId and originSystem.")
    for role in roles.filter(resource=resource):
        if origin_id in (role.origin_id, f"{role.origin_id}_{resource.origin_id}"):
            return role
    raise not_found(f"{resource.display_name} has no role with the originId '{origin_id[:100]}'.")


def _check_scope(role, data):
    """A resource has one scope, its root: refuse a body that names another."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise bad_request("scope must be an object.")
    resource = role.resource
    if data.get("id") and str(data["id"]) != str(resource.pk):
        raise bad_request(f"scope.id must be the root scope of {resource.display_name}.")
    if data.get("originId") and data["originId"] != resource.origin_id:
        raise bad_request(
            f"{resource.display_name} has only its root scope, whose originId is "
            f"'{resource.origin_id}'."
        )
    if data.get("isRootScope") is False:
        raise bad_request(f"{resource.display_name} has only its root scope.")


class RoleReference(InputSerializer):
    id = optional_text()
    displayName = optional_text()
    description = optional_text()
    originId = optional_text()
    originSystem = optional_text()
    resource = ResourceReference(required=False)


class ScopeReference(InputSerializer):
    id = optional_text()
    displayName = optional_text()
    description = optional_text()
    originId = optional_text()
    originSystem = optional_text()
    isRootScope = serializers.BooleanField(required=False, allow_null=True)


class RoleScopeBody(InputSerializer):
    """A POST: the role (by id, or by originId within its resource) and, optionally, the
    scope, which can only be the resource's root."""

    role = RoleReference()
    scope = ScopeReference(required=False, allow_null=True)


class PackageRoleScopeViewSet(GraphViewSet):
    serializer_class = RoleScopeSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    filter_fields = {
        "id": "id",
        "createdDateTime": "created",
        "role/id": "role__id",
        "role/originId": "role__origin_id",
        "role/displayName": "role__display_name",
        "role/resource/id": "role__resource__id",
        "scope/id": "role__resource__id",
        "scope/originId": "role__resource__origin_id",
    }
    default_order = ("created",)

    @property
    def context(self):
        return f"{BASE}/accessPackages('{self.kwargs.get('package_id', '')}')/resourceRoleScopes"

    def package(self):
        if not hasattr(self, "_package"):
            self._package = self.find(
                AccessPackage.objects.restrict(self.request.user, "view").select_related("catalog"),
                self.kwargs.get("package_id"),
                what="access package",
            )
        return self._package

    def visible(self):
        package = self.package()
        return ResourceRoleScope.objects.restrict(self.request.user, "view").filter(
            access_package=package
        )

    @graph_schema(request=RoleScopeBody, response=RoleScopeSerializer, status=201)
    def create(self, request, package_id=None):
        package = self.package()
        require(request.user, "change", package, what="this access package")
        body = self.body(RoleScopeBody)
        roles = ResourceRole.objects.restrict(request.user, "view").select_related("resource")
        role = _role_named(roles, body["role"])
        _check_scope(role, body.get("scope"))
        scope = package_role_add(
            actor=request.user, access_package=package, role=role, channel=Channel.API
        )
        return self.created(scope)

    def destroy(self, request, package_id=None, pk=None):
        package = self.package()
        scope = self.get_object(self.visible().select_related("role__resource"))
        require(request.user, "change", package, what="this access package")
        package_role_remove(
            actor=request.user, access_package=package, role=scope.role, channel=Channel.API
        )
        return self.no_content()


def register(routers):
    router = routers["identityGovernance/entitlementManagement"]
    router.register(
        r"accessPackages/(?P<package_id>[^/()]+)/resourceRoleScopes",
        PackageRoleScopeViewSet,
        basename="access-package-role-scope",
    )
    router.register("accessPackages", AccessPackageViewSet, basename="access-package")
    router.register(
        r"catalogs/(?P<catalog_id>[^/()]+)/accessPackages",
        CatalogPackageViewSet,
        basename="catalog-access-package",
    )
