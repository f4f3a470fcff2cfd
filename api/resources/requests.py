"""``/identityGovernance/entitlementManagement/assignmentRequests``
(accessPackageAssignmentRequest).

Every change to an assignment is a request, as in Graph: ``userAdd`` (a person for
themselves), ``onBehalfAdd`` (a manager for a report), ``adminAdd`` (a direct assignment),
``userExtend`` (``userUpdate`` is read the same way), ``adminUpdate`` (an administrator moves
the end), ``userRemove`` and ``adminRemove``. Each goes to the service the portal and the
admin call; ``isValidationOnly`` runs that service and undoes everything it did, so the
answer says exactly what would happen (or why not) and nothing changes.

Administrators list the requests of the catalogs they may see; anybody reads and cancels
their own (by id, or with ``filterByCurrentUser(on='target'|'createdBy')``).
"""

import json
import logging
import uuid
from datetime import timedelta

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from directory.models import User
from entitlements.models import (
    AccessPackage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Channel,
    Question,
    RequestAnswer,
    RequestState,
    RequestType,
)
from entitlements.services import api_requests
from entitlements.services.requests import request_cancel, request_extend, request_submit
from extensions.models import CalloutState, CustomExtensionCallout
from extensions.payload import CALLBACK_DATA
from extensions.payload import SOURCE as CALLOUT_SOURCE
from extensions.services import (
    CALLBACK_STATES,
    callout_for_resume,
    callout_id_taken,
    request_resume,
    unreachable_reason,
)

from ..graph.errors import GraphError, bad_request, forbidden, not_found
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet
from ..permissions import EM_READWRITE, ENTITLEMENTS_READ, MY_ACCESS, MY_ACCESS_READ, granted
from .assignments import (
    AssignmentExpirationSerializer,
    AssignmentScheduleSerializer,
    AssignmentSerializer,
    SubjectSerializer,
)
from .common import GraphDateTimeField
from .packages import PackageSerializer
from .policy_serializers import GraphDurationField

logger = logging.getLogger(__name__)
ANSWER_STRING = "#microsoft.graph.accessPackageAnswerString"
CUSTOM_EXTENSION_STAGE = "microsoft.graph.accessPackageCustomExtensionStage"
QUESTION_TYPES = {
    Question.QuestionType.TEXT_INPUT: "#microsoft.graph.accessPackageTextInputQuestion",
    Question.QuestionType.MULTIPLE_CHOICE: "#microsoft.graph.accessPackageMultipleChoiceQuestion",
}


def _a(kind):
    """The request type with its article: "An adminAdd", "A userAdd"."""
    return f"{'An' if kind[:1].lower() in 'aeiou' else 'A'} {kind}"


# --------------------------------------------------------------------------------------
# What a request looks like
# --------------------------------------------------------------------------------------


