"""``/identityGovernance/entitlementManagement/assignmentPolicies``
(accessPackageAssignmentPolicy).

A policy is read and written whole, as Graph does: POST creates one with its stages,
approvers, subject sets and questions; PUT replaces it (a stage is kept by its number, a
question by its id, so requests that used them keep their history); DELETE removes it
unless requests or assignments use it (409). The JSON mapping, and what the product refuses
because it cannot honour it, is in ``policy_serializers``. Who may: a catalog's owners and
access package managers for the policies of its packages (``entitlements.permissions``),
like the admin; anybody else with an admin role in the catalog only reads them.
"""

from django.db.models import Prefetch
from rest_framework import serializers

from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    Channel,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    QuestionLocalization,
    QuorumMode,
    StageApproverSet,
)
from entitlements.policy_config import (
    PolicyInvalid,
    QuestionPlan,
    StagePlan,
    policy_delete,
    policy_save,
)
from entitlements.services.automatic import (
    automatic_change_refused,
    automatic_policy_changed,
    automatic_targets,
)

from ..graph.errors import bad_request, forbidden, not_found
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet
from ..permissions import ENTITLEMENTS_READ, ENTITLEMENTS_WRITE
from .catalogs import CatalogSerializer
from .common import GraphDateTimeField, require
from .policy_serializers import (
    TARGET_SCOPES,
    UNSUPPORTED_SCOPES,
    AccessPackageAssignmentApprovalSettingsSerializer,
    AccessPackageAssignmentRequestorSettingsSerializer,
    AccessPackageAssignmentReviewSettingsSerializer,
    AccessPackageAutomaticRequestSettingsSerializer,
    AccessPackageNotificationSettingsSerializer,
    ExpirationPatternSerializer,
    QuestionSerializer,
    Rows,
    subjects,
)

Purpose = PolicySubjectSet.Purpose


class PolicyAccessPackageSerializer(GraphSerializer):
    """The policy's access package, as ``$expand=accessPackage`` shows it."""

    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    description = serializers.CharField(read_only=True)
    isHidden = serializers.BooleanField(source="is_hidden", read_only=True)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)


class PolicyAccessPackageReference(InputSerializer):
    id = serializers.UUIDField()


class PolicySerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", max_length=256)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    allowedTargetScope = serializers.ChoiceField(
        source="allowed_target_scope", choices=TARGET_SCOPES, required=False
    )
    specificAllowedTargets = subjects(Purpose.ALLOWED_TARGET)
    expiration = ExpirationPatternSerializer(source="*", required=False)
    requestorSettings = AccessPackageAssignmentRequestorSettingsSerializer(
        source="*", required=False
    )
    requestApprovalSettings = AccessPackageAssignmentApprovalSettingsSerializer(
        source="*", required=False
    )
    reviewSettings = AccessPackageAssignmentReviewSettingsSerializer(source="*", required=False)
    automaticRequestSettings = AccessPackageAutomaticRequestSettingsSerializer(
        source="*", required=False
    )
    notificationSettings = AccessPackageNotificationSettingsSerializer(source="*", required=False)
    questions = Rows(QuestionSerializer, related="questions", key="questions")
    customExtensionStageSettings = serializers.ListField(
        required=False, allow_null=True, write_only=True
    )
    accessPackage = PolicyAccessPackageReference(required=False, write_only=True)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)

    expandable = {
        "accessPackage": Expand(
            PolicyAccessPackageSerializer, source="access_package", select="access_package"
        ),
        "catalog": Expand(
            CatalogSerializer, source="access_package.catalog", select="access_package__catalog"
        ),
        "questions": Expand(QuestionSerializer, source="questions", many=True),
    }

    def validate_allowedTargetScope(self, value):  # noqa: N802
        if value in UNSUPPORTED_SCOPES:
            raise serializers.ValidationError(
                f"'{value}' is not supported: {UNSUPPORTED_SCOPES[value]}."
            )
        return value

    def validate_customExtensionStageSettings(self, value):  # noqa: N802
        if value:
            raise serializers.ValidationError(
                "Custom extensions are attached to a policy in the admin (Custom extensions), "
                "not through the API."
            )
        return value

    def validate_description(self, value):
        return value or ""

    def to_representation(self, policy):
        data = super().to_representation(policy)
        if "customExtensionStageSettings" not in data and (
            not self.options or not self.options.select
        ):
            data["customExtensionStageSettings"] = []
        return data


