"""accessPackages through the API: create, read, update, delete through the audited
services; role scopes through package_role_add / _remove; separation of duties with $ref;
what a requestor may request; the wrong people refused with nothing changed."""

from datetime import timedelta

import pytest

from entitlements.models import (
    AccessPackage,
    AdminRole,
    AssignmentResourceRole,
    AssignmentState,
    AuditEvent,
    GrantState,
    Question,
    QuestionChoice,
    ResourceRoleScope,
    RoleAssignment,
)
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    CatalogFactory,
    GroupFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    grant_role,
)
from tests.lifecycle.requests_setup import give_assignment

BASE = "/v1.0/identityGovernance/entitlementManagement"
URL = f"{BASE}/accessPackages"

pytestmark = pytest.mark.django_db


def person_with(role, catalog):
    user = UserFactory(is_staff=True)
    RoleAssignment.objects.create(role=role, principal=user, catalog=catalog)
    return user


@pytest.fixture
def shop(catalog_owner):
    catalog = CatalogFactory(display_name="Shop")
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    resource = GroupResourceFactory(catalog=catalog, display_name="Sales team")
    package = AccessPackageFactory(catalog=catalog, display_name="Sales tools")
    return {"catalog": catalog, "resource": resource, "package": package}


@pytest.fixture
def wrong_people(shop, outsider):
    """Who must be refused a write to the shop: a reader, another catalog's owner, a
    person without roles."""
    return {
        "reader": person_with(AdminRole.CATALOG_READER, shop["catalog"]),
        "other_owner": person_with(AdminRole.CATALOG_OWNER, CatalogFactory()),
        "outsider": outsider,
    }


# Refused as: the reader sees the package (403); the others do not (404).
REFUSAL = {"reader": 403, "other_owner": 404, "outsider": 404}


def as_json(client, method, url, body=None):
    return getattr(client, method)(url, body, content_type="application/json")


# --------------------------------------------------------------------------------------
# CRUD
# --------------------------------------------------------------------------------------