class QuestionRefSerializer(InputSerializer):
    """The question an answer answers (accessPackageQuestion)."""

    id = serializers.UUIDField()
    text = serializers.CharField(read_only=True)
    sequence = serializers.IntegerField(read_only=True)
    isRequired = serializers.BooleanField(source="is_required", read_only=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["@odata.type"] = serializers.CharField(read_only=True)
        return fields


class AnswerSerializer(InputSerializer):
    """accessPackageAnswerString: an answer to a text or a multiple-choice question (whose
    ``value`` is the chosen answer's ``actualValue``)."""

    value = serializers.CharField()
    displayValue = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    answeredQuestion = QuestionRefSerializer()

    def get_fields(self):
        fields = super().get_fields()
        fields["@odata.type"] = serializers.ChoiceField(choices=[ANSWER_STRING], required=False)
        return fields


def answer_data(answer):
    question = answer.question
    return {
        "@odata.type": ANSWER_STRING,
        "value": answer.value,
        "displayValue": answer.display_value,
        "answeredQuestion": {
            "@odata.type": QUESTION_TYPES.get(question.question_type),
            "id": str(question.pk),
            "text": question.text,
            "sequence": question.sequence,
            "isRequired": question.is_required,
        },
    }


class RequestExpirationSerializer(AssignmentExpirationSerializer):
    open_type = "notSpecified"


class RequestScheduleSerializer(AssignmentScheduleSerializer):
    expiration = RequestExpirationSerializer(source="*", read_only=True)


class AssignmentRequestSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True, allow_null=True)
    requestType = serializers.ChoiceField(
        source="request_type", choices=RequestType.choices, read_only=True
    )
    state = serializers.ChoiceField(choices=RequestState.choices, read_only=True)
    status = serializers.CharField(read_only=True)
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    completedDateTime = GraphDateTimeField(
        source="completed_datetime", read_only=True, allow_null=True
    )
    justification = serializers.CharField(read_only=True)
    schedule = RequestScheduleSerializer(source="*", read_only=True)
    answers = serializers.SerializerMethodField()
    isValidationOnly = serializers.SerializerMethodField()
    customExtensionCalloutInstances = serializers.SerializerMethodField()

    expandable = {
        "accessPackage": Expand(PackageSerializer, "access_package", select="access_package"),
        "assignment": Expand(AssignmentSerializer, "assignment", select="assignment"),
        "requestor": Expand(SubjectSerializer, "requestor", select="requestor"),
    }

    @extend_schema_field(AnswerSerializer(many=True))
    def get_answers(self, obj) -> list[dict]:
        if "answers" in getattr(obj, "_prefetched_objects_cache", {}):
            answers = obj.answers.all()
        else:
            answers = obj.answers.select_related("question").order_by("question__sequence")
        return [answer_data(answer) for answer in answers]

    def get_isValidationOnly(self, obj) -> bool:
        return bool(self.context.get("validation_only"))

    def get_customExtensionCalloutInstances(self, obj) -> list[dict]:
        if obj.pk is None:
            return []
        if "custom_extension_callouts" in getattr(obj, "_prefetched_objects_cache", {}):
            callouts = obj.custom_extension_callouts.all()
        else:
            callouts = obj.custom_extension_callouts.select_related("custom_extension").order_by(
                "created"
            )
        return [callout_instance(callout) for callout in callouts]


def _failed_last(callout):
    return bool(callout.attempts and callout.attempts[-1].get("error"))


def callout_instance(callout):
    """A callout as Graph's customExtensionCalloutInstance. A callout not yet accepted by its
    endpoint has no Graph status of its own: it is waitingForCallback when the request waits
    for it, else unknownFutureValue."""
    status = callout.state
    if status == CalloutState.PENDING:
        status = CalloutState.WAITING_FOR_CALLBACK if callout.waits else "unknownFutureValue"
    return {
        "id": str(callout.pk),
        "customExtensionId": str(callout.custom_extension_id),
        "status": status,
        # The attempt's own error (addresses, library text) is for the catalog's admins only.
        "detail": callout.callback_detail
        or (unreachable_reason(callout.custom_extension) if _failed_last(callout) else ""),
        "externalCorrelationId": str(callout.pk),
    }


REQUEST_FILTER_FIELDS = {
    "id": "id",
    "requestType": "request_type",
    "state": "state",
    "status": "status",
    "createdDateTime": "created",
    "completedDateTime": "completed_datetime",
    "justification": "justification",
    "schedule/startDateTime": "schedule_start",
    "schedule/expiration/endDateTime": "schedule_end",
    "accessPackage/id": "access_package__id",
    "accessPackage/displayName": "access_package__display_name",
    "assignment/id": "assignment__id",
    "assignment/target/objectId": "target__id",
    "requestor/id": "requestor__id",
    "requestor/objectId": "requestor__id",
    "requestor/email": "requestor__email",
    "requestor/displayName": "requestor__display_name",
}

# --------------------------------------------------------------------------------------
# What a client sends
# --------------------------------------------------------------------------------------


