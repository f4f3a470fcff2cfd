"""Microsoft's own Graph SDK for Python (msgraph-sdk) drives the product over HTTP.

The client is the SDK as an organisation's script builds it, with only the base URL and the
token changed: a ``GraphServiceClient`` on a ``GraphRequestAdapter`` whose authentication
provider hands over our bearer token. It runs against ``live_server`` (a real HTTP server
on the test database). Requests are delivered by the product's own tasks (run at once in
tests), so "wait until delivered" polls the API as a script would.
"""

import asyncio
import time
from datetime import timedelta

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.identity_governance.entitlement_management.assignments.assignments_request_builder import (  # noqa: E501
    AssignmentsRequestBuilder,
)
from msgraph.generated.identity_governance.entitlement_management.catalogs.item.resources.resources_request_builder import (  # noqa: E501
    ResourcesRequestBuilder,
)
from msgraph.generated.models.access_package import AccessPackage
from msgraph.generated.models.access_package_approval_stage import AccessPackageApprovalStage
from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
from msgraph.generated.models.access_package_assignment_approval_settings import (
    AccessPackageAssignmentApprovalSettings,
)
from msgraph.generated.models.access_package_assignment_policy import (
    AccessPackageAssignmentPolicy,
)
from msgraph.generated.models.access_package_assignment_request import (
    AccessPackageAssignmentRequest,
)
from msgraph.generated.models.access_package_assignment_requestor_settings import (
    AccessPackageAssignmentRequestorSettings,
)
from msgraph.generated.models.access_package_assignment_state import (
    AccessPackageAssignmentState,
)
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
from msgraph.generated.models.access_package_request_state import AccessPackageRequestState
from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
from msgraph.generated.models.access_package_resource import AccessPackageResource
from msgraph.generated.models.access_package_resource_request import (
    AccessPackageResourceRequest,
)
from msgraph.generated.models.access_package_resource_role import AccessPackageResourceRole
from msgraph.generated.models.access_package_resource_role_scope import (
    AccessPackageResourceRoleScope,
)
from msgraph.generated.models.access_package_resource_scope import AccessPackageResourceScope
from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
from msgraph.generated.models.approval_stage import ApprovalStage
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.single_user import SingleUser

from api.permissions import APPLICATION_PERMISSIONS, DELEGATED_PERMISSIONS, MY_ACCESS
from entitlements.models import Assignment, AssignmentState, AuditEvent, Channel, GrantState
from tests.api.conftest import issue_app_token, issue_user_token, make_app
from tests.api.sdk import graph_as
from tests.factories import GroupFactory, UserFactory, add_member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def graph(live_server):
    """``graph(token)`` → a GraphServiceClient talking to the live server with ``token``."""
    return lambda token: graph_as(live_server, token)


_loop = None


def run(coroutine):
    """Runs one SDK call. One event loop serves the whole test: the SDK's HTTP client
    belongs to the loop it was first used on."""
    return _loop.run_until_complete(coroutine)


