"""``/identityGovernance/accessReviews/definitions``: the access reviews of access package
assignments, as Graph's accessReviewScheduleDefinition, accessReviewInstance and
accessReviewInstanceDecisionItem.

The mapping: a **definition** is an assignment policy whose review settings are on (or that
has run reviews): its id is the policy's id and its settings are the policy's review
settings. An **instance** is one ``ReviewInstance`` (one run of that policy's recurring
review). A **decision** is one ``ReviewItem`` (one assignment to approve or deny).

Who sees what: the admins of the package's catalog see the definitions, instances and
decisions (``restrict(user, "view")``); a reviewer sees the definitions and instances in
which they review something, and the decisions they review (``restrict(user, "review")``).
Anything else is 404. Writes go to ``reviews.services`` through the API channel: a decision
(``review_item_decide``), accepting the recommendations (``review_accept_recommendations``,
offered, as in My Access, only to someone who reviews items of the instance), stopping
(``review_instance_stop``) and applying (``review_instance_apply``); the services refuse the
wrong person and a review that has ended.
"""

from django.db.models import Exists, OuterRef, Prefetch, Q
from django.utils import timezone
from rest_framework import serializers
from rest_framework.decorators import action

from entitlements.models import (
    AssignmentPolicy,
    Channel,
    PolicySubjectSet,
    ReviewExpirationBehavior,
    ReviewRecurrence,
    SubjectType,
)
from reviews.models import REVIEWER_DECISIONS, ApplyResult, ReviewInstance, ReviewItem
from reviews.services import (
    review_accept_recommendations,
    review_instance_apply,
    review_instance_stop,
    review_item_decide,
)

from ..graph.errors import bad_request, forbidden
from ..graph.schema import graph_schema
from ..graph.serializers import GraphSerializer, InputSerializer
from ..graph.views import GraphViewSet, api_root
from ..permissions import REVIEWS_READ, REVIEWS_WRITE
from .common import GraphDateTimeField
from .directory import identity

BASE = "identityGovernance/accessReviews/definitions"
Purpose = PolicySubjectSet.Purpose

# Graph's patternedRecurrence for each review frequency: (pattern type, interval).
RECURRENCE = {
    ReviewRecurrence.WEEKLY: ("weekly", 1),
    ReviewRecurrence.MONTHLY: ("absoluteMonthly", 1),
    ReviewRecurrence.QUARTERLY: ("absoluteMonthly", 3),
    ReviewRecurrence.SEMI_ANNUALLY: ("absoluteMonthly", 6),
    ReviewRecurrence.ANNUALLY: ("absoluteYearly", 1),
}
# Graph's defaultDecision: what happens to access nobody reviewed.
DEFAULT_DECISION = {
    ReviewExpirationBehavior.KEEP_ACCESS: "Approve",
    ReviewExpirationBehavior.REMOVE_ACCESS: "Deny",
    ReviewExpirationBehavior.ACCEPT_ACCESS_RECOMMENDATION: "Recommendation",
}
# Graph's applyResult values.
APPLY_RESULT = {
    ApplyResult.NEW: "New",
    ApplyResult.REMOVED: "AppliedSuccessfully",
    ApplyResult.KEPT: "AppliedSuccessfully",
    ApplyResult.ALREADY_ENDED: "AppliedSuccessfullyButObjectNotFound",
}

# --------------------------------------------------------------------------------------
# Visibility: admins of the catalog, or reviewers of something in it
# --------------------------------------------------------------------------------------


def reviewed_items(user):
    return ReviewItem.objects.restrict(user, "review")


def visible_items(user):
    return ReviewItem.objects.filter(
        Q(pk__in=ReviewItem.objects.restrict(user, "view").values("pk"))
        | Q(pk__in=reviewed_items(user).values("pk"))
    )


def visible_instances(user):
    return ReviewInstance.objects.filter(
        Q(pk__in=ReviewInstance.objects.restrict(user, "view").values("pk"))
        | Q(pk__in=reviewed_items(user).values("instance_id"))
    )


def visible_definitions(user, *, reviewer_only=False):
    reviewed = Q(pk__in=reviewed_items(user).values("instance__policy_id"))
    if reviewer_only:
        return AssignmentPolicy.objects.filter(reviewed)
    has_run = Exists(ReviewInstance.objects.filter(policy=OuterRef("pk")))
    administered = AssignmentPolicy.objects.restrict(user, "view").filter(
        Q(review_is_enabled=True) | Q(has_run)
    )
    return AssignmentPolicy.objects.filter(Q(pk__in=administered.values("pk")) | reviewed)