# --------------------------------------------------------------------------------------
# Building the rows a body describes
# --------------------------------------------------------------------------------------

# Model field -> Graph path, for the messages of the model's and validation's checks.
POLICY_PATHS = {
    "access_package": "accessPackage",
    "display_name": "displayName",
    "description": "description",
    "allowed_target_scope": "allowedTargetScope",
    "expiration_type": "expiration.type",
    "expiration_end_datetime": "expiration.endDateTime",
    "expiration_duration": "expiration.duration",
    "grace_period_before_access_removal": "automaticRequestSettings.gracePeriodBeforeAccessRemoval",
    "review_is_enabled": "reviewSettings.isEnabled",
    "review_start_date": "reviewSettings.schedule.startDateTime",
    "review_duration_in_days": "reviewSettings.schedule.expiration.duration",
    "policy": "requestApprovalSettings.stages",
    "is_approval_required_for_add": "requestApprovalSettings.isApprovalRequiredForAdd",
    "request_access_for_allowed_targets": "automaticRequestSettings.requestAccessForAllowedTargets",
    "enable_targets_to_self_add_access": "requestorSettings.enableTargetsToSelfAddAccess",
    "enable_on_behalf_requestors_to_add_access": (
        "requestorSettings.enableOnBehalfRequestorsToAddAccess"
    ),
}
SUBJECT_PATHS = {
    "subject_type": "@odata.type",
    "user": "userId",
    "group": "groupId",
    "connected_organization": "connectedOrganizationId",
    "manager_level": "managerLevel",
    "membership_rule": "membershipRule",
}
STAGE_PATHS = {
    "sequence": "",
    "duration_before_automatic_denial": "durationBeforeAutomaticDenial",
    "is_approver_justification_required": "isApproverJustificationRequired",
    "is_escalation_enabled": "escalationApprovers",
    "duration_before_escalation": "durationBeforeEscalation",
    "quorum_mode": "quorumMode",
    "quorum_count": "quorumCount",
    "approvers_may_shorten": "approversMayShortenAccess",
    "approver_sets": "primaryApprovers",
}
QUESTION_PATHS = {
    "text": "text",
    "sequence": "sequence",
    "question_type": "choices",
    "regex_pattern": "regexPattern",
    "format_hint": "formatHint",
}
ROW_PATHS = {"actual_value": "actualValue", "text": "text", "language_code": "languageCode"}

SUBJECT_PURPOSES = [
    (Purpose.ALLOWED_TARGET, "specificAllowedTargets"),
    (Purpose.ON_BEHALF_REQUESTOR, "requestorSettings.onBehalfRequestors"),
    (Purpose.PRIMARY_REVIEWER, "reviewSettings.primaryReviewers"),
    (Purpose.FALLBACK_REVIEWER, "reviewSettings.fallbackReviewers"),
]
APPROVER_PURPOSES = [
    (StageApproverSet.Purpose.PRIMARY, "primaryApprovers"),
    (StageApproverSet.Purpose.FALLBACK_PRIMARY, "fallbackPrimaryApprovers"),
    (StageApproverSet.Purpose.ESCALATION, "escalationApprovers"),
    (StageApproverSet.Purpose.FALLBACK_ESCALATION, "fallbackEscalationApprovers"),
]
POLICY_FIELDS = [
    f.name
    for f in AssignmentPolicy._meta.concrete_fields
    if f.name not in ("id", "created", "modified", "access_package")
]
# Off in an automatic policy unless the body says otherwise (and then the policy is refused).
AUTOMATIC_OFF = [
    "enable_targets_to_self_add_access",
    "enable_on_behalf_requestors_to_add_access",
    "is_approval_required_for_add",
]
# Product settings Graph has no property for: a PUT keeps them as they were.
KEPT_ON_REPLACE = ["review_is_auto_apply_enabled"]
# A stage's product extensions a Graph client does not know: a PUT that leaves them out keeps
# the values of the stage with the same number.
STAGE_KEPT_ON_REPLACE = ["quorum_mode", "quorum_count", "approvers_may_shorten"]


