"""Administrators see the organizations that sign-ins from new domains proposed."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from directory.models import ConnectedOrganization
from tests.factories import ConnectedOrganizationFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:directory_connectedorganization_changelist")
PROPOSED = ConnectedOrganization.State.PROPOSED


def proposals(count):
    return [
        ConnectedOrganizationFactory(
            display_name=f"new{n}.example", domains=[f"new{n}.example"], state=PROPOSED
        )
        for n in range(count)
    ]


def notices(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_organizations_list_says_how_many_proposals_wait_for_review(client, admin_user):
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    proposals(2)
    client.force_login(admin_user)

    response = client.get(LIST)

    assert response.status_code == 200
    assert notices(response) == [
        "2 proposed organizations are waiting for review: people who signed in from their "
        "domains are their guests until you configure or remove them."
    ]


def test_one_proposal_is_named_in_the_singular(client, admin_user):
    proposals(1)
    client.force_login(admin_user)

    assert notices(client.get(LIST))[0].startswith("1 proposed organization is waiting")


def test_without_proposals_the_list_says_nothing(client, admin_user):
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    client.force_login(admin_user)

    assert notices(client.get(LIST)) == []


def test_the_state_filter_lists_only_the_proposals(client, admin_user):
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    proposals(2)
    client.force_login(admin_user)

    response = client.get(LIST, {"state__exact": PROPOSED})

    shown = [o.display_name for o in response.context["cl"].result_list]
    assert shown == ["new0.example", "new1.example"]


def test_the_list_costs_the_same_queries_for_3_or_30_proposals(
    client, admin_user, django_assert_max_num_queries
):
    client.force_login(admin_user)
    proposals(3)
    with django_assert_max_num_queries(12) as few:
        client.get(LIST)
    ConnectedOrganization.objects.all().delete()
    proposals(30)

    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(LIST).status_code == 200


def test_a_person_without_an_admin_role_never_sees_the_list(client, outsider):
    proposals(1)
    client.force_login(outsider)

    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
