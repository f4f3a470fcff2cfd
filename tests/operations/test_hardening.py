"""Hardening: the Content-Security-Policy, no-store for personal pages, HSTS, and emails
that name this site."""

import pytest
from django.core import mail

from tests.browser import chromium
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def policy_of(response):
    header = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def test_every_page_carries_a_content_security_policy_without_inline_script_or_style(client):
    policy = policy_of(client.get("/accounts/login/"))

    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_the_api_docs_style_carries_the_nonce_of_its_response(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/api/docs/")

    nonce = next(v for v in policy_of(response)["style-src"] if v.startswith("'nonce-"))
    assert f'<style nonce="{nonce[7:-1]}">' in response.text
    assert "<script>" not in response.text


def test_pages_for_a_signed_in_person_are_not_stored(client, requester):
    client.force_login(requester)
    response = client.get("/")

    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert "private" in response.headers["Cache-Control"]


def test_api_answers_to_a_bearer_token_are_not_stored(client):
    response = client.get(
        "/v1.0/identityGovernance/entitlementManagement/accessPackages",
        headers={"Authorization": "Bearer nope"},
    )

    assert response.status_code == 401
    assert "no-store" in response.headers["Cache-Control"]


def test_hsts_includes_subdomains_and_preload_when_configured(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True

    response = client.get("/accounts/login/", secure=True)

    assert response.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )


def test_probes_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 301


def test_a_password_reset_email_names_the_site_of_site_url(client, requester, settings):
    response = client.post("/accounts/password/reset/", {"email": requester.email})

    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.subject.startswith("[My Access] ")
    assert "127.0.0.1:8000" in message.body  # SITE_URL's host, from the sites framework
    assert "example.com" not in message.body.replace(requester.email, "")


def test_a_password_reset_for_an_unknown_address_sends_nothing(client):
    response = client.post("/accounts/password/reset/", {"email": "stranger@elsewhere.test"})

    assert response.status_code == 302
    assert mail.outbox == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_portal_admin_and_api_docs_run_with_no_policy_violation(live_server, admin_user):
    pages = [
        "/accounts/login/",
        "/",
        "/access-packages/",
        "/admin/",
        f"/admin/directory/user/{admin_user.pk}/change/",
        "/admin/entitlements/accesspackage/add/",
        "/api/docs/",
    ]
    violations = []
    with chromium() as browser:
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                violations.append(f"{page.url}: {m.text}")
                if "Content Security Policy" in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: violations.append(f"{page.url}: {e}"))
        page.goto("/accounts/login/")
        page.get_by_label("Email").fill(admin_user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/")
        for path in pages:
            page.goto(path)
            page.wait_for_load_state("networkidle")
        page.locator(".swagger-ui .information-container").wait_for()
        context.close()

    assert violations == []


def test_an_unreadable_scim_request_gets_a_scim_error_body(client):
    response = client.get("/scim/v2/Users", {"filter": 'userName eq "a\x00b"'})

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/scim+json"
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "400",
        "detail": "The request could not be read.",
    }