def test_a_catalog_owner_creates_a_package_bound_to_the_catalog_as_the_sdk_sends_it(
    client, catalog_owner, shop
):
    client.force_login(catalog_owner)
    response = as_json(
        client,
        "post",
        URL,
        {
            "displayName": "Marketing",
            "description": None,
            "isHidden": True,
            "catalog": {"id": str(shop["catalog"].pk)},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    package = AccessPackage.objects.get(pk=body["id"])
    assert response["Location"].endswith(f"/accessPackages/{package.pk}")
    assert package.catalog == shop["catalog"] and package.is_hidden and package.description == ""
    assert body["displayName"] == "Marketing" and body["isHidden"] is True
    assert body["createdDateTime"].endswith("Z") and body["modifiedDateTime"].endswith("Z")
    event = AuditEvent.objects.get(action="accessPackage.created", object_id=str(package.pk))
    assert event.channel == "api" and event.actor == catalog_owner


def test_a_package_manager_creates_packages_and_catalog_id_is_accepted_too(client, shop):
    manager = person_with(AdminRole.ACCESS_PACKAGE_MANAGER, shop["catalog"])
    client.force_login(manager)
    response = as_json(
        client, "post", URL, {"displayName": "Beta", "catalogId": str(shop["catalog"].pk)}
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("who", ["reader", "other_owner", "outsider"])
def test_the_wrong_people_cannot_create_a_package(client, shop, wrong_people, who):
    client.force_login(wrong_people[who])
    response = as_json(
        client, "post", URL, {"displayName": "Mine", "catalog": {"id": str(shop["catalog"].pk)}}
    )
    assert response.status_code == REFUSAL[who], response.content
    assert not AccessPackage.objects.filter(display_name="Mine").exists()


@pytest.mark.parametrize(
    "body",
    [{"displayName": "No catalog"}, {"catalog": {"id": "x"}}, {"displayName": "", "catalog": {}}],
)
def test_a_create_without_a_name_or_catalog_is_400(client, catalog_owner, shop, body):
    client.force_login(catalog_owner)
    response = as_json(client, "post", URL, body)
    assert response.status_code in (400, 404), response.content
    assert AccessPackage.objects.count() == 1


def test_patch_changes_the_named_properties_and_answers_204(client, catalog_owner, shop):
    package = shop["package"]
    client.force_login(catalog_owner)
    response = as_json(
        client, "patch", f"{URL}/{package.pk}", {"displayName": "Renamed", "isHidden": True}
    )
    assert response.status_code == 204, response.content
    package.refresh_from_db()
    assert package.display_name == "Renamed" and package.is_hidden
    assert package.description == "Access for the tests."
    assert AuditEvent.objects.filter(action="accessPackage.changed", channel="api").exists()


def test_a_package_stays_in_its_catalog(client, admin_user, shop):
    package = shop["package"]
    client.force_login(admin_user)
    same = as_json(
        client, "patch", f"{URL}/{package.pk}", {"catalog": {"id": str(package.catalog_id)}}
    )
    assert same.status_code == 204
    moved = as_json(
        client, "patch", f"{URL}/{package.pk}", {"catalog": {"id": str(CatalogFactory().pk)}}
    )
    assert moved.status_code == 400
    assert "stays in its catalog" in moved.json()["error"]["message"]
    package.refresh_from_db()
    assert package.catalog == shop["catalog"]


@pytest.mark.parametrize("who", ["reader", "other_owner", "outsider"])
def test_the_wrong_people_cannot_change_or_delete_a_package(client, shop, wrong_people, who):
    package = shop["package"]
    client.force_login(wrong_people[who])
    patched = as_json(client, "patch", f"{URL}/{package.pk}", {"displayName": "Taken"})
    assert patched.status_code == REFUSAL[who]
    assert client.delete(f"{URL}/{package.pk}").status_code == REFUSAL[who]
    package.refresh_from_db()
    assert package.display_name == "Sales tools"
    assert not AuditEvent.objects.filter(action__startswith="accessPackage.").exists()


def test_delete_removes_an_unused_package(client, catalog_owner, shop):
    package = shop["package"]
    client.force_login(catalog_owner)
    assert client.delete(f"{URL}/{package.pk}").status_code == 204
    assert not AccessPackage.objects.filter(pk=package.pk).exists()
    assert AuditEvent.objects.filter(action="accessPackage.deleted", channel="api").exists()


def test_a_package_with_open_assignments_is_not_deleted(client, catalog_owner, shop, requester):
    package = shop["package"]
    give_assignment(requester, package)
    client.force_login(catalog_owner)
    response = client.delete(f"{URL}/{package.pk}")
    assert response.status_code == 409
    assert "1 open assignment" in response.json()["error"]["message"]
    assert AccessPackage.objects.filter(pk=package.pk).exists()


def test_a_package_with_ended_assignments_is_kept_for_its_history(
    client, catalog_owner, shop, requester
):
    package = shop["package"]
    give_assignment(requester, package, state=AssignmentState.EXPIRED)
    client.force_login(catalog_owner)
    response = client.delete(f"{URL}/{package.pk}")
    assert response.status_code == 409
    assert "history" in response.json()["error"]["message"]
    assert AccessPackage.objects.filter(pk=package.pk).exists()


# --------------------------------------------------------------------------------------
# Reading: $filter, $search, $expand, query counts
# --------------------------------------------------------------------------------------


def test_packages_filter_by_catalog_and_by_contains(client, admin_user, shop):
    AccessPackageFactory(display_name="Sales elsewhere")
    client.force_login(admin_user)
    catalog_id = shop["catalog"].pk
    by_catalog = client.get(f"{URL}?$filter=catalog/id eq '{catalog_id}'").json()["value"]
    assert [row["displayName"] for row in by_catalog] == ["Sales tools"]
    contains = client.get(f"{URL}?$filter=contains(displayName,'elsewhere')").json()["value"]
    assert [row["displayName"] for row in contains] == ["Sales elsewhere"]
    searched = client.get(f'{URL}?$search="tools"').json()["value"]
    assert [row["displayName"] for row in searched] == ["Sales tools"]


def test_a_person_sees_only_the_packages_of_their_catalogs(client, shop, wrong_people):
    client.force_login(wrong_people["other_owner"])
    assert client.get(URL).json()["value"] == []
    assert client.get(f"{URL}/{shop['package'].pk}").status_code == 404
    client.force_login(wrong_people["reader"])
    assert [row["id"] for row in client.get(URL).json()["value"]] == [str(shop["package"].pk)]


def test_expand_shows_the_catalog_role_scopes_policies_and_incompatibilities(
    client, admin_user, shop
):
    package, resource = shop["package"], shop["resource"]
    grant_role(package, resource.roles.get(origin_id="Member"))
    PolicyFactory(access_package=package, display_name="Staff")
    other = AccessPackageFactory(catalog=shop["catalog"], display_name="Other")
    group = GroupFactory(display_name="Auditors")
    package.incompatible_access_packages.add(other)
    package.incompatible_groups.add(group)
    client.force_login(admin_user)
    expand = (
        "catalog,resourceRoleScopes($expand=role,scope),assignmentPolicies,"
        "incompatibleAccessPackages,incompatibleGroups,accessPackagesIncompatibleWith"
    )
    body = client.get(f"{URL}/{package.pk}?$expand={expand}").json()
    assert body["catalog"]["displayName"] == "Shop"
    (scope,) = body["resourceRoleScopes"]
    assert scope["role"]["originId"] == "Member"
    assert scope["role"]["originSystem"] == "AadGroup"
    assert scope["scope"]["id"] == str(resource.pk) and scope["scope"]["isRootScope"] is True
    assert [p["displayName"] for p in body["assignmentPolicies"]] == ["Staff"]
    assert [p["displayName"] for p in body["incompatibleAccessPackages"]] == ["Other"]
    assert [g["displayName"] for g in body["incompatibleGroups"]] == ["Auditors"]
    assert body["accessPackagesIncompatibleWith"] == []
    reverse = client.get(f"{URL}/{other.pk}?$expand=accessPackagesIncompatibleWith").json()
    assert [p["id"] for p in reverse["accessPackagesIncompatibleWith"]] == [str(package.pk)]


def test_expanded_incompatible_packages_are_only_those_the_caller_sees(client, catalog_owner, shop):
    hidden = AccessPackageFactory(display_name="Elsewhere")
    shop["package"].incompatible_access_packages.add(hidden)
    client.force_login(catalog_owner)
    body = client.get(f"{URL}/{shop['package'].pk}?$expand=incompatibleAccessPackages").json()
    assert body["incompatibleAccessPackages"] == []
    listed = client.get(f"{URL}/{shop['package'].pk}/incompatibleAccessPackages").json()
    assert listed["value"] == []


def _busy_catalog(size):
    catalog = CatalogFactory()
    resource = GroupResourceFactory(catalog=catalog)
    group = GroupFactory()
    previous = None
    for i in range(size):
        package = AccessPackageFactory(catalog=catalog, display_name=f"P{i:03}")
        grant_role(package, resource.roles.get(origin_id="Member"))
        stage = ApprovalStageFactory(policy__access_package=package)
        QuestionFactory(policy=stage.policy)
        package.incompatible_groups.add(group)
        if previous is not None:
            package.incompatible_access_packages.add(previous)
        previous = package
    return catalog


EVERY_EXPANSION = (
    "catalog,resourceRoleScopes($expand=role($expand=resource),scope),assignmentPolicies,"
    "incompatibleAccessPackages,incompatibleGroups,accessPackagesIncompatibleWith"
)


@pytest.mark.parametrize("size", [5, 50])
def test_package_lists_are_a_fixed_number_of_queries_with_every_expansion(
    client, catalog_owner, django_assert_max_num_queries, size
):
    catalog = _busy_catalog(size)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    client.force_login(catalog_owner)
    # session, user, roles, packages, and one per expansion (policies: their own rows)
    with django_assert_max_num_queries(17):
        response = client.get(f"{URL}?$expand={EVERY_EXPANSION}")
    assert response.status_code == 200, response.content
    rows = response.json()["value"]
    assert len(rows) == size
    assert all(len(row["resourceRoleScopes"]) == 1 for row in rows)
    assert all(len(row["assignmentPolicies"]) == 1 for row in rows)
    with django_assert_max_num_queries(5):
        response = client.get(f"{BASE}/catalogs/{catalog.pk}/accessPackages?$expand=catalog")
    assert len(response.json()["value"]) == size


# --------------------------------------------------------------------------------------
# resourceRoleScopes
# --------------------------------------------------------------------------------------


def test_a_role_scope_is_added_as_graphs_docs_show_and_reaches_the_holders(
    client, catalog_owner, shop, requester
):
    package, resource = shop["package"], shop["resource"]
    assignment = give_assignment(requester, package)
    member = resource.roles.get(origin_id="Member")
    client.force_login(catalog_owner)
    response = as_json(
        client,
        "post",
        f"{URL}/{package.pk}/resourceRoleScopes",
        {
            "role": {
                "originId": f"Member_{resource.origin_id}",
                "originSystem": "AadGroup",
                "resource": {"id": str(resource.pk)},
            },
            "scope": {"originId": resource.origin_id, "originSystem": "AadGroup"},
        },
    )
    assert response.status_code == 201, response.content
    scope = ResourceRoleScope.objects.get(access_package=package)
    assert scope.role == member
    assert response.json()["id"] == str(scope.pk)
    assert response["Location"].endswith(f"/resourceRoleScopes/{scope.pk}")
    grant = AssignmentResourceRole.objects.get(assignment=assignment, resource_role=member)
    assert grant.state == GrantState.PENDING
    assert AuditEvent.objects.filter(action="accessPackage.roleAdded", channel="api").exists()

    listed = client.get(f"{URL}/{package.pk}/resourceRoleScopes?$expand=role,scope").json()
    assert [row["role"]["displayName"] for row in listed["value"]] == ["Member"]
    again = as_json(
        client, "post", f"{URL}/{package.pk}/resourceRoleScopes", {"role": {"id": str(member.pk)}}
    )
    assert again.status_code == 409


def test_a_role_scope_is_removed_and_taken_from_the_holders(client, catalog_owner, shop, requester):
    package, resource = shop["package"], shop["resource"]
    member = resource.roles.get(origin_id="Member")
    scope = grant_role(package, member)
    assignment = give_assignment(requester, package)
    client.force_login(catalog_owner)
    response = client.delete(f"{URL}/{package.pk}/resourceRoleScopes/{scope.pk}")
    assert response.status_code == 204, response.content
    assert not ResourceRoleScope.objects.filter(pk=scope.pk).exists()
    grant = AssignmentResourceRole.objects.get(assignment=assignment, resource_role=member)
    assert grant.state == GrantState.PENDING_REMOVAL


@pytest.mark.parametrize(
    "body, status",
    [
        ({}, 400),
        ({"role": {"originId": "Member"}}, 400),
        ({"role": {"originId": "Nope", "resource": {"id": "RESOURCE"}}}, 404),
        (
            {"role": {"originId": "Member", "resource": {"id": "RESOURCE"}}, "scope": {"id": "x"}},
            400,
        ),
        (
            {
                "role": {"originId": "Member", "resource": {"id": "RESOURCE"}},
                "scope": {"originId": "elsewhere"},
            },
            400,
        ),
        ({"role": {"id": "00000000-0000-0000-0000-000000000000"}}, 404),
    ],
)
def test_bad_role_scope_bodies_are_refused(client, catalog_owner, shop, body, status):
    text = repr(body).replace("RESOURCE", str(shop["resource"].pk))
    client.force_login(catalog_owner)
    response = as_json(
        client,
        "post",
        f"{URL}/{shop['package'].pk}/resourceRoleScopes",
        eval(text),  # noqa: S307
    )
    assert response.status_code == status, response.content
    assert not ResourceRoleScope.objects.exists()


def test_a_role_of_another_catalog_cannot_be_granted(client, admin_user, shop):
    elsewhere = GroupResourceFactory()
    client.force_login(admin_user)
    response = as_json(
        client,
        "post",
        f"{URL}/{shop['package'].pk}/resourceRoleScopes",
        {"role": {"id": str(elsewhere.roles.get(origin_id="Member").pk)}},
    )
    assert response.status_code == 400, response.content
    assert not ResourceRoleScope.objects.exists()


@pytest.mark.parametrize("who", ["reader", "other_owner", "outsider"])
def test_the_wrong_people_cannot_add_or_remove_role_scopes(client, shop, wrong_people, who):
    package, member = shop["package"], shop["resource"].roles.get(origin_id="Member")
    scope = grant_role(package, member)
    owner_role = shop["resource"].roles.get(origin_id="Owner")
    client.force_login(wrong_people[who])
    added = as_json(
        client,
        "post",
        f"{URL}/{package.pk}/resourceRoleScopes",
        {"role": {"id": str(owner_role.pk)}},
    )
    assert added.status_code == REFUSAL[who]
    removed = client.delete(f"{URL}/{package.pk}/resourceRoleScopes/{scope.pk}")
    assert removed.status_code == REFUSAL[who]
    assert list(ResourceRoleScope.objects.values_list("pk", flat=True)) == [scope.pk]


# --------------------------------------------------------------------------------------
# Separation of duties: incompatibleAccessPackages / incompatibleGroups with $ref
# --------------------------------------------------------------------------------------


def test_incompatible_packages_and_groups_are_added_listed_and_removed_by_ref(
    client, catalog_owner, shop
):
    package = shop["package"]
    other = AccessPackageFactory(catalog=shop["catalog"], display_name="Finance")
    group = GroupFactory(display_name="Auditors")
    client.force_login(catalog_owner)
    root = "https://graph.example.com/v1.0"
    added = as_json(
        client,
        "post",
        f"{URL}/{package.pk}/incompatibleAccessPackages/$ref",
        {"@odata.id": f"{root}/identityGovernance/entitlementManagement/accessPackages/{other.pk}"},
    )
    assert added.status_code == 204, added.content
    group_added = as_json(
        client,
        "post",
        f"{URL}/{package.pk}/incompatibleGroups/$ref",
        {"@odata.id": f"{root}/groups/{group.pk}"},
    )
    assert group_added.status_code == 204, group_added.content
    assert list(package.incompatible_access_packages.all()) == [other]
    assert list(package.incompatible_groups.all()) == [group]
    events = AuditEvent.objects.filter(action="accessPackage.changed", channel="api")
    assert events.count() == 2

    listed = client.get(f"{URL}/{package.pk}/incompatibleAccessPackages").json()["value"]
    assert [row["displayName"] for row in listed] == ["Finance"]
    groups = client.get(f"{URL}/{package.pk}/incompatibleGroups").json()["value"]
    assert [row["displayName"] for row in groups] == ["Auditors"]
    reverse = client.get(f"{URL}/{other.pk}/accessPackagesIncompatibleWith").json()["value"]
    assert [row["id"] for row in reverse] == [str(package.pk)]

    twice = as_json(
        client,
        "post",
        f"{URL}/{package.pk}/incompatibleAccessPackages/$ref",
        {"@odata.id": f"{root}/identityGovernance/entitlementManagement/accessPackages/{other.pk}"},
    )
    assert twice.status_code == 409

    assert (
        client.delete(f"{URL}/{package.pk}/incompatibleAccessPackages/{other.pk}/$ref").status_code
        == 204
    )
    assert (
        client.delete(f"{URL}/{package.pk}/incompatibleGroups/{group.pk}/$ref").status_code == 204
    )
    assert not package.incompatible_access_packages.exists()
    assert not package.incompatible_groups.exists()
    assert (
        client.delete(f"{URL}/{package.pk}/incompatibleGroups/{group.pk}/$ref").status_code == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"@odata.id": 5},
        {"@odata.id": "https://x/v1.0/users/abc"},
        {"@odata.id": "accessPackages/SELF"},
    ],
)
def test_bad_refs_are_400_or_404_and_change_nothing(client, catalog_owner, shop, body):
    package = shop["package"]
    if isinstance(body.get("@odata.id"), str):
        body["@odata.id"] = body["@odata.id"].replace("SELF", str(package.pk))
    client.force_login(catalog_owner)
    response = as_json(client, "post", f"{URL}/{package.pk}/incompatibleAccessPackages/$ref", body)
    assert response.status_code in (400, 404), response.content
    assert not package.incompatible_access_packages.exists()


def test_a_package_the_caller_does_not_see_cannot_be_made_incompatible(client, catalog_owner, shop):
    hidden = AccessPackageFactory(display_name="Elsewhere")
    client.force_login(catalog_owner)
    response = as_json(
        client,
        "post",
        f"{URL}/{shop['package'].pk}/incompatibleAccessPackages/$ref",
        {"@odata.id": f"accessPackages/{hidden.pk}"},
    )
    assert response.status_code == 404
    assert not shop["package"].incompatible_access_packages.exists()


@pytest.mark.parametrize("who", ["reader", "other_owner", "outsider"])
def test_the_wrong_people_cannot_change_incompatibilities(client, shop, wrong_people, who):
    package = shop["package"]
    group = GroupFactory()
    existing = GroupFactory()
    package.incompatible_groups.add(existing)
    client.force_login(wrong_people[who])
    added = as_json(
        client,
        "post",
        f"{URL}/{package.pk}/incompatibleGroups/$ref",
        {"@odata.id": f"groups/{group.pk}"},
    )
    assert added.status_code == REFUSAL[who]
    removed = client.delete(f"{URL}/{package.pk}/incompatibleGroups/{existing.pk}/$ref")
    assert removed.status_code == REFUSAL[who]
    assert list(package.incompatible_groups.all()) == [existing]


# --------------------------------------------------------------------------------------
# The requestor's functions
# --------------------------------------------------------------------------------------


@pytest.fixture
def requestable(shop):
    """The shop's package, granting a role, under a policy everybody may request, with a
    text question and a multiple-choice one."""
    package = shop["package"]
    grant_role(package, shop["resource"].roles.get(origin_id="Member"))
    policy = PolicyFactory(
        access_package=package,
        display_name="Staff",
        description="For staff",
        is_requestor_justification_required=True,
        expiration_duration=timedelta(days=30),
    )
    QuestionFactory(policy=policy, text="Why?", sequence=1)
    choice = QuestionFactory(
        policy=policy,
        text="Which region?",
        sequence=2,
        question_type=Question.QuestionType.MULTIPLE_CHOICE,
    )
    QuestionChoice.objects.create(question=choice, actual_value="eu", text="Europe")
    return package, policy


def test_filter_by_current_user_lists_what_my_access_lists(client, requester, requestable):
    package, _policy = requestable
    AccessPackageFactory(catalog=package.catalog, display_name="Grants nothing")
    client.force_login(requester)
    response = client.get(f"{URL}/filterByCurrentUser(on='allowedRequestor')")
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["value"]] == [str(package.pk)]
    other = client.get(f"{URL}/filterByCurrentUser(on='target')")
    assert other.status_code == 400


