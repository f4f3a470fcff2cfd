"""The official msgraph-sdk against a live server: request, assign, list and remove access the
way a Graph script does, with the SDK's own models and serialisation."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.identity_governance.entitlement_management.assignments.assignments_request_builder import (  # noqa: E501
    AssignmentsRequestBuilder,
)
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_answer_string import AccessPackageAnswerString
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_policy import (
    AccessPackageAssignmentPolicy,
)
from msgraph.generated.models.access_package_assignment_request import (
    AccessPackageAssignmentRequest,
)
from msgraph.generated.models.access_package_request_state import AccessPackageRequestState
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.access_package_subject import AccessPackageSubject
from msgraph.generated.models.access_package_text_input_question import (
    AccessPackageTextInputQuestion,
)
from msgraph.generated.models.entitlement_management_schedule import (
    EntitlementManagementSchedule,
)
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from api.permissions import EM_READWRITE, SUBJECT_ACCESS
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentState,
    RoleAssignment,
)
from tests.api.sdk import graph_as
from tests.factories import QuestionFactory, UserFactory
from tests.lifecycle.requests_setup import approval_policy, open_policy, package_with_roles

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_application_assigns_lists_and_removes_with_the_sdk(live_server, app_token):
    package = package_with_roles(display_name="Finance")
    policy = open_policy(package, allow_custom_assignment_schedule=True)
    person = UserFactory(display_name="Sam Subject")
    graph = graph_as(live_server, app_token([EM_READWRITE]))
    em = graph.identity_governance.entitlement_management

    async def journey():
        made = await em.assignment_requests.post(
            AccessPackageAssignmentRequest(
                request_type=AccessPackageRequestType.AdminAdd,
                assignment=AccessPackageAssignment(
                    target=AccessPackageSubject(object_id=str(person.pk)),
                    access_package=AccessPackage(id=str(package.pk)),
                    assignment_policy=AccessPackageAssignmentPolicy(id=str(policy.pk)),
                ),
                justification="Joins finance",
                schedule=EntitlementManagementSchedule(
                    expiration=ExpirationPattern(
                        type=ExpirationPatternType.AfterDuration, duration=timedelta(days=7)
                    ),
                ),
            )
        )
        query = AssignmentsRequestBuilder.AssignmentsRequestBuilderGetQueryParameters(
            filter=f"accessPackage/id eq '{package.pk}' and state eq 'delivered'",
            expand=["target", "accessPackage", "assignmentPolicy"],
        )
        page = await em.assignments.get(RequestConfiguration(query_parameters=query))
        [assignment] = page.value
        removal = await em.assignment_requests.post(
            AccessPackageAssignmentRequest(
                request_type=AccessPackageRequestType.AdminRemove,
                assignment=AccessPackageAssignment(id=assignment.id),
            )
        )
        return made, assignment, removal

    made, assignment, removal = asyncio.run(journey())

    assert made.request_type == AccessPackageRequestType.AdminAdd
    assert made.justification == "Joins finance"
    stored = AssignmentRequest.objects.get(pk=made.id)
    assert stored.schedule_end is not None
    assert abs(stored.schedule_end - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    assert assignment.target.display_name == "Sam Subject"
    assert assignment.access_package.display_name == "Finance"
    assert assignment.assignment_policy.id == str(policy.pk)
    assert assignment.schedule.expiration.end_date_time is not None
    assert removal.request_type == AccessPackageRequestType.AdminRemove
    assert Assignment.objects.get(pk=assignment.id).state == AssignmentState.EXPIRED


def test_a_person_requests_with_answers_and_a_reader_is_refused_with_the_sdk(
    live_server, user_token, requester, approver
):
    package = package_with_roles(display_name="Payroll")
    policy = approval_policy(package, approvers=[approver])
    question = QuestionFactory(policy=policy, text="Why?")
    reader = UserFactory()
    RoleAssignment.objects.create(
        principal=reader, catalog=package.catalog, role=AdminRole.CATALOG_READER
    )
    mine = graph_as(live_server, user_token(requester, [SUBJECT_ACCESS])).identity_governance
    theirs = graph_as(live_server, user_token(reader, [EM_READWRITE])).identity_governance

    async def journey():
        check = AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.UserAdd,
            assignment=AccessPackageAssignment(access_package=AccessPackage(id=str(package.pk))),
            answers=[
                AccessPackageAnswerString(
                    value="Month-end close",
                    answered_question=AccessPackageTextInputQuestion(id=str(question.pk)),
                )
            ],
            additional_data={"isValidationOnly": True},
        )
        dry = await mine.entitlement_management.assignment_requests.post(check)
        check.additional_data = {}
        made = await mine.entitlement_management.assignment_requests.post(check)
        own = await mine.entitlement_management.assignment_requests.filter_by_current_user_with_on(
            "target"
        ).get()
        try:
            await theirs.entitlement_management.assignment_requests.post(
                AccessPackageAssignmentRequest(
                    request_type=AccessPackageRequestType.AdminAdd,
                    assignment=AccessPackageAssignment(
                        target=AccessPackageSubject(object_id=str(reader.pk)),
                        access_package=AccessPackage(id=str(package.pk)),
                    ),
                )
            )
        except ODataError as error:
            refused = error
        else:
            refused = None
        await (
            mine.entitlement_management.assignment_requests.by_access_package_assignment_request_id(
                made.id
            ).cancel.post()
        )
        return dry, made, own, refused

    dry, made, own, refused = asyncio.run(journey())

    assert dry.id is None
    assert dry.state == AccessPackageRequestState.PendingApproval
    assert made.state == AccessPackageRequestState.PendingApproval
    assert made.answers[0].value == "Month-end close"
    assert made.answers[0].answered_question.id == str(question.pk)
    assert [r.id for r in own.value] == [made.id]
    assert refused is not None and refused.response_status_code == 403
    assert refused.error.code == "Forbidden"
    assert AssignmentRequest.objects.get(pk=made.id).state == "canceled"
    assert AssignmentRequest.objects.count() == 1
