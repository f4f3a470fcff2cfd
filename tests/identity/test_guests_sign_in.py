"""Single sign-on makes a guest account just in time for a connected organization's people,
and proposes an organization for a new domain only while a policy welcomes all external users."""

from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.models import SocialAccount, SocialLogin
from django.test import RequestFactory

from directory.models import ConnectedOrganization, User
from entitlements.models import AllowedTargetScope, AuditEvent, Catalog
from identity.adapters import GuestSocialAccountAdapter
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    ConnectedOrganizationFactory,
    PolicyFactory,
)

pytestmark = pytest.mark.django_db


def incoming(email, *, verified=True, name="Gail Guest", uid="subject-1", extra=None):
    login = SocialLogin(
        user=User(email=email, display_name=name),
        account=SocialAccount(provider="openid_connect", uid=uid, extra_data=extra or {}),
        email_addresses=[EmailAddress(email=email, verified=verified, primary=True)],
    )
    login.connect = mock.Mock()
    return login


def sign_in(login):
    GuestSocialAccountAdapter().pre_social_login(RequestFactory().get("/"), login)
    return login


def linked_user(login):
    login.connect.assert_called_once()
    return login.connect.call_args.args[1]


@pytest.fixture
def contoso(db):
    return ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])


def welcome_all_external_users(*, catalog_state=Catalog.State.PUBLISHED, external=True):
    catalog = CatalogFactory(state=catalog_state, is_externally_visible=external)
    return PolicyFactory(
        access_package=AccessPackageFactory(catalog=catalog),
        allowed_target_scope=AllowedTargetScope.ALL_EXTERNAL_USERS,
    )


def test_a_connected_organization_s_person_gets_a_guest_account_at_first_sign_in(contoso):
    login = sign_in(incoming("Gail@Contoso.com"))

    guest = linked_user(login)
    guest.refresh_from_db()
    assert (guest.email, guest.display_name) == ("gail@contoso.com", "Gail Guest")
    assert guest.user_type == User.UserType.GUEST
    assert guest.connected_organization == contoso
    assert guest.is_active and not guest.has_usable_password()
    event = AuditEvent.objects.get(action="user.provisioned", target=guest)
    assert event.data["source"] == "sso"
    assert event.data["source_name"] == "openid_connect"


def test_an_unverified_address_of_a_connected_organization_makes_no_account(contoso):
    with pytest.raises(ImmediateHttpResponse) as refused:
        sign_in(incoming("gail@contoso.com", verified=False))

    assert refused.value.response.status_code == 403
    assert not User.objects.filter(email="gail@contoso.com").exists()
    assert not User.objects.filter(email="gail@contoso.com").exists()


def test_an_email_verified_claim_in_the_userinfo_vouches_for_the_address(contoso):
    login = incoming(
        "gail@contoso.com", verified=False, extra={"userinfo": {"email_verified": True}}
    )

    assert linked_user(sign_in(login)).is_guest


def test_an_existing_guest_is_linked_not_made_twice(contoso):
    first = linked_user(sign_in(incoming("gail@contoso.com")))

    again = linked_user(sign_in(incoming("gail@contoso.com", uid="subject-2")))

    assert again == first
    assert User.objects.filter(email="gail@contoso.com").count() == 1


def test_a_blocked_guest_is_neither_linked_nor_made_again(contoso):
    blocked = linked_user(sign_in(incoming("gail@contoso.com")))
    User.objects.filter(pk=blocked.pk).update(is_active=False)

    with pytest.raises(ImmediateHttpResponse):
        sign_in(incoming("gail@contoso.com", uid="subject-2"))

    assert User.objects.filter(email="gail@contoso.com").count() == 1


def test_an_unknown_domain_is_refused_while_no_policy_welcomes_all_external_users(contoso):
    welcome_all_external_users(catalog_state=Catalog.State.UNPUBLISHED)
    welcome_all_external_users(external=False)

    login = sign_in(incoming("kim@litware.com"))

    login.connect.assert_not_called()
    assert not User.objects.filter(email="kim@litware.com").exists()
    assert not ConnectedOrganization.objects.filter(display_name="litware.com").exists()


def test_an_unknown_domain_gets_a_proposed_organization_when_all_external_users_are_welcome():
    welcome_all_external_users()

    guest = linked_user(sign_in(incoming("kim@litware.com", name="Kim Akers")))

    proposal = guest.connected_organization
    assert guest.is_guest
    assert (proposal.display_name, proposal.domains) == ("litware.com", ["litware.com"])
    assert proposal.state == ConnectedOrganization.State.PROPOSED
    event = AuditEvent.objects.get(action="connectedOrganization.proposed")
    assert event.object_id == str(proposal.pk)
    assert event.data == {"domain": "litware.com"}


def test_the_second_person_of_a_proposed_domain_joins_the_same_proposal():
    welcome_all_external_users()
    first = linked_user(sign_in(incoming("kim@litware.com")))

    second = linked_user(sign_in(incoming("lee@litware.com", uid="subject-2")))

    assert second.connected_organization == first.connected_organization
    assert ConnectedOrganization.objects.count() == 1
    assert AuditEvent.objects.filter(action="connectedOrganization.proposed").count() == 1


def test_an_internal_domain_never_signs_up_even_when_external_users_are_welcome(settings):
    settings.INTERNAL_EMAIL_DOMAINS = ["example.com"]
    welcome_all_external_users()

    login = sign_in(incoming("newcomer@example.com"))

    login.connect.assert_not_called()
    assert not User.objects.filter(email="newcomer@example.com").exists()
    assert not ConnectedOrganization.objects.exists()


def test_a_directory_member_still_signs_in_with_a_verified_address(requester):
    assert linked_user(sign_in(incoming(requester.email))) == requester


def test_a_proposal_does_not_take_a_name_an_organization_already_has():
    welcome_all_external_users()
    ConnectedOrganizationFactory(display_name="litware.com", domains=["litware.net"])

    guest = linked_user(sign_in(incoming("kim@litware.com")))

    assert guest.connected_organization.display_name != "litware.com"
    assert guest.connected_organization.domains == ["litware.com"]
