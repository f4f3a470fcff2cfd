"""Connected systems: where a resource lives, which connector serves it, who may edit them."""

import pytest
from django.urls import reverse

from entitlements.connectors import CONNECTOR_KINDS, Connector, ConnectorError, connector_for
from entitlements.models import ConnectedSystem, Resource
from tests.factories import GroupResourceFactory

pytestmark = pytest.mark.django_db


class Directory(Connector):
    """A stand-in for an LDAP connector: remembers the settings it was made with."""


def test_the_built_in_directory_is_one_row_that_every_resource_starts_in():
    resource = GroupResourceFactory()

    builtin = ConnectedSystem.objects.get(kind=ConnectedSystem.Kind.BUILTIN)
    assert resource.connected_system == builtin
    assert not Resource.objects.exclude(connected_system=builtin).exists()


def test_two_systems_of_one_kind_get_connectors_of_their_own(monkeypatch):
    monkeypatch.setitem(CONNECTOR_KINDS, ConnectedSystem.Kind.LDAP, Directory)
    east, west = (
        ConnectedSystem.objects.create(
            kind=ConnectedSystem.Kind.LDAP, name=name, settings={"timeout": seconds}
        )
        for name, seconds in [("LDAP east", 5), ("LDAP west", 12)]
    )

    on_east = connector_for(GroupResourceFactory(connected_system=east))
    on_west = connector_for(GroupResourceFactory(connected_system=west))

    assert (on_east.system, on_east.timeout) == (east, 5)
    assert (on_west.system, on_west.timeout) == (west, 12)
    assert connector_for(GroupResourceFactory(connected_system=east)) is on_east


def test_a_kind_without_a_connector_is_a_readable_connector_error(monkeypatch):
    monkeypatch.delitem(CONNECTOR_KINDS, ConnectedSystem.Kind.SCIM)
    system = ConnectedSystem.objects.create(kind=ConnectedSystem.Kind.SCIM, name="Payroll")

    with pytest.raises(ConnectorError, match="No connector serves scim systems such as Payroll"):
        connector_for(GroupResourceFactory(connected_system=system))


def test_only_superusers_see_connected_systems_in_the_admin(client, admin_user, catalog_owner):
    url = reverse("admin:entitlements_connectedsystem_changelist")

    client.force_login(catalog_owner)
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    response = client.get(url)
    assert response.status_code == 200
    assert ConnectedSystem.BUILTIN_NAME in response.content.decode()
