"""The JSON of an accessPackageAssignmentPolicy, both ways.

Graph nests a policy's settings in objects (``requestorSettings``, ``expiration``,
``requestApprovalSettings`` with its ``stages``, ``reviewSettings``, ...); the product keeps
them as the policy's own fields and as child rows (subject sets, stages with approver sets,
questions with choices and translations). The serializers below map one onto the other:
settings objects are nested serializers over the policy itself (``source="*"``), lists of
child rows are ``Rows`` fields that read the prefetched rows and hand the parsed list to the
view, which builds the rows and saves them with ``entitlements.policy_config.policy_save``.

What Graph allows and the product cannot honour is refused with the reason (400), never
dropped: service principals and agent identities as targets, attribute-rule subject sets,
automatic assignment, custom extensions, approver visibility other than the default,
translations of answer choices, review schedules other than weekly, monthly, quarterly,
half-yearly or yearly, expiration ``notSpecified``, durations in years or months.
"""

from datetime import UTC, datetime, time, timedelta

from django.utils.dateparse import parse_duration
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from directory.models import ConnectedOrganization, Group, User
from directory.rules import RuleSyntaxError, parse_rule
from entitlements.models import (
    AllowedTargetScope,
    ExpirationType,
    PolicySubjectSet,
    Question,
    QuorumMode,
    ReviewExpirationBehavior,
    ReviewRecurrence,
    StageApproverSet,
    SubjectType,
)

from ..graph.serializers import GraphSerializer, InputSerializer
from .common import GraphDateTimeField

GRAPH = "#microsoft.graph."

# --------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------


def iso_duration(value):
    """``P30D``, ``PT8H``, ``P1DT2H30M``: a timedelta as Graph writes a duration."""
    if value is None:
        return None
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}P{days}D" if days else f"{sign}P"
    # RFC 3339's grammar of durations has no gaps: hours with seconds carry their minutes
    # ("PT4H0M36S"), which validators of the "duration" format insist on.
    units = [(hours, "H"), (minutes, "M"), (secs, "S")]
    used = [i for i, (n, _unit) in enumerate(units) if n]
    clock = "".join(f"{n}{u}" for n, u in units[used[0] : used[-1] + 1]) if used else ""
    if clock:
        text += f"T{clock}"
    return text if text not in ("P", "-P") else "PT0S"


class GraphDurationField(serializers.Field):
    """An ISO 8601 duration (``P30D``, ``PT8H``); also what the Python SDK sends, which
    writes a ``timedelta`` as ``str()`` does (``30 days, 0:00:00``)."""

    default_error_messages = {
        "invalid": (
            "'{value}' is not a duration: give an ISO 8601 duration such as P30D or PT8H "
            "(years and months are not fixed lengths: give them in days)."
        ),
        "too_long": "A duration of more than 100 years (P36500D) is not accepted.",
    }
    LONGEST = timedelta(days=36500)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        extend_schema_field({"type": "string", "format": "duration", "example": "P30D"})(self)

    def to_internal_value(self, data):
        try:
            value = parse_duration(data) if isinstance(data, str) else None
        except (OverflowError, ValueError):
            value = None
        if value is None:
            self.fail("invalid", value=str(data)[:64])
        if abs(value) > self.LONGEST:
            self.fail("too_long")
        return value

    def to_representation(self, value):
        return iso_duration(value)


# --------------------------------------------------------------------------------------
# Subject sets
# --------------------------------------------------------------------------------------