@pytest.fixture(autouse=True)
def event_loop_for_the_sdk():
    global _loop
    _loop = asyncio.new_event_loop()
    try:
        yield _loop
    finally:
        _loop.close()
        _loop = None


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_an_access_package_from_catalog_to_removal_with_the_graph_sdk(graph):
    requester = UserFactory(email="sdk-requester@example.com", display_name="Sam Requester")
    approver = UserFactory(email="sdk-approver@example.com", display_name="Alex Approver")
    group = GroupFactory(display_name="SDK engineers")
    add_member(group, UserFactory())
    application, _, _ = make_app(APPLICATION_PERMISSIONS, display_name="Provisioning script")
    admin = graph(issue_app_token(application)).identity_governance.entitlement_management
    mine = graph(issue_user_token(requester, MY_ACCESS)).identity_governance.entitlement_management
    deciding = graph(issue_user_token(approver, DELEGATED_PERMISSIONS))
    deciding = deciding.identity_governance.entitlement_management

    # 1. a catalog
    catalog = run(
        admin.catalogs.post(
            AccessPackageCatalog(display_name="SDK catalog", description="Made by the SDK")
        )
    )
    assert catalog.id and catalog.display_name == "SDK catalog"

    # 2. a group added to it through resourceRequests (adminAdd)
    added = run(
        admin.resource_requests.post(
            AccessPackageResourceRequest(
                request_type=AccessPackageRequestType.AdminAdd,
                catalog=AccessPackageCatalog(id=catalog.id),
                resource=AccessPackageResource(origin_id=str(group.pk), origin_system="AadGroup"),
            )
        )
    )
    assert added.request_type == AccessPackageRequestType.AdminAdd
    resources = run(
        admin.catalogs.by_access_package_catalog_id(catalog.id).resources.get(
            request_configuration=RequestConfiguration(
                query_parameters=ResourcesRequestBuilder.ResourcesRequestBuilderGetQueryParameters(
                    expand=["roles", "scopes"]
                )
            )
        )
    )
    [resource] = resources.value
    assert resource.origin_id == str(group.pk)
    member = next(role for role in resource.roles if role.display_name == "Member")

    # 3. a package, 4. with the group's Member role
    package = run(
        admin.access_packages.post(
            AccessPackage(
                display_name="SDK tools",
                description="What the SDK journey grants",
                catalog=AccessPackageCatalog(id=catalog.id),
            )
        )
    )
    scope = run(
        admin.access_packages.by_access_package_id(package.id).resource_role_scopes.post(
            AccessPackageResourceRoleScope(
                role=AccessPackageResourceRole(
                    origin_id=member.origin_id,
                    origin_system="AadGroup",
                    resource=AccessPackageResource(id=resource.id),
                ),
                scope=AccessPackageResourceScope(
                    origin_id=resource.origin_id, origin_system="AadGroup"
                ),
            )
        )
    )
    assert scope.id

    # 5. a policy: members may ask, one approval stage, access for 30 days
    policy_body = AccessPackageAssignmentPolicy(
        display_name="Employees, approved",
        description="One approver, 30 days",
        access_package=AccessPackage(id=package.id),
        allowed_target_scope=AllowedTargetScope.AllMemberUsers,
        expiration=ExpirationPattern(
            type=ExpirationPatternType.AfterDuration, duration=timedelta(days=30)
        ),
        requestor_settings=AccessPackageAssignmentRequestorSettings(
            enable_targets_to_self_add_access=True, enable_targets_to_self_remove_access=True
        ),
        request_approval_settings=AccessPackageAssignmentApprovalSettings(
            is_approval_required_for_add=True,
            is_requestor_justification_required=False,
            stages=[
                AccessPackageApprovalStage(
                    duration_before_automatic_denial=timedelta(days=14),
                    is_approver_justification_required=False,
                    primary_approvers=[SingleUser(user_id=str(approver.pk))],
                )
            ],
        ),
    )
    policy = run(admin.assignment_policies.post(policy_body))
    assert policy.expiration.type == ExpirationPatternType.AfterDuration
    assert policy.expiration.duration == timedelta(days=30)
    assert policy.request_approval_settings.stages[0].primary_approvers[0].user_id == str(
        approver.pk
    )

    # 6. the requester asks for the package (userAdd, delegated token)
    asked = run(
        mine.assignment_requests.post(
            AccessPackageAssignmentRequest(
                request_type=AccessPackageRequestType.UserAdd,
                justification="Needed for the SDK journey",
                assignment=AccessPackageAssignment(
                    additional_data={
                        "accessPackageId": package.id,
                        "assignmentPolicyId": policy.id,
                    }
                ),
            )
        )
    )
    assert asked.request_type == AccessPackageRequestType.UserAdd
    assert asked.state == AccessPackageRequestState.PendingApproval

    # 7. the approver finds it among their approvals and approves its stage
    approvals = run(
        deciding.access_package_assignment_approvals.filter_by_current_user_with_on(
            "approver"
        ).get()
    )
    [approval] = [a for a in approvals.value if a.id == asked.id]
    [stage] = approval.stages
    run(
        deciding.access_package_assignment_approvals.by_approval_id(approval.id)
        .stages.by_approval_stage_id(stage.id)
        .patch(ApprovalStage(review_result="Approve", justification="Fine by me"))
    )

    # 8. delivered
    def delivered():
        state = run(
            admin.assignment_requests.by_access_package_assignment_request_id(asked.id).get()
        )
        return state if state.state == AccessPackageRequestState.Delivered else None

    assert wait_for(delivered), "the request was not delivered"
    assert group.memberships.filter(user=requester).exists()

    # 9. the package's assignments, filtered and expanded
    query = AssignmentsRequestBuilder.AssignmentsRequestBuilderGetQueryParameters(
        filter=f"accessPackage/id eq '{package.id}'", expand=["target", "accessPackage"]
    )
    listed = run(
        admin.assignments.get(request_configuration=RequestConfiguration(query_parameters=query))
    )
    [assignment] = listed.value
    assert assignment.state == AccessPackageAssignmentState.Delivered
    assert assignment.target.object_id == str(requester.pk)
    assert assignment.access_package.display_name == "SDK tools"
    assert assignment.schedule.expiration.end_date_time is not None

    # 10. removed by the administrator (adminRemove)
    removal = run(
        admin.assignment_requests.post(
            AccessPackageAssignmentRequest(
                request_type=AccessPackageRequestType.AdminRemove,
                assignment=AccessPackageAssignment(id=assignment.id),
            )
        )
    )
    assert removal.request_type == AccessPackageRequestType.AdminRemove
    gone = wait_for(
        lambda: Assignment.objects.filter(pk=assignment.id, state=AssignmentState.EXPIRED).exists()
    )
    assert gone, "the assignment was not removed"
    assert not group.memberships.filter(user=requester).exists()
    assert (
        not Assignment.objects.get(pk=assignment.id)
        .grants.exclude(state=GrantState.REMOVED)
        .exists()
    )
    assert AuditEvent.objects.filter(channel=Channel.API).count() >= 6

    # the requester may not make policies: 403 with Graph's error body, raised as ODataError
    with pytest.raises(ODataError) as refused:
        run(mine.assignment_policies.post(policy_body))
    assert refused.value.response_status_code == 403
    assert refused.value.error.code == "Forbidden"
    assert refused.value.error.message
