"""The admin's reports: what each lists, who sees what, filters, counts, CSV and query counts."""

import csv
import io

import pytest
from django.urls import reverse

from entitlements.models import AccessPackage
from reports.views import COUNT_LIMIT, MAX_PAGE, REPORTS
from tests.factories import UserFactory

SLUGS = list(REPORTS)
PER_PERSON = {"access": 2}  # rows per person of the test catalogue: P1's and P2's roles


def _page(client, viewer, slug, **params):
    client.force_login(viewer)
    return client.get(reverse(f"reports:{slug}"), params)


def _csv(client, viewer, slug, **params):
    client.force_login(viewer)
    response = client.get(reverse(f"reports:{slug}-csv"), params)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _text(response):
    return response.content.decode()


@pytest.mark.parametrize("slug", SLUGS)
def test_every_report_lists_each_person_of_the_catalog_once(client, admin_user, ours, slug):
    n = PER_PERSON.get(slug, 1) * 10
    response = _page(client, admin_user, slug)
    assert response.status_code == 200
    assert len(response.context["rows"]) == n
    assert response.context["count"] == n
    assert f"{n} rows" in _text(response)
    rows = _csv(client, admin_user, slug)
    assert len(rows) == n + 1  # and the header
    assert rows[0] == [str(column) for column in REPORTS[slug].columns]


@pytest.mark.parametrize("slug", SLUGS)
def test_a_catalog_owner_sees_only_their_catalogs_rows(client, catalog_owner, ours, theirs, slug):
    n = PER_PERSON.get(slug, 1) * 10
    response = _page(client, catalog_owner, slug)
    assert response.status_code == 200
    assert response.context["count"] == n
    assert "Ours" in _text(response) and "Theirs" not in _text(response)
    rows = _csv(client, catalog_owner, slug)
    assert len(rows) == n + 1
    assert not any("Theirs" in cell for row in rows for cell in row)


@pytest.mark.parametrize("slug", SLUGS)
def test_a_catalog_reader_sees_their_catalog_too(client, reader, ours, theirs, slug):
    response = _page(client, reader, slug)
    assert response.status_code == 200
    assert response.context["count"] == PER_PERSON.get(slug, 1) * 10


@pytest.mark.parametrize("slug", SLUGS)
def test_a_superuser_sees_every_catalog(client, admin_user, ours, theirs, slug):
    assert _page(client, admin_user, slug).context["count"] == PER_PERSON.get(slug, 1) * 13


@pytest.mark.parametrize("slug", SLUGS)
def test_filtering_on_another_catalog_shows_a_catalog_owner_nothing(
    client, catalog_owner, ours, theirs, slug
):
    response = _page(client, catalog_owner, slug, catalog="Theirs")
    assert response.status_code == 200
    assert response.context["count"] == 0
    assert len(_csv(client, catalog_owner, slug, catalog="Theirs")) == 1  # the header


@pytest.mark.parametrize("slug", SLUGS)
def test_a_filter_too_long_is_refused_with_a_message(client, catalog_owner, ours, slug):
    response = _page(client, catalog_owner, slug, catalog="x" * 300)
    assert response.status_code == 400
    assert "These filters are not valid." in _text(response)
    assert response.context["rows"] is None
    client.force_login(catalog_owner)
    response = client.get(reverse(f"reports:{slug}-csv"), {"catalog": "x" * 300})
    assert response.status_code == 400


@pytest.mark.parametrize("slug", SLUGS)
def test_people_without_a_catalog_role_are_refused(client, outsider, ours, slug):
    staff = UserFactory(email="staff@example.com", is_staff=True)
    for path in (reverse(f"reports:{slug}"), reverse(f"reports:{slug}-csv")):
        client.force_login(staff)
        assert client.get(path).status_code == 403
        client.force_login(outsider)  # the admin sends them to sign in, which refuses them
        response = client.get(path, follow=True)
        assert response.redirect_chain[0][0].startswith(reverse("admin:login"))
        assert response.status_code == 403
        client.logout()
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_the_index_lists_every_report_and_refuses_the_wrong_person(
    client, catalog_owner, outsider, ours
):
    client.force_login(catalog_owner)
    response = client.get(reverse("reports:index"))
    assert response.status_code == 200
    for slug in SLUGS:
        assert reverse(f"reports:{slug}") in _text(response)
    client.force_login(outsider)
    assert client.get(reverse("reports:index"), follow=True).status_code == 403
    staff = UserFactory(email="staff@example.com", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("reports:index")).status_code == 403


