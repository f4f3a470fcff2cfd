"""The admin of a SCIM connected system against a real SCIM server: test connection, and
discovery of the application's groups with "Add to catalog"."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from entitlements.models import Resource
from entitlements.services.delivery import assignment_deliver
from tests.factories import CatalogFactory
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving
from tests.scimserver import scim_system

pytestmark = pytest.mark.django_db


@pytest.fixture
def wiki(scim_server, monkeypatch):
    return scim_system(scim_server, monkeypatch)


def said(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def url(name, *args):
    return reverse(f"admin:entitlements_{name}", args=args)


def test_test_connection_shows_what_the_application_has_or_why_not(
    client, admin_user, scim_server, wiki, monkeypatch
):
    scim_server.create_group("Engineers")
    client.force_login(admin_user)

    response = client.post(url("connectedsystem_test", wiki.pk), follow=True)
    assert said(response) == [
        f"Connected to {scim_server.url}: 0 users and 1 groups; PATCH is supported."
    ]

    monkeypatch.setenv(wiki.secret_reference, "a revoked token")
    response = client.post(url("connectedsystem_test", wiki.pk), follow=True)
    [message] = said(response)
    assert message.startswith("Test failed: Wiki refused counting its users and groups (401)")


def test_discover_pages_through_the_applications_groups_and_adds_one_to_a_catalog(
    client, admin_user, scim_server, wiki, requester, django_assert_max_num_queries
):
    groups = [scim_server.create_group(f"Team {n:02d}") for n in range(30)]
    scim_server.create_group("Sales")
    catalog = CatalogFactory(display_name="Engineering")
    client.force_login(admin_user)
    discover = url("connectedsystem_discover", wiki.pk)

    with django_assert_max_num_queries(12):
        first = client.get(discover, {"q": "team"}).content.decode()
    assert "Team 00" in first and "Team 24" in first and "Team 25" not in first
    assert "Sales" not in first
    assert "cursor=26" in first
    second = client.get(discover, {"q": "team", "cursor": "26"}).content.decode()
    assert "Team 29" in second and "Next page" not in second

    chosen = groups[3]
    response = client.post(
        discover + "?q=team", {"origin_id": chosen["id"], "catalog": str(catalog.pk)}, follow=True
    )

    assert said(response) == ["Team 03 was added to Engineering with the roles Member."]
    resource = Resource.objects.get(origin_id=chosen["id"])
    assert (resource.connected_system, resource.catalog, resource.group) == (wiki, catalog, None)
    assert list(resource.roles.values_list("origin_id", flat=True)) == ["Member"]

    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(requester, package, policy))
    assignment_deliver(assignment_id=assignment.pk)
    assert scim_server.member_names(chosen["id"]) == ["requester@example.com"]


def test_a_group_removed_from_the_application_meanwhile_is_not_added(
    client, admin_user, scim_server, wiki
):
    group = scim_server.create_group("Engineers")
    scim_server.http.delete(f"/Groups/{group['id']}")
    catalog = CatalogFactory()
    client.force_login(admin_user)

    response = client.post(
        url("connectedsystem_discover", wiki.pk),
        {"origin_id": group["id"], "catalog": str(catalog.pk)},
        follow=True,
    )

    assert said(response) == [f"Wiki has no group {group['id']} any more."]
    assert not Resource.objects.filter(origin_id=group["id"]).exists()