class AssignmentReferenceSerializer(InputSerializer):
    """The assignment a request is about: a new one (``targetId``, ``accessPackageId``,
    ``assignmentPolicyId``) or an existing one (``id``). ``target: {objectId}``,
    ``accessPackage: {id}`` and ``assignmentPolicy: {id}`` are read as the same."""

    id = serializers.UUIDField(required=False)
    targetId = serializers.UUIDField(required=False)
    accessPackageId = serializers.UUIDField(required=False)
    assignmentPolicyId = serializers.UUIDField(required=False)

    ALIASES = {
        "target_id": "targetId",
        "access_package_id": "accessPackageId",
        "assignment_policy_id": "assignmentPolicyId",
    }
    NESTED = {
        "target": ("targetId", ("objectId", "id")),
        "accessPackage": ("accessPackageId", ("id",)),
        "assignmentPolicy": ("assignmentPolicyId", ("id",)),
    }

    def to_internal_value(self, data):
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in self.ALIASES.items():
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
            for key, (name, inner) in self.NESTED.items():
                value = data.pop(key, None)
                if isinstance(value, dict) and name not in data:
                    found = next((value[k] for k in inner if value.get(k)), None)
                    if found is not None:
                        data[name] = found
        return super().to_internal_value(data)


class ExpirationInputSerializer(InputSerializer):
    endDateTime = serializers.DateTimeField(required=False, allow_null=True)
    duration = GraphDurationField(required=False, allow_null=True)
    type = serializers.ChoiceField(
        choices=["notSpecified", "noExpiration", "afterDateTime", "afterDuration"],
        required=False,
    )

    def validate_duration(self, value):
        if value is not None and value <= timedelta(0):
            raise serializers.ValidationError("The duration must be positive.")
        return value


class ScheduleInputSerializer(InputSerializer):
    startDateTime = serializers.DateTimeField(required=False, allow_null=True)
    expiration = ExpirationInputSerializer(required=False, allow_null=True)
    recurrence = serializers.JSONField(required=False, allow_null=True)

    def validate_recurrence(self, value):
        if value is not None:
            raise serializers.ValidationError("A recurring schedule is not supported.")
        return value


