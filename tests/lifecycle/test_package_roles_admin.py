"""Changing a package's resource roles on its admin page reaches the people who have it."""

import pytest

from entitlements.models import AccessPackage, AuditEvent
from tests.factories import GroupResourceFactory, UserFactory
from tests.foundation.admin_support import add_row, admin_url, page_data
from tests.lifecycle.assignment_helpers import assign, is_member, package_giving

pytestmark = pytest.mark.django_db

INLINE = "resource_role_scopes"


@pytest.fixture
def holders():
    package, policy = package_giving(GroupResourceFactory())
    people = [UserFactory() for _ in range(3)]
    for person in people:
        assign(person, package, policy)
    return package, people


def member_role(resource):
    return resource.roles.get(origin_id="Member")


def test_a_role_added_on_the_package_admin_page_is_delivered_to_its_holders(
    client, admin_user, holders, django_capture_on_commit_callbacks
):
    package, people = holders
    wiki = GroupResourceFactory(catalog=package.catalog)
    url = admin_url(AccessPackage, "change", package.pk)
    client.force_login(admin_user)
    data = page_data(client.get(url))
    add_row(data, INLINE, role=member_role(wiki), access_package=package)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)

    assert response.status_code == 302
    assert [is_member(p, wiki) for p in people] == [True, True, True]
    assert AuditEvent.objects.filter(
        action="accessPackage.roleAdded", actor=admin_user, channel="admin"
    ).exists()


def test_a_role_deleted_on_the_package_admin_page_is_taken_from_its_holders(
    client, admin_user, holders, django_capture_on_commit_callbacks
):
    package, people = holders
    role = package.resource_role_scopes.get().role
    url = admin_url(AccessPackage, "change", package.pk)
    client.force_login(admin_user)
    data = page_data(client.get(url))
    data[f"{INLINE}-0-DELETE"] = "on"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)

    assert response.status_code == 302
    assert [is_member(p, role.resource) for p in people] == [False, False, False]
    assert AuditEvent.objects.filter(
        action="accessPackage.roleRemoved", actor=admin_user, channel="admin"
    ).exists()
