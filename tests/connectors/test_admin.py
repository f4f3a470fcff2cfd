"""The admin of connected systems against a real slapd: test connection, health, discovery
with "Add to catalog" (the ownership rule applies), drift reports."""

import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from entitlements.configuration import resource_add
from entitlements.connectors import connector_for_system
from entitlements.errors import PermissionDenied
from entitlements.models import (
    AdminRole,
    AuditEvent,
    ConnectedSystem,
    DriftItem,
    DriftMode,
    OriginSystem,
    Resource,
)
from entitlements.services.delivery import assignment_deliver
from entitlements.services.drift import system_drift_reconcile
from tests.connectors.helpers import ldap_resource, person
from tests.factories import CatalogFactory, UserFactory
from tests.foundation.admin_support import give_role
from tests.lifecycle.assignment_helpers import approved_request, fulfil, package_giving

pytestmark = pytest.mark.django_db


def said(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def url(name, *args):
    return reverse(f"admin:entitlements_{name}", args=args)


def test_test_connection_shows_what_the_connector_found_or_its_error(
    client, admin_user, ldap_server, ldap_system
):
    client.force_login(admin_user)

    response = client.post(url("connectedsystem_test", ldap_system.pk), follow=True)
    assert any(m.startswith(f"Connected to {ldap_server.url}") for m in said(response))

    ldap_server.stop_process()
    response = client.post(url("connectedsystem_test", ldap_system.pk), follow=True)
    assert any(m.startswith("Test failed: ") and "did not answer" in m for m in said(response))
    assert client.get(url("connectedsystem_test", ldap_system.pk)).status_code == 405


def test_only_superusers_test_connections_and_discover_groups(client, catalog_owner, ldap_system):
    client.force_login(catalog_owner)

    assert client.post(url("connectedsystem_test", ldap_system.pk)).status_code == 403
    assert client.get(url("connectedsystem_discover", ldap_system.pk)).status_code == 403
    assert client.post(url("connectedsystem_discover", ldap_system.pk)).status_code == 403


def test_the_change_page_shows_health_and_the_secret_reference_never_the_secret(
    client, admin_user, ldap_server, ldap_system
):
    ConnectedSystem.objects.filter(pk=ldap_system.pk).update(
        consecutive_failures=7, last_error="ldap://127.0.0.1 did not answer"
    )
    client.force_login(admin_user)

    page = client.get(url("connectedsystem_change", ldap_system.pk)).content.decode()

    assert "Unhealthy: 7 failures in a row; its work waits" in page
    assert "TEST_LDAP_PASSWORD" in page
    assert ldap_server.password not in page
    assert "Discover groups" in page and "Test connection" in page


def test_a_settings_form_without_an_ldap_url_is_refused_with_a_message(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        url("connectedsystem_add"),
        {"name": "No URL", "kind": "ldap", "enabled": "on", "settings": "{}"},
    )

    assert response.status_code == 200
    assert "An LDAP system needs a url such as ldap://host:389" in response.content.decode()
    assert not ConnectedSystem.objects.filter(name="No URL").exists()


def test_discover_searches_pages_and_adds_a_group_to_a_catalog_with_its_roles(
    client, admin_user, ldap_server, ldap_system, django_assert_max_num_queries
):
    tag = uuid.uuid4().hex[:6]
    for n in range(30):
        ldap_server.add_group(f"Team {tag} {n:02d}", owners=["ann"] if n == 0 else ())
    catalog = CatalogFactory(display_name="Engineering")
    client.force_login(admin_user)
    discover = url("connectedsystem_discover", ldap_system.pk)

    with django_assert_max_num_queries(12):
        first = client.get(discover, {"q": f"team {tag}"})
    page = first.content.decode()
    assert f"Team {tag} 00" in page and f"Team {tag} 24" in page
    assert f"Team {tag} 25" not in page
    assert "cursor=25" in page
    second = client.get(discover, {"q": f"team {tag}", "cursor": "25"}).content.decode()
    assert f"Team {tag} 29" in second and "Next page" not in second

    dn = ldap_server.group_dn(f"Team {tag} 00")
    response = client.post(
        discover + f"?q=team+{tag}", {"origin_id": dn, "catalog": str(catalog.pk)}, follow=True
    )

    resource = Resource.objects.get(origin_id=dn)
    assert (resource.connected_system, resource.catalog, resource.group) == (
        ldap_system,
        catalog,
        None,
    )
    assert resource.display_name == f"Team {tag} 00"
    assert sorted(resource.roles.values_list("origin_id", flat=True)) == ["Member", "Owner"]
    assert any("was added to Engineering with the roles" in m for m in said(response))
    assert AuditEvent.objects.filter(action="resource.added", object_id=str(resource.pk)).exists()
    assert "Engineering" in client.get(discover, {"q": f"team {tag} 00"}).content.decode()


def test_adding_a_group_that_no_longer_exists_says_so_and_adds_nothing(
    client, admin_user, ldap_server, ldap_system
):
    client.force_login(admin_user)
    catalog = CatalogFactory()

    response = client.post(
        url("connectedsystem_discover", ldap_system.pk),
        {"origin_id": ldap_server.group_dn("gone"), "catalog": str(catalog.pk)},
        follow=True,
    )

    assert any("has no group cn=gone" in m for m in said(response))
    assert not Resource.objects.filter(catalog=catalog).exists()
    response = client.post(
        url("connectedsystem_discover", ldap_system.pk), {"origin_id": "x", "catalog": "nope"}
    )
    assert response.status_code == 302


def test_a_catalog_owner_adds_an_ldap_group_only_if_the_directory_lists_them_as_owner(
    ldap_server, ldap_system
):
    catalog = CatalogFactory()
    owner = person(ldap_server, "bob", is_staff=True)
    give_role(owner, AdminRole.CATALOG_OWNER, catalog)
    tag = uuid.uuid4().hex[:6]
    ldap_server.add_group(f"Bobs {tag}", owners=["bob"])
    ldap_server.add_group(f"Anns {tag}", owners=["ann"])
    connector = connector_for_system(ldap_system)
    (owned,), _ = connector.search_groups(f"Bobs {tag}")
    (other,), _ = connector.search_groups(f"Anns {tag}")

    with pytest.raises(PermissionDenied, match="Only an owner of the group"):
        resource_add(
            actor=owner,
            catalog=catalog,
            origin_system=OriginSystem.GROUP,
            connected_system=ldap_system,
            discovered=other,
        )
    resource = resource_add(
        actor=owner,
        catalog=catalog,
        origin_system=OriginSystem.GROUP,
        connected_system=ldap_system,
        discovered=owned,
    )
    assert resource.origin_id == owned.origin_id
    assert Resource.objects.filter(catalog=catalog).count() == 1


def test_a_system_without_owners_gives_its_groups_only_a_member_role(ldap_server, ldap_system):
    ldap_system.settings = {**ldap_system.settings, "owner_attribute": ""}
    ldap_system.save()
    tag = uuid.uuid4().hex[:6]
    ldap_server.add_group(f"Plain {tag}")
    (group,), _ = connector_for_system(ldap_system).search_groups(f"Plain {tag}")

    resource = resource_add(
        actor=None,
        catalog=CatalogFactory(),
        origin_system=OriginSystem.GROUP,
        connected_system=ldap_system,
        discovered=group,
    )

    assert list(resource.roles.values_list("origin_id", flat=True)) == ["Member"]


def test_the_drift_report_lists_the_differences_and_keeps_an_extra_member(
    client, admin_user, ldap_server, ldap_system, django_assert_max_num_queries
):
    name = f"report-{uuid.uuid4().hex[:6]}"
    resource = ldap_resource(ldap_system, ldap_server.add_group(name, members=["eve"]))
    package, policy = package_giving(resource)
    assignment = fulfil(approved_request(person(ldap_server, "ann"), package, policy))
    assignment_deliver(assignment_id=assignment.pk)
    report = system_drift_reconcile(system_id=ldap_system.pk)
    client.force_login(admin_user)

    with django_assert_max_num_queries(12):
        page = client.get(url("driftreport_change", report.pk)).content.decode()
    assert "eve@example.org" in page and "Extra in the system" in page
    assert "Keep as a direct membership" in page

    item = report.items.get()
    response = client.post(url("driftreport_keep", report.pk, item.pk), follow=True)
    assert any("eve@example.org is kept" in m for m in said(response))
    assert DriftItem.objects.get(pk=item.pk).kept
    assert client.get(url("driftreport_changelist")).status_code == 200

    client.force_login(UserFactory(is_staff=True))
    assert client.post(url("driftreport_keep", report.pk, item.pk)).status_code == 403


def test_an_administrator_sets_a_resource_to_enforce_on_its_change_page_audited(
    client, admin_user, ldap_server, ldap_system
):
    resource = ldap_resource(ldap_system, ldap_server.add_group(f"mode-{uuid.uuid4().hex[:6]}"))
    client.force_login(admin_user)
    change = url("resource_change", resource.pk)
    assert "Report only" in client.get(change).content.decode()

    response = client.post(
        change,
        {
            "display_name": resource.display_name,
            "description": "",
            "drift_mode": DriftMode.ENFORCE,
            "roles-TOTAL_FORMS": "0",
            "roles-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    resource.refresh_from_db()
    assert resource.drift_mode == DriftMode.ENFORCE
    assert AuditEvent.objects.filter(object_id=str(resource.pk), action="resource.changed").exists()