def test_the_admin_home_links_the_reports_for_who_may_see_them(client, catalog_owner, ours):
    client.force_login(catalog_owner)
    home = _text(client.get(reverse("admin:index")))
    for slug in SLUGS:
        assert reverse(f"reports:{slug}") in home
    staff = UserFactory(email="staff@example.com", is_staff=True)
    client.force_login(staff)
    assert reverse("reports:access") not in _text(client.get(reverse("admin:index")))


@pytest.mark.parametrize("slug", SLUGS)
def test_a_post_changes_nothing_and_is_refused(client, admin_user, ours, slug):
    client.force_login(admin_user)
    assert client.post(reverse(f"reports:{slug}")).status_code == 405
    assert client.post(reverse(f"reports:{slug}-csv")).status_code == 405


# ---- filters -----------------------------------------------------------------------------


def test_access_filters_by_user_package_and_resource(client, admin_user, ours, theirs):
    one = ours.people[3]
    response = _page(client, admin_user, "access", user=one.email)
    assert response.context["count"] == 2  # P1 and P2
    assert {row[3].text for row in response.context["rows"]} == {"Ours P1", "Ours P2"}
    response = _page(client, admin_user, "access", package="Theirs P2")
    assert response.context["count"] == 3
    resource = ours.p1.role.resource.display_name
    response = _page(client, admin_user, "access", resource=resource)
    assert response.context["count"] == 10
    assert all(row[1] == resource for row in response.context["rows"])
    response = _page(client, admin_user, "access", catalog="Theirs")
    assert response.context["count"] == 6


def test_ending_takes_the_number_of_days(client, admin_user, ours):
    assert _page(client, admin_user, "ending", days=11).context["count"] == 10
    assert _page(client, admin_user, "ending", days=9).context["count"] == 0
    response = _page(client, admin_user, "ending", days=9)
    assert "Nothing matches these filters." in _text(response)


@pytest.mark.parametrize("days", ["-1", "abc", "0", "99999"])
def test_ending_refuses_a_bad_number_of_days_with_a_message(client, admin_user, ours, days):
    response = _page(client, admin_user, "ending", days=days)
    assert response.status_code == 400
    assert "errornote" in _text(response)


def test_pending_requests_by_age_and_approver(client, admin_user, ours):
    assert _page(client, admin_user, "pending", older_than_days=19).context["count"] == 10
    assert _page(client, admin_user, "pending", older_than_days=21).context["count"] == 0
    approver = ours.people[0]
    response = _page(client, admin_user, "pending", approver=approver.email)
    assert response.context["count"] == 1
    row = response.context["rows"][0]
    assert row[1] == 20 and approver.email in row[6]


def test_the_approver_report_counts_the_requests_waiting_on_each(client, admin_user, ours):
    busy = ours.people[0]
    from approvals.models import StageApprover

    StageApprover.objects.filter(stage__request__target=ours.people[5]).update(user=busy)
    response = _page(client, admin_user, "approvers")
    first = response.context["rows"][0]
    assert busy.email in first[0] and first[1] == 2
    assert response.context["count"] == 9


def test_conflicts_with_packages_and_groups(client, admin_user, ours):
    rows = _page(client, admin_user, "conflicts").context["rows"]
    assert {(row[1].text, row[3]) for row in rows} == {("Ours P1", "access package Ours P2")}
    assert len(rows) == 10
    # declared both ways: still one row per person
    ours.p2.package.incompatible_access_packages.add(ours.p1.package)
    assert _page(client, admin_user, "conflicts").context["count"] == 10
    group = ours.p1.role.resource.group
    ours.p2.package.incompatible_groups.add(group)
    from tests.factories import add_member

    add_member(group, ours.people[1])
    # everyone holding P2 is in P1's group through P1's delivered grant (group_sources)
    response = _page(client, admin_user, "conflicts", kind="groups")
    assert response.context["count"] == 10
    assert response.context["rows"][0][3] == f"group {group.display_name}"


