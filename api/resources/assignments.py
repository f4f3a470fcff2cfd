"""``/identityGovernance/entitlementManagement/assignments`` (accessPackageAssignment).

Read-only, as in Graph: assignments are made and ended through ``assignmentRequests``.
Administrators list the assignments of the catalogs they may see; anybody reads their own
(by id, or with ``filterByCurrentUser(on='target')``). ``reprocess`` retries a failed
delivery; ``additionalAccess`` lists who holds two packages at once (separation of duties).
"""

import uuid

from django.db.models import Exists, OuterRef
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    AllowedTargetScope,
    Assignment,
    AssignmentState,
    Channel,
)
from entitlements.services.delivery import assignment_reprocess

from ..graph.errors import bad_request
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet
from ..permissions import ENTITLEMENTS_READ, ENTITLEMENTS_WRITE, MY_ACCESS_READ
from .common import GraphDateTimeField
from .packages import PackageSerializer

# --------------------------------------------------------------------------------------
# Serializers shared with assignmentRequests
# --------------------------------------------------------------------------------------


class SubjectSerializer(GraphSerializer):
    """accessPackageSubject: the person an assignment or request is for, or who asked."""

    id = serializers.UUIDField(source="pk", read_only=True)
    objectId = serializers.CharField(source="pk", read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    email = serializers.CharField(read_only=True)
    principalName = serializers.CharField(source="email", read_only=True)
    subjectType = serializers.SerializerMethodField()

    def get_subjectType(self, user) -> str:
        return "user"


class AssignmentExpirationSerializer(InputSerializer):
    """expirationPattern of a schedule: an end date, or none."""

    open_type = "noExpiration"  # what ``type`` says when there is no end

    endDateTime = GraphDateTimeField(source="schedule_end", read_only=True, allow_null=True)
    duration = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()

    def get_duration(self, obj) -> str | None:
        return None

    def get_type(self, obj) -> str:
        return "afterDateTime" if obj.schedule_end else self.open_type


class AssignmentScheduleSerializer(InputSerializer):
    """entitlementManagementSchedule: when the access starts and ends."""

    startDateTime = GraphDateTimeField(source="schedule_start", read_only=True, allow_null=True)
    expiration = AssignmentExpirationSerializer(source="*", read_only=True)
    recurrence = serializers.SerializerMethodField()

    def get_recurrence(self, obj) -> dict | None:
        return None


class PolicyRefSerializer(GraphSerializer):
    """accessPackageAssignmentPolicy's own properties, as an assignment expands it (the whole
    policy, with its settings, is at assignmentPolicies/{id})."""

    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    description = serializers.CharField(read_only=True)
    allowedTargetScope = serializers.ChoiceField(
        source="allowed_target_scope", choices=AllowedTargetScope.choices, read_only=True
    )
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)


# Named as Graph names it: drf-spectacular strips a trailing "Request" from component names
# when it names enums, so "AssignmentRequest"'s state would otherwise share this one's enum.
@extend_schema_serializer(component_name="AccessPackageAssignment")
class AssignmentSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    state = serializers.ChoiceField(choices=AssignmentState.choices, read_only=True)
    status = serializers.CharField(read_only=True)
    schedule = AssignmentScheduleSerializer(source="*", read_only=True)
    expiredDateTime = GraphDateTimeField(source="expired_datetime", read_only=True, allow_null=True)
    customExtensionCalloutInstances = serializers.SerializerMethodField()

    expandable = {
        "target": Expand(SubjectSerializer, "target", select="target"),
        "accessPackage": Expand(PackageSerializer, "access_package", select="access_package"),
        "assignmentPolicy": Expand(
            PolicyRefSerializer, "assignment_policy", select="assignment_policy"
        ),
    }

    def get_customExtensionCalloutInstances(self, obj) -> list[dict]:
        return []


ASSIGNMENT_FILTER_FIELDS = {
    "id": "id",
    "state": "state",
    "status": "status",
    "expiredDateTime": "expired_datetime",
    "schedule/startDateTime": "schedule_start",
    "schedule/expiration/endDateTime": "schedule_end",
    "accessPackage/id": "access_package__id",
    "accessPackage/displayName": "access_package__display_name",
    "assignmentPolicy/id": "assignment_policy__id",
    "target/id": "target__id",
    "target/objectId": "target__id",
    "target/email": "target__email",
    "target/displayName": "target__display_name",
}


# --------------------------------------------------------------------------------------
# The resource
# --------------------------------------------------------------------------------------

ADDITIONAL_ACCESS = (
    r"additionalAccess\(accessPackageId='(?P<access_package_id>[^']*)',"
    r"incompatibleAccessPackageId='(?P<incompatible_access_package_id>[^']*)'\)"
)


def _uuid_argument(value, name):
    try:
        return uuid.UUID(value)
    except ValueError:
        raise bad_request(f"{name} must be the id of an access package (a GUID).") from None


class AssignmentViewSet(GraphViewSet):
    context = f"{BASE}/assignments"
    serializer_class = AssignmentSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    action_permissions = {
        "retrieve": MY_ACCESS_READ,
        "filter_by_current_user": MY_ACCESS_READ,
    }
    filter_fields = ASSIGNMENT_FILTER_FIELDS
    default_order = ("pk",)

    def visible(self):
        """The catalogs' assignments the caller may see; a single one also when it is the
        caller's own."""
        user = self.request.user
        rows = Assignment.objects.restrict(user, "view")
        if self.detail:
            rows = rows | Assignment.objects.restrict(user, "own")
        return rows

    @graph_schema(
        summary="The caller's own assignments",
        collection=AssignmentSerializer,
        on=("target",),
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"filterByCurrentUser\(on='(?P<on>[^']*)'\)",
        url_name="filter-by-current-user",
    )
    def filter_by_current_user(self, request, on):
        if on != "target":
            raise bad_request(f"filterByCurrentUser on '{on}' is not supported; use 'target'.")
        return self.collection(Assignment.objects.restrict(request.user, "own"))

    @graph_schema(
        summary="Assignments of people who also hold an incompatible package",
        collection=AssignmentSerializer,
        parameters=[
            OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)
            for name in ("access_package_id", "incompatible_access_package_id")
        ],
    )
    @action(detail=False, methods=["get"], url_path=ADDITIONAL_ACCESS, url_name="additional-access")
    def additional_access(self, request, access_package_id, incompatible_access_package_id):
        package = _uuid_argument(access_package_id, "accessPackageId")
        other = _uuid_argument(incompatible_access_package_id, "incompatibleAccessPackageId")
        if package == other:
            raise bad_request("accessPackageId and incompatibleAccessPackageId must differ.")
        user = request.user
        also_holds = Assignment.objects.restrict(user, "view").filter(
            access_package_id=other, state__in=OPEN_ASSIGNMENT_STATES, target=OuterRef("target")
        )
        rows = (
            Assignment.objects.restrict(user, "view")
            .filter(access_package_id=package, state__in=OPEN_ASSIGNMENT_STATES)
            .filter(Exists(also_holds))
        )
        return self.collection(rows)

    @graph_schema(summary="Deliver again what failed", status=202)
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        assignment = self.get_object()
        assignment_reprocess(actor=request.user, assignment=assignment, channel=Channel.API)
        return Response(status=status.HTTP_202_ACCEPTED)


def register(routers):
    routers[BASE].register("assignments", AssignmentViewSet, basename="assignment")
