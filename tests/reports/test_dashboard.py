"""The dashboard: five server-drawn charts over what the viewer may see, in a fixed number of
queries, readable without JavaScript."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageStatus
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentState,
    RequestState,
    RequestType,
    RoleAssignment,
)
from reports import charts
from reports.dashboard import dashboard_for
from reviews.models import Decision, ReviewInstance, ReviewItem
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    PolicyFactory,
    UserFactory,
)

URL = "/admin/reports/dashboard/"
pytestmark = pytest.mark.django_db


def _request(policy, target, *, state, created, completed=None, kind=RequestType.USER_ADD):
    request = AssignmentRequest.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        requestor=target,
        target=target,
        request_type=kind,
        state=state,
        completed_datetime=completed,
    )
    AssignmentRequest.objects.filter(pk=request.pk).update(created=created)
    return request


def _assignment(policy, target, state=AssignmentState.DELIVERED):
    return Assignment.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        target=target,
        state=state,
    )


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def finance(now):
    """A package in its own catalog with some history: requests, holders, approvals, a review."""
    package = AccessPackageFactory(display_name="Finance reports")
    stage = ApprovalStageFactory(policy__access_package=package)
    policy = stage.policy
    people = [UserFactory(display_name=f"Fin {i}") for i in range(4)]
    for person in people[:3]:
        _request(
            policy,
            person,
            state=RequestState.DELIVERED,
            created=now - timedelta(hours=30),
            completed=now - timedelta(hours=28),
        )
        _assignment(policy, person)
    _request(policy, people[3], state=RequestState.DENIED, created=now - timedelta(hours=5))
    waiting = _request(
        policy, people[3], state=RequestState.PENDING_APPROVAL, created=now - timedelta(days=4)
    )
    RequestApprovalStage.objects.create(
        request=waiting,
        policy_stage=stage,
        sequence=1,
        status=StageStatus.IN_PROGRESS,
        opened_datetime=now - timedelta(days=4),
    )
    instance = ReviewInstance.objects.create(
        policy=policy, access_package=package, start=now - timedelta(days=2), end=now
    )
    for i, assignment in enumerate(Assignment.objects.filter(access_package=package)):
        ReviewItem.objects.create(
            instance=instance,
            assignment=assignment,
            target=assignment.target,
            decision=Decision.APPROVE if i == 0 else Decision.NOT_REVIEWED,
            decided_by=assignment.target if i == 0 else None,
        )
    return policy


@pytest.fixture
def other_catalog():
    """A second catalog's package that Olga Owner may not see."""
    policy = PolicyFactory(access_package__display_name="Payroll secrets")
    for i in range(2):
        _assignment(policy, UserFactory(display_name=f"Pay {i}"))
    return policy


def _table(chart):
    return {row[0]: row[1:] for row in chart.rows}


def test_the_charts_count_requests_delivery_times_approvals_holders_and_reviews(
    admin_user, finance, other_catalog, now
):
    board = dashboard_for(user=admin_user, now=now)

    assert board.requests_by_outcome.header[1:] == [
        "Delivered",
        "Denied",
        "Canceled",
        "Delivery failed",
        "Still open",
        "Total",
    ]
    columns = list(zip(*board.requests_by_outcome.rows, strict=True))[1:]
    delivered, denied, _canceled, _failed, still_open, total = (
        sum(int(n) for n in column) for column in columns
    )
    assert (delivered, denied, still_open, total) == (3, 1, 1, 5)

    medians = [row[1] for row in board.time_to_access.rows if row[1] != "–"]
    assert medians and set(medians) == {"2 h"}

    assert _table(board.approvals_by_age) == {
        "under 1 day": ["0"],
        "1–3 days": ["0"],
        "3–7 days": ["1"],
        "1–2 weeks": ["0"],
        "over 2 weeks": ["0"],
    }
    assert _table(board.assignments_by_package) == {
        "Finance reports": ["3"],
        "Payroll secrets": ["2"],
    }
    (review,) = board.review_completion.rows
    assert review[1:] == ["1", "2", "3"]


