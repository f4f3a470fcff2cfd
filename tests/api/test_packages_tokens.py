"""Catalog resources, resourceRequests and accessPackages with bearer tokens: an
application's permissions and a person's delegated token decide what each may call."""

import pytest

from directory.models import GroupMembership
from entitlements.models import AccessPackage, AdminRole, AuditEvent, Resource, RoleAssignment
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    GroupFactory,
    GroupResourceFactory,
    PolicyFactory,
    add_member,
    grant_role,
)

BASE = "/v1.0/identityGovernance/entitlementManagement"
READ = "EntitlementManagement.Read.All"
READWRITE = "EntitlementManagement.ReadWrite.All"
SUBJECT_ACCESS = "EntitlementMgmt-SubjectAccess.ReadWrite"

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    catalog = CatalogFactory(display_name="Shop")
    GroupResourceFactory(catalog=catalog, display_name="Sales team")
    return catalog


def test_an_application_with_read_all_reads_resources_and_packages(api, app_token, catalog):
    AccessPackageFactory(catalog=catalog, display_name="Tools")
    api.as_token(app_token([READ]))
    resources = api.get(f"{BASE}/catalogs/{catalog.pk}/resources?$expand=roles")
    assert resources.status_code == 200, resources.content
    assert [row["displayName"] for row in resources.json()["value"]] == ["Sales team"]
    packages = api.get(f"{BASE}/accessPackages?$filter=catalog/id eq '{catalog.pk}'")
    assert [row["displayName"] for row in packages.json()["value"]] == ["Tools"]


def test_an_application_with_read_all_cannot_add_resources_or_packages(api, app_token, catalog):
    group = GroupFactory()
    api.as_token(app_token([READ]))
    added = api.post(
        f"{BASE}/resourceRequests",
        {
            "requestType": "adminAdd",
            "resource": {"originId": str(group.pk), "originSystem": "AadGroup"},
            "catalog": {"id": str(catalog.pk)},
        },
    )
    assert added.status_code == 403, added.content
    assert added.json()["error"]["code"] == "Forbidden"
    created = api.post(
        f"{BASE}/accessPackages", {"displayName": "New", "catalog": {"id": str(catalog.pk)}}
    )
    assert created.status_code == 403
    assert not Resource.objects.filter(group=group).exists()
    assert not AccessPackage.objects.filter(display_name="New").exists()


def test_an_application_with_readwrite_adds_a_group_and_creates_a_package(api, app_token, catalog):
    group = GroupFactory(display_name="Partners")
    api.as_token(app_token([READWRITE]))
    added = api.post(
        f"{BASE}/resourceRequests",
        {
            "requestType": "adminAdd",
            "resource": {"originId": str(group.pk), "originSystem": "AadGroup"},
            "catalog": {"id": str(catalog.pk)},
        },
    )
    assert added.status_code == 201, added.content
    created = api.post(
        f"{BASE}/accessPackages", {"displayName": "New", "catalog": {"id": str(catalog.pk)}}
    )
    assert created.status_code == 201, created.content
    principal = app_token.last.service_principal
    event = AuditEvent.objects.get(action="accessPackage.created")
    assert event.actor == principal and event.channel == "api"


def test_an_application_acting_within_its_catalog_roles_follows_the_ownership_rule(
    api, app_token, catalog
):
    owned, other = GroupFactory(), GroupFactory()
    token = app_token([], catalog_roles=[(AdminRole.CATALOG_OWNER, catalog)])
    add_member(owned, app_token.last.service_principal, GroupMembership.Role.OWNER)
    api.as_token(token)
    for group, status in [(other, 403), (owned, 201)]:
        response = api.post(
            f"{BASE}/resourceRequests",
            {
                "requestType": "adminAdd",
                "resource": {"originId": str(group.pk), "originSystem": "AadGroup"},
                "catalog": {"id": str(catalog.pk)},
            },
        )
        assert response.status_code == status, response.content
    assert set(catalog.resources.values_list("group", flat=True)) >= {owned.pk}
    assert not catalog.resources.filter(group=other).exists()
    elsewhere = CatalogFactory()
    response = api.get(f"{BASE}/catalogs/{elsewhere.pk}/resources")
    assert response.status_code == 404


def test_a_personal_token_lists_what_its_person_may_request(api, user_token, requester, catalog):
    package = AccessPackageFactory(catalog=catalog, display_name="Tools")
    grant_role(package, catalog.resources.get().roles.get(origin_id="Member"))
    PolicyFactory(access_package=package)
    api.as_token(user_token(requester, [SUBJECT_ACCESS]))
    mine = api.get(f"{BASE}/accessPackages/filterByCurrentUser(on='allowedRequestor')")
    assert mine.status_code == 200, mine.content
    assert [row["id"] for row in mine.json()["value"]] == [str(package.pk)]
    forms = api.post(f"{BASE}/accessPackages/{package.pk}/getApplicablePolicyRequirements")
    assert forms.status_code == 200, forms.content
    assert len(forms.json()["value"]) == 1
    refused = api.patch(f"{BASE}/accessPackages/{package.pk}", {"displayName": "Mine"})
    assert refused.status_code == 403
    package.refresh_from_db()
    assert package.display_name == "Tools"


def test_a_catalog_owners_personal_token_with_readwrite_manages_the_catalog(
    api, user_token, catalog_owner, catalog
):
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    package = AccessPackageFactory(catalog=catalog)
    role = catalog.resources.get().roles.get(origin_id="Owner")
    api.as_token(user_token(catalog_owner, [READWRITE]))
    response = api.post(
        f"{BASE}/accessPackages/{package.pk}/resourceRoleScopes", {"role": {"id": str(role.pk)}}
    )
    assert response.status_code == 201, response.content
    assert package.resource_role_scopes.get().role == role