# --------------------------------------------------------------------------------------
# Serializers
# --------------------------------------------------------------------------------------


def _scope(policy):
    """The assignments a review covers, as Graph writes an access package review's scope."""
    return {
        "@odata.type": "#microsoft.graph.accessReviewQueryScope",
        "query": "/identityGovernance/entitlementManagement/accessPackageAssignments"
        f"?$filter=(accessPackageId eq '{policy.access_package_id}' "
        f"and assignmentPolicyId eq '{policy.pk}')",
        "queryType": "MicrosoftGraph",
        "queryRoot": None,
    }


def _reviewer_scope(subject):
    if subject.subject_type == SubjectType.SINGLE_USER:
        query, root = f"/users/{subject.user_id}", None
    elif subject.subject_type == SubjectType.GROUP_MEMBERS:
        query, root = f"/groups/{subject.group_id}/transitiveMembers", None
    else:  # the manager of the person under review
        query, root = "./manager", "decisions"
    return {
        "@odata.type": "#microsoft.graph.accessReviewReviewerScope",
        "query": query,
        "queryType": "MicrosoftGraph",
        "queryRoot": root,
    }


def _reviewers(policy, purpose):
    """Self-review has no reviewers, as in Graph: the people under review decide."""
    if purpose == Purpose.PRIMARY_REVIEWER and policy.review_is_self_review:
        return []
    return [_reviewer_scope(s) for s in policy.reviewer_sets if s.purpose == purpose]


def _reviewer_sets(path="subject_sets"):
    return Prefetch(
        path,
        queryset=PolicySubjectSet.objects.filter(
            purpose__in=[Purpose.PRIMARY_REVIEWER, Purpose.FALLBACK_REVIEWER]
        ).order_by("created", "pk"),
        to_attr="reviewer_sets",
    )


class DefinitionSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.SerializerMethodField()
    descriptionForAdmins = serializers.CharField(source="description", read_only=True)
    descriptionForReviewers = serializers.CharField(source="description", read_only=True)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    lastModifiedDateTime = GraphDateTimeField(source="modified", read_only=True)
    status = serializers.SerializerMethodField()
    scope = serializers.SerializerMethodField()
    reviewers = serializers.SerializerMethodField()
    fallbackReviewers = serializers.SerializerMethodField()
    settings = serializers.SerializerMethodField()

    def get_displayName(self, policy) -> str:  # noqa: N802 - Graph's name
        return f"{policy.access_package.display_name}: {policy.display_name}"

    def get_status(self, policy) -> str:
        if not policy.review_is_enabled:
            return "Completed"
        start = policy.review_start_date
        return "NotStarted" if start and start > timezone.localdate() else "InProgress"

    def get_scope(self, policy) -> dict:
        return _scope(policy)

    def get_reviewers(self, policy) -> list[dict]:
        return _reviewers(policy, Purpose.PRIMARY_REVIEWER)

    def get_fallbackReviewers(self, policy) -> list[dict]:  # noqa: N802
        return _reviewers(policy, Purpose.FALLBACK_REVIEWER)

    def get_settings(self, policy) -> dict:
        pattern, interval = RECURRENCE[policy.review_recurrence]
        start = policy.review_start_date
        return {
            "mailNotificationsEnabled": not policy.is_assignment_notification_disabled,
            "reminderNotificationsEnabled": True,
            "justificationRequiredOnApproval": policy.review_is_reviewer_justification_required,
            "defaultDecisionEnabled": policy.review_expiration_behavior
            != ReviewExpirationBehavior.KEEP_ACCESS,
            "defaultDecision": DEFAULT_DECISION[policy.review_expiration_behavior],
            "instanceDurationInDays": policy.review_duration_in_days,
            "autoApplyDecisionsEnabled": policy.review_is_auto_apply_enabled,
            "recommendationsEnabled": policy.review_is_recommendation_enabled,
            "recurrence": {
                "pattern": {"type": pattern, "interval": interval},
                "range": {
                    "type": "noEnd",
                    "startDate": start.isoformat() if start else None,
                },
            },
        }


class InstanceSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    startDateTime = GraphDateTimeField(source="start", read_only=True)
    endDateTime = GraphDateTimeField(source="end", read_only=True)
    status = serializers.CharField(read_only=True)
    scope = serializers.SerializerMethodField()
    reviewers = serializers.SerializerMethodField()
    fallbackReviewers = serializers.SerializerMethodField()

    def get_scope(self, instance) -> dict:
        return _scope(instance.policy)

    def get_reviewers(self, instance) -> list[dict]:
        return _reviewers(instance.policy, Purpose.PRIMARY_REVIEWER)

    def get_fallbackReviewers(self, instance) -> list[dict]:  # noqa: N802 - Graph's name
        return _reviewers(instance.policy, Purpose.FALLBACK_REVIEWER)


class DecisionSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    accessReviewId = serializers.UUIDField(source="instance_id", read_only=True)
    decision = serializers.CharField(read_only=True)
    recommendation = serializers.SerializerMethodField()
    justification = serializers.CharField(read_only=True)
    reviewedBy = serializers.SerializerMethodField()
    reviewedDateTime = GraphDateTimeField(
        source="decided_datetime", read_only=True, allow_null=True
    )
    appliedBy = serializers.SerializerMethodField()
    appliedDateTime = GraphDateTimeField(source="applied_datetime", read_only=True, allow_null=True)
    applyResult = serializers.SerializerMethodField()
    applyDescription = serializers.CharField(source="get_apply_result_display", read_only=True)
    principal = serializers.SerializerMethodField()
    principalLink = serializers.SerializerMethodField()
    resource = serializers.SerializerMethodField()
    resourceLink = serializers.SerializerMethodField()

    def get_recommendation(self, item) -> str:
        return item.recommendation or "NoInfoAvailable"

    def get_reviewedBy(self, item) -> dict:  # noqa: N802
        return identity(item.decided_by if item.is_decided else None, principal_name=True)

    def get_appliedBy(self, item) -> dict:  # noqa: N802
        applied = item.applied_datetime is not None
        return identity(item.instance.applied_by if applied else None, principal_name=True)

    def get_applyResult(self, item) -> str:  # noqa: N802
        return APPLY_RESULT[item.apply_result]

    def get_principal(self, item) -> dict:
        return identity(item.target, principal_name=True)

    def get_principalLink(self, item) -> str:  # noqa: N802
        return f"{api_root(self.context['request'])}/users/{item.target_id}"

    def get_resource(self, item) -> dict:
        package = item.instance.access_package
        return {"id": str(package.pk), "displayName": package.display_name, "type": "accessPackage"}

    def get_resourceLink(self, item) -> str:  # noqa: N802
        return (
            f"{api_root(self.context['request'])}/identityGovernance/entitlementManagement/"
            f"accessPackages/{item.instance.access_package_id}"
        )


class DecisionBodySerializer(InputSerializer):
    decision = serializers.ChoiceField(choices=list(REVIEWER_DECISIONS))
    justification = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, default="", max_length=4000
    )


class JustificationSerializer(InputSerializer):
    justification = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, default="", max_length=4000
    )


# --------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------

FILTER_BY_CURRENT_USER = {
    "detail": False,
    "url_path": r"filterByCurrentUser\(on='(?P<on>[A-Za-z]+)'\)",
    "url_name": "filter-by-current-user",
}


def _reviewer_only(on):
    if on != "reviewer":
        raise bad_request("filterByCurrentUser supports on='reviewer' only.")


class ReviewViewSet(GraphViewSet):
    read_permissions = REVIEWS_READ
    write_permissions = REVIEWS_WRITE
    http_method_names = ["get", "head", "options"]


class DefinitionViewSet(ReviewViewSet):
    context = BASE
    serializer_class = DefinitionSerializer
    filter_fields = {"id": "id", "displayName": "display_name"}
    default_order = ("access_package__display_name", "display_name")

    def visible(self, **kwargs):
        return (
            visible_definitions(self.request.user, **kwargs)
            .select_related("access_package")
            .prefetch_related(_reviewer_sets())
        )

    @graph_schema(collection=DefinitionSerializer, on=("reviewer",))
    @action(**FILTER_BY_CURRENT_USER)
    def filter_by_current_user(self, request, on=None):
        """The definitions in which the caller reviews something."""
        _reviewer_only(on)
        return self.collection(self.visible(reviewer_only=True))