def test_review_results_count_decided_undecided_and_removed(client, admin_user, ours):
    from reviews.models import ApplyResult, ReviewItem

    ReviewItem.objects.filter(target=ours.people[1]).update(apply_result=ApplyResult.REMOVED)
    rows = _page(client, admin_user, "reviews").context["rows"]
    by_name = {row[0].text: row for row in rows}
    assert len(by_name) <= 10
    totals = [sum(row[i] for row in rows) for i in range(4, 11)]
    assert totals == [10, 5, 5, 0, 5, 0, 1]  # items, decided, undecided, ..., removed


def test_inactive_people_by_days_without_sign_in(client, admin_user, ours):
    from django.utils import timezone

    from directory.models import User

    recent, older = ours.people[0], ours.people[1]
    User.objects.filter(pk=recent.pk).update(last_login=timezone.now())
    User.objects.filter(pk=older.pk).update(last_login=timezone.now() - timezone.timedelta(45))
    assert _page(client, admin_user, "inactive").context["count"] == 9  # 30 days: 8 never, 1
    assert _page(client, admin_user, "inactive", days=60).context["count"] == 8
    response = _page(client, admin_user, "inactive", days=90)
    assert response.context["rows"][0][3] == 2  # two open assignments each
    assert _page(client, admin_user, "inactive", days=45).status_code == 400


# ---- CSV ---------------------------------------------------------------------------------


def test_the_csv_neutralises_formulas(client, admin_user, ours):
    AccessPackage.objects.filter(pk=ours.p1.package.pk).update(display_name="=HYPERLINK(1)")
    rows = _csv(client, admin_user, "access", package="HYPERLINK")
    assert rows[1][3] == "'=HYPERLINK(1)"


def test_the_csv_keeps_the_filters(client, admin_user, ours):
    response = _page(client, admin_user, "access", user=ours.people[2].email)
    assert f"user={ours.people[2].email}".replace("@", "%40") in _text(response)
    assert len(_csv(client, admin_user, "access", user=ours.people[2].email)) == 3


# ---- pages and counts --------------------------------------------------------------------


def test_pages_are_bounded_and_a_bad_page_is_refused(client, admin_user, ours):
    assert _page(client, admin_user, "access", page="2").context["rows"] == []
    for page in ("0", "x", str(MAX_PAGE + 1)):
        assert _page(client, admin_user, "access", page=page).status_code == 400


@pytest.mark.postgres_only
def test_query_counts_are_the_same_at_10_and_10000_rows(client, admin_user, catalog_owner, ours):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def counts(user):
        client.force_login(user)
        result = {}
        for slug in SLUGS:
            client.get(reverse(f"reports:{slug}"))  # the session is read once
            with CaptureQueriesContext(connection) as captured:
                response = client.get(reverse(f"reports:{slug}"))
            assert response.status_code == 200
            result[slug] = (len(captured), min(response.context["count"], COUNT_LIMIT + 1))
        return result

    small = {user.pk: counts(user) for user in (admin_user, catalog_owner)}
    ours.grow(COUNT_LIMIT)
    large = {user.pk: counts(user) for user in (admin_user, catalog_owner)}
    for user in (admin_user, catalog_owner):
        for slug in SLUGS:
            assert small[user.pk][slug][1] == 10 * PER_PERSON.get(slug, 1), slug
            # (9,999 approvers: the one before the first grown person approves twice)
            assert large[user.pk][slug][1] >= COUNT_LIMIT - 1, slug
    queries = {
        (user.is_superuser, slug): (small[user.pk][slug][0], large[user.pk][slug][0])
        for user in (admin_user, catalog_owner)
        for slug in SLUGS
    }
    pinned = {
        (superuser, slug): (n + (0 if superuser else 3),) * 2
        for superuser in (True, False)
        for slug, n in PINNED.items()
    }
    assert queries == pinned


# Queries of one report page for a superuser: the session, the user, the count (the ids of
# the first 10,001 matching rows), the page, plus the page's own reads (pending: its open
# stages and their approvers; reviews: the counts; inactive: the assignment counts). A catalog
# owner's page adds three: their roles, and Django's permissions (user's and groups') that the
# admin's sidebar asks for.
PINNED = {
    "access": 4,
    "ending": 4,
    "pending": 6,
    "approvers": 4,
    "conflicts": 4,
    "reviews": 5,
    "inactive": 5,
}
