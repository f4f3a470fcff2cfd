"""Bearer tokens on the API: who the caller is, what it may do, and when a token stops."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from api.models import AccessToken, Application
from api.permissions import EM_READ, EM_READWRITE, USER_READ_ALL
from api.tokens import digest, token_revoke
from entitlements.models import AdminRole, AuditEvent, Catalog, RoleAssignment
from tests.factories import CatalogFactory

pytestmark = pytest.mark.django_db

URL = "/v1.0/identityGovernance/entitlementManagement/catalogs"


def names(response):
    assert response.status_code == 200, response.content
    return {row["displayName"] for row in response.json()["value"]}


def assert_401(response):
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def catalogs(db):
    return CatalogFactory(display_name="Sales"), CatalogFactory(display_name="Finance")


def test_an_application_with_read_all_reads_every_catalog(api, app_token, catalogs):
    api.token = app_token([EM_READ])
    assert {"Sales", "Finance"} <= names(api.get(URL))
    assert api.get(f"{URL}/{catalogs[1].pk}").status_code == 200


def test_a_read_only_application_may_not_write_and_nothing_is_created(api, app_token):
    api.token = app_token([EM_READ])
    response = api.post(URL, {"displayName": "Shadow IT"})
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "Forbidden"
    assert EM_READWRITE in error["message"]
    assert error["innerError"]["request-id"] == response["request-id"]
    assert not Catalog.objects.filter(display_name="Shadow IT").exists()


def test_an_application_without_entitlement_permissions_is_refused(api, app_token, catalogs):
    api.token = app_token([USER_READ_ALL])
    response = api.get(URL)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"


def test_an_api_write_is_audited_with_the_service_principal_as_actor(api, app_token):
    api.token = app_token([EM_READWRITE])
    principal = app_token.last.service_principal
    response = api.post(URL, {"displayName": "Made by a script"})
    assert response.status_code == 201, response.content
    catalog = Catalog.objects.get(pk=response.json()["id"])
    event = AuditEvent.objects.get(action="catalog.created", object_id=str(catalog.pk))
    assert event.actor_id == principal.pk
    assert event.channel == "api"
    assert app_token.last.display_name in event.actor_display
    # whoever creates a catalog owns it: here the application's service principal
    assert RoleAssignment.objects.filter(
        catalog=catalog, principal=principal, role=AdminRole.CATALOG_OWNER
    ).exists()
    # acting product-wide changed nothing stored about the principal
    principal.refresh_from_db()
    assert not principal.is_superuser and not principal.is_staff
    assert not principal.has_usable_password()


def test_an_application_with_a_catalog_role_acts_only_in_that_catalog(api, app_token, catalogs):
    sales, finance = catalogs
    api.token = app_token([], catalog_roles=[(AdminRole.CATALOG_OWNER, sales)])
    assert names(api.get(URL)) == {"Sales"}
    assert api.get(f"{URL}/{finance.pk}").status_code == 404
    assert api.patch(f"{URL}/{sales.pk}", {"description": "Ours"}).status_code == 204
    assert api.patch(f"{URL}/{finance.pk}", {"description": "Not ours"}).status_code == 404
    assert api.post(URL, {"displayName": "New"}).status_code == 403
    sales.refresh_from_db()
    finance.refresh_from_db()
    assert sales.description == "Ours" and finance.description != "Not ours"
    assert not Catalog.objects.filter(display_name="New").exists()


def test_a_catalog_reader_role_gives_an_application_no_write(api, app_token, catalogs):
    sales, _ = catalogs
    api.token = app_token([], catalog_roles=[(AdminRole.CATALOG_READER, sales)])
    assert names(api.get(URL)) == {"Sales"}
    assert api.patch(f"{URL}/{sales.pk}", {"description": "No"}).status_code == 403
    sales.refresh_from_db()
    assert sales.description != "No"


def test_a_personal_token_acts_within_the_persons_roles(
    api, user_token, catalog_owner, outsider, catalogs
):
    sales, finance = catalogs
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, catalog=sales, principal=catalog_owner
    )
    api.token = user_token(catalog_owner, [EM_READWRITE])
    assert names(api.get(URL)) == {"Sales"}
    assert api.patch(f"{URL}/{sales.pk}", {"description": "Mine"}).status_code == 204
    assert api.patch(f"{URL}/{finance.pk}", {"description": "No"}).status_code == 404
    event = AuditEvent.objects.get(action="catalog.changed", object_id=str(sales.pk))
    assert event.actor_id == catalog_owner.pk and event.channel == "api"

    api.token = user_token(outsider, [EM_READWRITE])
    assert names(api.get(URL)) == set()
    assert api.post(URL, {"displayName": "Outsider's"}).status_code == 403
    assert not Catalog.objects.filter(display_name="Outsider's").exists()


def test_a_personal_token_holds_only_the_permissions_chosen(api, user_token, admin_user):
    api.token = user_token(admin_user, [EM_READ])
    assert api.get(URL).status_code == 200
    assert api.post(URL, {"displayName": "Nope"}).status_code == 403
    assert not Catalog.objects.filter(display_name="Nope").exists()


def test_a_revoked_token_works_no_more_at_once(api, user_token, admin_user):
    value = user_token(admin_user, [EM_READ])
    api.token = value
    assert api.get(URL).status_code == 200
    token = AccessToken.objects.get(token_hash=digest(value))
    token_revoke(actor=admin_user, token=token)
    assert_401(api.get(URL))
    assert "revoked" in api.get(URL).json()["error"]["message"]


def test_an_expired_token_is_refused(api, app_token, settings):
    api.token = app_token([EM_READ])
    assert api.get(URL).status_code == 200
    later = timezone.now() + settings.API_TOKEN_LIFETIME + timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        response = api.get(URL)
    assert_401(response)
    assert "expired" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "header",
    ["Bearer {t}x", "Bearer x{t}", "Bearer {t} extra", "Bearer", "Bearer " + "a" * 500],
)
def test_a_tampered_or_malformed_token_is_refused(api, app_token, header):
    value = app_token([EM_READ])
    assert_401(api.get(URL, HTTP_AUTHORIZATION=header.format(t=value)))


def test_disabling_the_application_or_its_principal_stops_its_tokens(api, app_token):
    api.token = app_token([EM_READ])
    application = app_token.last
    Application.objects.filter(pk=application.pk).update(enabled=False)
    assert_401(api.get(URL))
    Application.objects.filter(pk=application.pk).update(enabled=True)
    assert api.get(URL).status_code == 200
    type(application.service_principal).objects.filter(pk=application.service_principal_id).update(
        is_active=False
    )
    assert_401(api.get(URL))


def test_a_permission_taken_from_the_application_stops_working_at_once(api, app_token):
    api.token = app_token([EM_READ, EM_READWRITE])
    Application.objects.filter(pk=app_token.last.pk).update(permissions=[EM_READ])
    assert api.post(URL, {"displayName": "Late"}).status_code == 403
    assert not Catalog.objects.filter(display_name="Late").exists()


def test_a_disabled_person_s_token_is_refused(api, user_token, outsider):
    api.token = user_token(outsider, [EM_READ])
    type(outsider).objects.filter(pk=outsider.pk).update(is_active=False)
    assert_401(api.get(URL))


def test_last_used_is_written_at_most_once_a_minute(api, app_token):
    value = app_token([EM_READ])
    api.token = value
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        api.get(URL)
    token = AccessToken.objects.get(token_hash=digest(value))
    assert token.last_used == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        api.get(URL)
    token.refresh_from_db()
    assert token.last_used == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        api.get(URL)
    token.refresh_from_db()
    assert token.last_used == start + timedelta(seconds=61)


def test_a_token_costs_one_query_on_a_list(api, app_token, django_assert_max_num_queries):
    api.token = app_token([EM_READ])
    api.get(URL)  # writes last_used
    for i in range(3):
        CatalogFactory(display_name=f"More {i}")
    with django_assert_max_num_queries(2):  # the token (with user and application), the page
        assert api.get(URL).status_code == 200


def test_a_session_still_needs_its_csrf_token_to_write(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    response = browser.post(URL, {"displayName": "Forged"}, content_type="application/json")
    assert response.status_code == 403
    assert not Catalog.objects.filter(display_name="Forged").exists()


def test_the_service_principal_cannot_sign_in(client, app_token):
    app_token([EM_READWRITE])
    principal = app_token.last.service_principal
    assert principal.email.endswith("@applications.invalid")
    assert not principal.has_usable_password()
    assert not client.login(email=principal.email, password="")
    assert client.get("/admin/").status_code == 302
