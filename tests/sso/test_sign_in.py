"""Single sign-on in a real browser against a real OpenID Connect provider (oidc-provider)."""

import json

import httpx
import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.sessions.models import Session
from django.urls import reverse

from directory.models import User
from scim.tokens import client_create
from tests.browser import screenshot
from tests.factories import ConnectedOrganizationFactory

from .conftest import PASSWORD, PROVIDER_NAME

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser, live_server, sso):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


def start_single_sign_on(page):
    page.goto(reverse("account_login"))
    page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").click()
    page.get_by_role("button", name="Continue").click()


def sign_in_at_provider(page, email, password=PASSWORD):
    page.get_by_role("heading", name="Test identity provider").wait_for()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in_as(page, live_server):
    """Who the browser's session belongs to, read from the session store."""
    cookie = next(
        (c for c in page.context.cookies(live_server.url) if c["name"] == "sessionid"), None
    )
    if cookie is None:
        return None
    session = Session.objects.filter(session_key=cookie["value"]).first()
    if session is None:
        return None
    return session.get_decoded().get("_auth_user_id")


def test_a_verified_email_signs_in_as_the_directory_user_with_that_email(
    page, live_server, sso, requester
):
    sso.add_account(sub="rita-at-idp", email=requester.email.upper(), email_verified=True)

    start_single_sign_on(page)
    sign_in_at_provider(page, requester.email)

    page.wait_for_url(f"{live_server.url}{reverse('myaccess:home')}")
    screenshot(page, "sso-01-signed-in")
    assert page.get_by_text(requester.display_name).first.is_visible()
    assert signed_in_as(page, live_server) == str(requester.pk)
    account = SocialAccount.objects.get(uid="rita-at-idp")
    assert account.user == requester
    assert account.provider == "sso"


def test_a_connected_organization_s_person_signs_in_as_a_new_guest(page, live_server, sso):
    contoso = ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    sso.add_account(
        sub="gail-at-contoso", email="gail@contoso.com", email_verified=True, name="Gail Guest"
    )

    start_single_sign_on(page)
    sign_in_at_provider(page, "gail@contoso.com")

    page.wait_for_url(f"{live_server.url}{reverse('myaccess:home')}")
    guest = User.objects.get(email="gail@contoso.com")
    assert (guest.user_type, guest.connected_organization) == (User.UserType.GUEST, contoso)
    assert guest.display_name == "Gail Guest"
    assert signed_in_as(page, live_server) == str(guest.pk)
    assert SocialAccount.objects.get(uid="gail-at-contoso").user == guest


def test_an_unverified_email_is_refused_and_links_nobody(page, live_server, sso, requester):
    sso.add_account(sub="someone-else", email=requester.email, email_verified=False)

    start_single_sign_on(page)
    sign_in_at_provider(page, requester.email)

    page.get_by_role("heading", name="Single sign-on could not sign you in").wait_for()
    screenshot(page, "sso-02-unverified")
    assert page.get_by_text("has not confirmed that you own").is_visible()
    assert signed_in_as(page, live_server) is None
    assert not SocialAccount.objects.exists()
    page.goto(reverse("myaccess:home"))
    assert page.url.startswith(f"{live_server.url}{reverse('account_login')}")


def scim_call(live_server, token, method, path, body):
    """One request of a SCIM provisioning client (an HR system) to the live server."""
    response = httpx.request(
        method,
        f"{live_server.url}/scim/v2/{path}",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        timeout=30,
    )
    return response.status_code, response.json() if response.content else None


def test_a_person_disabled_by_scim_is_refused_although_the_provider_session_is_valid(
    page, live_server, sso, admin_user
):
    _, token = client_create(name="HR system", actor=admin_user)
    status, ann = scim_call(
        live_server,
        token,
        "POST",
        "Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann.lee@example.com",
            "displayName": "Ann Lee",
            "emails": [{"value": "ann.lee@example.com", "primary": True, "type": "work"}],
            "active": True,
        },
    )
    assert status == 201, ann
    person = User.objects.get(email="ann.lee@example.com")
    sso.add_account(sub="ann-at-idp", email="ann.lee@example.com", email_verified=True)
    start_single_sign_on(page)
    sign_in_at_provider(page, "ann.lee@example.com")
    page.wait_for_url(f"{live_server.url}{reverse('myaccess:home')}")
    assert signed_in_as(page, live_server) == str(person.pk)

    status, body = scim_call(
        live_server,
        token,
        "PATCH",
        f"Users/{ann['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert status == 204, body

    page.goto(reverse("myaccess:home"))
    assert page.url.startswith(f"{live_server.url}{reverse('account_login')}")
    visited = []
    page.on("request", lambda r: visited.append(r.url) if r.is_navigation_request() else None)
    start_single_sign_on(page)
    page.get_by_role("heading", name="Single sign-on could not sign you in").wait_for()
    screenshot(page, "sso-03-disabled")
    assert page.get_by_text("Your account is disabled").is_visible()
    assert signed_in_as(page, live_server) is None
    # The provider answered from its session: its sign-in form was never shown again.
    assert any(url.startswith(f"{sso.issuer}/auth") for url in visited)
    assert not any(url.startswith(f"{sso.issuer}/interaction/") for url in visited)


def test_signing_out_ends_the_session(page, live_server, sso, requester, client):
    sso.add_account(sub="rita-at-idp", email=requester.email, email_verified=True)
    start_single_sign_on(page)
    sign_in_at_provider(page, requester.email)
    page.wait_for_url(f"{live_server.url}{reverse('myaccess:home')}")
    session_key = next(c for c in page.context.cookies() if c["name"] == "sessionid")["value"]

    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"**{reverse('account_login')}**")

    assert not Session.objects.filter(session_key=session_key).exists()
    client.cookies["sessionid"] = session_key
    response = client.get(reverse("myaccess:home"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={reverse('myaccess:home')}"
