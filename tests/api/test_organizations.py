"""connectedOrganizations and their sponsors: product-wide configuration, audited."""

import pytest

from directory.models import ConnectedOrganization
from entitlements.models import AdminRole, AuditEvent, RoleAssignment
from tests.factories import (
    CatalogFactory,
    ConnectedOrganizationFactory,
    PolicyFactory,
    UserFactory,
    add_subject,
)

URL = "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations"
DOMAIN = "#microsoft.graph.domainIdentitySource"

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def body(**changes):
    return {
        "displayName": "Contoso",
        "description": "Our partner",
        "identitySources": [
            {"@odata.type": DOMAIN, "domainName": "contoso.com", "displayName": "contoso.com"}
        ],
        "state": "proposed",
        **changes,
    }


def test_create_read_update_delete_audited(admin_client):
    response = admin_client.post(URL, body(), content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["identitySources"] == body()["identitySources"]
    assert created["state"] == "proposed" and created["createdDateTime"].endswith("Z")
    organization = ConnectedOrganization.objects.get(pk=created["id"])
    assert organization.domains == ["contoso.com"]
    assert response["Location"].endswith(f"/connectedOrganizations/{organization.pk}")

    got = admin_client.get(f"{URL}/{organization.pk}").json()
    assert got["displayName"] == "Contoso"
    listed = admin_client.get(f"{URL}?$filter=state eq 'proposed'").json()["value"]
    assert [row["id"] for row in listed] == [str(organization.pk)]

    patched = admin_client.patch(
        f"{URL}/{organization.pk}", {"state": "configured"}, content_type="application/json"
    )
    assert patched.status_code == 204
    organization.refresh_from_db()
    assert organization.state == "configured"

    assert admin_client.delete(f"{URL}/{organization.pk}").status_code == 204
    assert not ConnectedOrganization.objects.exists()
    actions = set(AuditEvent.objects.filter(channel="api").values_list("action", flat=True))
    assert {
        "connectedOrganization.created",
        "connectedOrganization.changed",
        "connectedOrganization.deleted",
    } <= actions


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 300}, "displayName"),
        ({"state": "unknownFutureValue"}, "state"),
        (
            {"identitySources": [{"@odata.type": "#microsoft.graph.azureActiveDirectoryTenant"}]},
            "identitySources",
        ),
        (
            {"identitySources": [{"@odata.type": DOMAIN, "domainName": "not a domain"}]},
            "domainName",
        ),
        (
            {
                "identitySources": [
                    {"@odata.type": DOMAIN, "domainName": "contoso.com", "displayName": "Contoso"}
                ]
            },
            "displayName",
        ),
    ],
)
def test_what_the_product_cannot_keep_is_400_naming_the_property(admin_client, changes, named):
    response = admin_client.post(URL, body(**changes), content_type="application/json")
    assert response.status_code == 400, response.content
    assert named in response.json()["error"]["message"]
    assert not ConnectedOrganization.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_duplicate_name_is_refused(admin_client):
    ConnectedOrganizationFactory(display_name="Contoso")
    response = admin_client.post(URL, body(), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("displayName:")
    assert ConnectedOrganization.objects.count() == 1


def test_an_organization_policies_name_cannot_be_deleted(admin_client):
    organization = ConnectedOrganizationFactory()
    policy = PolicyFactory(allowed_target_scope="specificConnectedOrganizationUsers")
    add_subject(
        policy, "allowedTarget", "connectedOrganizationMembers", connected_organization=organization
    )
    response = admin_client.delete(f"{URL}/{organization.pk}")
    assert response.status_code == 409
    assert ConnectedOrganization.objects.filter(pk=organization.pk).exists()


def test_sponsors_are_added_by_reference_listed_and_removed(admin_client):
    organization = ConnectedOrganizationFactory()
    sponsor = UserFactory(display_name="Sam Sponsor")
    for kind in ("internalSponsors", "externalSponsors"):
        ref = {"@odata.id": f"https://graph.example/v1.0/users/{sponsor.pk}"}
        added = admin_client.post(
            f"{URL}/{organization.pk}/{kind}/$ref", ref, content_type="application/json"
        )
        assert added.status_code == 204, added.content
        again = admin_client.post(
            f"{URL}/{organization.pk}/{kind}/$ref", ref, content_type="application/json"
        )
        assert again.status_code == 204
        listed = admin_client.get(f"{URL}/{organization.pk}/{kind}").json()
        assert [(u["@odata.type"], u["id"], u["displayName"]) for u in listed["value"]] == [
            ("#microsoft.graph.user", str(sponsor.pk), "Sam Sponsor")
        ]
    assert list(organization.internal_sponsors.all()) == [sponsor]
    assert list(organization.external_sponsors.all()) == [sponsor]
    assert AuditEvent.objects.filter(action="connectedOrganization.changed").count() == 2

    removed = admin_client.delete(f"{URL}/{organization.pk}/internalSponsors/{sponsor.pk}/$ref")
    assert removed.status_code == 204
    assert not organization.internal_sponsors.exists()
    assert organization.external_sponsors.exists()
    missing = admin_client.delete(f"{URL}/{organization.pk}/internalSponsors/{sponsor.pk}/$ref")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "ref",
    [
        {"@odata.id": "https://graph.example/v1.0/groups/00000000-0000-0000-0000-000000000000"},
        {"@odata.id": "https://graph.example/v1.0/users/00000000-0000-0000-0000-000000000000"},
        {},
    ],
)
def test_a_reference_that_is_not_a_user_is_refused(admin_client, ref):
    organization = ConnectedOrganizationFactory()
    response = admin_client.post(
        f"{URL}/{organization.pk}/internalSponsors/$ref", ref, content_type="application/json"
    )
    assert response.status_code in (400, 404)
    assert not organization.internal_sponsors.exists()


