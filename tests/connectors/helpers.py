"""Resources of an LDAP system and the people of the test directory, for the connector tests."""

from entitlements.models import OriginSystem, Resource, ResourceRole
from tests.factories import CatalogFactory, UserFactory


def ldap_resource(system, dn, *, name=None, catalog=None, owners=True):
    """A resource for the LDAP group ``dn``, with its Member (and Owner) roles."""
    resource = Resource.objects.create(
        catalog=catalog or CatalogFactory(),
        display_name=name or dn.split(",", 1)[0].split("=", 1)[1],
        origin_system=OriginSystem.GROUP,
        origin_id=dn,
        connected_system=system,
    )
    for role in ["Member"] + (["Owner"] if owners else []):
        ResourceRole.objects.create(resource=resource, display_name=role, origin_id=role)
    return resource


def member_role(resource):
    return resource.roles.get(origin_id="Member")


def person(server, uid, **fields):
    """A user of the product whose email is the directory person's mail."""
    return UserFactory(email=server.mail(uid), display_name=uid.title(), **fields)
