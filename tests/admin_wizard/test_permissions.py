"""Who may use the guided flow: a catalog's owners (and package managers) in their catalogs only."""

import pytest
from django.urls import reverse

from entitlements.models import (
    AccessPackage,
    AdminRole,
    AssignmentPolicy,
    AuditEvent,
    RoleAssignment,
)
from tests.factories import UserFactory

from .conftest import NEW, Flow, questions_data, role
from .test_flow import basics, lifecycle, requests_

pytestmark = pytest.mark.django_db

STEPS = ["basics", "roles", "requests", "questions", "lifecycle", "review"]
POLICY_STEPS = STEPS[2:]


def snapshot():
    return (
        AccessPackage.objects.count(),
        AssignmentPolicy.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def package(catalog, reports_group):
    package = AccessPackage.objects.create(catalog=catalog, display_name="Finance reporting")
    return package


def policy_url(package):
    return reverse("admin:entitlements_accesspackage_wizard_policy", args=[package.pk])


def test_a_staff_member_without_a_catalog_role_is_refused_on_every_step(client, package):
    client.force_login(UserFactory(email="staff@example.com", is_staff=True))
    before = snapshot()
    for step in STEPS:
        url = f"{NEW}?draft=x&step={step}"
        assert client.get(url).status_code == 403, step
        assert client.post(url, {"_next": "1"}).status_code == 403, step
    for step in POLICY_STEPS:
        url = f"{policy_url(package)}?draft=x&step={step}"
        assert client.get(url).status_code == 403, step
        assert client.post(url, {"_create": "1"}).status_code == 403, step
    assert snapshot() == before


def test_a_catalog_reader_is_refused_and_sees_no_button(client, catalog, package):
    reader = UserFactory(email="reader@example.com", is_staff=True)
    RoleAssignment.objects.create(role=AdminRole.CATALOG_READER, principal=reader, catalog=catalog)
    client.force_login(reader)
    assert client.get(NEW).status_code == 403
    assert client.get(policy_url(package)).status_code == 403
    page = client.get(reverse("admin:entitlements_accesspackage_changelist")).content.decode()
    assert "New access package (guided)" not in page
    page = client.get(
        reverse("admin:entitlements_accesspackage_change", args=[package.pk])
    ).content.decode()
    assert "Add a policy (guided)" not in page


def test_the_owner_of_another_catalog_is_refused_on_every_step_of_a_policy_for_this_one(
    client, other_catalog, package
):
    client.force_login(other_catalog.owner)
    before = snapshot()
    for step in POLICY_STEPS:
        url = f"{policy_url(package)}?draft=x&step={step}"
        assert client.get(url).status_code == 403, step
        assert client.post(url, {"_create": "1", "display_name": "Mine"}).status_code == 403
    assert snapshot() == before


def test_the_owner_of_another_catalog_cannot_choose_this_catalog(client, catalog, other_catalog):
    client.force_login(other_catalog.owner)
    flow = Flow(client)
    page = flow.get("basics").content.decode()
    assert "Engineering" in page and "Finance" not in page
    response = flow.post("basics", basics(catalog))
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    assert flow.get("roles")["Location"] == flow.step_url("basics")


def test_a_create_posted_with_a_catalog_one_does_not_own_changes_nothing(
    client, catalog, other_catalog, reports_group, approver
):
    """The draft is checked again on "Create": a catalog slipped into the session (or one whose
    ownership was lost meanwhile) is refused, and nothing is saved."""
    owner = other_catalog.owner
    client.force_login(owner)
    flow = Flow(client)
    flow.post("basics", basics(other_catalog))
    session = client.session
    draft = session["package_wizard"][flow.draft]
    draft["data"]["basics"]["catalog"] = [str(catalog.pk)]
    draft["data"]["roles"] = {"roles": [str(role(reports_group).pk)]}
    draft["data"]["requests"] = {
        k: v if isinstance(v, list) else [v] for k, v in requests_(approver).items()
    }
    draft["data"]["questions"] = {k: [v] for k, v in questions_data().items()}
    draft["data"]["lifecycle"] = {k: [v] for k, v in lifecycle().items()}
    session.save()
    before = snapshot()
    response = flow.post("review", {}, button="_create")
    assert response.status_code == 302
    assert response["Location"] == flow.step_url("basics")
    assert snapshot() == before


def test_an_owner_who_lost_the_catalog_meanwhile_creates_nothing(
    client, catalog_owner, catalog, reports_group, approver
):
    client.force_login(catalog_owner)
    flow = Flow(client)
    flow.post("basics", basics(catalog))
    flow.post("roles", {"roles": [str(role(reports_group).pk)]})
    flow.post("requests", requests_(approver))
    flow.post("questions", questions_data())
    flow.post("lifecycle", lifecycle())
    RoleAssignment.objects.filter(principal=catalog_owner).delete()
    before = snapshot()
    response = flow.post("review", {}, button="_create")
    assert response.status_code in (302, 403)
    assert snapshot() == before


def test_anonymous_visitors_are_sent_to_the_sign_in_page(client, package):
    for url in (NEW, policy_url(package)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_the_owner_sees_both_buttons(client, catalog_owner, package):
    client.force_login(catalog_owner)
    page = client.get(reverse("admin:entitlements_accesspackage_changelist")).content.decode()
    assert f'href="{NEW}"' in page
    page = client.get(
        reverse("admin:entitlements_accesspackage_change", args=[package.pk])
    ).content.decode()
    assert f'href="{policy_url(package)}"' in page