class InstanceViewSet(ReviewViewSet):
    serializer_class = InstanceSerializer
    filter_fields = {
        "id": "id",
        "status": "status",
        "startDateTime": "start",
        "endDateTime": "end",
    }
    default_order = ("-start",)
    http_method_names = ["get", "post", "head", "options"]

    @property
    def context(self):
        return f"{BASE}('{self.kwargs['definition_id']}')/instances"

    def definition(self):
        return self.find(
            visible_definitions(self.request.user),
            self.kwargs["definition_id"],
            what="access review definition",
        )

    def visible(self):
        return (
            visible_instances(self.request.user)
            .filter(policy=self.definition())
            .select_related("policy", "access_package")
            .prefetch_related(_reviewer_sets("policy__subject_sets"))
        )

    def list(self, request, *args, **kwargs):
        return self.collection(self.visible())

    @graph_schema(collection=InstanceSerializer, on=("reviewer",))
    @action(**FILTER_BY_CURRENT_USER)
    def filter_by_current_user(self, request, definition_id=None, on=None):
        """The instances in which the caller reviews something."""
        _reviewer_only(on)
        mine = reviewed_items(request.user).values("instance_id")
        return self.collection(self.visible().filter(pk__in=mine))

    @graph_schema(request=JustificationSerializer)
    @action(detail=True, methods=["post"], url_path="acceptRecommendations")
    def accept_recommendations(self, request, *args, **kwargs):
        """Decide the caller's undecided items as the decision helper recommends."""
        instance = self.get_object()
        values = self.body(JustificationSerializer)
        # As in My Access: only someone who reviews items of this instance accepts for them.
        if not reviewed_items(request.user).filter(instance=instance).exists():
            raise forbidden("You are not a reviewer in this review.")
        review_accept_recommendations(
            actor=request.user,
            instance=instance,
            justification=values.get("justification") or "",
            channel=Channel.API,
        )
        return self.no_content()

    @graph_schema()
    @action(detail=True, methods=["post"], url_path="stop")
    def stop(self, request, *args, **kwargs):
        """End a running review early (the catalog's owners and assignment managers)."""
        review_instance_stop(actor=request.user, instance=self.get_object(), channel=Channel.API)
        return self.no_content()

    @graph_schema()
    @action(detail=True, methods=["post"], url_path="applyDecisions")
    def apply_decisions(self, request, *args, **kwargs):
        """Apply a completed review whose results are not applied automatically."""
        review_instance_apply(actor=request.user, instance=self.get_object(), channel=Channel.API)
        return self.no_content()


class DecisionViewSet(ReviewViewSet):
    serializer_class = DecisionSerializer
    filter_fields = {
        "id": "id",
        "decision": "decision",
        "reviewedDateTime": "decided_datetime",
        "reviewedBy/id": "decided_by_id",
        "principal/id": "target_id",
        "principal/displayName": "target__display_name",
    }
    default_order = ("target__display_name",)
    http_method_names = ["get", "patch", "head", "options"]

    @property
    def context(self):
        return (
            f"{BASE}('{self.kwargs['definition_id']}')/instances"
            f"('{self.kwargs['instance_id']}')/decisions"
        )

    def instance(self):
        user = self.request.user
        definition = self.find(
            visible_definitions(user), self.kwargs["definition_id"], what="access review definition"
        )
        return self.find(
            visible_instances(user).filter(policy=definition),
            self.kwargs["instance_id"],
            what="access review instance",
        )

    def _rows(self, queryset):
        return queryset.filter(instance=self.instance()).select_related(
            "target",
            "decided_by",
            "instance__policy",
            "instance__access_package",
            "instance__applied_by",
        )

    def visible(self):
        return self._rows(visible_items(self.request.user))

    def list(self, request, *args, **kwargs):
        return self.collection(self.visible())

    @graph_schema(collection=DecisionSerializer, on=("reviewer",))
    @action(**FILTER_BY_CURRENT_USER)
    def filter_by_current_user(self, request, definition_id=None, instance_id=None, on=None):
        """The decisions of this instance the caller reviews."""
        _reviewer_only(on)
        return self.collection(self._rows(reviewed_items(request.user)))

    @graph_schema(request=DecisionBodySerializer)
    def partial_update(self, request, *args, **kwargs):
        item = self.get_object()
        values = self.body(DecisionBodySerializer)
        review_item_decide(
            actor=request.user,
            item=item,
            decision=values["decision"],
            justification=values.get("justification") or "",
            channel=Channel.API,
        )
        return self.no_content()


def register(routers):
    router = routers["identityGovernance/accessReviews"]
    router.register("definitions", DefinitionViewSet, basename="review-definition")
    router.register(
        r"definitions/(?P<definition_id>[^/()]+)/instances",
        InstanceViewSet,
        basename="review-instance",
    )
    router.register(
        r"definitions/(?P<definition_id>[^/()]+)/instances/(?P<instance_id>[^/()]+)/decisions",
        DecisionViewSet,
        basename="review-decision",
    )