def test_a_requestor_may_not_list_or_write_packages_as_an_administrator(
    client, requester, requestable
):
    package, _policy = requestable
    client.force_login(requester)
    assert client.get(URL).json()["value"] == []
    assert client.get(f"{URL}/{package.pk}").status_code == 404
    response = as_json(client, "patch", f"{URL}/{package.pk}", {"displayName": "Mine"})
    assert response.status_code == 404
    package.refresh_from_db()
    assert package.display_name == "Sales tools"


def test_applicable_policy_requirements_are_the_request_forms_of_my_policies(
    client, requester, requestable
):
    package, policy = requestable
    client.force_login(requester)
    response = client.post(f"{URL}/{package.pk}/getApplicablePolicyRequirements")
    assert response.status_code == 200, response.content
    (requirement,) = response.json()["value"]
    assert requirement["policyId"] == str(policy.pk)
    assert requirement["policyDisplayName"] == "Staff"
    assert requirement["policyDescription"] == "For staff"
    assert requirement["isApprovalRequiredForAdd"] is False
    assert requirement["isRequestorJustificationRequired"] is True
    assert requirement["allowCustomAssignmentSchedule"] is False
    assert requirement["schedule"]["expiration"]["type"] == "afterDuration"
    assert requirement["schedule"]["expiration"]["duration"].startswith("P30D")
    text, choice = requirement["questions"]
    assert text["@odata.type"] == "#microsoft.graph.accessPackageTextInputQuestion"
    assert text["text"] == "Why?"
    assert choice["@odata.type"] == "#microsoft.graph.accessPackageMultipleChoiceQuestion"
    assert [c["actualValue"] for c in choice["choices"]] == ["eu"]


