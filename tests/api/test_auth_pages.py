"""The pages for API credentials: applications and secrets in the admin, personal tokens in
My Access. Each needs the right person, changes state only on POST with CSRF, and shows a
secret once."""

import re

import pytest
from django.test import Client

from api.models import AccessToken, Application, ClientSecret
from api.permissions import EM_READ, EM_READWRITE, REVIEW_READ
from api.tokens import digest
from entitlements.models import AuditEvent

pytestmark = pytest.mark.django_db

TOKENS = "/my/api-tokens/"
NEW_TOKEN = "/my/api-tokens/new/"
APPS = "/admin/api/application/"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def shown_value(response, element_id):
    match = re.search(rf'id="{element_id}"[^>]*value="([^"]+)"', response.content.decode())
    assert match, "the value is shown"
    return match.group(1)


# --- the admin -------------------------------------------------------------------------


def test_a_superuser_registers_an_application_and_gets_its_secret_once(admin_client, admin_user):
    response = admin_client.post(
        f"{APPS}add/",
        {"display_name": "HR sync", "permissions": [EM_READ, REVIEW_READ], "enabled": "on"},
    )
    assert response.status_code == 302, response.content
    application = Application.objects.get(display_name="HR sync")
    assert response["Location"] == f"{APPS}{application.pk}/secret/"
    assert sorted(application.permissions) == sorted([EM_READ, REVIEW_READ])
    assert application.service_principal.email == f"{application.client_id}@applications.invalid"
    assert not application.service_principal.has_usable_password()
    assert AuditEvent.objects.filter(
        action="application.created",
        object_id=str(application.pk),
        actor=admin_user,
        channel="admin",
    ).exists()

    form = admin_client.get(response["Location"])
    assert form.status_code == 200
    created = admin_client.post(response["Location"], {"description": "prod", "lifetime": "365"})
    assert created.status_code == 200
    value = shown_value(created, "client-secret")
    secret = ClientSecret.objects.get(application=application)
    assert secret.secret_hash == digest(value) and value not in str(secret.__dict__)
    assert AuditEvent.objects.filter(action="clientSecret.created", actor=admin_user).exists()
    # never shown again: not on the application's page, not on the secrets' list
    for url in (f"{APPS}{application.pk}/change/", "/admin/api/clientsecret/"):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert value not in page.content.decode()
        assert value[:3] in page.content.decode()  # the hint is


def test_application_permissions_are_checked_against_graphs_names(admin_client):
    response = admin_client.post(
        f"{APPS}add/", {"display_name": "Bad", "permissions": ["Everything"]}
    )
    assert response.status_code == 200
    assert not Application.objects.filter(display_name="Bad").exists()


def test_changing_an_application_is_audited(admin_client, api_app):
    application, _, _ = api_app([EM_READ])
    response = admin_client.post(
        f"{APPS}{application.pk}/change/",
        {
            "display_name": application.display_name,
            "permissions": [EM_READWRITE],
            "secrets-TOTAL_FORMS": "1",
            "secrets-INITIAL_FORMS": "1",
            "secrets-MIN_NUM_FORMS": "0",
            "secrets-MAX_NUM_FORMS": "1000",
            "secrets-0-id": str(application.secrets.get().pk),
            "secrets-0-application": str(application.pk),
        },
    )
    assert response.status_code == 302, response.content
    application.refresh_from_db()
    assert application.permissions == [EM_READWRITE] and not application.enabled
    event = AuditEvent.objects.get(action="application.changed", object_id=str(application.pk))
    assert event.data["after"]["permissions"] == [EM_READWRITE]
    assert event.data["after"]["enabled"] is False


def test_revoking_secrets_and_tokens_in_the_admin(admin_client, api_app, app_token):
    application, client_id, secret_value = api_app([EM_READ])
    secret = application.secrets.get()
    response = admin_client.post(
        "/admin/api/clientsecret/", {"action": "revoke", "_selected_action": [str(secret.pk)]}
    )
    assert response.status_code == 302
    secret.refresh_from_db()
    assert secret.revoked_at is not None
    token_value = app_token([EM_READ])
    token = AccessToken.objects.get(token_hash=digest(token_value))
    response = admin_client.post(
        "/admin/api/accesstoken/", {"action": "revoke", "_selected_action": [str(token.pk)]}
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="clientSecret.revoked").exists()
    assert AuditEvent.objects.filter(action="accessToken.revoked", channel="admin").exists()
    api = Client()
    listed = api.get(
        "/v1.0/identityGovernance/entitlementManagement/catalogs",
        HTTP_AUTHORIZATION=f"Bearer {token_value}",
    )
    assert listed.status_code == 401


