"""Only an administrator decides whom a policy assigns without a request or an approval:
a catalog owner may not turn automatic assignment on or change an automatic policy's rule,
through the API or the admin."""

import pytest

from entitlements.models import AdminRole, AssignmentPolicy
from entitlements.services.automatic import automatic_policies_evaluate
from tests.api.conftest import bearer, issue_app_token, issue_user_token, make_app
from tests.factories import AccessPackageFactory, UserFactory
from tests.foundation.admin_support import admin_url, errors_of, give_role, page_data
from tests.rules.conftest import automatic_policy
from tests.rules.test_api import SALES, URL, automatic_body

pytestmark = pytest.mark.django_db
SUBJECTS = "subject_sets"
EVERYONE = "user.accountEnabled -eq true"


@pytest.fixture
def owner_client(client, catalog_owner):
    client.force_login(catalog_owner)
    return client


def owning(catalog_owner, package):
    give_role(catalog_owner, AdminRole.CATALOG_OWNER, package.catalog)
    return package


# ---- the API ---------------------------------------------------------------------------


def test_a_catalog_owner_cannot_create_an_automatic_policy_in_their_catalog(
    owner_client, catalog_owner
):
    package = owning(catalog_owner, AccessPackageFactory())
    guest = UserFactory(user_type="Guest")

    response = owner_client.post(
        URL, automatic_body(package, rule=EVERYONE), content_type="application/json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["message"].startswith(
        "Only an administrator may turn on automatic assignment."
    )
    assert not package.assignment_policies.exists()
    assert not guest.assignments.exists()


def test_a_catalog_owner_cannot_change_the_rule_of_an_automatic_policy(owner_client, catalog_owner):
    package, policy, _resource = automatic_policy(SALES)
    owning(catalog_owner, package)
    seller = UserFactory(department="Sales")
    automatic_policies_evaluate()

    response = owner_client.put(
        f"{URL}/{policy.pk}",
        automatic_body(package, rule='user.department -eq "Nobody"'),
        content_type="application/json",
    )

    assert response.status_code == 403
    assert "may change whom an automatic policy assigns" in response.json()["error"]["message"]
    assert policy.subject_sets.get().membership_rule == SALES
    assert seller.assignments.get(assignment_policy=policy).is_open


def test_a_catalog_owner_cannot_turn_an_automatic_policy_off(owner_client, catalog_owner):
    package, policy, _resource = automatic_policy(SALES)
    owning(catalog_owner, package)

    response = owner_client.put(
        f"{URL}/{policy.pk}",
        automatic_body(package, requestAccessForAllowedTargets=False),
        content_type="application/json",
    )

    assert response.status_code == 403
    policy.refresh_from_db()
    assert policy.request_access_for_allowed_targets


def test_a_catalog_owner_may_still_rename_an_automatic_policy_keeping_its_rule(
    owner_client, catalog_owner
):
    package, policy, _resource = automatic_policy(SALES)
    owning(catalog_owner, package)
    body = automatic_body(package) | {"displayName": "Sales, renamed"}

    response = owner_client.put(f"{URL}/{policy.pk}", body, content_type="application/json")

    assert response.status_code == 200, response.json()
    policy.refresh_from_db()
    assert policy.display_name == "Sales, renamed"


def test_an_administrator_may_create_one(client, admin_user):
    client.force_login(admin_user)
    package = AccessPackageFactory()

    response = client.post(URL, automatic_body(package), content_type="application/json")

    assert response.status_code == 201, response.json()


def test_a_catalog_owners_personal_token_cannot_create_one_either(client, catalog_owner):
    package = owning(catalog_owner, AccessPackageFactory())
    token = issue_user_token(catalog_owner, ["EntitlementManagement.ReadWrite.All"])

    response = client.post(
        URL,
        automatic_body(package, rule=EVERYONE),
        content_type="application/json",
        **bearer(token),
    )

    assert response.status_code == 403
    assert (
        "Only an administrator may turn on automatic assignment"
        in (response.json()["error"]["message"])
    )
    assert not package.assignment_policies.exists()


def test_an_application_with_a_product_wide_permission_may_create_one(client):
    package = AccessPackageFactory()
    application, _client_id, _secret = make_app(["EntitlementManagement.ReadWrite.All"])

    response = client.post(
        URL,
        automatic_body(package),
        content_type="application/json",
        **bearer(issue_app_token(application)),
    )

    assert response.status_code == 201, response.json()


# ---- the admin -------------------------------------------------------------------------


def test_in_the_admin_the_automatic_switch_is_read_only_for_a_catalog_owner(
    owner_client, catalog_owner
):
    package = owning(catalog_owner, AccessPackageFactory())
    policy = package.assignment_policies.first() or AssignmentPolicy.objects.create(
        access_package=package, display_name="Ordinary"
    )
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    page = owner_client.get(url)
    assert 'name="request_access_for_allowed_targets"' not in page.content.decode()
    data = page_data(page)

    data["request_access_for_allowed_targets"] = "on"
    owner_client.post(url, data)

    policy.refresh_from_db()
    assert not policy.request_access_for_allowed_targets


def test_in_the_admin_a_catalog_owner_cannot_change_an_automatic_policys_rule(
    owner_client, catalog_owner
):
    package, policy, _resource = automatic_policy(SALES)
    owning(catalog_owner, package)
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    data = page_data(owner_client.get(url))
    data[f"{SUBJECTS}-0-membership_rule"] = EVERYONE

    response = owner_client.post(url, data)

    assert response.status_code == 200
    assert "Only an administrator may change whom an automatic policy assigns." in errors_of(
        response
    )
    assert policy.subject_sets.get().membership_rule == SALES


def test_in_the_admin_a_catalog_owner_may_rename_an_automatic_policy(owner_client, catalog_owner):
    package, policy, _resource = automatic_policy(SALES)
    owning(catalog_owner, package)
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    data = page_data(owner_client.get(url))
    data["display_name"] = "Sales, renamed"

    response = owner_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    policy.refresh_from_db()
    assert policy.display_name == "Sales, renamed"


def test_in_the_admin_an_administrator_may_change_the_rule(client, admin_user):
    _package, policy, _resource = automatic_policy(SALES)
    client.force_login(admin_user)
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    data = page_data(client.get(url))
    data[f"{SUBJECTS}-0-membership_rule"] = EVERYONE

    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert policy.subject_sets.get().membership_rule == EVERYONE
