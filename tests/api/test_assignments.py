"""assignments: lists with $filter and $expand (query counts pinned), one's own, reprocess,
additionalAccess, and the wrong person for each."""

import pytest

from entitlements.models import AdminRole, AssignmentState, AuditEvent, RoleAssignment
from entitlements.services.delivery import assignment_deliver
from tests.factories import CatalogFactory, UserFactory
from tests.lifecycle.assignment_helpers import (
    CountingConnector,
    approved_request,
    assign,
    fulfil,
    use_connector,
)
from tests.lifecycle.requests_setup import open_policy, package_with_roles

pytestmark = pytest.mark.django_db

URL = "/v1.0/identityGovernance/entitlementManagement/assignments"
EXPAND = "$expand=target,accessPackage,assignmentPolicy"


def give_role(user, catalog, role):
    return RoleAssignment.objects.create(principal=user, catalog=catalog, role=role)


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["value"]}


def snapshot():
    from entitlements.models import Assignment

    return (
        sorted(Assignment.objects.values_list("id", "state", "modified")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def package(db):
    return package_with_roles(display_name="CRM")


@pytest.fixture
def policy(package):
    return open_policy(package)


@pytest.fixture
def owner(catalog_owner, package):
    give_role(catalog_owner, package.catalog, AdminRole.CATALOG_OWNER)
    return catalog_owner


@pytest.fixture
def reader(package):
    user = UserFactory(display_name="Rea Reader")
    give_role(user, package.catalog, AdminRole.CATALOG_READER)
    return user


def test_the_list_expands_target_package_and_policy_in_graphs_shape(
    client, owner, requester, package, policy
):
    assignment = assign(requester, package, policy)
    client.force_login(owner)

    response = client.get(f"{URL}?{EXPAND}")

    assert response.status_code == 200, response.content
    [row] = response.json()["value"]
    assert row["id"] == str(assignment.pk)
    assert (row["state"], row["status"]) == ("delivered", assignment.status)
    assert row["target"]["objectId"] == str(requester.pk)
    assert row["target"]["displayName"] == "Rita Requester"
    assert row["accessPackage"] == {
        "id": str(package.pk),
        "displayName": "CRM",
        "description": package.description,
        "isHidden": False,
        "createdDateTime": row["accessPackage"]["createdDateTime"],
        "modifiedDateTime": row["accessPackage"]["modifiedDateTime"],
    }
    assert row["assignmentPolicy"]["id"] == str(policy.pk)
    assert row["schedule"]["expiration"]["type"] == "afterDateTime"
    assert row["schedule"]["startDateTime"].endswith("Z")
    assert row["expiredDateTime"] is None
    assert row["customExtensionCalloutInstances"] == []
    got = client.get(f"{URL}/{assignment.pk}?$expand=target").json()
    assert got["target"]["email"] == "requester@example.com"


def test_filters_by_package_and_state_and_by_target(client, owner, requester, package, policy):
    mine = assign(requester, package, policy)
    other_user = UserFactory()
    theirs = assign(other_user, package, policy)
    other_package = package_with_roles(catalog=package.catalog)
    elsewhere = assign(requester, other_package, open_policy(other_package))
    ended = assign(UserFactory(), package, policy)
    ended.state = AssignmentState.EXPIRED
    ended.save(update_fields=["state"])
    client.force_login(owner)

    by_package = f"$filter=accessPackage/id eq '{package.pk}' and state eq 'delivered'"
    assert ids(client.get(f"{URL}?{by_package}&{EXPAND}")) == {str(mine.pk), str(theirs.pk)}
    by_target = f"$filter=target/objectId eq '{requester.pk}'"
    assert ids(client.get(f"{URL}?{by_target}")) == {str(mine.pk), str(elsewhere.pk)}
    either = f"$filter=id in ('{mine.pk}', '{ended.pk}')"
    assert ids(client.get(f"{URL}?{either}")) == {str(mine.pk), str(ended.pk)}
    not_a_guid = client.get(f"{URL}?$filter=accessPackage/id eq 'nope'")
    assert not_a_guid.status_code == 400, not_a_guid.content
    bad = client.get(f"{URL}?$filter=target/password eq 'x'")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidFilter"


@pytest.mark.parametrize("rows", [10, 200])
def test_the_list_with_every_expand_is_a_fixed_number_of_queries(
    client, owner, package, policy, rows, django_assert_max_num_queries
):
    from entitlements.models import Assignment

    users = UserFactory.create_batch(rows)
    Assignment.objects.bulk_create(
        [
            Assignment(
                access_package=package,
                assignment_policy=policy,
                target=user,
                state=AssignmentState.DELIVERED,
            )
            for user in users
        ]
    )
    client.force_login(owner)

    with django_assert_max_num_queries(5):
        response = client.get(f"{URL}?{EXPAND}&$top=999")

    assert len(response.json()["value"]) == rows


def test_each_person_sees_their_own_assignments_only(client, requester, outsider, package, policy):
    mine = assign(requester, package, policy)
    theirs = assign(outsider, package, policy)
    client.force_login(requester)

    assert ids(client.get(f"{URL}/filterByCurrentUser(on='target')")) == {str(mine.pk)}
    assert client.get(f"{URL}/{mine.pk}").status_code == 200
    assert client.get(f"{URL}/{theirs.pk}").status_code == 404
    assert ids(client.get(URL)) == set()  # the list is for administrators of the catalog
    assert client.get(f"{URL}/filterByCurrentUser(on='approver')").status_code == 400


def test_another_catalogs_owner_sees_none_of_them(client, requester, package, policy):
    assignment = assign(requester, package, policy)
    stranger = UserFactory()
    give_role(stranger, CatalogFactory(), AdminRole.CATALOG_OWNER)
    client.force_login(stranger)
    before = snapshot()

    assert ids(client.get(URL)) == set()
    assert client.get(f"{URL}/{assignment.pk}").status_code == 404
    assert client.post(f"{URL}/{assignment.pk}/reprocess").status_code == 404
    assert snapshot() == before


# --- reprocess ----------------------------------------------------------------------------


@pytest.fixture
def failed(requester, package, policy, monkeypatch):
    """An assignment whose delivery failed, and the connector that failed it."""
    role = package.resource_role_scopes.get().role
    connector = CountingConnector(failing=[role.pk])
    use_connector(monkeypatch, connector)
    assignment = fulfil(approved_request(requester, package, policy))
    assignment_deliver(assignment_id=assignment.pk)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.DELIVERY_FAILED
    assignment.connector = connector
    return assignment


def test_reprocess_delivers_a_failed_assignment(
    client, owner, failed, django_capture_on_commit_callbacks
):
    failed.connector.failing.clear()
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}/{failed.pk}/reprocess")

    assert response.status_code == 202, response.content
    failed.refresh_from_db()
    assert failed.state == AssignmentState.DELIVERED
    assert AuditEvent.objects.filter(
        action="assignment.reprocessed", actor=owner, channel="api"
    ).exists()


def test_reprocess_of_a_delivered_assignment_is_409(client, owner, requester, package, policy):
    assignment = assign(requester, package, policy)
    client.force_login(owner)
    before = snapshot()

    response = client.post(f"{URL}/{assignment.pk}/reprocess")

    assert response.status_code == 409
    assert "can be reprocessed" in response.json()["error"]["message"]
    assert snapshot() == before


def test_the_holder_and_a_catalog_reader_may_not_reprocess(
    client, reader, requester, outsider, failed
):
    before = snapshot()
    for person, code in ((requester, 403), (reader, 403), (outsider, 404)):
        client.force_login(person)
        response = client.post(f"{URL}/{failed.pk}/reprocess")
        assert response.status_code == code, (person, response.content)
    assert snapshot() == before


# --- additionalAccess ---------------------------------------------------------------------


def test_additional_access_lists_who_holds_both_packages(
    client, owner, requester, outsider, package, policy
):
    other = package_with_roles(catalog=package.catalog)
    other_policy = open_policy(other)
    both = assign(requester, package, policy)
    assign(requester, other, other_policy)
    assign(outsider, package, policy)  # only one of the two
    client.force_login(owner)

    url = (
        f"{URL}/additionalAccess(accessPackageId='{package.pk}',"
        f"incompatibleAccessPackageId='{other.pk}')?$expand=target"
    )
    response = client.get(url)

    assert ids(response) == {str(both.pk)}
    assert response.json()["value"][0]["target"]["displayName"] == "Rita Requester"


def test_additional_access_refuses_bad_arguments_and_hides_other_catalogs(
    client, owner, requester, package, policy
):
    hidden = package_with_roles()  # another catalog
    assign(requester, package, policy)
    assign(requester, hidden, open_policy(hidden))
    client.force_login(owner)

    def call(first, second):
        return client.get(
            f"{URL}/additionalAccess(accessPackageId='{first}',incompatibleAccessPackageId='{second}')"
        )

    assert call(package.pk, package.pk).status_code == 400
    assert call("nope", package.pk).status_code == 400
    assert ids(call(package.pk, hidden.pk)) == set()
    stranger = UserFactory()
    client.force_login(stranger)
    assert ids(call(package.pk, hidden.pk)) == set()
