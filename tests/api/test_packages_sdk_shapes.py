"""The bodies the msgraph-sdk sends for resourceRequests, accessPackages, resourceRoleScopes
and $ref are accepted, and the answers read back into the SDK's models (serialised and
parsed with kiota's JSON writer and parse node, as the SDK does)."""

from datetime import timedelta

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.models.access_package import AccessPackage as SdkPackage
from msgraph.generated.models.access_package_assignment_request_requirements import (
    AccessPackageAssignmentRequestRequirements,
)
from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
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
from msgraph.generated.models.access_package_text_input_question import (
    AccessPackageTextInputQuestion,
)
from msgraph.generated.models.reference_create import ReferenceCreate

from directory.models import GroupMembership
from entitlements.models import AccessPackage, Resource, ResourceRoleScope
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    GroupFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    add_member,
    grant_role,
)

BASE = "/v1.0/identityGovernance/entitlementManagement"

pytestmark = pytest.mark.django_db


def sdk_json(model):
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    return writer.get_serialized_content()


def parse(response, model):
    node = JsonParseNodeFactory().get_root_parse_node("application/json", response.content)
    return node.get_object_value(model)


def parse_list(response, model):
    node = JsonParseNodeFactory().get_root_parse_node("application/json", response.content)
    return node.get_child_node("value").get_collection_of_object_values(model)


def test_the_sdks_journey_through_resources_packages_and_role_scopes(client, admin_user):
    catalog = CatalogFactory(display_name="Shop")
    group = GroupFactory(display_name="Sales team")
    add_member(group, admin_user, GroupMembership.Role.OWNER)
    client.force_login(admin_user)

    request = AccessPackageResourceRequest(
        request_type=AccessPackageRequestType.AdminAdd,
        resource=AccessPackageResource(origin_id=str(group.pk), origin_system="AadGroup"),
        catalog=AccessPackageCatalog(id=str(catalog.pk)),
    )
    added = client.post(
        f"{BASE}/resourceRequests", sdk_json(request), content_type="application/json"
    )
    assert added.status_code == 201, added.content
    answer = parse(added, AccessPackageResourceRequest)
    assert answer.request_type == AccessPackageRequestType.AdminAdd
    assert answer.state.value == "delivered"
    assert answer.resource.origin_id == str(group.pk)
    assert answer.catalog.id == str(catalog.pk)

    listed = client.get(f"{BASE}/catalogs/{catalog.pk}/resources?$expand=roles,scopes")
    (resource,) = parse_list(listed, AccessPackageResource)
    assert resource.display_name == "Sales team"
    assert resource.created_date_time is not None
    assert {role.display_name for role in resource.roles} == {"Member", "Owner"}
    assert resource.scopes[0].is_root_scope is True

    package_body = SdkPackage(
        display_name="Sales tools",
        is_hidden=False,
        catalog=AccessPackageCatalog(id=str(catalog.pk)),
    )
    created = client.post(
        f"{BASE}/accessPackages", sdk_json(package_body), content_type="application/json"
    )
    assert created.status_code == 201, created.content
    package = parse(created, SdkPackage)
    assert package.display_name == "Sales tools"

    member = next(role for role in resource.roles if role.display_name == "Member")
    role_scope = AccessPackageResourceRoleScope(
        role=AccessPackageResourceRole(
            origin_id=member.origin_id,
            origin_system=member.origin_system,
            resource=AccessPackageResource(id=resource.id),
        ),
        scope=AccessPackageResourceScope(
            origin_id=resource.scopes[0].origin_id, origin_system=resource.origin_system
        ),
    )
    granted = client.post(
        f"{BASE}/accessPackages/{package.id}/resourceRoleScopes",
        sdk_json(role_scope),
        content_type="application/json",
    )
    assert granted.status_code == 201, granted.content
    assert parse(granted, AccessPackageResourceRoleScope).id == str(
        ResourceRoleScope.objects.get().pk
    )

    expanded = client.get(
        f"{BASE}/accessPackages/{package.id}"
        "?$expand=catalog,resourceRoleScopes($expand=role,scope),incompatibleGroups"
    )
    read = parse(expanded, SdkPackage)
    assert read.catalog.display_name == "Shop"
    assert read.resource_role_scopes[0].role.display_name == "Member"
    assert read.resource_role_scopes[0].scope.is_root_scope is True

    incompatible = GroupFactory(display_name="Auditors")
    ref = ReferenceCreate(odata_id=f"https://graph.example.com/v1.0/groups/{incompatible.pk}")
    linked = client.post(
        f"{BASE}/accessPackages/{package.id}/incompatibleGroups/$ref",
        sdk_json(ref),
        content_type="application/json",
    )
    assert linked.status_code == 204, linked.content
    assert list(AccessPackage.objects.get(pk=package.id).incompatible_groups.all()) == [
        incompatible
    ]
    assert Resource.objects.count() == 1


def test_policy_requirements_read_back_into_the_sdks_model(client, requester):
    package = AccessPackageFactory()
    resource = GroupResourceFactory(catalog=package.catalog)
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(access_package=package, expiration_duration=timedelta(days=30))
    QuestionFactory(policy=policy, text="Why?")
    client.force_login(requester)
    response = client.post(f"{BASE}/accessPackages/{package.pk}/getApplicablePolicyRequirements")
    assert response.status_code == 200, response.content
    (requirement,) = parse_list(response, AccessPackageAssignmentRequestRequirements)
    assert requirement.policy_id == str(policy.pk)
    assert requirement.schedule.expiration.duration == timedelta(days=30)
    assert isinstance(requirement.questions[0], AccessPackageTextInputQuestion)
    assert requirement.questions[0].text == "Why?"