@pytest.fixture
def catalog_owner_with_role(catalog_owner):
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=CatalogFactory()
    )
    return catalog_owner


def test_a_catalog_owner_reads_but_may_not_change_organizations(client, catalog_owner_with_role):
    organization = ConnectedOrganizationFactory()
    sponsor = UserFactory()
    client.force_login(catalog_owner_with_role)
    assert client.get(f"{URL}/{organization.pk}").status_code == 200
    assert client.post(URL, body(), content_type="application/json").status_code == 403
    patch = client.patch(
        f"{URL}/{organization.pk}", {"state": "proposed"}, content_type="application/json"
    )
    assert patch.status_code == 403
    assert client.delete(f"{URL}/{organization.pk}").status_code == 403
    ref = {"@odata.id": f"https://x/v1.0/users/{sponsor.pk}"}
    add = client.post(
        f"{URL}/{organization.pk}/internalSponsors/$ref", ref, content_type="application/json"
    )
    assert add.status_code == 403
    organization.refresh_from_db()
    assert organization.state == "configured" and not organization.internal_sponsors.exists()
    assert ConnectedOrganization.objects.count() == 1
    assert not AuditEvent.objects.exists()


def test_a_person_without_admin_roles_sees_no_organizations(client, outsider):
    organization = ConnectedOrganizationFactory()
    client.force_login(outsider)
    assert client.get(URL).json()["value"] == []
    assert client.get(f"{URL}/{organization.pk}").status_code == 404
    assert client.get(f"{URL}/{organization.pk}/internalSponsors").status_code == 404
    assert client.delete(f"{URL}/{organization.pk}").status_code == 404
    assert client.post(URL, body(), content_type="application/json").status_code == 403
    assert ConnectedOrganization.objects.count() == 1


def test_an_application_with_read_write_manages_them_and_one_with_read_only_reads(
    client, app_token, bearer
):
    writer = bearer(app_token(["EntitlementManagement.ReadWrite.All"]))
    reader = bearer(app_token(["EntitlementManagement.Read.All"]))
    created = client.post(URL, body(), content_type="application/json", **writer)
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert client.get(f"{URL}/{pk}", **reader).status_code == 200
    refused = client.patch(
        f"{URL}/{pk}", {"state": "configured"}, content_type="application/json", **reader
    )
    assert refused.status_code == 403
    assert ConnectedOrganization.objects.get().state == "proposed"


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_is_a_fixed_number_of_queries(admin_client, count, django_assert_max_num_queries):
    for _ in range(count):
        organization = ConnectedOrganizationFactory()
        organization.internal_sponsors.add(UserFactory())
        organization.external_sponsors.add(UserFactory(), UserFactory())
    with django_assert_max_num_queries(5):
        response = admin_client.get(f"{URL}?$expand=internalSponsors,externalSponsors")
    rows = response.json()["value"]
    assert len(rows) == count
    assert [len(rows[0]["internalSponsors"]), len(rows[0]["externalSponsors"])] == [1, 2]
