"""A catalog's resources, resource roles and scopes, and packages, through the API:
Graph's shapes, $expand and $filter, who sees what, and bounded query counts."""

import pytest

from entitlements.models import AdminRole, RoleAssignment
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    GroupResourceFactory,
    UserFactory,
    grant_role,
)

BASE = "/v1.0/identityGovernance/entitlementManagement"

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(catalog_owner):
    """Catalog "Shop" owned by the catalog owner, with two group resources and a package."""
    catalog = CatalogFactory(display_name="Shop")
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    first = GroupResourceFactory(catalog=catalog, display_name="Alpha")
    second = GroupResourceFactory(catalog=catalog, display_name="Beta")
    package = AccessPackageFactory(catalog=catalog, display_name="Shop tools")
    grant_role(package, first.roles.get(origin_id="Member"))
    return {"catalog": catalog, "first": first, "second": second, "package": package}


def login(client, user):
    client.force_login(user)
    return client


def test_resources_of_a_catalog_are_listed_with_their_roles_and_root_scope(
    client, catalog_owner, shop
):
    login(client, catalog_owner)
    catalog, first = shop["catalog"], shop["first"]
    response = client.get(f"{BASE}/catalogs/{catalog.pk}/resources?$expand=roles,scopes")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["@odata.context"].endswith(f"catalogs('{catalog.pk}')/resources")
    assert [row["displayName"] for row in body["value"]] == ["Alpha", "Beta"]
    alpha = body["value"][0]
    assert alpha["id"] == str(first.pk)
    assert alpha["originSystem"] == "AadGroup"
    assert alpha["originId"] == str(first.group_id)
    assert alpha["attributes"] == []
    assert alpha["createdDateTime"].endswith("Z")
    assert sorted(role["originId"] for role in alpha["roles"]) == ["Member", "Owner"]
    assert {role["originSystem"] for role in alpha["roles"]} == {"AadGroup"}
    assert alpha["scopes"] == [
        {
            "id": str(first.pk),
            "displayName": "Root",
            "description": "Root Scope",
            "originId": str(first.group_id),
            "originSystem": "AadGroup",
            "isRootScope": True,
        }
    ]


def test_one_resource_is_read_by_id_and_filtered_by_origin(client, catalog_owner, shop):
    login(client, catalog_owner)
    catalog, second = shop["catalog"], shop["second"]
    one = client.get(f"{BASE}/catalogs/{catalog.pk}/resources/{second.pk}?$expand=roles")
    assert one.status_code == 200, one.content
    assert one.json()["displayName"] == "Beta"
    assert one.json()["@odata.context"].endswith("/resources/$entity")
    filtered = client.get(
        f"{BASE}/catalogs/{catalog.pk}/resources?$filter=originId eq '{second.group_id}'"
    ).json()
    assert [row["id"] for row in filtered["value"]] == [str(second.pk)]


def test_resource_roles_filter_as_graphs_docs_show(client, catalog_owner, shop):
    login(client, catalog_owner)
    catalog, first = shop["catalog"], shop["first"]
    response = client.get(
        f"{BASE}/catalogs/{catalog.pk}/resourceRoles"
        f"?$filter=originSystem eq 'AadGroup' and resource/id eq '{first.pk}'&$expand=resource"
    )
    assert response.status_code == 200, response.content
    rows = response.json()["value"]
    assert [row["displayName"] for row in rows] == ["Member", "Owner"]
    assert rows[0]["resource"]["id"] == str(first.pk)
    assert rows[0]["resource"]["originSystem"] == "AadGroup"


def test_resource_scopes_are_the_roots_of_the_resources(client, catalog_owner, shop):
    login(client, catalog_owner)
    rows = client.get(f"{BASE}/catalogs/{shop['catalog'].pk}/resourceScopes").json()["value"]
    assert [(row["id"], row["isRootScope"]) for row in rows] == [
        (str(shop["first"].pk), True),
        (str(shop["second"].pk), True),
    ]


def test_a_catalogs_access_packages_are_listed(client, catalog_owner, shop):
    AccessPackageFactory(display_name="Elsewhere")
    login(client, catalog_owner)
    body = client.get(f"{BASE}/catalogs/{shop['catalog'].pk}/accessPackages?$expand=catalog").json()
    assert [row["displayName"] for row in body["value"]] == ["Shop tools"]
    assert body["value"][0]["catalog"]["displayName"] == "Shop"


@pytest.mark.parametrize("who", ["outsider", "other_owner"])
@pytest.mark.parametrize(
    "segment", ["resources", "resourceRoles", "resourceScopes", "accessPackages"]
)
def test_a_catalog_the_caller_does_not_see_is_404_in_every_sub_collection(
    client, shop, outsider, who, segment
):
    person = outsider
    if who == "other_owner":
        person = UserFactory(is_staff=True)
        RoleAssignment.objects.create(
            role=AdminRole.CATALOG_OWNER, principal=person, catalog=CatalogFactory()
        )
    login(client, person)
    response = client.get(f"{BASE}/catalogs/{shop['catalog'].pk}/{segment}")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "ResourceNotFound"
    one = client.get(f"{BASE}/catalogs/{shop['catalog'].pk}/resources/{shop['first'].pk}")
    assert one.status_code == 404


def test_a_resource_of_another_catalog_is_not_found_under_this_one(client, catalog_owner, shop):
    elsewhere = GroupResourceFactory()
    login(client, catalog_owner)
    response = client.get(f"{BASE}/catalogs/{shop['catalog'].pk}/resources/{elsewhere.pk}")
    assert response.status_code == 404


def test_a_reader_reads_the_resources_but_the_sub_collections_take_no_writes(client, shop):
    reader = UserFactory(is_staff=True)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_READER, principal=reader, catalog=shop["catalog"]
    )
    login(client, reader)
    url = f"{BASE}/catalogs/{shop['catalog'].pk}/resources"
    assert len(client.get(url).json()["value"]) == 2
    assert client.post(url, {}, content_type="application/json").status_code == 405
    detail = f"{url}/{shop['first'].pk}"
    assert client.delete(detail).status_code == 405
    assert shop["first"].__class__.objects.filter(pk=shop["first"].pk).exists()


@pytest.mark.parametrize("size", [5, 50])
def test_resource_lists_are_a_fixed_number_of_queries(
    client, admin_user, django_assert_max_num_queries, size
):
    catalog = CatalogFactory()
    for _ in range(size):
        GroupResourceFactory(catalog=catalog)
    login(client, admin_user)
    with django_assert_max_num_queries(6):
        body = client.get(
            f"{BASE}/catalogs/{catalog.pk}/resources?$expand=roles($expand=resource),scopes"
        ).json()
    assert len(body["value"]) == size
    with django_assert_max_num_queries(6):
        body = client.get(f"{BASE}/catalogs/{catalog.pk}/resourceRoles?$expand=resource").json()
    assert len(body["value"]) == 2 * size
