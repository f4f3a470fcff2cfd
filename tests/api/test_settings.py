"""entitlementManagementSettings: one object, GET and PATCH, audited."""

from datetime import timedelta

import pytest

from directory.models import EntitlementManagementSettings
from entitlements.models import AdminRole, AuditEvent, RoleAssignment
from tests.factories import CatalogFactory

URL = "/v1.0/identityGovernance/entitlementManagement/settings"

pytestmark = pytest.mark.django_db


def test_the_defaults_until_someone_changes_them(client, admin_user):
    client.force_login(admin_user)
    response = client.get(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["externalUserLifecycleAction"] == "blockSignInAndDelete"
    assert body["durationUntilExternalUserDeletedAfterBlocked"] == "P30D"
    assert body["@odata.context"].endswith(
        "$metadata#identityGovernance/entitlementManagement/settings/$entity"
    )


def test_patch_changes_them_audited_and_the_sdk_duration_is_accepted(client, admin_user):
    client.force_login(admin_user)
    response = client.patch(
        URL,
        {
            "externalUserLifecycleAction": "blockSignIn",
            "durationUntilExternalUserDeletedAfterBlocked": str(timedelta(days=10)),
        },
        content_type="application/json",
    )
    assert response.status_code == 204, response.content
    settings = EntitlementManagementSettings.objects.get()
    assert settings.external_user_lifecycle_action == "blockSignIn"
    assert settings.duration_until_external_user_deleted_after_blocked == timedelta(days=10)
    assert client.get(URL).json()["durationUntilExternalUserDeletedAfterBlocked"] == "P10D"
    again = client.patch(
        URL,
        {"durationUntilExternalUserDeletedAfterBlocked": "P7D"},
        content_type="application/json",
    )
    assert again.status_code == 204
    assert EntitlementManagementSettings.objects.count() == 1
    assert (
        AuditEvent.objects.filter(
            action__startswith="entitlementManagementSettings.", channel="api"
        ).count()
        == 2
    )


@pytest.mark.parametrize(
    "values, named",
    [
        ({"externalUserLifecycleAction": "delete"}, "externalUserLifecycleAction"),
        (
            {"durationUntilExternalUserDeletedAfterBlocked": "soon"},
            "durationUntilExternalUserDeletedAfterBlocked",
        ),
        (
            {"durationUntilExternalUserDeletedAfterBlocked": "-P1D"},
            "durationUntilExternalUserDeletedAfterBlocked",
        ),
    ],
)
def test_bad_values_are_400_naming_the_property(client, admin_user, values, named):
    client.force_login(admin_user)
    response = client.patch(URL, values, content_type="application/json")
    assert response.status_code == 400, response.content
    assert named in response.json()["error"]["message"]
    assert not EntitlementManagementSettings.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_catalog_owner_reads_them_but_may_not_change_them(client, catalog_owner):
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=CatalogFactory()
    )
    client.force_login(catalog_owner)
    assert client.get(URL).status_code == 200
    response = client.patch(
        URL, {"externalUserLifecycleAction": "none"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not EntitlementManagementSettings.objects.exists()


def test_a_person_without_admin_roles_may_not_read_or_change_them(client, outsider):
    client.force_login(outsider)
    assert client.get(URL).status_code == 403
    response = client.patch(
        URL, {"externalUserLifecycleAction": "none"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not EntitlementManagementSettings.objects.exists()


def test_an_application_token_with_read_write_changes_them(client, app_token, bearer):
    headers = bearer(app_token(["EntitlementManagement.ReadWrite.All"]))
    response = client.patch(
        URL, {"externalUserLifecycleAction": "none"}, content_type="application/json", **headers
    )
    assert response.status_code == 204, response.content
    assert EntitlementManagementSettings.objects.get().external_user_lifecycle_action == "none"
    reader = bearer(app_token(["EntitlementManagement.Read.All"]))
    assert client.get(URL, **reader).json()["externalUserLifecycleAction"] == "none"
    assert (
        client.patch(
            URL,
            {"externalUserLifecycleAction": "blockSignIn"},
            content_type="application/json",
            **reader,
        ).status_code
        == 403
    )


def test_the_settings_add_no_collection_routes(client, admin_user):
    client.force_login(admin_user)
    base = "/v1.0/identityGovernance/entitlementManagement"
    assert client.get(f"{base}/").status_code in (400, 404)
    assert client.get(f"{base}/00000000-0000-0000-0000-000000000000").status_code in (400, 404)