# Graph's subjectSet types the product keeps; others are refused by name.
SUBJECT_TYPES = {
    f"{GRAPH}singleUser": SubjectType.SINGLE_USER,
    f"{GRAPH}groupMembers": SubjectType.GROUP_MEMBERS,
    f"{GRAPH}connectedOrganizationMembers": SubjectType.CONNECTED_ORGANIZATION_MEMBERS,
    f"{GRAPH}requestorManager": SubjectType.REQUESTOR_MANAGER,
    f"{GRAPH}targetManager": SubjectType.TARGET_MANAGER,
    f"{GRAPH}internalSponsors": SubjectType.INTERNAL_SPONSORS,
    f"{GRAPH}externalSponsors": SubjectType.EXTERNAL_SPONSORS,
    f"{GRAPH}targetUserSponsors": SubjectType.TARGET_USER_SPONSORS,
    f"{GRAPH}attributeRuleMembers": SubjectType.ATTRIBUTE_RULE_MEMBERS,
}
ODATA_TYPE_OF_SUBJECT = {value: key for key, value in SUBJECT_TYPES.items()}
# What each type refers to: (Graph property, model field, model of the row).
SUBJECT_REFERENCES = {
    SubjectType.SINGLE_USER: ("userId", "user_id", User),
    SubjectType.GROUP_MEMBERS: ("groupId", "group_id", Group),
    SubjectType.CONNECTED_ORGANIZATION_MEMBERS: (
        "connectedOrganizationId",
        "connected_organization_id",
        ConnectedOrganization,
    ),
}
MANAGER_TYPES = (SubjectType.REQUESTOR_MANAGER, SubjectType.TARGET_MANAGER)


