"""The policy page: an automatic policy's rule, its preview before saving, and its effect."""

import pytest
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.urls import reverse

from entitlements.models import (
    AdminRole,
    AssignmentPolicy,
    AssignmentState,
    PolicySubjectSet,
    RequestType,
    SubjectType,
)
from entitlements.services.automatic import automatic_policies_evaluate
from tests.factories import CatalogFactory, UserFactory
from tests.foundation.admin_support import add_row, admin_url, errors_of, give_role, page_data
from tests.rules.conftest import automatic_policy

pytestmark = pytest.mark.django_db
PREVIEW = "admin:entitlements_assignmentpolicy_preview"
SUBJECTS = "subject_sets"


def preview(client, rule, policy=None):
    params = {"rule": rule, "policy": str(policy.pk) if policy else ""}
    return client.get(reverse(PREVIEW), params)


def test_the_preview_counts_and_names_the_users_a_rule_matches(client, admin_user):
    for name in ("Sam Seller", "Sue Seller", "Sid Seller"):
        UserFactory(display_name=name, department="Sales")
    UserFactory(display_name="Ed Engineer", department="Engineering")
    UserFactory(display_name="Dee Disabled", department="Sales", is_active=False)
    client.force_login(admin_user)

    data = preview(client, 'user.department -eq "sales"').json()

    assert data["count"] == 3
    assert data["names"] == ["Sam Seller", "Sid Seller", "Sue Seller"]
    assert data["rule"] == 'user.department -eq "sales"'


def test_the_preview_shows_at_most_twenty_names_and_the_full_count(
    client, admin_user, django_assert_max_num_queries
):
    for n in range(25):
        UserFactory(display_name=f"Seller {n:02}", department="Sales")
    client.force_login(admin_user)

    with django_assert_max_num_queries(12):
        data = preview(client, 'user.department -eq "Sales"').json()

    assert data["count"] == 25
    assert len(data["names"]) == 20


def test_the_preview_of_a_saved_policy_says_who_would_get_it_and_who_would_lose_it(
    client, admin_user
):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    seller = UserFactory(department="Sales")
    UserFactory(department="Marketing")
    automatic_policies_evaluate()
    UserFactory(department="Marketing")
    client.force_login(admin_user)

    data = preview(client, 'user.department -eq "Marketing"', policy).json()

    assert (data["count"], data["added"], data["lost"]) == (2, 2, 1)
    assert seller.assignments.get().is_open


def test_the_preview_points_at_the_mistake(client, admin_user):
    client.force_login(admin_user)

    data = preview(client, 'user.department -eq "Sales" -and user.title -eq "x"').json()

    assert data["error"].startswith("Unknown attribute user.title")
    assert (data["line"], data["column"]) == (1, 34)
    assert data["pointed"].splitlines()[-1] == " " * 33 + "^"


def test_the_preview_is_refused_to_the_wrong_people(client, requester, catalog_owner):
    response = preview(client, 'user.department -eq "Sales"')
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert REDIRECT_FIELD_NAME in response["Location"]

    client.force_login(requester)  # not staff
    response = preview(client, 'user.department -eq "Sales"')
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))

    client.force_login(catalog_owner)  # staff, but no role in any catalog
    assert preview(client, 'user.department -eq "Sales"').status_code == 403


def test_a_package_manager_of_another_catalog_cannot_preview_a_policy_they_cannot_see(
    client, catalog_owner
):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    give_role(catalog_owner, AdminRole.CATALOG_OWNER, CatalogFactory())
    client.force_login(catalog_owner)

    assert preview(client, 'user.department -eq "Sales"').status_code == 200
    assert preview(client, 'user.department -eq "Sales"', policy).status_code == 403


def test_saving_an_automatic_policy_in_the_admin_assigns_the_people_its_rule_matches(
    client, admin_user, django_capture_on_commit_callbacks
):
    package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    marketer = UserFactory(department="Marketing")
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(AssignmentPolicy, "change", policy.pk)))
    data[f"{SUBJECTS}-0-membership_rule"] = 'user.department -in ["Sales", "Marketing"]'

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(admin_url(AssignmentPolicy, "change", policy.pk), data)

    assert response.status_code == 302, errors_of(response)
    assignment = marketer.assignments.get(access_package=package)
    assert assignment.state == AssignmentState.DELIVERED
    assert assignment.requests.get().request_type == RequestType.SYSTEM_ADD


def test_a_wrong_rule_is_refused_with_its_position(client, admin_user):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(AssignmentPolicy, "change", policy.pk)))
    data[f"{SUBJECTS}-0-membership_rule"] = 'user.department -eq "Sales'

    response = client.post(admin_url(AssignmentPolicy, "change", policy.pk), data)

    assert response.status_code == 200
    [message] = errors_of(response)
    assert "no closing double quote" in message
    assert "line 1, column 21" in message
    assert policy.subject_sets.get().membership_rule == 'user.department -eq "Sales"'


def test_a_rule_in_a_policy_people_request_under_is_refused(client, admin_user):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(AssignmentPolicy, "change", policy.pk)))
    data.pop("request_access_for_allowed_targets")
    data["enable_targets_to_self_add_access"] = "on"

    response = client.post(admin_url(AssignmentPolicy, "change", policy.pk), data)

    assert response.status_code == 200
    assert any("only in an automatic policy" in m for m in errors_of(response))


def test_an_automatic_policy_cannot_let_users_request(client, admin_user):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(AssignmentPolicy, "change", policy.pk)))
    data["enable_targets_to_self_add_access"] = "on"

    response = client.post(admin_url(AssignmentPolicy, "change", policy.pk), data)

    assert response.status_code == 200
    assert any("Users cannot request under an automatic policy" in m for m in errors_of(response))


def test_a_rule_can_be_added_to_a_new_automatic_policy(client, admin_user):
    package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    policy.subject_sets.all().delete()
    client.force_login(admin_user)
    data = page_data(client.get(admin_url(AssignmentPolicy, "change", policy.pk)))
    add_row(
        data,
        SUBJECTS,
        purpose=PolicySubjectSet.Purpose.ALLOWED_TARGET,
        subject_type=SubjectType.ATTRIBUTE_RULE_MEMBERS,
        membership_rule='user.jobTitle -startsWith "Account"',
    )

    response = client.post(admin_url(AssignmentPolicy, "change", policy.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert str(policy.subject_sets.get()) == 'user.jobTitle -startsWith "Account"'


def test_the_policy_page_loads_the_preview_for_each_rule(client, admin_user):
    _package, policy, _resource = automatic_policy('user.department -eq "Sales"')
    client.force_login(admin_user)

    page = client.get(admin_url(AssignmentPolicy, "change", policy.pk)).content.decode()

    assert "entitlements/rule_preview.js" in page
    assert f'data-preview-url="{reverse(PREVIEW)}"' in page
    assert 'class="rule-input"' in page
