"""The Graph API: automatic policies with an attributeRuleMembers rule, read and written."""

import pytest

from entitlements.models import AdminRole, AssignmentPolicy, AssignmentState, RequestType
from tests.factories import AccessPackageFactory, CatalogFactory, UserFactory
from tests.foundation.admin_support import give_role
from tests.rules.conftest import automatic_policy

URL = "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies"
G = "#microsoft.graph."
SALES = 'user.department -eq "Sales"'

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def automatic_body(package, rule=SALES, **settings):
    """An automatic policy as Graph's documentation creates one."""
    return {
        "displayName": "Sales department",
        "description": "Everyone in Sales",
        "allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [
            {
                "@odata.type": f"{G}attributeRuleMembers",
                "description": "Sales",
                "membershipRule": rule,
            }
        ],
        "automaticRequestSettings": {
            "requestAccessForAllowedTargets": True,
            "removeAccessWhenTargetLeavesAllowedTargets": True,
            "gracePeriodBeforeAccessRemoval": "P7D",
            **settings,
        },
        "accessPackage": {"id": str(package.pk)},
    }


def test_an_automatic_policy_is_created_as_graph_writes_it_and_assigns_at_once(
    admin_client, django_capture_on_commit_callbacks
):
    package = AccessPackageFactory()
    seller = UserFactory(department="Sales")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(URL, automatic_body(package), content_type="application/json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["automaticRequestSettings"] == {
        "requestAccessForAllowedTargets": True,
        "removeAccessWhenTargetLeavesAllowedTargets": True,
        "gracePeriodBeforeAccessRemoval": "P7D",
    }
    assert data["specificAllowedTargets"] == [
        {"@odata.type": f"{G}attributeRuleMembers", "membershipRule": SALES}
    ]
    assert data["requestorSettings"]["enableTargetsToSelfAddAccess"] is False
    policy = AssignmentPolicy.objects.get(pk=data["id"])
    assignment = seller.assignments.get(assignment_policy=policy)
    assert assignment.requests.get().request_type == RequestType.SYSTEM_ADD


def test_an_automatic_policy_reads_back_with_its_rule(admin_client):
    _package, policy, _resource = automatic_policy(SALES)

    data = admin_client.get(f"{URL}/{policy.pk}").json()

    assert data["automaticRequestSettings"]["requestAccessForAllowedTargets"] is True
    assert data["specificAllowedTargets"][0]["membershipRule"] == SALES


def test_replacing_the_rule_applies_the_new_one(admin_client, django_capture_on_commit_callbacks):
    package, policy, _resource = automatic_policy(SALES)
    marketer = UserFactory(department="Marketing")
    body = automatic_body(package, rule='user.department -in ["Sales", "Marketing"]')

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.put(f"{URL}/{policy.pk}", body, content_type="application/json")

    assert response.status_code == 200, response.json()
    assert str(policy.subject_sets.get()) == 'user.department -in ["Sales", "Marketing"]'
    assert marketer.assignments.get(assignment_policy=policy).state == AssignmentState.DELIVERED


def test_a_rule_that_cannot_be_read_is_a_400_pointing_at_the_mistake(admin_client):
    package = AccessPackageFactory()

    response = admin_client.post(
        URL,
        automatic_body(package, rule='user.department -startswith "Sa" -or'),
        content_type="application/json",
    )

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("specificAllowedTargets.0.membershipRule: The rule ends too early")
    assert "line 1, column 37" in message  # just after the end


def test_a_second_automatic_policy_on_a_package_is_a_400(admin_client):
    package, _policy, _resource = automatic_policy(SALES)

    response = admin_client.post(URL, automatic_body(package), content_type="application/json")

    assert response.status_code == 400
    assert (
        "automaticRequestSettings.requestAccessForAllowedTargets"
        in (response.json()["error"]["message"])
    )
    assert package.assignment_policies.count() == 1


def test_a_rule_in_a_policy_people_request_under_is_a_400(admin_client):
    package = AccessPackageFactory()
    body = automatic_body(package, requestAccessForAllowedTargets=False)

    response = admin_client.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert "only in an automatic policy" in response.json()["error"]["message"]


def test_someone_who_administers_another_catalog_cannot_create_one_here(client, catalog_owner):
    package = AccessPackageFactory()
    give_role(catalog_owner, AdminRole.CATALOG_OWNER, CatalogFactory())
    client.force_login(catalog_owner)

    response = client.post(URL, automatic_body(package), content_type="application/json")

    assert response.status_code in (403, 404)
    assert not package.assignment_policies.exists()