class SubjectSetSerializer(InputSerializer):
    """A subjectSet; which properties apply depends on its ``@odata.type``."""

    userId = serializers.UUIDField(required=False, allow_null=True)
    groupId = serializers.UUIDField(required=False, allow_null=True)
    connectedOrganizationId = serializers.UUIDField(required=False, allow_null=True)
    managerLevel = serializers.IntegerField(required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    membershipRule = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    def get_fields(self):
        return {
            "@odata.type": serializers.CharField(
                source="odata_type",
                help_text="#microsoft.graph.singleUser, groupMembers, requestorManager, ...",
            ),
            **super().get_fields(),
        }

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        kind = SUBJECT_TYPES.get(values["odata_type"])
        if kind is None:
            raise serializers.ValidationError(
                {
                    "@odata.type": f"{values['odata_type']} subject sets are not supported; "
                    "use singleUser, groupMembers, connectedOrganizationMembers, "
                    "requestorManager, targetManager, internalSponsors, externalSponsors, "
                    "targetUserSponsors or attributeRuleMembers."
                }
            )
        row = {"subject_type": kind, "manager_level": None}
        for kind_of, (prop, attname, model) in SUBJECT_REFERENCES.items():
            if kind_of != kind:
                continue
            pk = values.get(prop)
            if pk is None:
                raise serializers.ValidationError({prop: "This field is required."})
            if not model.objects.filter(pk=pk).exists():
                raise serializers.ValidationError(
                    {prop: f"No {model._meta.verbose_name} has the id '{pk}'."}
                )
            row[attname] = pk
        if kind in MANAGER_TYPES:
            level = values.get("managerLevel")
            row["manager_level"] = 1 if level is None else level
        if kind == SubjectType.ATTRIBUTE_RULE_MEMBERS:
            rule = (values.get("membershipRule") or "").strip()
            try:
                parse_rule(rule)
            except RuleSyntaxError as exc:
                raise serializers.ValidationError({"membershipRule": exc.pointed()}) from None
            row["membership_rule"] = rule
        return row

    def to_representation(self, row):
        kind = row.subject_type
        data = {"@odata.type": ODATA_TYPE_OF_SUBJECT[kind]}
        if kind in SUBJECT_REFERENCES:
            prop, attname, _ = SUBJECT_REFERENCES[kind]
            value = getattr(row, attname)
            data[prop] = str(value) if value else None
        if kind in MANAGER_TYPES:
            data["managerLevel"] = row.manager_level or 1
        if kind == SubjectType.ATTRIBUTE_RULE_MEMBERS:
            data["membershipRule"] = row.membership_rule
        return data


class Rows(serializers.Field):
    """A list of an object's child rows (read from a prefetched relation, optionally of one
    ``purpose``), rendered by ``child``; on input, the parsed list goes to the view under
    ``key``."""

    def __init__(self, child_class, *, related, key, purpose=None, **kwargs):
        kwargs.setdefault("source", "*")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.child_class = child_class
        self.related = related
        self.key = key
        self.purpose = purpose
        self._renderer = None
        extend_schema_field(child_class(many=True))(self)

    def rows(self, instance):
        # get_queryset(), not all(): a prefetched list is read as it is; all() would copy
        # the prefetch's query (with its IN list of every parent) once per row.
        rows = getattr(instance, self.related).get_queryset()
        if self.purpose is not None:
            rows = [row for row in rows if row.purpose == self.purpose]
        return rows

    def to_representation(self, instance):
        # One child serializer per field, not per row: building a serializer copies its
        # declared fields, which was most of a policy list's time.
        if self._renderer is None:
            self._renderer = self.child_class(many=True, context=self.context)
        return self._renderer.to_representation(self.rows(instance))

    def to_internal_value(self, data):
        if data is None:
            data = []
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list.")
        parsed = self.child_class(data=data, many=True, context=self.context)
        parsed.is_valid(raise_exception=True)
        return {self.key: list(parsed.validated_data)}


def subjects(purpose):
    """The policy's subject sets of one purpose (who may request, on behalf, review)."""
    return Rows(
        SubjectSetSerializer, related="subject_sets", key=f"subjects:{purpose}", purpose=purpose
    )


# --------------------------------------------------------------------------------------
# Policy settings, nested over the policy's own fields
# --------------------------------------------------------------------------------------


class ExpirationPatternSerializer(InputSerializer):
    """expirationPattern: when an assignment under the policy ends."""

    type = serializers.ChoiceField(
        source="expiration_type",
        choices=["notSpecified", *ExpirationType.values],
        required=False,
    )
    endDateTime = GraphDateTimeField(
        source="expiration_end_datetime", required=False, allow_null=True
    )
    duration = GraphDurationField(source="expiration_duration", required=False, allow_null=True)

    def validate(self, values):
        if values.get("expiration_type") == "notSpecified":
            raise serializers.ValidationError(
                {"type": "Say how access ends: noExpiration, afterDateTime or afterDuration."}
            )
        return values

    def to_representation(self, policy):
        kind = policy.expiration_type
        return {
            "type": kind,
            "endDateTime": self.fields["endDateTime"].to_representation(
                policy.expiration_end_datetime
            )
            if kind == ExpirationType.AFTER_DATE_TIME
            else None,
            "duration": iso_duration(policy.expiration_duration)
            if kind == ExpirationType.AFTER_DURATION
            else None,
        }


class AccessPackageAssignmentRequestorSettingsSerializer(InputSerializer):
    enableTargetsToSelfAddAccess = serializers.BooleanField(
        source="enable_targets_to_self_add_access", required=False
    )
    enableTargetsToSelfUpdateAccess = serializers.BooleanField(
        source="enable_targets_to_self_update_access", required=False
    )
    enableTargetsToSelfRemoveAccess = serializers.BooleanField(
        source="enable_targets_to_self_remove_access", required=False
    )
    allowCustomAssignmentSchedule = serializers.BooleanField(
        source="allow_custom_assignment_schedule", required=False
    )
    enableOnBehalfRequestorsToAddAccess = serializers.BooleanField(
        source="enable_on_behalf_requestors_to_add_access", required=False
    )
    enableOnBehalfRequestorsToUpdateAccess = serializers.BooleanField(
        source="enable_on_behalf_requestors_to_update_access", required=False
    )
    enableOnBehalfRequestorsToRemoveAccess = serializers.BooleanField(
        source="enable_on_behalf_requestors_to_remove_access", required=False
    )
    onBehalfRequestors = subjects(PolicySubjectSet.Purpose.ON_BEHALF_REQUESTOR)


class AccessPackageApprovalStageSerializer(InputSerializer):
    """accessPackageApprovalStage; its number is its place in the list."""

    durationBeforeAutomaticDenial = GraphDurationField(
        source="duration_before_automatic_denial", required=False
    )
    isApproverJustificationRequired = serializers.BooleanField(
        source="is_approver_justification_required", required=False
    )
    isEscalationEnabled = serializers.BooleanField(source="is_escalation_enabled", required=False)
    durationBeforeEscalation = GraphDurationField(
        source="duration_before_escalation", required=False, allow_null=True
    )
    quorumMode = serializers.ChoiceField(
        source="quorum_mode",
        choices=QuorumMode.values,
        required=False,
        help_text="Product extension: how many approvals the stage needs: anyOne (Graph's "
        "behaviour, the default), oneFromEach (one from each primary approver entry) or someOf "
        "(quorumCount different people).",
    )
    quorumCount = serializers.IntegerField(
        source="quorum_count",
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Product extension: with quorumMode someOf, how many different people approve.",
    )
    approversMayShortenAccess = serializers.BooleanField(
        source="approvers_may_shorten",
        required=False,
        help_text="Product extension: an approver may approve until an earlier end than the "
        "request asks for.",
    )
    approverInformationVisibility = serializers.ChoiceField(
        choices=["default", "notVisible", "visible", "unknownFutureValue"],
        required=False,
        allow_null=True,
        write_only=True,
    )
    primaryApprovers = Rows(
        SubjectSetSerializer,
        related="approver_sets",
        key="approvers:primaryApprover",
        purpose=StageApproverSet.Purpose.PRIMARY,
    )
    fallbackPrimaryApprovers = Rows(
        SubjectSetSerializer,
        related="approver_sets",
        key="approvers:fallbackPrimaryApprover",
        purpose=StageApproverSet.Purpose.FALLBACK_PRIMARY,
    )
    escalationApprovers = Rows(
        SubjectSetSerializer,
        related="approver_sets",
        key="approvers:escalationApprover",
        purpose=StageApproverSet.Purpose.ESCALATION,
    )
    fallbackEscalationApprovers = Rows(
        SubjectSetSerializer,
        related="approver_sets",
        key="approvers:fallbackEscalationApprover",
        purpose=StageApproverSet.Purpose.FALLBACK_ESCALATION,
    )

    def validate_approverInformationVisibility(self, value):  # noqa: N802
        if value not in (None, "default"):
            raise serializers.ValidationError(
                "The product always shows requestors who their approvers are: leave this 'default'."
            )
        return value

    def to_representation(self, stage):
        data = super().to_representation(stage)
        data["approverInformationVisibility"] = "default"
        return data


class AccessPackageAssignmentApprovalSettingsSerializer(InputSerializer):
    isApprovalRequiredForAdd = serializers.BooleanField(
        source="is_approval_required_for_add", required=False
    )
    isApprovalRequiredForUpdate = serializers.BooleanField(
        source="is_approval_required_for_update", required=False
    )
    isRequestorJustificationRequired = serializers.BooleanField(
        source="is_requestor_justification_required", required=False
    )
    stages = Rows(AccessPackageApprovalStageSerializer, related="approval_stages", key="stages")


# Graph's recurrence pattern (type, interval) for each review frequency the product has.
RECURRENCES = {
    ReviewRecurrence.WEEKLY: ("weekly", 1),
    ReviewRecurrence.MONTHLY: ("absoluteMonthly", 1),
    ReviewRecurrence.QUARTERLY: ("absoluteMonthly", 3),
    ReviewRecurrence.SEMI_ANNUALLY: ("absoluteMonthly", 6),
    ReviewRecurrence.ANNUALLY: ("absoluteYearly", 1),
}
RECURRENCE_OF = {value: key for key, value in RECURRENCES.items()}
RECURRENCE_OF[("absoluteMonthly", 12)] = ReviewRecurrence.ANNUALLY


class ReviewScheduleField(serializers.Field):
    """entitlementManagementSchedule: first review, how long each lasts, how often."""

    def __init__(self, **kwargs):
        kwargs.setdefault("source", "*")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        extend_schema_field(
            {
                "type": "object",
                "nullable": True,
                "properties": {
                    "startDateTime": {"type": "string", "format": "date-time", "nullable": True},
                    "expiration": {"type": "object", "nullable": True},
                    "recurrence": {"type": "object", "nullable": True},
                },
            }
        )(self)

    def to_representation(self, policy):
        start = policy.review_start_date
        pattern, interval = RECURRENCES[policy.review_recurrence]
        return {
            "startDateTime": datetime.combine(start, time(0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if start
            else None,
            "expiration": {
                "type": "afterDuration",
                "duration": iso_duration(timedelta(days=policy.review_duration_in_days)),
                "endDateTime": None,
            },
            "recurrence": {
                "pattern": {"type": pattern, "interval": interval},
                "range": {
                    "type": "noEnd",
                    "startDate": start.isoformat() if start else None,
                },
            },
        }

    def to_internal_value(self, data):
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object.")
        values = {}
        if data.get("startDateTime") is not None:
            start = GraphDateTimeField().run_validation(data["startDateTime"])
            values["review_start_date"] = start.astimezone(UTC).date()
        expiration = data.get("expiration") or {}
        if not isinstance(expiration, dict):
            raise serializers.ValidationError({"expiration": "Expected an object."})
        if expiration.get("type") not in (None, "afterDuration"):
            raise serializers.ValidationError(
                {"expiration": "A review lasts a number of days: use type afterDuration."}
            )
        if expiration.get("duration") is not None:
            duration = GraphDurationField().run_validation(expiration["duration"])
            if duration.total_seconds() % 86400 or duration < timedelta(days=1):
                raise serializers.ValidationError(
                    {"expiration": "A review lasts a whole number of days, at least one (P14D)."}
                )
            values["review_duration_in_days"] = duration.days
        recurrence = data.get("recurrence") or {}
        if not isinstance(recurrence, dict):
            raise serializers.ValidationError({"recurrence": "Expected an object."})
        pattern = recurrence.get("pattern") or {}
        range_ = recurrence.get("range") or {}
        if not isinstance(pattern, dict) or not isinstance(range_, dict):
            raise serializers.ValidationError({"recurrence": "Expected an object."})
        if pattern:
            key = (pattern.get("type"), pattern.get("interval") or 1)
            if not all(isinstance(part, str | int) for part in key) or key not in RECURRENCE_OF:
                raise serializers.ValidationError(
                    {
                        "recurrence": "Reviews recur weekly (weekly, 1), monthly "
                        "(absoluteMonthly, 1), quarterly (absoluteMonthly, 3), half-yearly "
                        "(absoluteMonthly, 6) or yearly (absoluteYearly, 1)."
                    }
                )
            values["review_recurrence"] = RECURRENCE_OF[key]
        if range_ and range_.get("type") not in (None, "noEnd"):
            raise serializers.ValidationError(
                {"recurrence": "Reviews recur until the policy changes: use range type noEnd."}
            )
        return values


class AccessPackageAssignmentReviewSettingsSerializer(InputSerializer):
    isEnabled = serializers.BooleanField(source="review_is_enabled", required=False)
    expirationBehavior = serializers.ChoiceField(
        source="review_expiration_behavior",
        choices=ReviewExpirationBehavior.choices,
        required=False,
    )
    isRecommendationEnabled = serializers.BooleanField(
        source="review_is_recommendation_enabled", required=False
    )
    isReviewerJustificationRequired = serializers.BooleanField(
        source="review_is_reviewer_justification_required", required=False
    )
    isSelfReview = serializers.BooleanField(source="review_is_self_review", required=False)
    schedule = ReviewScheduleField()
    primaryReviewers = subjects(PolicySubjectSet.Purpose.PRIMARY_REVIEWER)
    fallbackReviewers = subjects(PolicySubjectSet.Purpose.FALLBACK_REVIEWER)


class AccessPackageAutomaticRequestSettingsSerializer(InputSerializer):
    requestAccessForAllowedTargets = serializers.BooleanField(
        source="request_access_for_allowed_targets", required=False
    )
    removeAccessWhenTargetLeavesAllowedTargets = serializers.BooleanField(
        source="remove_access_when_target_leaves_allowed_targets", required=False
    )
    gracePeriodBeforeAccessRemoval = GraphDurationField(
        source="grace_period_before_access_removal", required=False, allow_null=True
    )

    def validate_gracePeriodBeforeAccessRemoval(self, value):  # noqa: N802
        return timedelta(0) if value is None else value


class AccessPackageNotificationSettingsSerializer(InputSerializer):
    isAssignmentNotificationDisabled = serializers.BooleanField(
        source="is_assignment_notification_disabled", required=False
    )


# --------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------

TEXT_QUESTION = f"{GRAPH}accessPackageTextInputQuestion"
CHOICE_QUESTION = f"{GRAPH}accessPackageMultipleChoiceQuestion"
QUESTION_TYPES = {
    TEXT_QUESTION: Question.QuestionType.TEXT_INPUT,
    CHOICE_QUESTION: Question.QuestionType.MULTIPLE_CHOICE,
}
ODATA_TYPE_OF_QUESTION = {value: key for key, value in QUESTION_TYPES.items()}


class AccessPackageLocalizedTextSerializer(InputSerializer):
    languageCode = serializers.CharField(source="language_code", max_length=8)
    text = serializers.CharField(max_length=1024)


class AccessPackageAnswerChoiceSerializer(InputSerializer):
    actualValue = serializers.CharField(source="actual_value", max_length=256)
    text = serializers.CharField(max_length=512)
    localizations = serializers.ListField(required=False, allow_null=True, write_only=True)

    def validate_localizations(self, value):
        if value:
            raise serializers.ValidationError(
                "Translations of answer choices are not supported; translate the question."
            )
        return value

    def to_representation(self, choice):
        data = super().to_representation(choice)
        data["localizations"] = []
        return data


@extend_schema_serializer(component_name="AccessPackageQuestion")
class QuestionSerializer(GraphSerializer):
    """accessPackageQuestion: a text input or a multiple-choice question."""

    id = serializers.UUIDField(required=False, allow_null=True)
    sequence = serializers.IntegerField(required=False, min_value=0, max_value=32767)
    isRequired = serializers.BooleanField(source="is_required", required=False)
    isAnswerEditable = serializers.BooleanField(source="is_answer_editable", required=False)
    text = serializers.CharField(max_length=1024)
    localizations = Rows(
        AccessPackageLocalizedTextSerializer, related="localizations", key="localizations"
    )
    isSingleLineQuestion = serializers.BooleanField(
        source="is_single_line_question", required=False
    )
    regexPattern = serializers.CharField(
        source="regex_pattern", required=False, allow_blank=True, allow_null=True, max_length=512
    )
    formatHint = serializers.CharField(
        source="format_hint",
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=256,
        help_text="Product extension: the expected format in words, shown to requestors; "
        "required with regexPattern.",
    )
    isMultipleSelectionAllowed = serializers.BooleanField(
        source="is_multiple_selection_allowed", required=False
    )
    choices = Rows(AccessPackageAnswerChoiceSerializer, related="choices", key="choices")

    TEXT_ONLY = ("isSingleLineQuestion", "regexPattern", "formatHint")
    CHOICE_ONLY = ("isMultipleSelectionAllowed", "choices")

    def get_fields(self):
        return {
            "@odata.type": serializers.ChoiceField(
                source="odata_type", choices=list(QUESTION_TYPES), write_only=True
            ),
            **super().get_fields(),
        }

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        values["question_type"] = QUESTION_TYPES[values.pop("odata_type")]
        for name in ("regex_pattern", "format_hint"):
            if name in values and values[name] is None:
                values[name] = ""
        return values

    def to_representation(self, question):
        data = super().to_representation(question)
        data["@odata.type"] = ODATA_TYPE_OF_QUESTION[question.question_type]
        drop = (
            self.CHOICE_ONLY
            if question.question_type == Question.QuestionType.TEXT_INPUT
            else (self.TEXT_ONLY)
        )
        ordered = {"@odata.type": data.pop("@odata.type")}
        ordered.update({k: v for k, v in data.items() if k not in drop})
        if "regexPattern" in ordered and not ordered["regexPattern"]:
            ordered["regexPattern"] = None
        return ordered


# --------------------------------------------------------------------------------------
# Scope
# --------------------------------------------------------------------------------------

# Graph's allowedTargetScope values the product cannot honour, with the reason.
UNSUPPORTED_SCOPES = {
    "specificDirectoryServicePrincipals": "service principals cannot request access packages",
    "allDirectoryServicePrincipals": "service principals cannot request access packages",
    "allDirectoryAgentIdentities": "agent identities cannot request access packages",
    "unknownFutureValue": "it is not a scope",
}
TARGET_SCOPES = [*AllowedTargetScope.values, *UNSUPPORTED_SCOPES]
