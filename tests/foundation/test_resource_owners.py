"""Only the owner of a group, application or site, or an administrator, adds it to a catalog;
directory roles only an administrator adds (Entra's rule), through the service and the admin."""

import pytest

from directory.models import Application, GroupMembership, Site, SiteRoleAssignment
from entitlements.configuration import resource_add
from entitlements.errors import PermissionDenied
from entitlements.models import AdminRole, AuditEvent, Channel, OriginSystem, Resource
from tests.factories import CatalogFactory, GroupFactory, UserFactory, add_member
from tests.foundation.admin_support import admin_url, give_role, page_data

pytestmark = pytest.mark.django_db

FIELDS = {
    OriginSystem.GROUP: "group",
    OriginSystem.APPLICATION: "application",
    OriginSystem.SITE: "site",
    OriginSystem.DIRECTORY_ROLE: "role_catalog",
}


def _thing(origin_system, catalog):
    """A directory object of the origin system, named "Access Approvers" where it has a name."""
    if origin_system == OriginSystem.GROUP:
        return GroupFactory(display_name="Access Approvers")
    if origin_system == OriginSystem.APPLICATION:
        return Application.objects.create(display_name="Access Approvers")
    if origin_system == OriginSystem.SITE:
        return Site.objects.create(display_name="Access Approvers", url="https://approvers.example")
    return catalog  # a directory role: the admin roles of the catalog itself


def _make_owner(thing, user):
    if isinstance(thing, Application):
        thing.owners.add(user)
    elif isinstance(thing, Site):
        SiteRoleAssignment.objects.create(site=thing, user=user, role=SiteRoleAssignment.Role.OWNER)
    else:
        add_member(thing, user, GroupMembership.Role.OWNER)


@pytest.fixture
def catalog(db):
    return CatalogFactory(display_name="Engineering")


@pytest.fixture
def engineering_owner(catalog):
    """Owner of the catalog Engineering, and of nothing in the directory (yet)."""
    person = UserFactory(display_name="Olga Owner", is_staff=True)
    give_role(person, AdminRole.CATALOG_OWNER, catalog)
    return person


def _add(actor, catalog, origin_system, thing):
    return resource_add(
        actor=actor, catalog=catalog, origin_system=origin_system, **{FIELDS[origin_system]: thing}
    )


OWNED = [OriginSystem.GROUP, OriginSystem.APPLICATION, OriginSystem.SITE]


# --------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin_system", OWNED)
def test_a_catalog_owner_who_owns_the_object_adds_it(engineering_owner, catalog, origin_system):
    thing = _thing(origin_system, catalog)
    _make_owner(thing, engineering_owner)

    resource = _add(engineering_owner, catalog, origin_system, thing)

    assert resource.catalog == catalog and resource.roles.exists()
    event = AuditEvent.objects.get(action="resource.added", object_id=str(resource.pk))
    assert event.actor == engineering_owner
    assert event.data["after"]["catalog_id"] == str(catalog.pk)
    assert sorted(event.data["after"]["roles"]) == sorted(
        r.display_name for r in resource.roles.all()
    )


@pytest.mark.parametrize("origin_system", OWNED)
def test_a_catalog_owner_who_does_not_own_the_object_is_refused(
    engineering_owner, catalog, origin_system
):
    thing = _thing(origin_system, catalog)

    with pytest.raises(PermissionDenied) as error:
        _add(engineering_owner, catalog, origin_system, thing)

    assert error.value.field == FIELDS[origin_system]
    assert "Only an owner of the" in error.value.message
    assert "“Access Approvers”" in error.value.message
    assert not Resource.objects.exists()


def test_a_member_of_a_group_is_not_its_owner(engineering_owner, catalog):
    group = _thing(OriginSystem.GROUP, catalog)
    add_member(group, engineering_owner, GroupMembership.Role.MEMBER)

    with pytest.raises(PermissionDenied):
        _add(engineering_owner, catalog, OriginSystem.GROUP, group)

    assert not Resource.objects.exists()


def test_a_catalog_owner_may_not_add_directory_roles_even_of_their_own_catalog(
    engineering_owner, catalog
):
    with pytest.raises(PermissionDenied, match="Only an administrator") as error:
        _add(engineering_owner, catalog, OriginSystem.DIRECTORY_ROLE, catalog)

    assert error.value.field == "role_catalog"
    assert not Resource.objects.exists()


@pytest.mark.parametrize("origin_system", [*OWNED, OriginSystem.DIRECTORY_ROLE])
def test_an_administrator_adds_any_object(admin_user, catalog, origin_system):
    resource = _add(admin_user, catalog, origin_system, _thing(origin_system, catalog))

    assert resource.catalog == catalog and resource.roles.exists()


def test_the_owner_of_a_group_who_is_not_a_catalog_owner_is_refused(catalog):
    group_owner = UserFactory()
    group = _thing(OriginSystem.GROUP, catalog)
    _make_owner(group, group_owner)

    with pytest.raises(PermissionDenied, match="only to a catalog you own"):
        _add(group_owner, catalog, OriginSystem.GROUP, group)


# --------------------------------------------------------------------------------------
# The admin's add form shows the same refusal next to the field
# --------------------------------------------------------------------------------------


def _post_add_form(client, person, catalog, origin_system, thing):
    client.force_login(person)
    url = admin_url(Resource, "add")
    data = page_data(client.get(url))
    data.update(catalog=catalog.pk, origin_system=origin_system)
    data[FIELDS[origin_system]] = thing.pk
    return client.post(url, data)


@pytest.mark.parametrize("origin_system", OWNED)
def test_the_admin_lets_a_catalog_owner_add_what_they_own(
    client, engineering_owner, catalog, origin_system
):
    thing = _thing(origin_system, catalog)
    _make_owner(thing, engineering_owner)

    response = _post_add_form(client, engineering_owner, catalog, origin_system, thing)

    assert response.status_code == 302
    resource = Resource.objects.get(catalog=catalog)
    assert AuditEvent.objects.get(action="resource.added").channel == Channel.ADMIN
    assert resource.display_name == "Access Approvers"


@pytest.mark.parametrize("origin_system", [*OWNED, OriginSystem.DIRECTORY_ROLE])
def test_the_admin_shows_the_refusal_next_to_the_field_and_adds_nothing(
    client, engineering_owner, catalog, origin_system
):
    thing = _thing(origin_system, catalog)

    response = _post_add_form(client, engineering_owner, catalog, origin_system, thing)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [FIELDS[origin_system]]
    assert "administrator" in str(errors[FIELDS[origin_system]])
    assert not Resource.objects.exists()


@pytest.mark.parametrize("origin_system", [*OWNED, OriginSystem.DIRECTORY_ROLE])
def test_the_admin_lets_an_administrator_add_any_object(client, admin_user, catalog, origin_system):
    thing = _thing(origin_system, catalog)

    response = _post_add_form(client, admin_user, catalog, origin_system, thing)

    assert response.status_code == 302
    assert Resource.objects.filter(catalog=catalog, origin_system=origin_system).exists()
