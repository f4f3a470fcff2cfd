"""Read-only users, groups, members and /me: admins and applications read the directory,
anybody else only themselves; never a password hash or a staff flag."""

import pytest

from api.permissions import GROUP_READ_ALL, USER_READ, USER_READ_ALL
from directory.models import GroupMembership, User
from entitlements.models import AdminRole, RoleAssignment
from tests.factories import CatalogFactory, GroupFactory, UserFactory, add_member

pytestmark = pytest.mark.django_db
EVENTUAL = {"HTTP_CONSISTENCYLEVEL": "eventual"}


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_a_user_has_graphs_properties_and_nothing_private(admin_client, requester, manager):
    User.objects.filter(pk=requester.pk).update(job_title="Analyst", employee_id="E-7")

    body = admin_client.get(f"/v1.0/users/{requester.pk}?$expand=manager").json()

    assert body["@odata.context"].endswith("/v1.0/$metadata#users/$entity")
    assert {key: body[key] for key in ("id", "displayName", "mail", "userPrincipalName")} == {
        "id": str(requester.pk),
        "displayName": "Rita Requester",
        "mail": "requester@example.com",
        "userPrincipalName": "requester@example.com",
    }
    assert (body["jobTitle"], body["employeeId"], body["companyName"]) == ("Analyst", "E-7", None)
    assert (body["userType"], body["accountEnabled"], body["department"]) == (
        "Member",
        True,
        "Engineering",
    )
    assert body["manager"]["@odata.type"] == "#microsoft.graph.user"
    assert body["manager"]["id"] == str(manager.pk)
    text = str(body).lower()
    for secret in ("password", "staff", "superuser", "lastlogin", "md5$"):
        assert secret not in text
    assert admin_client.get("/v1.0/users?$select=password").status_code == 400
    assert admin_client.get("/v1.0/users?$filter=password eq 'x'").status_code == 400


def test_users_filter_by_the_start_of_the_name_and_by_mail(admin_client, requester, manager):
    names = admin_client.get("/v1.0/users?$filter=startswith(displayName,'Rita')").json()
    by_mail = admin_client.get("/v1.0/users?$filter=mail eq 'manager@example.com'").json()
    reports = admin_client.get(f"/v1.0/users?$filter=manager/id eq '{manager.pk}'").json()

    assert [u["displayName"] for u in names["value"]] == ["Rita Requester"]
    assert [u["id"] for u in by_mail["value"]] == [str(manager.pk)]
    assert [u["id"] for u in reports["value"]] == [str(requester.pk)]


def test_count_and_search_need_consistency_level_eventual(admin_client, requester, manager):
    refused = admin_client.get("/v1.0/users?$count=true")
    assert refused.status_code == 400
    assert "ConsistencyLevel" in refused.json()["error"]["message"]
    assert admin_client.get('/v1.0/users?$search="displayName:rita"').status_code == 400

    counted = admin_client.get("/v1.0/users?$count=true&$top=1", **EVENTUAL).json()
    found = admin_client.get('/v1.0/users?$search="displayName:rita"', **EVENTUAL).json()
    either = admin_client.get(
        '/v1.0/users?$search="displayName:rita" OR "mail:manager@"', **EVENTUAL
    ).json()
    bad = admin_client.get("/v1.0/users?$search=rita", **EVENTUAL)

    assert counted["@odata.count"] == User.objects.count() and len(counted["value"]) == 1
    assert [u["id"] for u in found["value"]] == [str(requester.pk)]
    assert {u["id"] for u in either["value"]} == {str(requester.pk), str(manager.pk)}
    assert bad.status_code == 400


def test_groups_and_their_members(admin_client, requester, manager):
    group = GroupFactory(display_name="Finance", description="Money", mail="fin@example.com")
    add_member(group, requester)
    add_member(group, manager, role=GroupMembership.Role.OWNER)

    listed = admin_client.get("/v1.0/groups?$filter=startswith(displayName,'Fin')").json()
    members = admin_client.get(f"/v1.0/groups/{group.pk}/members").json()

    [shown] = listed["value"]
    assert (shown["id"], shown["displayName"], shown["mail"], shown["mailEnabled"]) == (
        str(group.pk),
        "Finance",
        "fin@example.com",
        True,
    )
    assert members["@odata.context"].endswith("$metadata#directoryObjects")
    assert [(m["@odata.type"], m["id"]) for m in members["value"]] == [
        ("#microsoft.graph.user", str(requester.pk))
    ]