class PolicyBody:
    """The rows a validated body describes, and the Graph path of each for error messages."""

    def __init__(self, values, *, package, current=None):
        self.subject_paths, self.stage_paths, self.question_paths = [], [], []
        self.policy = self._policy(values, package, current)
        self.subject_sets = self._subjects(values)
        old_stages = (
            {stage.sequence: stage for stage in current.approval_stages.all()}
            if current is not None
            else {}
        )
        self.stages = self._stages(values.get("stages", []), old_stages)
        old = {q.pk: q for q in current.questions.all()} if current is not None else {}
        self.questions = self._questions(values.get("questions", []), old)

    @staticmethod
    def _policy(values, package, current):
        policy = AssignmentPolicy(access_package=package)
        if current is not None:
            policy.pk, policy.created = current.pk, current.created
            policy._state.adding = False
            for name in KEPT_ON_REPLACE:
                setattr(policy, name, getattr(current, name))
        for name in POLICY_FIELDS:
            if name in values:
                setattr(policy, name, values[name])
        if policy.request_access_for_allowed_targets:
            # An automatic policy as Graph creates one says nothing of requests or approval:
            # nobody requests under it.
            for name in AUTOMATIC_OFF:
                if name not in values:
                    setattr(policy, name, False)
        return policy

    def _subjects(self, values):
        rows = []
        for purpose, path in SUBJECT_PURPOSES:
            for i, item in enumerate(values.get(f"subjects:{purpose}", [])):
                rows.append(PolicySubjectSet(purpose=purpose, **item))
                self.subject_paths.append(f"{path}.{i}")
        return rows

    def _stages(self, items, old):
        plans = []
        for i, item in enumerate(items):
            approvers, paths = [], []
            for purpose, name in APPROVER_PURPOSES:
                for j, subject in enumerate(item.get(f"approvers:{purpose}", [])):
                    approvers.append(StageApproverSet(purpose=purpose, **subject))
                    paths.append(f"{name}.{j}")
            fields = {k: v for k, v in item.items() if not k.startswith("approvers:")}
            fields.pop("approverInformationVisibility", None)
            if i + 1 in old:
                for name in STAGE_KEPT_ON_REPLACE:
                    fields.setdefault(name, getattr(old[i + 1], name))
                if fields["quorum_mode"] != QuorumMode.SOME_OF and "quorum_count" not in item:
                    fields["quorum_count"] = None  # the old count went with the old mode
            plans.append(StagePlan(ApprovalStage(sequence=i + 1, **fields), approvers))
            self.stage_paths.append((f"requestApprovalSettings.stages.{i}", paths))
        return plans

    def _questions(self, items, old):
        plans = []
        for i, item in enumerate(items):
            item = dict(item)
            pk = item.pop("id", None)
            choices = [
                QuestionChoice(sequence=j + 1, actual_value=c["actual_value"], text=c["text"])
                for j, c in enumerate(item.pop("choices", []))
            ]
            localizations = [QuestionLocalization(**loc) for loc in item.pop("localizations", [])]
            item.setdefault("sequence", i + 1)
            question = Question(**item)
            if pk is not None:
                question.pk = pk
                if pk in old and "format_hint" not in item:
                    question.format_hint = old[pk].format_hint  # set in the admin, kept
            plans.append(QuestionPlan(question, choices, localizations))
            self.question_paths.append(f"questions.{i}")
        return plans

    def describe(self, error):
        """One line naming each problem by its Graph path."""
        parts = []
        for key, messages in error.message_dict.items():
            parts += [f"{self.path(key)}: {message}" for message in messages]
        return "; ".join(parts)

    def path(self, key):
        bits = key.split(".")
        if bits[0] == "subject_sets":
            return _join(self.subject_paths[int(bits[1])], SUBJECT_PATHS.get(bits[2], bits[2]))
        if bits[0] == "stages":
            stage_path, approver_paths = self.stage_paths[int(bits[1])]
            if len(bits) > 3 and bits[2] == "approvers":
                return _join(
                    f"{stage_path}.{approver_paths[int(bits[3])]}",
                    SUBJECT_PATHS.get(bits[4], bits[4]),
                )
            return _join(stage_path, STAGE_PATHS.get(bits[2], bits[2]) if len(bits) > 2 else "")
        if bits[0] == "questions":
            question_path = self.question_paths[int(bits[1])]
            if len(bits) > 3 and bits[2] in ("choices", "localizations"):
                return _join(
                    f"{question_path}.{bits[2]}.{bits[3]}", ROW_PATHS.get(bits[4], bits[4])
                )
            return _join(question_path, QUESTION_PATHS.get(bits[2], bits[2]))
        return POLICY_PATHS.get(key, key)


