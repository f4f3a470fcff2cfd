"""The demo's automatic onboarding: moving someone from Engineering to Sales in the admin swaps
their onboarding package."""

import pytest

from demo.organisation import seed_organisation
from directory.models import GroupMembership, User
from entitlements.models import AssignmentPolicy, AssignmentState, RequestType
from tests.foundation.admin_support import admin_url, errors_of, page_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    seed_organisation()


def onboarding_of(user, department):
    return user.assignments.filter(access_package__display_name=f"{department} onboarding")


def test_sales_and_engineering_onboarding_are_given_by_a_rule_on_the_department(demo):
    for department in ("Sales", "Engineering"):
        policy = AssignmentPolicy.objects.get(
            access_package__display_name=f"{department} onboarding",
            request_access_for_allowed_targets=True,
        )
        assert str(policy.subject_sets.get()) == f'user.department -eq "{department}"'
    emma = User.objects.get(email="employee@demo.example")
    policy = onboarding_of(emma, "Engineering").get().assignment_policy
    assert policy.request_access_for_allowed_targets


def test_moving_a_demo_user_to_sales_in_the_admin_swaps_their_onboarding(
    demo, client, django_capture_on_commit_callbacks
):
    emma = User.objects.get(email="employee@demo.example")
    client.force_login(User.objects.get(email="admin@demo.example"))
    url = admin_url(User, "change", emma.pk)
    data = page_data(client.get(url))
    data["department"] = "Sales"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    sales = onboarding_of(emma, "Sales").get()
    assert sales.state == AssignmentState.DELIVERED
    assert sales.requests.get().request_type == RequestType.SYSTEM_ADD
    engineering = onboarding_of(emma, "Engineering").get()
    assert engineering.state == AssignmentState.EXPIRED
    assert engineering.requests.filter(request_type=RequestType.SYSTEM_REMOVE).exists()
    teams = set(
        GroupMembership.objects.filter(user=emma).values_list("group__display_name", flat=True)
    )
    assert "Sales Team" in teams
    assert "Engineering Team" not in teams
