"""assignmentPolicies: a whole policy body in and out, as Graph and its SDKs write it."""

import copy
from datetime import timedelta

import pytest

from entitlements.models import (
    AdminRole,
    ApprovalStage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AuditEvent,
    Question,
    QuestionChoice,
    QuestionLocalization,
    RequestAnswer,
    RoleAssignment,
)
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    ConnectedOrganizationFactory,
    GroupFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
    add_subject,
)

URL = "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies"
G = "#microsoft.graph."

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def package(db):
    return AccessPackageFactory(display_name="Sales tools")


@pytest.fixture
def people(db):
    return {
        "approver": UserFactory(display_name="Arno"),
        "fallback": UserFactory(display_name="Fay"),
        "escalation": UserFactory(display_name="Esko"),
        "reviewer": UserFactory(display_name="Rhea"),
        "group": GroupFactory(display_name="Sales"),
        "org": ConnectedOrganizationFactory(display_name="Contoso"),
    }


def full_body(package, people):
    """Every property Graph's policy has, with values the product keeps."""
    return {
        "displayName": "Sales staff",
        "description": "Sales people and partners",
        "allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [
            {"@odata.type": f"{G}groupMembers", "groupId": str(people["group"].pk)},
        ],
        "expiration": {"type": "afterDuration", "endDateTime": None, "duration": "P30D"},
        "requestorSettings": {
            "enableTargetsToSelfAddAccess": True,
            "enableTargetsToSelfUpdateAccess": True,
            "enableTargetsToSelfRemoveAccess": False,
            "allowCustomAssignmentSchedule": True,
            "enableOnBehalfRequestorsToAddAccess": True,
            "enableOnBehalfRequestorsToUpdateAccess": False,
            "enableOnBehalfRequestorsToRemoveAccess": False,
            "onBehalfRequestors": [{"@odata.type": f"{G}targetManager", "managerLevel": 1}],
        },
        "requestApprovalSettings": {
            "isApprovalRequiredForAdd": True,
            "isApprovalRequiredForUpdate": True,
            "isRequestorJustificationRequired": True,
            "stages": [
                {
                    "durationBeforeAutomaticDenial": "P14D",
                    "isApproverJustificationRequired": True,
                    "isEscalationEnabled": True,
                    "durationBeforeEscalation": "P3D",
                    "approverInformationVisibility": "default",
                    "primaryApprovers": [
                        {"@odata.type": f"{G}requestorManager", "managerLevel": 1}
                    ],
                    "fallbackPrimaryApprovers": [
                        {"@odata.type": f"{G}singleUser", "userId": str(people["fallback"].pk)}
                    ],
                    "escalationApprovers": [
                        {"@odata.type": f"{G}singleUser", "userId": str(people["escalation"].pk)}
                    ],
                    "fallbackEscalationApprovers": [],
                },
                {
                    "durationBeforeAutomaticDenial": "PT12H",
                    "isApproverJustificationRequired": False,
                    "isEscalationEnabled": False,
                    "durationBeforeEscalation": None,
                    "approverInformationVisibility": "default",
                    "primaryApprovers": [
                        {"@odata.type": f"{G}singleUser", "userId": str(people["approver"].pk)},
                        {"@odata.type": f"{G}groupMembers", "groupId": str(people["group"].pk)},
                    ],
                    "fallbackPrimaryApprovers": [],
                    "escalationApprovers": [],
                    "fallbackEscalationApprovers": [],
                },
            ],
        },
        "reviewSettings": {
            "isEnabled": True,
            "expirationBehavior": "removeAccess",
            "isRecommendationEnabled": True,
            "isReviewerJustificationRequired": True,
            "isSelfReview": False,
            "schedule": {
                "startDateTime": "2027-01-04T00:00:00Z",
                "expiration": {"type": "afterDuration", "duration": "P14D", "endDateTime": None},
                "recurrence": {
                    "pattern": {"type": "absoluteMonthly", "interval": 3},
                    "range": {"type": "noEnd", "startDate": "2027-01-04"},
                },
            },
            "primaryReviewers": [
                {"@odata.type": f"{G}singleUser", "userId": str(people["reviewer"].pk)}
            ],
            "fallbackReviewers": [],
        },
        "automaticRequestSettings": {
            "requestAccessForAllowedTargets": False,
            "removeAccessWhenTargetLeavesAllowedTargets": True,
            "gracePeriodBeforeAccessRemoval": "P7D",
        },
        "notificationSettings": {"isAssignmentNotificationDisabled": True},
        "customExtensionStageSettings": [],
        "questions": [
            {
                "@odata.type": f"{G}accessPackageTextInputQuestion",
                "sequence": 1,
                "isRequired": True,
                "isAnswerEditable": True,
                "text": "Your cost centre?",
                "localizations": [{"languageCode": "fr", "text": "Votre centre de coûts ?"}],
                "isSingleLineQuestion": True,
                "regexPattern": "[A-Z]{2}-[0-9]{4}",
                "formatHint": "two capital letters, a dash and four digits (AB-1234)",
            },
            {
                "@odata.type": f"{G}accessPackageMultipleChoiceQuestion",
                "sequence": 2,
                "isRequired": False,
                "isAnswerEditable": False,
                "text": "Which region?",
                "localizations": [],
                "isMultipleSelectionAllowed": True,
                "choices": [
                    {"actualValue": "emea", "text": "Europe", "localizations": []},
                    {"actualValue": "apac", "text": "Asia", "localizations": []},
                ],
            },
        ],
        "accessPackage": {"id": str(package.pk)},
    }


