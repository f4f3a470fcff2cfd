"""No list reads all its rows to show some: the same pages at two data sizes (the second ten
times the first) make the same queries, and PostgreSQL reads about as many rows for them.

"Rows read" is what EXPLAIN ANALYZE reports for every scan node of every query a page makes
(rows returned times loops, plus rows a filter removed). A list that sorted, counted or
searched every row would read ten times more at the second size; an index-ordered page with
a bounded count (entitlements.pagination) reads the same.
"""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api.permissions import APPLICATION_PERMISSIONS
from directory.models import User
from entitlements.models import Assignment, AssignmentRequest, RequestState, RequestType
from reviews.models import Decision, ReviewInstance, ReviewItem, ReviewItemReviewer
from tests.api.conftest import bearer, issue_app_token, make_app
from tests.factories import CatalogFactory, UserFactory
from tests.portal.test_query_counts import make_packages

# Building 5,000 packages and 15,000 assignments takes a minute on a loaded machine.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only, pytest.mark.timeout(900)]

EM = "/v1.0/identityGovernance/entitlementManagement"
SMALL = 500  # packages; each has one assignment per person below and one request
PEOPLE = 3
# Rows read at the large size may exceed the small size's by this factor (plans can differ
# a little), far below the ten times a full scan, sort or count would read.
GROWTH = 2.0
SLACK = 300  # rows: tiny tables read whole at one size and through an index at the other


def _scanned(plan):
    rows = 0
    if "Scan" in plan["Node Type"]:
        rows += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get(
            "Actual Loops", 1
        )
    for child in plan.get("Plans", []):
        rows += _scanned(child)
    return rows


def _rows_read(queries):
    total = 0
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            (plan,) = cursor.fetchone()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            total += _scanned(plan[0]["Plan"])
    return total


def _measure(client, url, headers):
    client.get(url, **headers)  # caches as a running server has them
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200, url
    return len(captured), _rows_read(captured.captured_queries)


def _grow(catalog, people, reviewer, instance, count, offset):
    packages, policies = make_packages(catalog, count)
    for n, package in enumerate(packages):
        package.display_name = f"Package {offset + n:05}"
    type(packages[0]).objects.bulk_update(packages, ["display_name"])
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        [
            Assignment(
                target=person,
                access_package=package,
                assignment_policy=policy,
                state="delivered",
                schedule_start=now,
                schedule_end=now + timedelta(days=30),
            )
            for package, policy in zip(packages, policies, strict=True)
            for person in people
        ]
    )
    AssignmentRequest.objects.bulk_create(
        [
            AssignmentRequest(
                access_package=package,
                assignment_policy=policy,
                target=people[0],
                requestor=people[0],
                request_type=RequestType.USER_ADD,
                state=RequestState.DENIED,
            )
            for package, policy in zip(packages, policies, strict=True)
        ]
    )
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                instance=instance,
                assignment=a,
                target_id=a.target_id,
                decision=Decision.NOT_REVIEWED if n % 3 else Decision.APPROVE,
                decided_by=None if n % 3 else reviewer,
                decided_datetime=None if n % 3 else now,
            )
            for n, a in enumerate(assignments)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


@pytest.fixture
def catalog(db):
    return CatalogFactory(display_name="Sales")


@pytest.fixture
def world(catalog, requester, admin_user):
    people = [requester] + [UserFactory() for _ in range(PEOPLE - 1)]
    reviewer = UserFactory(email="reviewer@example.com")
    packages, policies = make_packages(catalog, 1)
    now = timezone.now()
    instance = ReviewInstance.objects.create(
        policy=policies[0], access_package=packages[0], start=now, end=now + timedelta(days=7)
    )
    ReviewItemReviewer.objects.create(
        instance=instance, user=reviewer, kind=ReviewItemReviewer.Kind.PRIMARY
    )
    application, _, _ = make_app(list(APPLICATION_PERMISSIONS))
    return {
        "people": people,
        "reviewer": reviewer,
        "instance": instance,
        "admin": admin_user,
        "token": issue_app_token(application),
    }


PAGES = [
    ("requester", lambda: reverse("myaccess:packages")),
    ("requester", lambda: reverse("myaccess:active_assignments")),
    ("requester", lambda: reverse("myaccess:requests")),
    # The reviews tab is left out: it orders a review by person, and these reviews have three
    # people with thousands of items each (a real review has one item per person); its
    # 100,000-item figures are in docs/benchmarks.md.
    ("admin", lambda: reverse("admin:entitlements_assignment_changelist")),
    ("admin", lambda: reverse("admin:entitlements_assignmentrequest_changelist")),
    ("admin", lambda: reverse("admin:entitlements_accesspackage_changelist")),
    ("admin", lambda: reverse("admin:reviews_reviewitem_changelist")),
    ("app", lambda: f"{EM}/assignments?$expand=target,accessPackage"),
    ("app", lambda: f"{EM}/accessPackages"),
    ("app", lambda: f"{EM}/assignmentRequests"),
]


def test_lists_read_the_same_rows_at_ten_times_the_data(client, catalog, world):
    people, reviewer, instance = world["people"], world["reviewer"], world["instance"]
    who = {"requester": people[0], "reviewer": reviewer, "admin": world["admin"]}

    def measure_all():
        results = []
        for role, url in PAGES:
            headers = {}
            if role == "app":
                client.logout()
                headers = {**bearer(world["token"]), "HTTP_CONSISTENCYLEVEL": "eventual"}
            else:
                client.force_login(who[role])
            results.append(_measure(client, url(), headers))
        return results

    _grow(catalog, people, reviewer, instance, SMALL, 0)
    small = measure_all()
    _grow(catalog, people, reviewer, instance, SMALL * 9, SMALL)
    assert User.objects.count() < 20  # the growth is in the lists, not in the people
    large = measure_all()

    for (role, url), (small_queries, small_rows), (large_queries, large_rows) in zip(
        PAGES, small, large, strict=True
    ):
        assert large_queries == small_queries, f"{url()}: query count changed with the data"
        assert large_rows <= small_rows * GROWTH + SLACK, (
            f"{url()} ({role}) read {small_rows} rows with {SMALL} packages and {large_rows} "
            f"with {SMALL * 10}"
        )
