"""resourceRequests: adding a group, application or site to a catalog (adminAdd) and removing
it (adminRemove), by the ownership rule the admin follows, audited with the API's channel."""

import pytest

from directory.models import Application, GroupMembership, Site, SiteRoleAssignment
from entitlements.models import AdminRole, AuditEvent, Resource, RoleAssignment
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    GroupFactory,
    GroupResourceFactory,
    UserFactory,
    add_member,
    grant_role,
)

URL = "/v1.0/identityGovernance/entitlementManagement/resourceRequests"

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(catalog_owner):
    catalog = CatalogFactory(display_name="Shop")
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    return catalog


def post(client, body):
    return client.post(URL, body, content_type="application/json")


def add_body(catalog, origin_id, origin_system="AadGroup", **resource):
    return {
        "requestType": "adminAdd",
        "resource": {"originId": str(origin_id), "originSystem": origin_system, **resource},
        "catalog": {"id": str(catalog.pk)},
    }


def test_an_owner_of_a_group_adds_it_to_their_catalog(client, catalog_owner, catalog):
    group = GroupFactory(display_name="Sales team")
    add_member(group, catalog_owner, GroupMembership.Role.OWNER)
    client.force_login(catalog_owner)
    response = post(client, add_body(catalog, group.pk, displayName="Sales"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["requestType"] == "adminAdd"
    assert body["state"] == "delivered"
    assert body["catalog"]["id"] == str(catalog.pk)
    assert body["resource"]["originId"] == str(group.pk)
    assert body["resource"]["displayName"] == "Sales"
    resource = Resource.objects.get(catalog=catalog, group=group)
    assert response["Location"].endswith(f"/catalogs/{catalog.pk}/resources/{resource.pk}")
    assert sorted(resource.roles.values_list("origin_id", flat=True)) == ["Member", "Owner"]
    event = AuditEvent.objects.get(action="resource.added", object_id=str(resource.pk))
    assert event.channel == "api" and event.actor == catalog_owner
    assert body["id"] == str(event.pk)


def test_an_owner_may_not_add_a_group_they_do_not_own(client, catalog_owner, catalog):
    group = GroupFactory(display_name="Approvers")
    client.force_login(catalog_owner)
    response = post(client, add_body(catalog, group.pk))
    assert response.status_code == 403, response.content
    assert "Only an owner of the group" in response.json()["error"]["message"]
    assert not Resource.objects.filter(group=group).exists()
    assert not AuditEvent.objects.filter(action="resource.added").exists()


def test_an_administrator_adds_any_group_application_or_site(client, admin_user, catalog):
    group = GroupFactory()
    application = Application.objects.create(display_name="Payroll")
    site = Site.objects.create(display_name="Intranet", url="https://intranet.example.com/")
    client.force_login(admin_user)
    for origin_id, origin_system in [
        (group.pk, "AadGroup"),
        (application.pk, "AadApplication"),
        (site.url, "SharePointOnline"),
    ]:
        response = post(client, add_body(catalog, origin_id, origin_system))
        assert response.status_code == 201, response.content
        assert response.json()["resource"]["originSystem"] == origin_system
    assert catalog.resources.count() == 3
    app_roles = Resource.objects.get(application=application).roles
    assert list(app_roles.values_list("display_name", flat=True)) == ["Default Access"]


def test_an_owner_of_a_site_adds_it(client, catalog_owner, catalog):
    site = Site.objects.create(display_name="Wiki", url="https://wiki.example.com/")
    SiteRoleAssignment.objects.create(
        site=site, user=catalog_owner, role=SiteRoleAssignment.Role.OWNER
    )
    client.force_login(catalog_owner)
    response = post(client, add_body(catalog, site.url, "SharePointOnline"))
    assert response.status_code == 201, response.content


def test_only_an_administrator_adds_directory_roles(client, catalog_owner, admin_user, catalog):
    client.force_login(catalog_owner)
    refused = post(client, add_body(catalog, catalog.pk, "DirectoryRole"))
    assert refused.status_code == 403
    assert "Only an administrator" in refused.json()["error"]["message"]
    client.force_login(admin_user)
    added = post(client, add_body(catalog, "product", "DirectoryRole"))
    assert added.status_code == 201, added.content
    assert added.json()["resource"]["originId"] == "product"


def test_adding_the_same_group_twice_is_a_conflict(client, admin_user, catalog):
    group = GroupFactory()
    client.force_login(admin_user)
    assert post(client, add_body(catalog, group.pk)).status_code == 201
    again = post(client, add_body(catalog, group.pk))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "Conflict"
    assert catalog.resources.count() == 1


@pytest.mark.parametrize(
    "body, status",
    [
        ({"requestType": "adminUpdate", "resource": {}, "catalog": {}}, 400),
        ({"requestType": "adminAdd", "resource": {"originSystem": "AadGroup"}}, 400),
        ({"requestType": "adminAdd", "resource": {"originId": "x", "originSystem": "Nope"}}, 400),
        (
            {"requestType": "adminAdd", "resource": {"originId": "x", "originSystem": "AadGroup"}},
            400,
        ),
        (
            {
                "requestType": "adminAdd",
                "resource": {
                    "originId": "00000000-0000-0000-0000-000000000000",
                    "originSystem": "AadGroup",
                },
            },
            404,
        ),
        ({"requestType": "adminRemove", "resource": {"originId": "x"}}, 400),
        ({"requestType": "adminRemove", "resource": {"id": "not-an-id"}}, 404),
    ],
)
def test_bad_bodies_are_refused_and_change_nothing(client, admin_user, catalog, body, status):
    body.setdefault("catalog", {"id": str(catalog.pk)})
    client.force_login(admin_user)
    response = post(client, body)
    assert response.status_code == status, response.content
    assert response.json()["error"]["message"]
    assert not catalog.resources.exists()


def test_a_catalog_the_caller_does_not_see_is_404(client, catalog):
    stranger = UserFactory(is_staff=True)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=stranger, catalog=CatalogFactory()
    )
    group = GroupFactory()
    add_member(group, stranger, GroupMembership.Role.OWNER)
    client.force_login(stranger)
    response = post(client, add_body(catalog, group.pk))
    assert response.status_code == 404
    assert not catalog.resources.exists()


def test_a_reader_of_the_catalog_may_not_add_even_a_group_they_own(client, catalog):
    reader = UserFactory(is_staff=True)
    RoleAssignment.objects.create(role=AdminRole.CATALOG_READER, principal=reader, catalog=catalog)
    group = GroupFactory()
    add_member(group, reader, GroupMembership.Role.OWNER)
    client.force_login(reader)
    response = post(client, add_body(catalog, group.pk))
    assert response.status_code == 403
    assert "only to a catalog you own" in response.json()["error"]["message"]
    assert not catalog.resources.exists()


def test_a_person_without_roles_is_404_and_anonymous_is_401(client, outsider, catalog):
    group = GroupFactory()
    assert post(client, add_body(catalog, group.pk)).status_code == 401
    client.force_login(outsider)
    assert post(client, add_body(catalog, group.pk)).status_code == 404
    assert not catalog.resources.exists()


def test_admin_remove_takes_a_resource_out_of_the_catalog(client, catalog_owner, catalog):
    resource = GroupResourceFactory(catalog=catalog)
    client.force_login(catalog_owner)
    response = post(
        client,
        {
            "requestType": "adminRemove",
            "resource": {"id": str(resource.pk)},
            "catalog": {"id": str(catalog.pk)},
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["requestType"] == "adminRemove"
    assert response.json()["resource"]["id"] == str(resource.pk)
    assert not Resource.objects.filter(pk=resource.pk).exists()
    event = AuditEvent.objects.get(action="resource.deleted", object_id=str(resource.pk))
    assert event.channel == "api" and response.json()["id"] == str(event.pk)


def test_admin_remove_by_origin_id(client, admin_user, catalog):
    resource = GroupResourceFactory(catalog=catalog)
    client.force_login(admin_user)
    response = post(
        client,
        {
            "requestType": "adminRemove",
            "resource": {"originId": resource.origin_id, "originSystem": "AadGroup"},
            "catalog": {"id": str(catalog.pk)},
        },
    )
    assert response.status_code == 201, response.content
    assert not Resource.objects.filter(pk=resource.pk).exists()


def test_a_resource_whose_roles_a_package_grants_is_not_removed(client, admin_user, catalog):
    resource = GroupResourceFactory(catalog=catalog)
    grant_role(
        AccessPackageFactory(catalog=catalog, display_name="Tools"),
        resource.roles.get(origin_id="Member"),
    )
    client.force_login(admin_user)
    response = post(
        client,
        {
            "requestType": "adminRemove",
            "resource": {"id": str(resource.pk)},
            "catalog": {"id": str(catalog.pk)},
        },
    )
    assert response.status_code == 409
    assert "Tools" in response.json()["error"]["message"]
    assert Resource.objects.filter(pk=resource.pk).exists()
    assert not AuditEvent.objects.filter(action="resource.deleted").exists()


def test_a_reader_may_not_remove_a_resource(client, catalog):
    resource = GroupResourceFactory(catalog=catalog)
    reader = UserFactory(is_staff=True)
    RoleAssignment.objects.create(role=AdminRole.CATALOG_READER, principal=reader, catalog=catalog)
    client.force_login(reader)
    response = post(
        client,
        {
            "requestType": "adminRemove",
            "resource": {"id": str(resource.pk)},
            "catalog": {"id": str(catalog.pk)},
        },
    )
    assert response.status_code == 403
    assert Resource.objects.filter(pk=resource.pk).exists()


def test_resource_requests_cannot_be_listed_or_read_back(client, admin_user):
    client.force_login(admin_user)
    for url in (URL, f"{URL}/00000000-0000-0000-0000-000000000000"):
        response = client.get(url)
        assert response.status_code in (400, 405), response.content
        assert response.json()["error"]["code"] in ("BadRequest", "MethodNotAllowed")
