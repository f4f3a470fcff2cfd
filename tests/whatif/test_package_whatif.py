"""'Preview the effect' on the package page: what new or dropped incompatibilities would do,
from the unsaved form, with nothing saved."""

import pytest

from entitlements.models import AccessPackage, AdminRole
from entitlements.services.whatif import package_whatif
from tests.factories import (
    AccessPackageFactory,
    GroupFactory,
    PolicyFactory,
    UserFactory,
    add_member,
)
from tests.foundation.admin_support import admin_url, errors_of, give_role, page_data

from .conftest import PREVIEW, counts, hold

pytestmark = pytest.mark.django_db


def change_url(package):
    return admin_url(AccessPackage, "change", package.pk)


def form_of(client, package):
    data = page_data(client.get(change_url(package)))
    data.pop("_save")
    data[PREVIEW] = "Preview the effect"
    return data


@pytest.fixture
def trading(world):
    """Trading, a package Ann holds and Dan holds, and which Finance reports' staff may
    request through a policy open to all members."""
    package = AccessPackageFactory(catalog=world["package"].catalog, display_name="Trading")
    trading_policy = PolicyFactory(access_package=package)
    hold(trading_policy, world["ann"])
    hold(trading_policy, world["dan"])
    PolicyFactory(access_package=world["package"], display_name="Everyone")  # allMemberUsers
    return package


def test_a_new_incompatible_package_shows_holders_in_conflict_and_people_blocked(
    client, admin_user, world, trading
):
    client.force_login(admin_user)
    data = form_of(client, world["package"])
    data["incompatible_access_packages"] = [str(trading.pk)]
    before = counts()

    response = client.post(change_url(world["package"]), data)

    assert response.status_code == 200, errors_of(response)
    whatif = response.context["whatif"]
    assert whatif.losing == 0
    assert whatif.conflicts == 1
    assert whatif.conflict_names == ["Ann Accountant <ann@example.com>"]
    assert whatif.blocked == 1  # Dan holds Trading and does not hold Finance reports
    assert whatif.gaining == 0
    page = response.content.decode()
    assert "0 current holders would lose access" in page
    assert "1 current holder would hold something incompatible with this package" in page
    assert "1 person could no longer request it" in page
    assert counts() == before
    assert not world["package"].incompatible_access_packages.exists()


def test_dropping_an_incompatible_group_lets_its_members_request_again(
    client, admin_user, world, trading
):
    blocked = GroupFactory(display_name="Blocked")
    add_member(blocked, world["cat"])
    world["package"].incompatible_groups.add(blocked)
    client.force_login(admin_user)
    data = form_of(client, world["package"])
    data["incompatible_groups"] = []

    whatif = client.post(change_url(world["package"]), data).context["whatif"]

    assert (whatif.gaining, whatif.blocked, whatif.conflicts) == (1, 0, 0)


def test_a_package_that_lists_this_one_stays_incompatible(world, trading):
    trading.incompatible_access_packages.add(world["package"])

    whatif = package_whatif(
        access_package=world["package"],
        incompatible_packages_after=[],
        incompatible_groups_after=[],
    )

    assert (whatif.gaining, whatif.blocked, whatif.conflicts) == (0, 0, 0)


def test_a_catalog_reader_may_not_preview(client, world):
    reader = UserFactory(is_staff=True)
    give_role(reader, AdminRole.CATALOG_READER, world["package"].catalog)
    client.force_login(reader)
    page = client.get(change_url(world["package"]))
    assert "Preview the effect" not in page.content.decode()
    data = page_data(page)
    data[PREVIEW] = "Preview the effect"

    assert client.post(change_url(world["package"]), data).status_code == 403


@pytest.mark.parametrize("people", [2, 40])
def test_the_package_preview_costs_the_same_queries_however_many_people(
    world, trading, people, django_assert_num_queries
):
    for _n in range(people):
        person = UserFactory()
        hold(world["policy"], person)
        add_member(world["finance"], person)
    group = GroupFactory()

    # before (packages, groups), the packages listing it, holders in conflict (count),
    # the policies, gaining, blocked
    with django_assert_num_queries(7):
        whatif = package_whatif(
            access_package=world["package"],
            incompatible_packages_after=[trading],
            incompatible_groups_after=[group, world["finance"]],
        )

    assert whatif.conflicts == people + 2
    assert len(whatif.conflict_names) == min(people + 2, 10)


def test_a_preview_posted_to_the_add_page_is_ignored_and_the_package_saved(admin_client, world):
    """The add page has no preview; a hand-made POST naming it saves as the form says."""
    url = admin_url(AccessPackage, "add")
    data = page_data(admin_client.get(url))
    data.update(catalog=str(world["package"].catalog.pk), display_name="Posted by hand")
    data[PREVIEW] = "Preview the effect"

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert AccessPackage.objects.filter(display_name="Posted by hand").exists()
