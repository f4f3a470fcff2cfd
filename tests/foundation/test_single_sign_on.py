"""Single sign-on links a directory user only through an address the provider vouches for."""

from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.test import RequestFactory

from directory.adapters import DirectorySocialAccountAdapter
from directory.models import User

pytestmark = pytest.mark.django_db


def incoming(email, *, verified_address=False, email_verified_claim=None):
    extra = {} if email_verified_claim is None else {"email_verified": email_verified_claim}
    login = SocialLogin(
        user=User(email=email, display_name="Incoming"),
        account=SocialAccount(provider="openid_connect", uid="subject-1", extra_data=extra),
        email_addresses=[EmailAddress(email=email, verified=verified_address, primary=True)],
    )
    login.connect = mock.Mock()
    return login


def sign_in(login):
    DirectorySocialAccountAdapter().pre_social_login(RequestFactory().get("/"), login)
    return login


def test_a_verified_address_links_the_directory_user(admin_user):
    login = sign_in(incoming(admin_user.email, verified_address=True))
    login.connect.assert_called_once()
    assert login.connect.call_args.args[1] == admin_user


def test_an_email_verified_claim_links_the_directory_user(admin_user):
    login = sign_in(incoming(admin_user.email, email_verified_claim=True))
    login.connect.assert_called_once()


def test_an_unverified_address_never_takes_over_an_account(admin_user):
    login = sign_in(incoming(admin_user.email, email_verified_claim=False))
    login.connect.assert_not_called()


def test_a_disabled_user_is_not_linked(requester):
    requester.is_active = False
    requester.save()
    login = sign_in(incoming(requester.email, verified_address=True))
    login.connect.assert_not_called()
