"""Which directory user a single sign-on links to, decided from the provider's claims."""

from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from directory.models import User

pytestmark = pytest.mark.django_db


def incoming(email, *, verified_address=False, claims=None):
    """A sign-in as allauth 65 builds it: the claims under "userinfo" and "id_token"."""
    extra = {} if claims is None else {"userinfo": claims, "id_token": {"sub": "subject-1"}}
    login = SocialLogin(
        user=User(email=email, display_name="Incoming"),
        account=SocialAccount(provider="sso", uid="subject-1", extra_data=extra),
        email_addresses=[EmailAddress(email=email, verified=verified_address, primary=True)]
        if email
        else [],
    )
    login.connect = mock.Mock()
    return login


def sign_in(login):
    request = RequestFactory().get("/accounts/oidc/sso/login/callback/")
    request.user = AnonymousUser()
    get_adapter(request).pre_social_login(request, login)  # the adapter the settings name
    return login


def refusal(login):
    with pytest.raises(ImmediateHttpResponse) as refused:
        sign_in(login)
    login.connect.assert_not_called()
    assert refused.value.response.status_code == 403
    return refused.value.response.content.decode()


def test_a_verified_address_links_the_directory_user_whatever_its_case(admin_user):
    login = sign_in(incoming(admin_user.email.upper(), verified_address=True))

    login.connect.assert_called_once()
    assert login.connect.call_args.args[1] == admin_user


def test_an_email_verified_claim_in_the_userinfo_links_the_directory_user(admin_user):
    login = sign_in(incoming(admin_user.email, claims={"email_verified": True}))

    assert login.connect.call_args.args[1] == admin_user


def test_entra_s_domain_owner_verified_claim_links_the_directory_user(admin_user):
    login = sign_in(incoming(admin_user.email, claims={"xms_edov": True}))

    assert login.connect.call_args.args[1] == admin_user


def test_entra_s_domain_claim_does_not_override_an_email_verified_false(admin_user):
    page = refusal(incoming(admin_user.email, claims={"email_verified": False, "xms_edov": True}))

    assert "has not confirmed" in page


def test_an_unverified_address_is_refused_and_never_takes_over_an_account(admin_user):
    page = refusal(incoming(admin_user.email, claims={"email_verified": False}))

    assert "has not confirmed that you own the address admin@example.com" in page


def test_an_email_verified_claim_given_as_text_is_not_taken_for_true(admin_user):
    page = refusal(incoming(admin_user.email, claims={"email_verified": "yes, trust me"}))

    assert "has not confirmed" in page


def test_a_provider_that_gives_no_email_is_refused(admin_user):
    page = refusal(incoming("", claims={"sub": "subject-1"}))

    assert "did not tell us your email address" in page


def test_a_disabled_user_is_refused_and_not_linked(requester):
    requester.is_active = False
    requester.save()

    page = refusal(incoming(requester.email, verified_address=True))

    assert "Your account is disabled" in page


def test_a_disabled_user_already_linked_is_refused(requester):
    SocialAccount.objects.create(user=requester, provider="sso", uid="subject-1")
    requester.is_active = False
    requester.save()
    login = SocialLogin(user=requester, account=SocialAccount.objects.get(uid="subject-1"))
    login.connect = mock.Mock()

    page = refusal(login)

    assert "Your account is disabled" in page


def test_an_unknown_verified_address_links_nobody(db):
    login = sign_in(incoming("stranger@example.org", verified_address=True))

    login.connect.assert_not_called()
