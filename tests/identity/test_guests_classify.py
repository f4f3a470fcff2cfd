"""Who is a guest: an email domain of a connected organization makes one."""

import pytest

from directory.models import ConnectedOrganization, User
from identity.guests import classify
from tests.factories import ConnectedOrganizationFactory

pytestmark = pytest.mark.django_db

Member, Guest = User.UserType.MEMBER, User.UserType.GUEST


def test_an_address_of_a_configured_organization_is_a_guest_of_it():
    contoso = ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])

    assert classify("Alex@Contoso.COM") == (Guest, contoso)


def test_an_address_of_an_unknown_domain_is_a_member():
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])

    assert classify("alex@example.com") == (Member, None)


def test_a_subdomain_is_not_the_organization_s_domain():
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])

    assert classify("alex@mail.contoso.com") == (Member, None)
    assert classify("alex@notcontoso.com") == (Member, None)


def test_an_internal_domain_is_a_member_even_when_an_organization_lists_it(settings):
    settings.INTERNAL_EMAIL_DOMAINS = ["example.com"]
    ConnectedOrganizationFactory(display_name="Mislisted", domains=["example.com"])

    assert classify("rita@example.com") == (Member, None)


def test_a_configured_organization_wins_over_a_proposed_one_for_the_same_domain():
    ConnectedOrganizationFactory(
        display_name="A proposal",
        domains=["fabrikam.com"],
        state=ConnectedOrganization.State.PROPOSED,
    )
    fabrikam = ConnectedOrganizationFactory(display_name="Fabrikam", domains=["Fabrikam.com"])

    assert classify("bo@fabrikam.com") == (Guest, fabrikam)


def test_a_proposed_organization_makes_guests_of_its_domain():
    proposal = ConnectedOrganizationFactory(
        display_name="litware.com",
        domains=["litware.com"],
        state=ConnectedOrganization.State.PROPOSED,
    )

    assert classify("kim@litware.com") == (Guest, proposal)


def test_an_address_without_a_domain_is_a_member():
    assert classify("") == (Member, None)
    assert classify("nobody") == (Member, None)
