"""assignmentRequests: every request type through the real services, the dry run, cancel,
reprocess, the lists, and the wrong person for each of them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageApprover
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    GrantState,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    RequestAnswer,
    RequestState,
    RoleAssignment,
    SubjectType,
)
from entitlements.services.delivery import assignment_deliver
from notifications.models import Notification
from tests.factories import CatalogFactory, QuestionFactory, UserFactory, add_subject
from tests.lifecycle.assignment_helpers import CountingConnector, assign, use_connector
from tests.lifecycle.requests_setup import approval_policy, open_policy, package_with_roles

pytestmark = pytest.mark.django_db

URL = "/v1.0/identityGovernance/entitlementManagement/assignmentRequests"


def post(client, body, query=""):
    return client.post(f"{URL}{query}", body, content_type="application/json")


def error_of(response):
    return response.json()["error"]


def counts():
    """Rows a request can create or change: none may change when a call is refused."""
    return {
        model.__name__: model.objects.count()
        for model in (
            AssignmentRequest,
            Assignment,
            AuditEvent,
            RequestAnswer,
            RequestApprovalStage,
            StageApprover,
            Notification,
        )
    } | {
        "open assignments": Assignment.objects.exclude(state=AssignmentState.EXPIRED).count(),
        "requests by state": sorted(AssignmentRequest.objects.values_list("state", flat=True)),
    }


def give_role(user, catalog, role):
    return RoleAssignment.objects.create(principal=user, catalog=catalog, role=role)


@pytest.fixture
def package(db):
    return package_with_roles(display_name="CRM")


@pytest.fixture
def owner(catalog_owner, package):
    give_role(catalog_owner, package.catalog, AdminRole.CATALOG_OWNER)
    return catalog_owner


@pytest.fixture
def reader(package):
    user = UserFactory(display_name="Rea Reader")
    give_role(user, package.catalog, AdminRole.CATALOG_READER)
    return user


@pytest.fixture
def other_manager(db):
    """An assignment manager of another catalog."""
    user = UserFactory(display_name="Oscar Other")
    give_role(user, CatalogFactory(), AdminRole.ACCESS_PACKAGE_ASSIGNMENT_MANAGER)
    return user


def add_body(package, policy=None, target=None, kind="userAdd", **extra):
    assignment = {"accessPackageId": str(package.pk)}
    if policy is not None:
        assignment["assignmentPolicyId"] = str(policy.pk)
    if target is not None:
        assignment["targetId"] = str(target.pk)
    return {"requestType": kind, "assignment": assignment, **extra}


# --- each request type ------------------------------------------------------------------


def test_a_user_add_under_a_policy_with_one_stage_stays_pending_approval(
    client, requester, approver, package
):
    policy = approval_policy(package, approvers=[approver])
    client.force_login(requester)

    response = post(
        client,
        {
            "@odata.type": "#microsoft.graph.accessPackageAssignmentRequest",
            **add_body(package, policy, justification="For the Q3 forecast"),
        },
        "?$expand=accessPackage,requestor",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"].endswith(f"/assignmentRequests/{body['id']}")
    assert body["@odata.context"].endswith("$metadata#" + URL.split("/v1.0/")[1] + "/$entity")
    assert (body["requestType"], body["state"], body["status"]) == (
        "userAdd",
        "pendingApproval",
        "PendingApproval",
    )
    assert body["justification"] == "For the Q3 forecast"
    assert body["isValidationOnly"] is False
    assert body["accessPackage"]["displayName"] == "CRM"
    assert body["requestor"] == {
        "id": str(requester.pk),
        "objectId": str(requester.pk),
        "displayName": "Rita Requester",
        "email": "requester@example.com",
        "principalName": "requester@example.com",
        "subjectType": "user",
    }
    assert body["schedule"]["expiration"]["type"] == "notSpecified"
    request = AssignmentRequest.objects.get(pk=body["id"])
    assert request.state == RequestState.PENDING_APPROVAL
    assert request.approval_stages.get().status == "inProgress"
    assert AuditEvent.objects.filter(request=request, channel="api", actor=requester).exists()
    assert not Assignment.objects.filter(target=requester).exists()


def test_answers_to_text_and_multiple_choice_questions_are_kept_and_shown(
    client, requester, package
):
    policy = open_policy(package)
    text = QuestionFactory(policy=policy, text="Which project?", sequence=1)
    choice = QuestionFactory(
        policy=policy,
        text="Which region?",
        sequence=2,
        question_type=Question.QuestionType.MULTIPLE_CHOICE,
    )
    QuestionChoice.objects.create(question=choice, actual_value="eu", text="Europe")
    QuestionChoice.objects.create(question=choice, actual_value="us", text="Americas", sequence=2)
    client.force_login(requester)

    answer = "#microsoft.graph.accessPackageAnswerString"
    response = post(
        client,
        add_body(
            package,
            answers=[
                {
                    "@odata.type": answer,
                    "value": "Apollo",
                    "answeredQuestion": {"id": str(text.pk)},
                },
                {"@odata.type": answer, "value": "eu", "answeredQuestion": {"id": str(choice.pk)}},
            ],
        ),
    )

    assert response.status_code == 201, response.content
    answers = response.json()["answers"]
    assert [(a["value"], a["displayValue"]) for a in answers] == [
        ("Apollo", "Apollo"),
        ("eu", "Europe"),
    ]
    assert answers[1]["answeredQuestion"]["@odata.type"] == (
        "#microsoft.graph.accessPackageMultipleChoiceQuestion"
    )
    assert answers[0]["@odata.type"] == answer
    assert RequestAnswer.objects.filter(request_id=response.json()["id"]).count() == 2


def test_an_answer_that_is_not_a_choice_is_400_and_nothing_is_made(client, requester, package):
    policy = open_policy(package)
    choice = QuestionFactory(policy=policy, question_type=Question.QuestionType.MULTIPLE_CHOICE)
    QuestionChoice.objects.create(question=choice, actual_value="eu", text="Europe")
    client.force_login(requester)
    before = counts()

    response = post(
        client,
        add_body(package, answers=[{"value": "mars", "answeredQuestion": {"id": str(choice.pk)}}]),
    )

    assert response.status_code == 400, response.content
    assert "is not one of the answers" in error_of(response)["message"]
    assert counts() == before


def test_an_admin_add_is_delivered_directly(
    client, owner, requester, package, django_capture_on_commit_callbacks
):
    policy = approval_policy(package, approvers=[owner])  # approval is for requests, not admins
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, add_body(package, policy, requester, "adminAdd"))

    assert response.status_code == 201, response.content
    assert response.json()["requestType"] == "adminAdd"
    request = AssignmentRequest.objects.get(pk=response.json()["id"])
    assert request.state == RequestState.DELIVERED
    assert request.requestor == owner and request.target == requester
    assert request.assignment.state == AssignmentState.DELIVERED
    assert not request.approval_stages.exists()
    shown = client.get(f"{URL}/{request.pk}?$expand=assignment($expand=target)").json()
    assert shown["state"] == "delivered"
    assert shown["assignment"]["state"] == "delivered"
    assert shown["assignment"]["target"]["objectId"] == str(requester.pk)


def test_an_admin_remove_ends_the_assignment(
    client, owner, requester, package, django_capture_on_commit_callbacks
):
    policy = open_policy(package)
    assignment = assign(requester, package, policy)
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            {
                "requestType": "adminRemove",
                "assignment": {"id": str(assignment.pk)},
                "justification": "Left the team",
            },
        )

    assert response.status_code == 201, response.content
    assert response.json()["requestType"] == "adminRemove"
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert set(assignment.grants.values_list("state", flat=True)) == {GrantState.REMOVED}
    removal = AssignmentRequest.objects.get(pk=response.json()["id"])
    assert (removal.state, removal.justification) == (RequestState.DELIVERED, "Left the team")


def test_a_user_remove_ends_ones_own_access_when_the_policy_allows(client, requester, package):
    assignment = assign(
        requester, package, open_policy(package, enable_targets_to_self_remove_access=True)
    )
    client.force_login(requester)

    response = post(client, {"requestType": "userRemove", "assignment": {"id": str(assignment.pk)}})

    assert response.status_code == 201, response.content
    assert response.json()["requestType"] == "userRemove"
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED


def test_a_user_remove_under_a_policy_that_forbids_it_is_403(client, requester, package):
    policy = open_policy(package, enable_targets_to_self_remove_access=False)
    assignment = assign(requester, package, policy)
    client.force_login(requester)
    before = counts()

    response = post(client, {"requestType": "userRemove", "assignment": {"id": str(assignment.pk)}})

    assert response.status_code == 403
    assert "does not let you remove your own access" in error_of(response)["message"]
    assert counts() == before


def test_a_user_extend_moves_the_end_of_ones_own_access(client, requester, package):
    policy = open_policy(package, enable_targets_to_self_update_access=True)
    now = timezone.now()
    assignment = assign(requester, package, policy, now=now - timedelta(days=20))
    old_end = assignment.schedule_end
    client.force_login(requester)

    response = post(
        client,
        {
            "requestType": "userExtend",
            "assignment": {"id": str(assignment.pk)},
            "schedule": {"expiration": {"type": "afterDuration", "duration": "P25D"}},
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["requestType"], body["state"]) == ("userExtend", "delivered")
    assignment.refresh_from_db()
    assert assignment.schedule_end > old_end
    assert abs(assignment.schedule_end - (now + timedelta(days=25))) < timedelta(minutes=1)


def test_an_admin_update_moves_the_end_without_approval(client, owner, requester, package):
    policy = open_policy(package)
    assignment = assign(requester, package, policy)
    new_end = (timezone.now() + timedelta(days=10)).replace(microsecond=0)
    client.force_login(owner)

    response = post(
        client,
        {
            "requestType": "adminUpdate",
            "assignment": {"id": str(assignment.pk)},
            "schedule": {"expiration": {"endDateTime": new_end.isoformat()}},
        },
    )

    assert response.status_code == 201, response.content
    assert (response.json()["requestType"], response.json()["state"]) == (
        "adminUpdate",
        "delivered",
    )
    assignment.refresh_from_db()
    assert assignment.schedule_end == new_end


def test_an_on_behalf_add_by_the_manager(client, manager, requester, package):
    policy = open_policy(package, enable_on_behalf_requestors_to_add_access=True)
    add_subject(policy, PolicySubjectSet.Purpose.ON_BEHALF_REQUESTOR, SubjectType.TARGET_MANAGER)
    client.force_login(manager)

    response = post(client, add_body(package, target=requester, kind="onBehalfAdd"))

    assert response.status_code == 201, response.content
    request = AssignmentRequest.objects.get(pk=response.json()["id"])
    assert (request.requestor, request.target) == (manager, requester)


def test_request_types_are_read_whatever_their_case_as_graphs_examples_write_them(
    client, requester, package
):
    open_policy(package)
    client.force_login(requester)

    response = post(
        client,
        {"requestType": "UserAdd", "accessPackageAssignment": {"accessPackageId": str(package.pk)}},
    )

    assert response.status_code == 201, response.content
    assert response.json()["requestType"] == "userAdd"


# --- isValidationOnly -------------------------------------------------------------------


def test_a_validation_only_request_answers_what_would_happen_and_changes_nothing(
    client, requester, approver, package, django_capture_on_commit_callbacks
):
    policy = approval_policy(package, approvers=[approver])
    client.force_login(requester)
    before = counts()

    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, add_body(package, policy, isValidationOnly=True))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] is None
    assert body["isValidationOnly"] is True
    assert (body["state"], body["status"]) == ("pendingApproval", "PendingApproval")
    assert "Location" not in response
    assert counts() == before
    assert callbacks == []  # no email, no delivery would follow


def test_a_validation_only_admin_add_would_deliver_and_changes_nothing(
    client, owner, requester, package, django_capture_on_commit_callbacks
):
    open_policy(package)
    client.force_login(owner)
    before = counts()

    with django_capture_on_commit_callbacks() as callbacks:
        response = post(
            client, add_body(package, target=requester, kind="adminAdd", isValidationOnly=True)
        )

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "delivering"
    assert "assignment" not in response.json()  # not expanded
    assert counts() == before
    assert callbacks == []


def test_a_refused_validation_only_request_gives_the_reason_and_changes_nothing(
    client, requester, package
):
    policy = open_policy(package)
    assign(requester, package, policy)
    client.force_login(requester)
    before = counts()

    response = post(client, add_body(package, isValidationOnly=True))

    assert response.status_code == 409, response.content
    assert error_of(response)["message"] == "You already have this access package."
    assert counts() == before


def test_a_validation_only_removal_changes_nothing(client, owner, requester, package):
    assignment = assign(requester, package, open_policy(package))
    client.force_login(owner)
    before = counts()

    response = post(
        client,
        {
            "requestType": "adminRemove",
            "assignment": {"id": str(assignment.pk)},
            "isValidationOnly": True,
        },
    )

    assert response.status_code == 200, response.content
    assert response.json()["requestType"] == "adminRemove"
    assert counts() == before
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERED


@pytest.mark.parametrize("kind", ["userExtend", "adminUpdate"])
def test_a_validation_only_change_of_the_end_changes_nothing(
    client, owner, requester, package, kind
):
    policy = open_policy(package, enable_targets_to_self_update_access=True)
    assignment = assign(requester, package, policy, now=timezone.now() - timedelta(days=20))
    end = assignment.schedule_end
    client.force_login(requester if kind == "userExtend" else owner)
    before = counts()

    response = post(
        client,
        {"requestType": kind, "assignment": {"id": str(assignment.pk)}, "isValidationOnly": True},
        "?$expand=assignment",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["requestType"], body["state"], body["id"]) == (kind, "delivered", None)
    assert body["assignment"]["id"] == str(assignment.pk)
    assert counts() == before
    assignment.refresh_from_db()
    assert assignment.schedule_end == end


def test_an_admin_update_past_what_the_policy_allows_is_400(client, owner, requester, package):
    assignment = assign(requester, package, open_policy(package))
    client.force_login(owner)
    before = counts()
    too_late = (timezone.now() + timedelta(days=90)).isoformat()

    response = post(
        client,
        {
            "requestType": "adminUpdate",
            "assignment": {"id": str(assignment.pk)},
            "schedule": {"expiration": {"endDateTime": too_late}},
        },
    )

    assert response.status_code == 400
    assert "can be extended to" in error_of(response)["message"]
    assert counts() == before


# --- bad input --------------------------------------------------------------------------


def _new(a, p, t):
    return {"accessPackageId": str(p.pk), "targetId": str(t.pk)}


@pytest.mark.parametrize(
    "body, words",
    [
        (lambda a, p, t: {"requestType": "systemAdd"}, "is not a request type"),
        (lambda a, p, t: {"requestType": 7}, "requestType"),
        (lambda a, p, t: {}, "requestType"),
        (
            lambda a, p, t: {"requestType": "userAdd", "assignment": {"id": str(a.pk)}},
            "creates an assignment",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminAdd",
                "assignment": {"accessPackageId": str(p.pk)},
            },
            "targetId",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminRemove",
                "assignment": {"accessPackageId": str(p.pk)},
            },
            "assignment.id",
        ),
        (
            lambda a, p, t: {
                "requestType": "userAdd",
                "assignment": {"accessPackageId": "not-a-guid"},
            },
            "UUID",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminRemove",
                "assignment": {"id": str(a.pk)},
                "schedule": {"startDateTime": None},
            },
            "no schedule",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminAdd",
                "assignment": _new(a, p, t),
                "schedule": {"expiration": {"duration": "P1Y"}},
            },
            "is not a duration",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminAdd",
                "assignment": _new(a, p, t),
                "schedule": {"expiration": {"type": "afterDateTime"}},
            },
            "needs endDateTime",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminAdd",
                "assignment": _new(a, p, t),
                "schedule": {"recurrence": {"pattern": {}}},
            },
            "recurring",
        ),
        (
            lambda a, p, t: {
                "requestType": "adminUpdate",
                "assignment": {"id": str(a.pk)},
                "answers": [{"value": "x", "answeredQuestion": {"id": str(p.pk)}}],
            },
            "no answers",
        ),
    ],
)
def test_a_wrong_combination_is_400_with_the_reason_and_changes_nothing(
    client, owner, requester, package, body, words
):
    assignment = assign(requester, package, open_policy(package))
    client.force_login(owner)
    before = counts()

    response = post(client, body(assignment, package, UserFactory()))

    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "BadRequest"
    assert words in error_of(response)["message"]
    assert counts() == before


# --- cancel and reprocess ---------------------------------------------------------------


def test_the_requestor_cancels_a_pending_request_then_it_cannot_be_canceled_again(
    client, requester, approver, package
):
    policy = approval_policy(package, approvers=[approver])
    client.force_login(requester)
    request_id = post(client, add_body(package, policy)).json()["id"]

    canceled = client.post(f"{URL}/{request_id}/cancel")

    assert canceled.status_code == 204, canceled.content
    assert AssignmentRequest.objects.get(pk=request_id).state == RequestState.CANCELED
    again = client.post(f"{URL}/{request_id}/cancel")
    assert again.status_code == 409
    assert error_of(again)["message"] == "This request is canceled and can no longer be canceled."


def test_reprocess_delivers_again_what_failed(
    client, owner, requester, package, monkeypatch, django_capture_on_commit_callbacks
):
    role = package.resource_role_scopes.get().role
    connector = CountingConnector(failing=[role.pk])
    use_connector(monkeypatch, connector)
    policy = open_policy(package)
    client.force_login(owner)
    request_id = post(client, add_body(package, policy, requester, "adminAdd")).json()["id"]
    request = AssignmentRequest.objects.get(pk=request_id)
    assignment_deliver(assignment_id=request.assignment_id)  # as the worker would, failing
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERY_FAILED

    connector.failing.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}/{request_id}/reprocess")

    assert response.status_code == 202, response.content
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    assert AuditEvent.objects.filter(
        action="assignment.reprocessed", actor=owner, channel="api"
    ).exists()


def test_reprocess_of_a_request_that_did_not_fail_is_409(client, owner, requester, package):
    policy = approval_policy(package, approvers=[owner])
    client.force_login(requester)
    request_id = post(client, add_body(package, policy)).json()["id"]
    client.force_login(owner)
    before = counts()

    response = client.post(f"{URL}/{request_id}/reprocess")

    assert response.status_code == 409
    assert "Only a request whose delivery failed" in error_of(response)["message"]
    assert counts() == before


# --- lists --------------------------------------------------------------------------------


def test_the_list_filters_by_state_and_package_and_each_person_has_their_own(
    client, owner, requester, approver, outsider, package
):
    policy = approval_policy(package, approvers=[approver])
    other = package_with_roles(catalog=package.catalog)
    open_policy(other)
    client.force_login(requester)
    pending = post(client, add_body(package, policy)).json()["id"]
    post(client, add_body(other))
    client.force_login(owner)
    mine = post(client, add_body(other, target=owner, kind="adminAdd")).json()["id"]

    def ids(url):
        response = client.get(url)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["value"]}

    assert ids(f"{URL}?$filter=state eq 'pendingApproval'") == {pending}
    assert ids(f"{URL}?$filter=accessPackage/id eq '{package.pk}'") == {pending}
    assert len(ids(URL)) == 3
    assert ids(f"{URL}/filterByCurrentUser(on='createdBy')") == {mine}
    client.force_login(requester)
    assert len(ids(f"{URL}/filterByCurrentUser(on='target')")) == 2
    assert ids(f"{URL}/filterByCurrentUser(on='createdBy')") == ids(
        f"{URL}/filterByCurrentUser(on='target')"
    )
    assert client.get(f"{URL}/{pending}").status_code == 200
    unknown = client.get(f"{URL}/filterByCurrentUser(on='approver')")
    assert unknown.status_code == 400
    client.force_login(outsider)
    assert ids(f"{URL}/filterByCurrentUser(on='target')") == set()


# --- the wrong person ---------------------------------------------------------------------


def test_an_outsider_neither_sees_nor_cancels_nor_reprocesses_someone_elses_request(
    client, requester, approver, outsider, package
):
    policy = approval_policy(package, approvers=[approver])
    client.force_login(requester)
    request_id = post(client, add_body(package, policy)).json()["id"]
    client.force_login(outsider)
    before = counts()

    assert client.get(f"{URL}/{request_id}").status_code == 404
    assert client.get(URL).json()["value"] == []  # the list is the administrators'
    assert client.post(f"{URL}/{request_id}/cancel").status_code == 404
    assert client.post(f"{URL}/{request_id}/reprocess").status_code == 404
    assert error_of(client.get(f"{URL}/{request_id}"))["code"] == "ResourceNotFound"
    assert counts() == before


def test_a_catalog_reader_sees_requests_but_may_not_assign_remove_or_cancel(
    client, reader, requester, approver, package
):
    policy = approval_policy(package, approvers=[approver])
    assignment = assign(UserFactory(), package, policy)
    client.force_login(requester)
    request_id = post(client, add_body(package, policy)).json()["id"]
    client.force_login(reader)
    before = counts()

    assert client.get(f"{URL}/{request_id}").status_code == 200
    added = post(client, add_body(package, policy, UserFactory(), "adminAdd"))
    removed = post(client, {"requestType": "adminRemove", "assignment": {"id": str(assignment.pk)}})
    updated = post(client, {"requestType": "adminUpdate", "assignment": {"id": str(assignment.pk)}})
    canceled = client.post(f"{URL}/{request_id}/cancel")

    assert [added.status_code, removed.status_code, updated.status_code] == [403, 403, 403]
    assert canceled.status_code == 403
    assert "catalog" in error_of(added)["message"]
    assert counts() == before


def test_another_catalogs_assignment_manager_cannot_act_here(
    client, other_manager, requester, approver, package
):
    policy = approval_policy(package, approvers=[approver])
    assignment = assign(UserFactory(), package, policy)
    client.force_login(requester)
    request_id = post(client, add_body(package, policy)).json()["id"]
    client.force_login(other_manager)
    before = counts()

    assert client.get(URL).json()["value"] == []
    assert client.get(f"{URL}/{request_id}").status_code == 404
    assert post(client, add_body(package, policy, requester, "adminAdd")).status_code == 404
    assert (
        post(
            client, {"requestType": "adminRemove", "assignment": {"id": str(assignment.pk)}}
        ).status_code
        == 404
    )
    assert client.post(f"{URL}/{request_id}/cancel").status_code == 404
    assert counts() == before


def test_a_person_may_not_request_for_someone_else_as_a_user_add(
    client, requester, outsider, package
):
    open_policy(package)
    client.force_login(outsider)
    before = counts()

    response = post(client, add_body(package, target=requester))

    assert response.status_code == 403
    assert "only for yourself" in error_of(response)["message"]
    assert counts() == before


def test_a_person_may_not_remove_or_extend_someone_elses_access(
    client, requester, outsider, package
):
    assignment = assign(
        requester,
        package,
        open_policy(
            package,
            enable_targets_to_self_remove_access=True,
            enable_targets_to_self_update_access=True,
        ),
    )
    client.force_login(outsider)
    before = counts()

    for kind in ("userRemove", "userExtend", "adminRemove"):
        response = post(client, {"requestType": kind, "assignment": {"id": str(assignment.pk)}})
        assert response.status_code == 404, (kind, response.content)
    assert counts() == before


@pytest.mark.parametrize("rows", [10, 200])
def test_the_list_with_every_expand_and_the_answers_is_a_fixed_number_of_queries(
    client, owner, package, rows, django_assert_max_num_queries
):
    policy = open_policy(package)
    question = QuestionFactory(policy=policy)
    for user in UserFactory.create_batch(rows):
        request = AssignmentRequest.objects.create(
            access_package=package,
            assignment_policy=policy,
            requestor=user,
            target=user,
            request_type="userAdd",
            state=RequestState.PENDING_APPROVAL,
        )
        RequestAnswer.objects.create(
            request=request, question=question, value="a", display_value="a"
        )
    client.force_login(owner)

    with django_assert_max_num_queries(6):
        response = client.get(f"{URL}?$expand=accessPackage,assignment,requestor&$top=999")

    assert len(response.json()["value"]) == rows
    assert all(row["answers"][0]["value"] == "a" for row in response.json()["value"])


# --- tokens -------------------------------------------------------------------------------


def test_an_application_cannot_make_a_user_add(api, app_token, package):
    open_policy(package)
    api.as_token(app_token(["EntitlementManagement.ReadWrite.All"]))
    before = counts()

    response = api.post(URL, add_body(package))

    assert response.status_code == 400, response.content
    assert "application assigns with adminAdd" in error_of(response)["message"]
    assert counts() == before


def test_an_application_assigns_directly_and_is_the_actor_of_the_audit_event(
    api, app_token, requester, package
):
    open_policy(package)
    api.as_token(app_token(["EntitlementManagement.ReadWrite.All"]))

    response = api.post(URL, add_body(package, target=requester, kind="adminAdd"))

    assert response.status_code == 201, response.content
    principal = app_token.last.service_principal
    request = AssignmentRequest.objects.get(pk=response.json()["id"])
    assert request.requestor == principal
    assert AuditEvent.objects.filter(request=request, actor=principal, channel="api").exists()


def test_a_read_only_application_lists_but_may_not_submit(api, app_token, requester, package):
    open_policy(package)
    api.as_token(app_token(["EntitlementManagement.Read.All"]))
    before = counts()

    assert api.get(URL).status_code == 200
    response = api.post(URL, add_body(package, target=requester, kind="adminAdd"))

    assert response.status_code == 403
    assert error_of(response)["code"] == "Forbidden"
    assert counts() == before


def test_a_personal_token_for_my_access_requests_but_does_not_assign(
    api, user_token, owner, requester, package
):
    open_policy(package)
    api.as_token(user_token(owner, ["EntitlementMgmt-SubjectAccess.ReadWrite"]))
    before = counts()

    refused = api.post(URL, add_body(package, target=requester, kind="adminAdd"))

    assert refused.status_code == 403
    assert "EntitlementManagement.ReadWrite.All" in error_of(refused)["message"]
    assert counts() == before
    own = api.post(URL, add_body(package))
    assert own.status_code == 201, own.content
    assert api.get(f"{URL}/{own.json()['id']}").status_code == 200
    assert api.get(URL).status_code == 403  # the catalogs' list needs EntitlementManagement.*
