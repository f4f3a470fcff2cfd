"""The review's findings on the reports: each one's fix, as the product's rules say."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from directory.models import GroupMembership, User
from entitlements.csvexport import csv_cell
from entitlements.models import AdminRole, Assignment, AssignmentState, RoleAssignment
from entitlements.selectors import separation_of_duties_conflicts
from entitlements.services.whatif import package_whatif
from tests.factories import (
    AccessPackageFactory,
    GroupFactory,
    PolicyFactory,
    UserFactory,
    add_member,
)


def _csv(client, viewer, slug, **params):
    client.force_login(viewer)
    response = client.get(reverse(f"reports:{slug}-csv"), params)
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _cross_catalog_conflict(ours, theirs):
    """Our first person also holds their P1; returns (our P1, their P1)."""
    ours_p1, theirs_p1 = ours.p1.package, theirs.p1.package
    Assignment.objects.create(
        access_package=theirs_p1,
        assignment_policy=theirs.p1.policy,
        target=ours.people[0],
        state=AssignmentState.DELIVERED,
    )
    return ours_p1, theirs_p1


def _owner_of(catalogue, email):
    viewer = UserFactory(email=email, is_staff=True)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=viewer, catalog=catalogue.catalog
    )
    return viewer


def _pairs(rows, person):
    return {(row[1], row[3]) for row in rows[1:] if row[0].startswith(person.display_name)}


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_a_pair_declared_both_ways_across_catalogs_shows_to_each_catalogs_owner(
    client, ours, theirs, side
):
    ours_p1, theirs_p1 = _cross_catalog_conflict(ours, theirs)
    ours_p1.incompatible_access_packages.add(theirs_p1)
    theirs_p1.incompatible_access_packages.add(ours_p1)
    catalogue = ours if side == "ours" else theirs
    rows = _csv(client, _owner_of(catalogue, f"{side}@example.com"), "conflicts")
    pair = _pairs(rows, ours.people[0])
    if side == "ours":
        assert ("Ours P1", f"access package {theirs_p1.display_name}") in pair
    else:
        assert pair == {("Theirs P1", f"access package {ours_p1.display_name}")}


def test_a_pair_seen_both_sides_is_listed_once(client, admin_user, ours, theirs):
    ours_p1, theirs_p1 = _cross_catalog_conflict(ours, theirs)
    ours_p1.incompatible_access_packages.add(theirs_p1)
    theirs_p1.incompatible_access_packages.add(ours_p1)
    rows = _csv(client, admin_user, "conflicts")
    cross = {p for p in _pairs(rows, ours.people[0]) if "Theirs" in p[0] or "Theirs" in p[1]}
    assert len(cross) == 1


def test_a_conflict_only_the_other_catalog_declared_shows_to_our_owner(
    client, catalog_owner, ours, theirs
):
    ours_p1, theirs_p1 = _cross_catalog_conflict(ours, theirs)
    theirs_p1.incompatible_access_packages.add(ours_p1)  # their list only
    rows = _csv(client, catalog_owner, "conflicts")
    assert ("Ours P1", "access package Theirs P1") in _pairs(rows, ours.people[0])
    assert all("Theirs" not in row[1] for row in rows[1:])  # not their side


def test_group_conflicts_count_owners_and_delivered_grants_as_the_check_and_whatif(
    client, admin_user, ours
):
    person = ours.people[0]
    solo = AccessPackageFactory(catalog=ours.catalog, display_name="Ours Solo")
    Assignment.objects.create(
        access_package=solo,
        assignment_policy=PolicyFactory(access_package=solo),
        target=person,
        state=AssignmentState.DELIVERED,
    )
    traders = GroupFactory(display_name="Traders")
    add_member(traders, person, role=GroupMembership.Role.OWNER)
    granted = ours.p1.role.resource.group  # a delivered grant of P1 made them a member
    assert not GroupMembership.objects.filter(group=granted, user=person).exists()

    # the what-if, before saving: both groups would put the holder in conflict
    for group in (traders, granted):
        whatif = package_whatif(
            access_package=solo, incompatible_packages_after=[], incompatible_groups_after=[group]
        )
        assert whatif.conflicts == 1, group

    solo.incompatible_groups.add(traders, granted)
    held = separation_of_duties_conflicts(user=person, access_package=solo).held
    assert held == [f"the group {granted.display_name}", "the group Traders"]
    rows = _csv(client, admin_user, "conflicts", kind="groups", package="Solo")
    assert sorted(row[3] for row in rows[1:]) == sorted(
        [f"group {granted.display_name}", "group Traders"]
    )


@pytest.mark.parametrize("days", [30, 60, 90])
def test_someone_who_never_signed_in_counts_only_once_in_the_directory_that_long(
    client, admin_user, ours, days
):
    now = timezone.now()
    User.objects.update(last_login=now)
    newbie, old_timer = ours.people[0], ours.people[1]
    User.objects.filter(pk=newbie.pk).update(last_login=None, created=now)
    User.objects.filter(pk=old_timer.pk).update(
        last_login=None, created=now - timedelta(days=days + 1)
    )
    rows = _csv(client, admin_user, "inactive", days=str(days))
    assert [row[0] for row in rows[1:]] == [f"{old_timer.display_name} <{old_timer.email}>"]


def test_pending_reports_say_which_date_they_count_from(client, admin_user, ours):
    client.force_login(admin_user)
    pending = client.get(reverse("reports:pending")).content.decode()
    approvers = client.get(reverse("reports:approvers")).content.decode()
    assert "Waiting since (request)" in pending
    assert "Stage open since" in approvers and "Stage open at least (days)" in approvers


@pytest.mark.parametrize(
    "value", [" =1+1", "  +1", "\n=HYPERLINK(1)", " \t-1", "   @SUM(A1)", "\r\n=1"]
)
def test_a_formula_after_leading_spaces_or_line_breaks_is_neutralised(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["a=b", "Ann-Marie", " plain", "x@example.com", ""])
def test_text_that_is_no_formula_is_kept(value):
    assert csv_cell(value) == value