def test_no_requirements_for_someone_who_already_has_the_package(client, requester, requestable):
    package, policy = requestable
    give_assignment(requester, package, policy)
    client.force_login(requester)
    response = client.post(f"{URL}/{package.pk}/getApplicablePolicyRequirements")
    assert response.status_code == 200
    assert response.json()["value"] == []
    missing = client.post(
        f"{URL}/00000000-0000-0000-0000-000000000000/getApplicablePolicyRequirements"
    )
    assert missing.status_code == 404


def test_a_packages_policies_are_listed_in_the_policy_resources_shape(
    client, catalog_owner, shop, wrong_people
):
    package = shop["package"]
    PolicyFactory(access_package=package, display_name="Staff")
    PolicyFactory(access_package=AccessPackageFactory(catalog=shop["catalog"]), display_name="No")
    client.force_login(catalog_owner)
    response = client.get(f"{URL}/{package.pk}/assignmentPolicies")
    assert response.status_code == 200, response.content
    (policy,) = response.json()["value"]
    assert policy["displayName"] == "Staff"
    assert policy["expiration"]["type"] == "afterDuration"
    assert "requestApprovalSettings" in policy
    client.force_login(wrong_people["other_owner"])
    assert client.get(f"{URL}/{package.pk}/assignmentPolicies").status_code == 404
    assert client.get(f"{URL}/{package.pk}/incompatibleGroups").status_code == 404
    assert client.get(f"{URL}/{package.pk}/resourceRoleScopes").status_code == 404