class AssignmentRequestCreateSerializer(InputSerializer):
    requestType = serializers.CharField()
    assignment = AssignmentReferenceSerializer(required=False)
    accessPackageAssignment = AssignmentReferenceSerializer(
        required=False, help_text="Read as assignment (Graph's earlier name)."
    )
    answers = AnswerSerializer(many=True, required=False)
    justification = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=4000
    )
    schedule = ScheduleInputSerializer(required=False, allow_null=True)
    isValidationOnly = serializers.BooleanField(required=False, default=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["@odata.type"] = serializers.ChoiceField(
            choices=["#microsoft.graph.accessPackageAssignmentRequest"], required=False
        )
        return fields

    def validate_requestType(self, value):
        for kind in SUPPORTED_TYPES:
            if kind.lower() == value.lower():  # Graph's examples write UserAdd and userAdd
                return kind
        raise serializers.ValidationError(
            f"'{value[:40]}' is not a request type that can be submitted; use one of "
            f"{', '.join(SUPPORTED_TYPES)}."
        )


ADD_TYPES = (RequestType.USER_ADD, RequestType.ON_BEHALF_ADD, RequestType.ADMIN_ADD)
EXTEND_TYPES = (RequestType.USER_EXTEND, RequestType.USER_UPDATE)
REMOVE_TYPES = (RequestType.USER_REMOVE, RequestType.ADMIN_REMOVE)
ADMIN_TYPES = (RequestType.ADMIN_ADD, RequestType.ADMIN_UPDATE, RequestType.ADMIN_REMOVE)
# What a person does for themselves, so an application cannot.
PERSONAL_TYPES = (RequestType.USER_ADD, *EXTEND_TYPES, RequestType.USER_REMOVE)
SUPPORTED_TYPES = [*ADD_TYPES, *EXTEND_TYPES, RequestType.ADMIN_UPDATE, *REMOVE_TYPES]


def _is_application(request):
    return getattr(request.auth, "kind", None) == "application"


def _answers(items):
    """{question id: value, or [values] when one question is answered more than once}."""
    answers = {}
    for item in items or []:
        key = str(item["answeredQuestion"]["id"])
        value = item["value"]
        if key in answers:
            previous = answers[key]
            answers[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            answers[key] = value
    return answers


def _period(schedule, now):
    """(start, end) asked for by ``schedule``; a duration counts from the start (or now)."""
    if not schedule:
        return None, None
    start = schedule.get("startDateTime")
    expiration = schedule.get("expiration") or {}
    kind = expiration.get("type")
    end, duration = expiration.get("endDateTime"), expiration.get("duration")
    if end and duration:
        raise bad_request("schedule.expiration: give endDateTime or duration, not both.")
    if kind == "noExpiration" and (end or duration):
        raise bad_request("schedule.expiration: noExpiration takes no endDateTime or duration.")
    if kind == "afterDateTime" and not end:
        raise bad_request("schedule.expiration: afterDateTime needs endDateTime.")
    if kind == "afterDuration" and not duration:
        raise bad_request("schedule.expiration: afterDuration needs duration.")
    if duration:
        end = (start or now) + duration
    return start, end


# --------------------------------------------------------------------------------------
# The resource
# --------------------------------------------------------------------------------------


class AssignmentRequestViewSet(GraphViewSet):
    context = f"{BASE}/assignmentRequests"
    serializer_class = AssignmentRequestSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = MY_ACCESS
    action_permissions = {
        "retrieve": MY_ACCESS_READ,
        "filter_by_current_user": MY_ACCESS_READ,
        "reprocess": (EM_READWRITE,),
    }
    filter_fields = REQUEST_FILTER_FIELDS
    default_order = ("pk",)

    def visible(self):
        """The catalogs' requests the caller may see; a single one also when the caller
        made it or it is for them."""
        user = self.request.user
        rows = AssignmentRequest.objects.restrict(user, "view")
        if self.detail:
            rows = rows | AssignmentRequest.objects.restrict(user, "own")
        return _with_answers(rows)

    @graph_schema(
        summary="The caller's own requests: for them (target) or made by them (createdBy)",
        collection=AssignmentRequestSerializer,
        on=("target", "createdBy"),
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=r"filterByCurrentUser\(on='(?P<on>[^']*)'\)",
        url_name="filter-by-current-user",
    )
    def filter_by_current_user(self, request, on):
        own = AssignmentRequest.objects.restrict(request.user, "own")
        if on == "target":
            rows = own.filter(target=request.user)
        elif on == "createdBy":
            rows = own.filter(requestor=request.user)
        else:
            raise bad_request(
                f"filterByCurrentUser on '{on}' is not supported; use 'target' or 'createdBy'."
            )
        return self.collection(_with_answers(rows))

    @extend_schema(
        summary="Submit a request (or, with isValidationOnly, see what it would do)",
        request=AssignmentRequestCreateSerializer,
        responses={201: AssignmentRequestSerializer, 200: AssignmentRequestSerializer},
    )
    def create(self, request):
        body = self.body(AssignmentRequestCreateSerializer)
        kind = body["requestType"]
        reference = body.get("assignment") or body.get("accessPackageAssignment") or {}
        if _is_application(request) and kind in PERSONAL_TYPES:
            raise bad_request(
                f"{_a(kind)} request is made by a person about their own access, with their "
                "own token; an application assigns with adminAdd and removes with adminRemove."
            )
        if kind in ADMIN_TYPES and EM_READWRITE not in granted(request):
            raise forbidden(
                f"{_a(kind)} request needs the permission {EM_READWRITE}; this token lacks it."
            )
        submit = self._submission(kind, reference, body)
        if body["isValidationOnly"]:
            return self._validation_answer(api_requests.request_validate(submit))
        made = submit()
        return self.created(AssignmentRequest.objects.get(pk=made.pk))

    def _submission(self, kind, reference, body):
        """The service call ``body`` asks for, checked and ready to run."""
        actor, now = self.request.user, timezone.now()
        justification = body.get("justification") or ""
        answers, schedule = body.get("answers"), body.get("schedule")
        if kind in ADD_TYPES:
            if reference.get("id") or not reference.get("accessPackageId"):
                raise bad_request(
                    f"{_a(kind)} request creates an assignment: give assignment.accessPackageId "
                    "(and targetId, assignmentPolicyId), not the id of an existing assignment."
                )
            if kind != RequestType.USER_ADD and not reference.get("targetId"):
                raise bad_request(f"{_a(kind)} request needs assignment.targetId: who it is for.")
            packages = AccessPackage.objects.select_related("catalog")
            if kind == RequestType.ADMIN_ADD:
                packages = AccessPackage.objects.restrict(actor, "view").select_related("catalog")
            package = self.find(packages, reference["accessPackageId"], "access package")
            policy = None
            if reference.get("assignmentPolicyId"):
                policy = self.find(
                    AssignmentPolicy.objects.all(), reference["assignmentPolicyId"], "policy"
                )
            target = actor
            if reference.get("targetId"):
                target = self.find(User.objects.all(), reference["targetId"], "user")
            start, end = _period(schedule, now)
            return lambda: request_submit(
                actor=actor,
                target=target,
                access_package=package,
                policy=policy,
                request_type=kind,
                justification=justification,
                answers=_answers(answers),
                schedule_start=start,
                schedule_end=end,
                channel=Channel.API,
                now=now,
            )

        if not reference.get("id"):
            raise bad_request(
                f"{_a(kind)} request is about an existing assignment: give assignment.id."
            )
        if answers:
            raise bad_request(f"{_a(kind)} request takes no answers.")
        rows = Assignment.objects.restrict(actor, "view" if kind in ADMIN_TYPES else "own")
        assignment = self.find(
            rows.select_related("access_package__catalog", "assignment_policy", "target"),
            reference["id"],
            "assignment",
        )
        if kind in REMOVE_TYPES:
            if schedule:
                raise bad_request(f"{_a(kind)} request takes no schedule: it ends the access now.")
            return lambda: api_requests.request_remove(
                actor=actor,
                assignment=assignment,
                request_type=kind,
                justification=justification,
                channel=Channel.API,
                now=now,
            )
        start, end = _period(schedule, now)
        if start is not None:
            raise bad_request(f"{_a(kind)} request moves the end of the access, not its start.")
        if kind == RequestType.ADMIN_UPDATE:
            return lambda: api_requests.request_admin_update(
                actor=actor,
                assignment=assignment,
                justification=justification,
                schedule_end=end,
                channel=Channel.API,
                now=now,
            )
        return lambda: request_extend(
            actor=actor,
            assignment=assignment,
            justification=justification,
            schedule_end=end,
            channel=Channel.API,
            now=now,
        )

    def _validation_answer(self, would_be):
        """200 with the request as it would have been: no id, as nothing was created."""
        if would_be.request_type in ADD_TYPES:
            would_be.assignment = None
        else:
            would_be.assignment = Assignment.objects.filter(pk=would_be.assignment_id).first()
        options = self.query_options()
        data = AssignmentRequestSerializer(
            would_be,
            options=options,
            context={**self.get_serializer_context(), "validation_only": True},
        ).data
        data["id"] = None
        body = {"@odata.context": self.context_url(self.context, entity=True), **data}
        return Response(body, status=status.HTTP_200_OK)

    @graph_schema(summary="Cancel a request that is still open")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        request_cancel(actor=request.user, request=self.get_object(), channel=Channel.API)
        return self.no_content()

    @graph_schema(
        summary="Resume a request waiting for a custom extension (signed: Standard Webhooks)"
    )
    @action(detail=True, methods=["post"], authentication_classes=[], permission_classes=[AllowAny])
    def resume(self, request, pk=None):
        """The extension's answer. Authenticated by the Standard Webhooks signature made with
        the extension's own signing secret (webhook-id, webhook-timestamp, webhook-signature),
        not by a token: only the holder of that secret can resume its callouts."""
        from standardwebhooks.webhooks import WebhookVerificationError

        raw = request._request.body
        headers = {key.lower(): value for key, value in request.headers.items()}
        if not all(headers.get(f"webhook-{part}") for part in ("id", "timestamp", "signature")):
            raise _unsigned("Sign the call: webhook-id, webhook-timestamp and webhook-signature.")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise bad_request("The request body must be JSON.") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise bad_request("Give data: the accessPackageAssignmentRequestCallbackData.")
        # A callback, never one of our own callouts played back: same secret, same scheme.
        if str(data.get("@odata.type") or "").lstrip("#") != CALLBACK_DATA:
            raise bad_request(f"data must be a #{CALLBACK_DATA}.")
        if body.get("source") == CALLOUT_SOURCE or "callbackUriPath" in data:
            raise bad_request("This is a callout, not an answer to one.")
        stage = data.get("stage")
        callout_id = data.get("customExtensionStageInstanceId")
        if not isinstance(stage, str) or not isinstance(callout_id, str):
            raise bad_request("data needs stage and customExtensionStageInstanceId (strings).")
        kind = body.get("type")
        if (
            kind is not None
            and kind != f"microsoft.graph.accessPackageCustomExtensionStage.{stage}"
        ):
            raise bad_request(f"type '{kind}' does not match the stage '{stage}'.")
        try:
            request_id = uuid.UUID(str(pk))
        except ValueError:
            raise not_found("No such request.") from None
        callout = callout_for_resume(request_id=request_id, callout_id=callout_id)
        if callout is None:
            raise not_found("No callout of that id was made for this request.")
        if callout_id_taken(headers["webhook-id"]):
            raise bad_request("The webhook-id of an answer cannot be a callout's id.")
        problem = callout.custom_extension.secret_problem()
        if problem:
            logger.warning("Resume of %s refused: %s", callout.pk, problem)
            raise GraphError(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "This extension cannot check signatures now.",
            )
        try:
            from standardwebhooks import Webhook

            Webhook(callout.custom_extension.secret()).verify(raw, headers, json_parse=False)
        except (WebhookVerificationError, ValueError, TypeError):
            raise _unsigned("The signature does not verify with this extension's secret.") from None
        detail = data.get("customExtensionStageInstanceDetail") or ""
        state = data.get("state") or ""
        if not isinstance(detail, str) or not isinstance(state, str):
            raise bad_request("customExtensionStageInstanceDetail and state are strings.")
        if state.lower() not in CALLBACK_STATES:
            raise bad_request(
                f"state '{state}' is not an answer: leave it out to continue, or give "
                "Denied or Canceled."
            )
        request_resume(
            request_id=request_id, callout_id=callout.pk, stage=stage, state=state, detail=detail
        )
        return self.no_content()

    @graph_schema(summary="Deliver again what a request's delivery left out", status=202)
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        api_requests.request_reprocess(
            actor=request.user, request=self.get_object(), channel=Channel.API
        )
        return Response(status=status.HTTP_202_ACCEPTED)


def _with_answers(rows):
    return rows.prefetch_related(
        Prefetch(
            "answers",
            queryset=RequestAnswer.objects.select_related("question").order_by(
                "question__sequence"
            ),
        ),
        Prefetch(
            "custom_extension_callouts",
            queryset=CustomExtensionCallout.objects.select_related("custom_extension").order_by(
                "created"
            ),
        ),
    )


def _unsigned(message):
    return GraphError(
        status.HTTP_401_UNAUTHORIZED,
        "InvalidSignature",
        message,
        headers={"WWW-Authenticate": 'StandardWebhooks realm="custom-extensions"'},
    )


def register(routers):
    routers[BASE].register(
        "assignmentRequests", AssignmentRequestViewSet, basename="assignment-request"
    )