def _join(path, name):
    return f"{path}.{name}" if name else path


# --------------------------------------------------------------------------------------
# The resource
# --------------------------------------------------------------------------------------


class PolicyViewSet(GraphViewSet):
    context = f"{BASE}/assignmentPolicies"
    serializer_class = PolicySerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    http_method_names = ["get", "post", "put", "delete", "head", "options"]
    filter_fields = {
        "id": "id",
        "displayName": "display_name",
        "description": "description",
        "allowedTargetScope": "allowed_target_scope",
        "createdDateTime": "created",
        "modifiedDateTime": "modified",
        "accessPackage/id": "access_package__id",
        "accessPackage/displayName": "access_package__display_name",
        "catalog/id": "access_package__catalog__id",
    }
    default_order = ("display_name",)

    def visible(self):
        return AssignmentPolicy.objects.restrict(self.request.user, "view").prefetch_related(
            Prefetch("subject_sets", queryset=PolicySubjectSet.objects.order_by("created", "id")),
            "approval_stages",
            Prefetch(
                "approval_stages__approver_sets",
                queryset=StageApproverSet.objects.order_by("created", "id"),
            ),
            "questions__choices",
            Prefetch(
                "questions__localizations",
                queryset=QuestionLocalization.objects.order_by("created", "id"),
            ),
        )

    def _package(self, values, current=None):
        reference = values.get("accessPackage")
        if reference is None:
            if current is not None:
                return current.access_package
            raise bad_request('accessPackage: give the access package, {"id": "..."}.')
        if current is not None and reference["id"] != current.access_package_id:
            raise bad_request(
                "accessPackage: a policy stays with its access package; create a new policy "
                "for another package."
            )
        packages = AccessPackage.objects.restrict(self.request.user, "view")
        try:
            return packages.select_related("catalog").get(pk=reference["id"])
        except AccessPackage.DoesNotExist:
            raise not_found(f"No access package has the id '{reference['id']}'.") from None

    def _require_automatic(self, body, current=None):
        """403 unless the caller may make this change to whom the policy assigns by itself."""
        before = (
            automatic_targets(current, current.subject_sets.all()) if current is not None else None
        )
        refused = automatic_change_refused(
            actor=self.request.user,
            before=before,
            after=automatic_targets(body.policy, body.subject_sets),
        )
        if refused:
            raise forbidden(
                f"{refused} automaticRequestSettings.requestAccessForAllowedTargets and the "
                "allowed targets of an automatic policy give access without a request or "
                "an approval; a catalog role does not allow that."
            )

    def _save(self, body):
        try:
            policy = policy_save(
                actor=self.request.user,
                policy=body.policy,
                subject_sets=body.subject_sets,
                stages=body.stages,
                questions=body.questions,
                channel=Channel.API,
            )
        except PolicyInvalid as error:
            raise bad_request(body.describe(error)) from None
        automatic_policy_changed(policy)
        return policy

    def create(self, request):
        # Somebody who may create policies nowhere is told so, whatever the body names.
        require(request.user, "add", model=AssignmentPolicy, what="policies")
        values = self.body()
        package = self._package(values)
        require(
            request.user,
            "add",
            AssignmentPolicy(access_package=package),
            what="policies of this access package",
        )
        body = PolicyBody(values, package=package)
        self._require_automatic(body)
        policy = self._save(body)
        return self.created(policy)

    @graph_schema(request=PolicySerializer, response=PolicySerializer)
    def update(self, request, pk=None):
        current = self.get_object()
        require(request.user, "change", current, what="this policy")
        values = self.body()
        package = self._package(values, current)
        body = PolicyBody(values, package=package, current=current)
        self._require_automatic(body, current)
        policy = self._save(body)
        return self.entity(self.find(self.visible(), policy.pk))

    def destroy(self, request, pk=None):
        policy = self.get_object()
        require(request.user, "delete", policy, what="this policy")
        policy_delete(actor=request.user, policy=policy, channel=Channel.API)
        return self.no_content()


def register(routers):
    routers["identityGovernance/entitlementManagement"].register(
        "assignmentPolicies", PolicyViewSet, basename="assignmentpolicy"
    )
