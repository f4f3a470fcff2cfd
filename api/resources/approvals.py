"""``/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals`` (approval).

As in Graph, an approval's id is its request's id and its ``stages`` are the request's
approval stages (``RequestApprovalStage``). An approval is visible to the people resolved to
approve one of its stages (``restrict(user, "approve")``, never their own request) and to the
admins of its catalog (``restrict(user, "view")``); anyone else gets 404. A visible approval
shows all its stages, so the approver of a second stage sees the first one's decision, as in
My Access. A decision is ``PATCH .../stages/{id}``, recorded by ``approvals.services.stage_decide``
through the API channel, which refuses the wrong person, a closed stage and one's own request.
"""

from django.db.models import Exists, OuterRef, Prefetch, Q
from rest_framework import serializers
from rest_framework.decorators import action

from approvals.models import OPEN_STAGE_STATUSES, RequestApprovalStage, ReviewResult, StageStatus
from approvals.selectors import pending_stages_for
from approvals.services import stage_decide
from entitlements.models import AssignmentRequest, Channel

from ..graph.errors import bad_request
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet
from ..permissions import MY_ACCESS, MY_ACCESS_READ
from .common import GraphDateTimeField
from .directory import identity

# Graph's approvalStage status: InProgress, Initializing, Completed, Expired.
STAGE_STATUS = {
    StageStatus.NOT_STARTED: "Initializing",
    StageStatus.IN_PROGRESS: "InProgress",
    StageStatus.ESCALATED: "InProgress",
    StageStatus.COMPLETED: "Completed",
    StageStatus.EXPIRED: "Expired",
    StageStatus.CANCELED: "Completed",  # closed undecided (request canceled or denied)
}
# What a PATCH may say (Graph: Approve, Deny) -> the stored result.
DECISIONS = {"Approve": ReviewResult.APPROVED, "Deny": ReviewResult.DENIED}


class ApprovalStageSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.SerializerMethodField()
    reviewedBy = serializers.SerializerMethodField()
    reviewedDateTime = GraphDateTimeField(
        source="reviewed_datetime", read_only=True, allow_null=True
    )
    reviewResult = serializers.CharField(source="review_result", read_only=True)
    justification = serializers.CharField(read_only=True)
    assignedToMe = serializers.BooleanField(source="assigned_to_me", read_only=True)
    status = serializers.SerializerMethodField()

    def get_displayName(self, stage) -> str | None:  # noqa: N802 - Graph's name
        return None  # a policy's stages carry no label of their own

    def get_reviewedBy(self, stage) -> dict:  # noqa: N802
        return identity(stage.reviewed_by)

    def get_status(self, stage) -> str:
        return STAGE_STATUS[stage.status]


class ApprovalSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    stages = ApprovalStageSerializer(many=True, read_only=True, source="approval_stages")

    # The stages are always there (prefetched by the view for the caller); ``$expand=stages``,
    # which Graph scripts send, is accepted and may $select within them.
    expandable = {
        "stages": Expand(serializer=ApprovalStageSerializer, source="approval_stages", many=True)
    }


class StageDecisionSerializer(InputSerializer):
    reviewResult = serializers.ChoiceField(choices=list(DECISIONS))
    justification = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, default="", max_length=4000
    )
    approvedEndDateTime = GraphDateTimeField(
        required=False,
        allow_null=True,
        help_text="Product extension: approve until this earlier end than the request asks "
        "for, where the policy's stage lets approvers shorten the access.",
    )


def stages_for(user):
    """Stage rows as the API shows them: who decided, and whether they are ``user``'s to
    review: a closed stage they were asked to approve, or an open one still waiting for their
    decision (not a quorum stage they, or their approver or delegate, already approved)."""
    mine = (
        RequestApprovalStage.objects.restrict(user, "approve")
        .filter(pk=OuterRef("pk"))
        .filter(
            ~Q(status__in=OPEN_STAGE_STATUSES)
            | Q(pk__in=pending_stages_for(user=user).values("pk"))
        )
    )
    return (
        RequestApprovalStage.objects.select_related("reviewed_by")
        .annotate(assigned_to_me=Exists(mine))
        .order_by("sequence")
    )


def visible_approvals(user, *, approver_only=False):
    """The requests whose approval ``user`` may see: as one of its approvers, or (unless
    ``approver_only``) as an admin of its catalog."""
    condition = Q(
        pk__in=RequestApprovalStage.objects.restrict(user, "approve").values("request_id")
    )
    if not approver_only:
        condition |= Q(
            pk__in=RequestApprovalStage.objects.restrict(user, "view").values("request_id")
        )
    return AssignmentRequest.objects.filter(condition)


class ApprovalViewSet(GraphViewSet):
    context = f"{BASE}/accessPackageAssignmentApprovals"
    serializer_class = ApprovalSerializer
    read_permissions = MY_ACCESS_READ
    write_permissions = MY_ACCESS
    filter_fields = {"id": "id"}
    default_order = ("-created",)

    def visible(self, **kwargs):
        return visible_approvals(self.request.user, **kwargs).prefetch_related(
            Prefetch("approval_stages", queryset=stages_for(self.request.user))
        )

    @graph_schema(collection=ApprovalSerializer, on=("approver",))
    @action(
        detail=False,
        url_path=r"filterByCurrentUser\(on='(?P<on>[A-Za-z]+)'\)",
        url_name="filter-by-current-user",
    )
    def filter_by_current_user(self, request, on=None):
        """The approvals the caller is an approver of, decided or not."""
        if on != "approver":
            raise bad_request("filterByCurrentUser on approvals supports on='approver' only.")
        return self.collection(self.visible(approver_only=True))


class ApprovalStageViewSet(GraphViewSet):
    serializer_class = ApprovalStageSerializer
    read_permissions = MY_ACCESS_READ
    write_permissions = MY_ACCESS
    filter_fields = {"id": "id", "reviewResult": "review_result"}
    default_order = ("sequence",)
    http_method_names = ["get", "patch", "head", "options"]

    @property
    def context(self):
        return f"{BASE}/accessPackageAssignmentApprovals('{self.kwargs['approval_id']}')/stages"

    def approval(self):
        return self.find(
            visible_approvals(self.request.user), self.kwargs["approval_id"], what="approval"
        )

    def visible(self):
        return stages_for(self.request.user).filter(request=self.approval())

    def list(self, request, *args, **kwargs):
        return self.collection(self.visible())

    @graph_schema(request=StageDecisionSerializer)
    def partial_update(self, request, *args, **kwargs):
        stage = self.get_object()
        values = self.body(StageDecisionSerializer)
        stage_decide(
            actor=request.user,
            stage=stage,
            decision=DECISIONS[values["reviewResult"]],
            justification=values.get("justification") or "",
            channel=Channel.API,
            approved_end=values.get("approvedEndDateTime"),
        )
        return self.no_content()


def register(routers):
    router = routers["identityGovernance/entitlementManagement"]
    router.register("accessPackageAssignmentApprovals", ApprovalViewSet, basename="approval")
    router.register(
        r"accessPackageAssignmentApprovals/(?P<approval_id>[^/()]+)/stages",
        ApprovalStageViewSet,
        basename="approval-stage",
    )