def test_only_superusers_see_api_credentials_in_the_admin(client, catalog_owner, api_app):
    from entitlements.models import AdminRole, RoleAssignment
    from tests.factories import CatalogFactory

    application, _, _ = api_app([EM_READ])
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, catalog=CatalogFactory(), principal=catalog_owner
    )
    client.force_login(catalog_owner)
    assert client.get("/admin/").status_code == 200
    for url in (APPS, f"{APPS}add/", f"{APPS}{application.pk}/secret/", "/admin/api/accesstoken/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"{APPS}{application.pk}/secret/", {"lifetime": "180"}).status_code == 403
    assert application.secrets.count() == 1


# --- personal tokens -------------------------------------------------------------------


def test_the_token_pages_need_a_sign_in(client):
    for response in (client.get(TOKENS), client.post(NEW_TOKEN, {"name": "x"})):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert not AccessToken.objects.exists()


def test_a_person_creates_a_token_sees_it_once_and_uses_it(client, requester):
    client.force_login(requester)
    page = client.get(TOKENS)
    assert page.status_code == 200
    assert EM_READ in page.content.decode()
    created = client.post(
        NEW_TOKEN, {"name": "my script", "expires_in": "30", "permissions": [EM_READ]}
    )
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    value = shown_value(created, "token-value")
    token = AccessToken.objects.get(user=requester)
    assert token.token_hash == digest(value) and token.kind == AccessToken.Kind.DELEGATED
    assert token.permissions == [EM_READ] and token.name == "my script"
    listed = client.get(TOKENS).content.decode()
    assert "my script" in listed and value not in listed
    assert AuditEvent.objects.filter(action="accessToken.created", actor=requester).exists()
    response = Client().get(
        "/v1.0/identityGovernance/entitlementManagement/catalogs",
        HTTP_AUTHORIZATION=f"Bearer {value}",
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "expires_in": "30", "permissions": [EM_READ]},
        {"name": "x", "expires_in": "365", "permissions": [EM_READ]},
        {"name": "x", "expires_in": "30", "permissions": []},
        {"name": "x", "expires_in": "30", "permissions": ["Directory.ReadWrite.All"]},
    ],
)
def test_a_bad_token_form_says_why_and_creates_nothing(client, requester, data):
    client.force_login(requester)
    response = client.post(NEW_TOKEN, data)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert not AccessToken.objects.exists()


def test_creating_and_revoking_need_the_csrf_token(requester, user_token):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(requester)
    response = browser.post(NEW_TOKEN, {"name": "x", "expires_in": "30", "permissions": [EM_READ]})
    assert response.status_code == 403
    assert not AccessToken.objects.exists()
    user_token(requester, [EM_READ])
    token = AccessToken.objects.get()
    assert browser.post(f"{TOKENS}{token.pk}/revoke/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_person_revokes_their_own_token_and_not_anothers(client, requester, outsider, user_token):
    user_token(requester, [EM_READ])
    user_token(outsider, [EM_READ])
    mine = AccessToken.objects.get(user=requester)
    theirs = AccessToken.objects.get(user=outsider)
    client.force_login(requester)
    assert client.get(f"{TOKENS}{mine.pk}/revoke/").status_code == 405
    assert client.post(f"{TOKENS}{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert outsider.email not in client.get(TOKENS).content.decode()
    response = client.post(f"{TOKENS}{mine.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == TOKENS
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    assert AuditEvent.objects.filter(action="accessToken.revoked", actor=requester).exists()


def test_an_applications_tokens_are_not_on_a_persons_page(client, admin_user, app_token):
    app_token([EM_READ])
    client.force_login(admin_user)
    assert "You have no tokens" in client.get(TOKENS).content.decode()


def test_the_token_list_is_a_bounded_number_of_queries(
    client, requester, user_token, django_assert_max_num_queries
):
    client.force_login(requester)
    for size in (1, 10):
        while AccessToken.objects.filter(user=requester).count() < size:
            user_token(requester, [EM_READ])
        with django_assert_max_num_queries(6):
            assert client.get(TOKENS).status_code == 200


def test_my_access_links_to_the_token_page(client, requester):
    client.force_login(requester)
    home = client.get("/").content.decode()
    assert f'href="{TOKENS}"' in home
    assert f'href="{TOKENS}" aria-current="page"' in client.get(TOKENS).content.decode()


def test_saving_a_secret_or_token_page_changes_nothing(admin_client, api_app, app_token):
    application, _, _ = api_app([EM_READ])
    secret = application.secrets.get()
    before = ClientSecret.objects.filter(pk=secret.pk).values().get()
    response = admin_client.post(f"/admin/api/clientsecret/{secret.pk}/change/", {})
    assert response.status_code == 302
    assert ClientSecret.objects.filter(pk=secret.pk).values().get() == before


def test_a_catalog_role_given_to_the_service_principal_in_the_admin_lets_it_act_there(
    admin_client, app_token, api
):
    from entitlements.models import AdminRole
    from tests.factories import CatalogFactory

    sales, _ = CatalogFactory(display_name="Sales"), CatalogFactory(display_name="Finance")
    api.token = app_token([])
    principal = app_token.last.service_principal
    catalogs = "/v1.0/identityGovernance/entitlementManagement/catalogs"
    assert api.get(catalogs).status_code == 403
    response = admin_client.post(
        "/admin/entitlements/roleassignment/add/",
        {"principal": str(principal.pk), "role": AdminRole.CATALOG_OWNER, "catalog": str(sales.pk)},
    )
    assert response.status_code == 302, response.content
    listed = api.get(catalogs)
    assert listed.status_code == 200
    assert [row["displayName"] for row in listed.json()["value"]] == ["Sales"]
