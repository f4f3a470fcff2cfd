"""The OAuth 2.0 token endpoint: client credentials, answered as Entra answers."""

import base64
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from api.models import AccessToken, ClientSecret
from api.oauth import FAILURE_LIMIT, GRAPH_DEFAULT_SCOPE
from api.permissions import EM_READ, EM_READWRITE
from api.tokens import digest

pytestmark = pytest.mark.django_db

URL = "/oauth2/v2.0/token"
CATALOGS = "/v1.0/identityGovernance/entitlementManagement/catalogs"


@pytest.fixture(autouse=True)
def _clear_failure_counts():
    cache.clear()
    yield
    cache.clear()


def form(client_id, secret, **changes):
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": GRAPH_DEFAULT_SCOPE,
    } | changes


def post(client, data, **extra):
    return client.post(URL, data, content_type="application/x-www-form-urlencoded", **extra)


def encoded(data):
    from urllib.parse import urlencode

    return urlencode(data)


def test_client_credentials_give_a_bearer_token_like_entras(client, api_app, settings):
    application, client_id, secret = api_app([EM_READ])
    response = post(client, encoded(form(client_id, secret)))
    assert response.status_code == 200, response.content
    body = response.json()
    lifetime = int(settings.API_TOKEN_LIFETIME.total_seconds())
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == lifetime and body["ext_expires_in"] == lifetime
    assert (
        response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    )
    token = AccessToken.objects.get(token_hash=digest(body["access_token"]))
    assert token.kind == AccessToken.Kind.APPLICATION
    assert token.application == application and token.user == application.service_principal
    assert token.permissions == [EM_READ]
    assert "sessionid" not in response.cookies
    listed = client.get(CATALOGS, HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert listed.status_code == 200, listed.content


def test_the_tenant_path_and_the_products_own_scope_work_too(client, api_app, settings):
    _, client_id, secret = api_app([EM_READ])
    data = form(client_id, secret, scope=f"{settings.SITE_URL}/.default")
    response = post(client, encoded(data))
    assert response.status_code == 200, response.content
    response = client.post(
        "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        encoded(form(client_id, secret)),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content


def test_http_basic_carries_the_client_credentials(client, api_app):
    _, client_id, secret = api_app([EM_READ])
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    data = {"grant_type": "client_credentials", "scope": GRAPH_DEFAULT_SCOPE}
    response = post(client, encoded(data), HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    wrong = base64.b64encode(f"{client_id}:nope".encode()).decode()
    refused = post(client, encoded(data), HTTP_AUTHORIZATION=f"Basic {wrong}")
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert refused["WWW-Authenticate"].startswith("Basic")


def test_a_wrong_secret_is_invalid_client_and_issues_nothing(client, api_app):
    _, client_id, secret = api_app([EM_READ])
    response = post(client, encoded(form(client_id, secret + "x")))
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Invalid client secret provided.",
    }
    assert not AccessToken.objects.exists()


def test_an_unknown_client_is_invalid_client(client):
    response = post(client, encoded(form("00000000-0000-0000-0000-000000000000", "secret")))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_disabled_application_gets_no_token(client, api_app):
    _, client_id, secret = api_app([EM_READ], enabled=False)
    response = post(client, encoded(form(client_id, secret)))
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert not AccessToken.objects.exists()


def test_an_expired_or_revoked_secret_gets_no_token(client, api_app):
    application, client_id, secret = api_app([EM_READ])
    with time_machine.travel(timezone.now() + timedelta(days=181), tick=False):
        response = post(client, encoded(form(client_id, secret)))
    assert response.status_code == 401
    assert "expired" in response.json()["error_description"]
    ClientSecret.objects.filter(application=application).update(revoked_at=timezone.now())
    assert post(client, encoded(form(client_id, secret))).status_code == 401
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    "change, status, error",
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"scope": "User.Read"}, 400, "invalid_scope"),
        ({"scope": ""}, 400, "invalid_request"),
        ({"client_id": ""}, 400, "invalid_request"),
        ({"client_secret": ""}, 401, "invalid_client"),
    ],
)
def test_bad_requests_answer_oauth_errors(client, api_app, change, status, error):
    _, client_id, secret = api_app([EM_READ])
    response = post(client, encoded(form(client_id, secret) | change))
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert not AccessToken.objects.exists()


def test_json_bodies_and_get_are_refused(client, api_app):
    _, client_id, secret = api_app([EM_READ])
    response = client.post(URL, form(client_id, secret), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert client.get(URL).status_code == 405


def test_the_endpoint_needs_no_csrf_token(api_app):
    from django.test import Client

    _, client_id, secret = api_app([EM_READ])
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, encoded(form(client_id, secret))).status_code == 200


def test_failed_attempts_are_limited_per_client_even_with_the_right_secret(client, api_app):
    _, client_id, secret = api_app([EM_READWRITE])
    _, other_id, other_secret = api_app([EM_READ])
    for _ in range(FAILURE_LIMIT):
        assert post(client, encoded(form(client_id, "guess"))).status_code == 401
    limited = post(client, encoded(form(client_id, secret)))
    assert limited.status_code == 429
    assert limited.json()["error"] == "temporarily_unavailable"
    assert int(limited["Retry-After"]) > 0
    assert post(client, encoded(form(other_id, other_secret))).status_code == 200
    assert AccessToken.objects.count() == 1


def test_secrets_are_not_stored_in_plain_text(api_app):
    application, _, secret = api_app([EM_READ])
    row = ClientSecret.objects.filter(application=application).values().get()
    assert secret not in str(row)
    assert row["secret_hash"] == digest(secret)
    assert row["hint"] == secret[:3]