def test_a_catalog_owner_sees_only_the_catalogs_they_own(
    client, catalog_owner, finance, other_catalog
):
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER,
        principal=catalog_owner,
        catalog=finance.access_package.catalog,
    )
    client.force_login(catalog_owner)

    response = client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Finance reports" in page
    assert "Payroll secrets" not in page
    board = response.context["dashboard"]
    assert _table(board.assignments_by_package) == {"Finance reports": ["3"]}


def test_staff_without_a_catalog_role_see_empty_charts(client, finance):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)

    response = client.get(URL)

    assert response.status_code == 200
    assert "Finance reports" not in response.content.decode()
    assert all(chart.empty for chart in response.context["dashboard"])
    assert response.content.decode().count("Nothing to show yet.") == 5


def test_someone_without_an_admin_role_is_sent_to_sign_in_and_then_refused(client, outsider):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))

    client.force_login(outsider)
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert client.get(response["Location"]).status_code == 403


def test_the_page_changes_nothing_and_answers_only_get(client, admin_user):
    client.force_login(admin_user)
    assert client.post(URL).status_code == 405
    assert client.head(URL).status_code == 200


def test_the_charts_are_svg_with_a_title_and_their_numbers_in_a_table(client, admin_user, finance):
    client.force_login(admin_user)

    page = client.get(URL).content.decode()

    assert page.count('<svg class="chart" role="img"') == 5
    assert "<title id=" in page and "<desc id=" in page
    assert page.count('<table class="dashboard-table">') == 5
    assert "<script" not in page.split('<div id="content-main"')[1]
    assert (
        " style=" not in page.split('<div id="content-main"')[1]
    )  # the CSP allows no inline style
    assert "reports/dashboard.css" in page


def _seed(count, now):
    policy = PolicyFactory(access_package__catalog=CatalogFactory())
    people = UserFactory.create_batch(count)
    for person in people:
        _request(policy, person, state=RequestState.DELIVERED, created=now, completed=now)
        _assignment(policy, person)


@pytest.mark.parametrize("rows", [1, 40])
def test_the_page_costs_the_same_few_queries_however_many_rows(
    client, admin_user, django_assert_max_num_queries, rows, now, finance
):
    _seed(rows, now)
    for n in range(12):  # more packages than the chart lists by name
        PolicyFactory(access_package__display_name=f"Extra {n:02}")
    client.force_login(admin_user)

    # the signed-in user, then the charts: one query each, three for the packages (counts,
    # names, the rest), two for the reviews (the instances, their items)
    with django_assert_max_num_queries(10):
        response = client.get(URL)

    assert response.status_code == 200


def test_names_are_escaped_inside_the_svg():
    chart = charts.horizontal_bar_chart(
        title="<Top>",
        description="a & b",
        labels=['<script>alert("x")</script>'],
        values=[3],
        name="Assignments",
    )
    assert "<script>" not in chart.svg
    assert "&lt;script&gt;" in chart.svg
    assert "&lt;Top&gt;" in chart.svg


def test_an_empty_chart_says_so():
    chart = charts.bar_chart(title="t", description="d", labels=["a", "b"], values=[0, 0], name="n")
    assert chart.empty
    line = charts.line_chart(title="t", description="d", labels=["a"], values=[None], name="n")
    assert line.empty


def test_the_admin_home_links_to_the_dashboard(client, admin_user):
    client.force_login(admin_user)

    page = client.get(reverse("admin:index")).content.decode()

    assert f'href="{URL}"' in page


def test_the_packages_beyond_the_ten_largest_are_a_note_and_a_row_not_a_bar():
    chart = charts.horizontal_bar_chart(
        title="t",
        description="d",
        labels=["Big", "Bigger"],
        values=[15, 12],
        name="Assignments",
        rest=("all other packages", 299867),
    )
    assert chart.rows[-1] == ["all other packages", "299867"]
    assert chart.note == "all other packages: 299867"
    assert "all other packages" not in chart.svg