def without_ids(body):
    body = copy.deepcopy(body)
    for question in body.get("questions", []):
        question.pop("id", None)
    return body


def comparable(sent, got):
    """What came back, restricted to the properties that were sent."""
    if isinstance(sent, dict):
        return {key: comparable(value, got.get(key)) for key, value in sent.items()}
    if isinstance(sent, list) and isinstance(got, list):
        return [comparable(s, g) for s, g in zip(sent, got, strict=False)] + got[len(sent) :]
    return got


def post(client, body):
    return client.post(URL, body, content_type="application/json")


def test_a_full_policy_round_trips(admin_client, package, people):
    body = full_body(package, people)
    response = post(admin_client, body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert response["Location"].endswith(f"/assignmentPolicies/{created['id']}")
    got = admin_client.get(f"{URL}/{created['id']}").json()
    sent = {k: v for k, v in body.items() if k != "accessPackage"}
    assert comparable(sent, without_ids(got)) == sent
    assert all(q["id"] for q in got["questions"])
    policy = AssignmentPolicy.objects.get(pk=created["id"])
    assert policy.access_package == package
    assert policy.approval_stages.count() == 2
    assert AuditEvent.objects.filter(
        action="assignmentPolicy.created", channel="api", object_id=str(policy.pk)
    ).exists()
    assert AuditEvent.objects.filter(action="approvalStage.created", channel="api").count() == 2


def test_a_minimal_body_takes_the_defaults(admin_client, package):
    response = post(
        admin_client,
        {
            "displayName": "All",
            "accessPackage": {"id": str(package.pk)},
            "requestApprovalSettings": {"isApprovalRequiredForAdd": False},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["allowedTargetScope"] == "allMemberUsers"
    assert body["expiration"] == {"type": "afterDuration", "endDateTime": None, "duration": "P365D"}
    assert body["requestApprovalSettings"]["stages"] == []
    assert body["questions"] == [] and body["specificAllowedTargets"] == []


def test_approval_required_without_a_stage_is_400_and_nothing_is_made(admin_client, package):
    """Approval is required by default: a body that gives no stage would make a policy
    people could request and nobody could approve."""
    response = post(admin_client, {"displayName": "All", "accessPackage": {"id": str(package.pk)}})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "requestApprovalSettings.isApprovalRequiredForAdd:"
    )
    assert not package.assignment_policies.filter(display_name="All").exists()


# ---- the Python SDK as a client -------------------------------------------------------


def sdk_policy(package, people):
    """The policy as a script using msgraph-sdk builds it."""
    from msgraph.generated.models import (
        access_package,
        access_package_answer_choice,
        access_package_approval_stage,
        access_package_assignment_approval_settings,
        access_package_assignment_policy,
        access_package_assignment_requestor_settings,
        access_package_automatic_request_settings,
        access_package_localized_text,
        access_package_multiple_choice_question,
        access_package_text_input_question,
        allowed_target_scope,
        expiration_pattern,
        expiration_pattern_type,
        group_members,
        requestor_manager,
        single_user,
    )

    stage = access_package_approval_stage.AccessPackageApprovalStage(
        duration_before_automatic_denial=timedelta(days=14),
        is_approver_justification_required=True,
        is_escalation_enabled=True,
        duration_before_escalation=timedelta(days=2, hours=12),
        primary_approvers=[requestor_manager.RequestorManager(manager_level=1)],
        fallback_primary_approvers=[single_user.SingleUser(user_id=str(people["fallback"].pk))],
        escalation_approvers=[single_user.SingleUser(user_id=str(people["escalation"].pk))],
    )
    return access_package_assignment_policy.AccessPackageAssignmentPolicy(
        display_name="From the SDK",
        description="Built with msgraph-sdk",
        allowed_target_scope=allowed_target_scope.AllowedTargetScope.SpecificDirectoryUsers,
        specific_allowed_targets=[group_members.GroupMembers(group_id=str(people["group"].pk))],
        expiration=expiration_pattern.ExpirationPattern(
            type=expiration_pattern_type.ExpirationPatternType.AfterDuration,
            duration=timedelta(hours=8),
        ),
        requestor_settings=access_package_assignment_requestor_settings.AccessPackageAssignmentRequestorSettings(
            enable_targets_to_self_add_access=True, allow_custom_assignment_schedule=True
        ),
        request_approval_settings=access_package_assignment_approval_settings.AccessPackageAssignmentApprovalSettings(
            is_approval_required_for_add=True, stages=[stage]
        ),
        automatic_request_settings=access_package_automatic_request_settings.AccessPackageAutomaticRequestSettings(
            request_access_for_allowed_targets=False,
            remove_access_when_target_leaves_allowed_targets=True,
            grace_period_before_access_removal=timedelta(days=1),
        ),
        questions=[
            access_package_text_input_question.AccessPackageTextInputQuestion(
                text="Why?", is_required=True, sequence=1, is_single_line_question=False
            ),
            access_package_multiple_choice_question.AccessPackageMultipleChoiceQuestion(
                text="Where?",
                sequence=2,
                localizations=[
                    access_package_localized_text.AccessPackageLocalizedText(
                        language_code="de", text="Wo?"
                    )
                ],
                choices=[
                    access_package_answer_choice.AccessPackageAnswerChoice(
                        actual_value="hq", text="Headquarters"
                    )
                ],
            ),
        ],
        access_package=access_package.AccessPackage(id=str(package.pk)),
    )


def test_a_policy_serialised_by_the_sdk_is_accepted_and_reads_back_into_its_models(
    admin_client, package, people
):
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
    from msgraph.generated.models.access_package_assignment_policy import (
        AccessPackageAssignmentPolicy,
    )
    from msgraph.generated.models.access_package_multiple_choice_question import (
        AccessPackageMultipleChoiceQuestion,
    )
    from msgraph.generated.models.requestor_manager import RequestorManager

    writer = JsonSerializationWriter()
    writer.write_object_value(None, sdk_policy(package, people))
    content = writer.get_serialized_content()
    assert b"14 days, 0:00:00" in content  # kiota writes a timedelta as str() does
    response = admin_client.post(URL, content, content_type="application/json")
    assert response.status_code == 201, response.content

    node = JsonParseNodeFactory().get_root_parse_node("application/json", response.content)
    policy = node.get_object_value(AccessPackageAssignmentPolicy)
    assert policy.display_name == "From the SDK"
    assert policy.expiration.duration == timedelta(hours=8)
    stage = policy.request_approval_settings.stages[0]
    assert stage.duration_before_automatic_denial == timedelta(days=14)
    assert stage.duration_before_escalation == timedelta(days=2, hours=12)
    assert isinstance(stage.primary_approvers[0], RequestorManager)
    assert stage.fallback_primary_approvers[0].user_id == str(people["fallback"].pk)
    assert policy.automatic_request_settings.grace_period_before_access_removal == timedelta(1)
    question = policy.questions[1]
    assert isinstance(question, AccessPackageMultipleChoiceQuestion)
    assert question.choices[0].actual_value == "hq"
    assert question.localizations[0].text == "Wo?"
    assert policy.specific_allowed_targets[0].group_id == str(people["group"].pk)


# ---- every check the admin makes is a 400 naming the property -------------------------


def _stage(body, i=0):
    return body["requestApprovalSettings"]["stages"][i]


def _set(**changes):
    def change(body, people):
        for path, value in changes.items():
            target = body
            *parents, last = path.split("__")
            for part in parents:
                target = target[int(part)] if part.isdigit() else target[part]
            target[int(last) if last.isdigit() else last] = value

    return change


def _four_stages(body, people):
    stages = body["requestApprovalSettings"]["stages"]
    stages += [copy.deepcopy(stages[1]), copy.deepcopy(stages[1])]


def _unknown_user(body, people):
    _stage(body)["fallbackPrimaryApprovers"][0]["userId"] = "00000000-0000-0000-0000-000000000001"


INVALID = {
    "no duration": (_set(expiration__duration=None), "expiration.duration"),
    "zero duration": (_set(expiration__duration="PT0S"), "expiration.duration"),
    "years": (_set(expiration__duration="P1Y"), "expiration.duration"),
    "not a duration": (_set(expiration__duration="soon"), "expiration.duration"),
    "no end date": (_set(expiration__type="afterDateTime"), "expiration.endDateTime"),
    "not specified": (_set(expiration__type="notSpecified"), "expiration.type"),
    "negative grace": (
        _set(automaticRequestSettings__gracePeriodBeforeAccessRemoval="-P1D"),
        "automaticRequestSettings.gracePeriodBeforeAccessRemoval",
    ),
    "automatic, but users may request": (
        _set(automaticRequestSettings__requestAccessForAllowedTargets=True),
        "requestorSettings.enableTargetsToSelfAddAccess",
    ),
    "no targets": (_set(specificAllowedTargets=[]), "allowedTargetScope"),
    "service principals": (
        _set(allowedTargetScope="allDirectoryServicePrincipals"),
        "allowedTargetScope",
    ),
    "manager may not request": (
        _set(specificAllowedTargets__0={"@odata.type": f"{G}requestorManager"}),
        "specificAllowedTargets.0.@odata.type",
    ),
    "a rule that cannot be read": (
        _set(
            specificAllowedTargets__0={
                "@odata.type": f"{G}attributeRuleMembers",
                "membershipRule": "x",
            }
        ),
        "specificAllowedTargets.0.membershipRule",
    ),
    "no group id": (
        _set(specificAllowedTargets__0={"@odata.type": f"{G}groupMembers"}),
        "specificAllowedTargets.0.groupId",
    ),
    "unknown user": (
        _unknown_user,
        "requestApprovalSettings.stages.0.fallbackPrimaryApprovers.0.userId",
    ),
    "manager level 3": (
        _set(requestApprovalSettings__stages__0__primaryApprovers__0__managerLevel=3),
        "requestApprovalSettings.stages.0.primaryApprovers.0.managerLevel",
    ),
    "four stages": (_four_stages, "requestApprovalSettings.stages"),
    "no approver": (
        _set(requestApprovalSettings__stages__1__primaryApprovers=[]),
        "requestApprovalSettings.stages.1.primaryApprovers",
    ),
    "escalation without escalation approvers": (
        _set(requestApprovalSettings__stages__0__escalationApprovers=[]),
        "requestApprovalSettings.stages.0.escalationApprovers",
    ),
    "escalation without a time": (
        _set(requestApprovalSettings__stages__0__durationBeforeEscalation=None),
        "requestApprovalSettings.stages.0.durationBeforeEscalation",
    ),
    "escalation after the deadline": (
        _set(requestApprovalSettings__stages__0__durationBeforeEscalation="P20D"),
        "requestApprovalSettings.stages.0.durationBeforeEscalation",
    ),
    "zero deadline": (
        _set(requestApprovalSettings__stages__1__durationBeforeAutomaticDenial="PT0S"),
        "requestApprovalSettings.stages.1.durationBeforeAutomaticDenial",
    ),
    "approver details hidden": (
        _set(requestApprovalSettings__stages__0__approverInformationVisibility="notVisible"),
        "approverInformationVisibility",
    ),
    "review without a start": (
        _set(reviewSettings__schedule__startDateTime=None),
        "reviewSettings.schedule.startDateTime",
    ),
    "review without reviewers": (_set(reviewSettings__primaryReviewers=[]), "reviewSettings"),
    "manager reviews without fallback": (
        _set(reviewSettings__primaryReviewers=[{"@odata.type": f"{G}targetManager"}]),
        "reviewSettings.isEnabled",
    ),
    "review every two weeks": (
        _set(reviewSettings__schedule__recurrence__pattern={"type": "weekly", "interval": 2}),
        "reviewSettings.schedule.recurrence",
    ),
    "choice question without choices": (
        _set(questions__1__choices=[]),
        "questions.1.choices",
    ),
    "two choices with one value": (
        _set(questions__1__choices__1__actualValue="emea"),
        "questions.1.choices.1.actualValue",
    ),
    "pattern on a choice question": (
        _set(questions__1__regexPattern="[a-z]+"),
        "questions.1.regexPattern",
    ),
    "unsafe pattern": (_set(questions__0__regexPattern="(a+)+$"), "questions.0.regexPattern"),
    "pattern without a hint": (_set(questions__0__formatHint=""), "questions.0.formatHint"),
    "translated choice": (
        _set(questions__1__choices__0__localizations=[{"languageCode": "fr", "text": "x"}]),
        "questions.1.choices.0.localizations",
    ),
    "two translations into one language": (
        _set(
            questions__0__localizations=[
                {"languageCode": "fr", "text": "a"},
                {"languageCode": "FR", "text": "b"},
            ]
        ),
        "questions.0.localizations.1.languageCode",
    ),
    "unknown question type": (
        _set(questions__0={"@odata.type": f"{G}accessPackageQuestion", "text": "x"}),
        "questions.0.@odata.type",
    ),
    "custom extensions": (
        _set(customExtensionStageSettings=[{"stage": "assignmentRequestCreated"}]),
        "customExtensionStageSettings",
    ),
    "no name": (_set(displayName=""), "displayName"),
}


@pytest.mark.parametrize("change, path", INVALID.values(), ids=INVALID.keys())
def test_a_policy_the_product_cannot_keep_is_400_naming_the_property(
    admin_client, package, people, change, path
):
    body = full_body(package, people)
    change(body, people)
    response = post(admin_client, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert f"{path}:" in error["message"] or error["message"].startswith(path), error["message"]
    assert not AssignmentPolicy.objects.exists()
    assert not AuditEvent.objects.exists()


# ---- replacing and deleting -----------------------------------------------------------


def created_policy(client, package, people):
    response = post(client, full_body(package, people))
    assert response.status_code == 201, response.content
    return response.json()


def test_put_replaces_the_policy_and_keeps_the_stages_and_questions_it_still_has(
    admin_client, package, people
):
    got = created_policy(admin_client, package, people)
    policy = AssignmentPolicy.objects.get(pk=got["id"])
    stage_one = policy.approval_stages.get(sequence=1)
    kept_question = got["questions"][0]
    body = full_body(package, people)
    body["displayName"] = "Renamed"
    body["requestApprovalSettings"]["stages"] = body["requestApprovalSettings"]["stages"][:1]
    body["questions"] = [{**body["questions"][0], "id": kept_question["id"], "text": "Centre?"}]
    body["questions"][0].pop("formatHint")  # kept as it was: Graph has no such property
    response = admin_client.put(f"{URL}/{got['id']}", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["displayName"] == "Renamed"
    assert [s.pk for s in policy.approval_stages.all()] == [stage_one.pk]
    question = Question.objects.get(policy=policy)
    assert str(question.pk) == kept_question["id"] and question.text == "Centre?"
    assert question.format_hint.startswith("two capital letters")
    assert AuditEvent.objects.filter(action="approvalStage.deleted", channel="api").count() == 1
    assert AuditEvent.objects.filter(action="question.changed", channel="api").count() == 1


def test_put_of_the_same_body_changes_nothing_and_audits_nothing(admin_client, package, people):
    got = created_policy(admin_client, package, people)
    before = AuditEvent.objects.count()
    body = full_body(package, people)
    for sent, question in zip(body["questions"], got["questions"], strict=True):
        sent["id"] = question["id"]
    response = admin_client.put(f"{URL}/{got['id']}", body, content_type="application/json")
    assert response.status_code == 200, response.content
    assert AuditEvent.objects.count() == before


def test_put_may_not_move_a_policy_to_another_package(admin_client, package, people):
    got = created_policy(admin_client, package, people)
    other = AccessPackageFactory(catalog=package.catalog)
    body = {**full_body(package, people), "accessPackage": {"id": str(other.pk)}}
    response = admin_client.put(f"{URL}/{got['id']}", body, content_type="application/json")
    assert response.status_code == 400
    assert "accessPackage" in response.json()["error"]["message"]
    assert AssignmentPolicy.objects.get(pk=got["id"]).access_package == package


def test_a_question_requests_answered_cannot_be_dropped(admin_client, package, people, requester):
    got = created_policy(admin_client, package, people)
    policy = AssignmentPolicy.objects.get(pk=got["id"])
    request = AssignmentRequest.objects.create(
        access_package=package,
        assignment_policy=policy,
        requestor=requester,
        target=requester,
        request_type="userAdd",
        state="denied",
    )
    question = policy.questions.get(sequence=1)
    RequestAnswer.objects.create(request=request, question=question, value="AB-1234")
    body = full_body(package, people)
    body["questions"] = []
    response = admin_client.put(f"{URL}/{got['id']}", body, content_type="application/json")
    assert response.status_code == 409, response.content
    assert policy.questions.count() == 2
    assert AssignmentPolicy.objects.get(pk=policy.pk).description == body["description"]


def test_a_policy_with_assignments_cannot_be_deleted(admin_client, package, people, requester):
    policy = PolicyFactory(access_package=package)
    Assignment.objects.create(
        access_package=package, assignment_policy=policy, target=requester, state="delivered"
    )
    response = admin_client.delete(f"{URL}/{policy.pk}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "Conflict"
    assert AssignmentPolicy.objects.filter(pk=policy.pk).exists()
    assert not AuditEvent.objects.filter(action="assignmentPolicy.deleted").exists()


def test_delete_removes_the_policy_with_its_parts_audited(admin_client, package, people):
    got = created_policy(admin_client, package, people)
    assert admin_client.delete(f"{URL}/{got['id']}").status_code == 204
    assert not AssignmentPolicy.objects.filter(pk=got["id"]).exists()
    assert not ApprovalStage.objects.exists() and not Question.objects.exists()
    assert AuditEvent.objects.filter(action="assignmentPolicy.deleted", channel="api").exists()


# ---- reading ----------------------------------------------------------------------------


def test_filter_by_package_and_expand_package_and_catalog(admin_client, package, people):
    PolicyFactory(access_package=package, display_name="Mine")
    PolicyFactory(display_name="Elsewhere")
    response = admin_client.get(
        f"{URL}?$filter=accessPackage/id eq '{package.pk}'&$expand=accessPackage,catalog"
    )
    assert response.status_code == 200, response.content
    [row] = response.json()["value"]
    assert row["displayName"] == "Mine"
    assert row["accessPackage"]["displayName"] == "Sales tools"
    assert row["catalog"]["id"] == str(package.catalog_id)


def _policy_with_everything(package, people, n):
    policy = PolicyFactory(
        access_package=package,
        display_name=f"Policy {n:02}",
        allowed_target_scope="specificDirectoryUsers",
    )
    add_subject(policy, "allowedTarget", "groupMembers", group=people["group"])
    for sequence in (1, 2):
        stage = ApprovalStageFactory(policy=policy, sequence=sequence)
        add_approver(stage, user=people["approver"])
        add_approver(stage, "requestorManager", manager_level=1)
    question = QuestionFactory(policy=policy, question_type="multipleChoice")
    QuestionChoice.objects.create(question=question, actual_value="a", text="A")
    QuestionLocalization.objects.create(question=question, language_code="fr", text="Q?")
    return policy


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_is_a_fixed_number_of_queries(
    admin_client, package, people, count, django_assert_max_num_queries
):
    for n in range(count):
        _policy_with_everything(package, people, n)
    with django_assert_max_num_queries(9):
        response = admin_client.get(f"{URL}?$expand=accessPackage,catalog,questions")
    assert response.status_code == 200
    rows = response.json()["value"]
    assert len(rows) == count
    assert len(rows[0]["requestApprovalSettings"]["stages"]) == 2
    assert rows[0]["questions"][0]["choices"][0]["actualValue"] == "a"


# ---- the wrong person -------------------------------------------------------------------


def _role(user, role, catalog):
    return RoleAssignment.objects.create(role=role, principal=user, catalog=catalog)


@pytest.fixture
def reader(db, package):
    user = UserFactory(display_name="Rea Reader")
    _role(user, AdminRole.CATALOG_READER, package.catalog)
    return user


@pytest.fixture
def other_manager(db):
    user = UserFactory(display_name="Oskar Other")
    _role(user, AdminRole.ACCESS_PACKAGE_MANAGER, AccessPackageFactory().catalog)
    return user


def test_a_package_manager_of_the_catalog_writes_its_policies(client, package, people):
    user = UserFactory()
    _role(user, AdminRole.ACCESS_PACKAGE_MANAGER, package.catalog)
    client.force_login(user)
    got = created_policy(client, package, people)
    assert client.delete(f"{URL}/{got['id']}").status_code == 204


def test_a_reader_reads_but_may_not_write(client, package, people, reader):
    policy = PolicyFactory(access_package=package)
    client.force_login(reader)
    assert client.get(f"{URL}/{policy.pk}").status_code == 200
    assert post(client, full_body(package, people)).status_code == 403
    put = client.put(
        f"{URL}/{policy.pk}", full_body(package, people), content_type="application/json"
    )
    assert put.status_code == 403
    assert client.delete(f"{URL}/{policy.pk}").status_code == 403
    assert AssignmentPolicy.objects.get() == policy
    assert AssignmentPolicy.objects.get().display_name == "Employees"
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("who", ["other_manager", "outsider", "requester"])
def test_people_without_a_role_in_the_catalog_see_nothing_and_change_nothing(
    client, package, people, who, request
):
    policy = PolicyFactory(access_package=package)
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).json()["value"] == []
    assert client.get(f"{URL}/{policy.pk}").status_code == 404
    created = post(client, full_body(package, people))
    assert created.status_code == (404 if who == "other_manager" else 403), created.content
    put = client.put(
        f"{URL}/{policy.pk}", full_body(package, people), content_type="application/json"
    )
    assert put.status_code == 404
    assert client.delete(f"{URL}/{policy.pk}").status_code == 404
    assert AssignmentPolicy.objects.get().display_name == "Employees"
    assert not AuditEvent.objects.exists()


JUNK = {
    "specificAllowedTargets": "everyone",
    "expiration": "never",
    "requestorSettings": [],
    "requestApprovalSettings": {"stages": {"0": {}}},
    "questions": [1],
    "reviewSettings": {"schedule": {"recurrence": "often"}},
    "reviewSettings ": {"schedule": {"recurrence": {"pattern": {"type": [], "interval": {}}}}},
    "accessPackage": "x",
    "displayName": {"a": 1},
    "allowedTargetScope": "everybody",
}


@pytest.mark.parametrize("name, value", JUNK.items(), ids=JUNK.keys())
def test_junk_in_any_property_is_a_400(admin_client, package, people, name, value):
    body = full_body(package, people)
    if name.endswith(" "):
        body["reviewSettings"]["schedule"] = value["schedule"]
    else:
        body[name] = value
    response = post(admin_client, body)
    assert response.status_code == 400, response.content
    assert name.strip() in response.json()["error"]["message"]
    assert not AssignmentPolicy.objects.exists()


@pytest.mark.parametrize("duration", ["P9999999999D", "P36501D", "PT99999999999999H", "P1M"])
def test_a_duration_out_of_range_is_a_400(admin_client, package, people, duration):
    body = full_body(package, people)
    body["expiration"]["duration"] = duration
    response = post(admin_client, body)
    assert response.status_code == 400, response.content
    assert "expiration.duration" in response.json()["error"]["message"]


def test_an_application_granted_read_write_with_a_catalog_role_writes_policies(
    client, package, people, app_token, bearer
):
    token = app_token(
        ["EntitlementManagement.ReadWrite.All"],
        catalog_roles=[(AdminRole.ACCESS_PACKAGE_MANAGER, package.catalog)],
    )
    response = client.post(
        URL, full_body(package, people), content_type="application/json", **bearer(token)
    )
    assert response.status_code == 201, response.content
    listed = client.get(URL, **bearer(token)).json()["value"]
    assert [row["id"] for row in listed] == [response.json()["id"]]
    reader = app_token(
        ["EntitlementManagement.Read.All"],
        catalog_roles=[(AdminRole.CATALOG_OWNER, package.catalog)],
    )
    refused = client.delete(f"{URL}/{response.json()['id']}", **bearer(reader))
    assert refused.status_code == 403
    assert AssignmentPolicy.objects.count() == 1


@pytest.mark.parametrize(
    "sent, kept",
    [
        ("2027-03-01T12:00:00Z", "2027-03-01T12:00:00.000Z"),
        ("2027-03-01T13:00:00.250000+01:00", "2027-03-01T12:00:00.250Z"),
        ("2027-03-01T12:00:00", "2027-03-01T12:00:00.000Z"),  # the SDK's naive datetime: UTC
    ],
)
def test_an_end_date_is_read_with_or_without_an_offset(admin_client, package, people, sent, kept):
    body = full_body(package, people)
    body["expiration"] = {"type": "afterDateTime", "endDateTime": sent}
    response = post(admin_client, body)
    assert response.status_code == 201, response.content
    assert response.json()["expiration"] == {
        "type": "afterDateTime",
        "endDateTime": kept,
        "duration": None,
    }