def test_a_user_without_an_admin_role_reads_only_themselves(client, requester, manager, outsider):
    group = GroupFactory()
    add_member(group, requester)
    add_member(group, outsider)
    hidden = GroupFactory()
    client.force_login(requester)

    assert [u["id"] for u in client.get("/v1.0/users").json()["value"]] == [str(requester.pk)]
    assert client.get(f"/v1.0/users/{outsider.pk}").status_code == 404
    assert client.get(f"/v1.0/users/{outsider.pk}/manager").status_code == 404
    assert client.get(f"/v1.0/users/{requester.pk}/manager").json()["id"] == str(manager.pk)
    assert [g["id"] for g in client.get("/v1.0/groups").json()["value"]] == [str(group.pk)]
    assert client.get(f"/v1.0/groups/{hidden.pk}").status_code == 404
    assert client.get(f"/v1.0/groups/{hidden.pk}/members").status_code == 404
    members = client.get(f"/v1.0/groups/{group.pk}/members").json()["value"]
    assert [m["id"] for m in members] == [str(requester.pk)]


def test_a_catalog_role_opens_the_directory_as_the_admins_people_picker_does(client, outsider):
    RoleAssignment.objects.create(
        catalog=CatalogFactory(), principal=outsider, role=AdminRole.CATALOG_READER
    )
    others = UserFactory.create_batch(2)
    client.force_login(outsider)

    shown = {u["id"] for u in client.get("/v1.0/users").json()["value"]}

    assert shown >= {str(outsider.pk), *(str(u.pk) for u in others)}


def test_me_is_the_signed_in_person(client, requester, manager):
    client.force_login(requester)

    body = client.get("/v1.0/me?$select=displayName,mail&$expand=manager").json()

    assert body["id"] == str(requester.pk)
    assert body["displayName"] == "Rita Requester" and body["mail"] == "requester@example.com"
    assert body["manager"]["id"] == str(manager.pk)
    assert "jobTitle" not in body
    assert client.get(f"/v1.0/me/{requester.pk}").status_code == 400  # no such segment


def test_an_applications_service_principal_is_not_a_user(api, app_token, requester):
    group = GroupFactory()
    add_member(group, requester)
    api.as_token(app_token([USER_READ_ALL, GROUP_READ_ALL]))
    principal = app_token.last.service_principal
    add_member(group, principal)

    listed = {u["id"] for u in api.get("/v1.0/users?$top=999").json()["value"]}
    members = [m["id"] for m in api.get(f"/v1.0/groups/{group.pk}/members").json()["value"]]

    assert str(requester.pk) in listed and str(principal.pk) not in listed
    assert members == [str(requester.pk)]
    assert api.get(f"/v1.0/users/{principal.pk}").status_code == 404


def test_me_with_an_application_token_is_400_as_in_graph(api, app_token):
    api.as_token(app_token([USER_READ_ALL]))

    response = api.get("/v1.0/me")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "/me request is only valid with delegated authentication flow."
    )


def test_tokens_read_within_their_permissions(api, app_token, user_token, requester, outsider):
    api.as_token(app_token([USER_READ_ALL]))
    shown = {u["id"] for u in api.get("/v1.0/users").json()["value"]}
    assert {str(requester.pk), str(outsider.pk)} <= shown
    assert api.get("/v1.0/groups").status_code == 403

    api.as_token(app_token([GROUP_READ_ALL]))
    assert api.get("/v1.0/groups").status_code == 200
    assert api.get("/v1.0/users").status_code == 403

    api.as_token(user_token(requester, [USER_READ]))
    assert api.get("/v1.0/me").json()["id"] == str(requester.pk)
    assert api.get("/v1.0/users").status_code == 403
    assert api.get("/v1.0/me").status_code == 200


def test_nobody_signed_in_reads_nothing(client, requester):
    for url in ("/v1.0/users", f"/v1.0/users/{requester.pk}", "/v1.0/groups", "/v1.0/me"):
        assert client.get(url).status_code == 401


def test_writes_are_not_allowed(admin_client, requester):
    before = User.objects.values_list("display_name", flat=True).get(pk=requester.pk)
    assert admin_client.patch(
        f"/v1.0/users/{requester.pk}", {"displayName": "X"}, "application/json"
    ).status_code in (403, 405)
    assert admin_client.post(
        "/v1.0/users", {"displayName": "X"}, "application/json"
    ).status_code in (
        403,
        405,
    )
    assert User.objects.values_list("display_name", flat=True).get(pk=requester.pk) == before


@pytest.mark.parametrize("count", [3, 20])
def test_listing_users_and_members_is_a_fixed_number_of_queries(
    admin_client, django_assert_max_num_queries, manager, count
):
    group = GroupFactory()
    for person in UserFactory.create_batch(count, manager=manager):
        add_member(group, person)

    with django_assert_max_num_queries(5):
        users = admin_client.get("/v1.0/users?$expand=manager").json()
    with django_assert_max_num_queries(6):
        members = admin_client.get(f"/v1.0/groups/{group.pk}/members").json()

    assert len(users["value"]) >= count
    assert len(members["value"]) == count
