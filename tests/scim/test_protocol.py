"""The SCIM protocol as a provisioning client sees it: tokens, discovery, filters, paging,
ETags and error bodies."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.permissions import EM_READ
from api.tokens import personal_token_create
from directory.models import Group, GroupMembership, User
from entitlements.models import AuditEvent
from scim.models import ProvisioningClient, ScimUser
from scim.tokens import client_create, client_revoke, digest
from tests.scim.conftest import ENTERPRISE, GROUP, USER, Scim

pytestmark = pytest.mark.django_db


def _error(body, status, scim_type=None):
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]


# --- tokens -------------------------------------------------------------------------------


def test_the_token_is_kept_only_as_its_sha256(provisioning):
    client, token = provisioning
    stored = ProvisioningClient.objects.get(pk=client.pk)
    assert stored.token_hash == digest(token)
    assert token not in {str(v) for v in ProvisioningClient.objects.values_list().get()}


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ems_unknown", "Basic dXNlcjpwYXNz"])
def test_a_request_without_a_valid_token_is_refused_with_a_scim_401(scim, header):
    status, body, response = scim.get("Users", token="", HTTP_AUTHORIZATION=header)
    assert status == 401
    _error(body, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="SCIM"'


def test_a_revoked_clients_token_is_refused(scim, provisioning, admin_user):
    client_revoke(client=provisioning[0], actor=admin_user)
    status, body, _ = scim.get("Users")
    assert status == 401


def test_an_api_bearer_token_is_not_a_scim_token(scim, admin_user):
    _token, value = personal_token_create(
        actor=admin_user,
        name="mine",
        permissions=[EM_READ],
        expires=timezone.now() + timedelta(days=1),
    )
    status, body, _ = scim.get("Users", token=value)
    assert status == 401


def test_the_service_provider_config_needs_no_token_but_the_schemas_do(scim):
    status, body, _ = scim.get("ServiceProviderConfig", token="")
    assert status == 200
    assert body["patch"]["supported"] and body["etag"]["supported"] and body["filter"]["supported"]
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert scim.get("Schemas", token="")[0] == 401
    status, body, _ = scim.get("ResourceTypes")
    assert {rt["name"] for rt in body["Resources"]} == {"User", "Group"}


# --- one client's view -------------------------------------------------------------------


def test_a_client_sees_only_the_people_it_provisioned(scim, client, admin_user):
    mine = scim.create_user("ann@example.com")
    _other, token = client_create(name="Okta", actor=admin_user)
    okta = Scim(client, token)
    assert okta.get(f"Users/{mine['id']}")[0] == 404
    assert okta.get("Users")[1]["totalResults"] == 0
    assert okta.delete(f"Users/{mine['id']}")[0] == 404
    assert User.objects.get(email="ann@example.com").is_active


def test_a_userName_taken_by_another_client_is_a_409(scim, client, admin_user):
    scim.create_user("ann@example.com")
    _other, token = client_create(name="Okta", actor=admin_user)
    status, body, _ = Scim(client, token).post(
        "Users", {"schemas": [USER], "userName": "ANN@example.com"}
    )
    assert status == 409
    _error(body, 409, "uniqueness")


# --- filters -------------------------------------------------------------------------------


@pytest.fixture
def people(scim):
    boss = scim.create_user("bob.boss@example.com", displayName="Bob Boss", title="CEO")
    ann = scim.create_user(
        "ann.lee@example.com",
        schemas=[USER, ENTERPRISE],
        displayName="Ann Lee",
        name={"givenName": "Ann", "familyName": "Lee"},
        active=True,
        **{ENTERPRISE: {"department": "Sales", "manager": {"value": boss["id"]}}},
    )
    cid = scim.create_user("cid@example.org", displayName="Cid", active=False, externalId="e-3")
    return {"boss": boss, "ann": ann, "cid": cid}


def _names(scim, expression):
    status, body, _ = scim.get("Users", QUERY_STRING=f"filter={expression}")
    assert status == 200, body
    return sorted(r["userName"] for r in body["Resources"])


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('userName eq "ANN.LEE@example.com"', ["ann.lee@example.com"]),
        ('userName co "boss"', ["bob.boss@example.com"]),
        ('userName sw "c"', ["cid@example.org"]),
        ("title pr", ["bob.boss@example.com"]),
        ("active eq false", ["cid@example.org"]),
        ('externalId eq "e-3"', ["cid@example.org"]),
        ('name.givenName eq "ann"', ["ann.lee@example.com"]),
        (f'{ENTERPRISE}:department eq "sales"', ["ann.lee@example.com"]),
        ('userName ew ".org" or displayName sw "Bob"', ["bob.boss@example.com", "cid@example.org"]),
        (
            'userName co "example" and not (active eq false)',
            ["ann.lee@example.com", "bob.boss@example.com"],
        ),
        ('emails[value eq "cid@example.org"]', ["cid@example.org"]),
        ("nickName pr", []),
        ('userName ne "cid@example.org" and displayName co "e"', ["ann.lee@example.com"]),
    ],
)
def test_filters_select_the_people_they_describe(scim, people, expression, expected):
    assert _names(scim, expression) == expected


def test_a_filter_on_the_manager_finds_the_direct_reports(scim, people):
    boss = people["boss"]["id"]
    assert _names(scim, f'{ENTERPRISE}:manager.value eq "{boss}"') == ["ann.lee@example.com"]


@pytest.mark.parametrize(
    "expression",
    [
        "userName eq",
        'userName zz "x"',
        '((userName eq "x"',
        "active gt true",
        'phoneNumbers.value eq "1"',
    ],
)
def test_a_filter_that_cannot_be_read_is_a_400_invalidFilter(scim, people, expression):
    status, body, _ = scim.get("Users", QUERY_STRING=f"filter={expression}")
    assert status == 400
    _error(body, 400, "invalidFilter")


def test_groups_are_filtered_by_name_and_by_member(scim, people):
    ann = people["ann"]["id"]
    scim.post("Groups", {"schemas": [GROUP], "displayName": "Sales", "members": [{"value": ann}]})
    scim.post("Groups", {"schemas": [GROUP], "displayName": "Staff"})
    status, body, _ = scim.get("Groups", QUERY_STRING=f'filter=members[value eq "{ann}"]')
    assert [g["displayName"] for g in body["Resources"]] == ["Sales"]
    status, body, _ = scim.get("Groups", QUERY_STRING='filter=displayName sw "st"')
    assert [g["displayName"] for g in body["Resources"]] == ["Staff"]


# --- paging ------------------------------------------------------------------------------------


def test_pages_follow_startIndex_and_count_in_creation_order(scim):
    for n in range(5):
        scim.create_user(f"p{n}@example.com")
    status, body, _ = scim.get("Users", QUERY_STRING="startIndex=2&count=2")
    assert body["totalResults"] == 5
    assert body["startIndex"] == 2 and body["itemsPerPage"] == 2
    assert [r["userName"] for r in body["Resources"]] == ["p1@example.com", "p2@example.com"]
    status, body, _ = scim.get("Users", QUERY_STRING="startIndex=5&count=10")
    assert [r["userName"] for r in body["Resources"]] == ["p4@example.com"]
    status, body, _ = scim.get("Users", QUERY_STRING="count=0")
    assert body["totalResults"] == 5 and body.get("Resources", []) == []


def test_a_page_of_users_costs_the_same_queries_whatever_its_size(
    scim, people, django_assert_max_num_queries
):
    for n in range(10):
        scim.create_user(
            f"more{n}@example.com",
            **{
                "schemas": [USER, ENTERPRISE],
                ENTERPRISE: {"manager": {"value": people["boss"]["id"]}},
            },
        )
    with django_assert_max_num_queries(8):
        status, body, _ = scim.get("Users", QUERY_STRING="count=50")
    assert len(body["Resources"]) == 13


def test_a_page_of_groups_costs_the_same_queries_whatever_its_size(
    scim, people, django_assert_max_num_queries
):
    members = [{"value": p["id"]} for p in people.values()]
    for n in range(8):
        scim.post("Groups", {"schemas": [GROUP], "displayName": f"G{n}", "members": members})
    with django_assert_max_num_queries(8):
        status, body, _ = scim.get("Groups")
    assert len(body["Resources"]) == 8
    assert all(len(g["members"]) == 3 for g in body["Resources"])


# --- ETags ---------------------------------------------------------------------------------


def test_a_get_with_the_current_etag_is_a_304_and_a_write_with_an_old_one_a_412(scim):
    ann = scim.create_user("ann@example.com", title="Clerk")
    status, body, response = scim.get(f"Users/{ann['id']}")
    etag = response["ETag"]
    assert etag.startswith('W/"') and body["meta"]["version"] == etag
    assert scim.get(f"Users/{ann['id']}", HTTP_IF_NONE_MATCH=etag)[0] == 304

    ops = [{"op": "replace", "path": "title", "value": "Manager"}]
    assert scim.patch(f"Users/{ann['id']}", ops, HTTP_IF_MATCH=etag)[0] in (200, 204)
    status, body, _ = scim.patch(f"Users/{ann['id']}", ops, HTTP_IF_MATCH=etag)
    assert status == 412
    _error(body, 412)
    status, body, response = scim.get(f"Users/{ann['id']}", HTTP_IF_NONE_MATCH=etag)
    assert status == 200 and body["title"] == "Manager" and response["ETag"] != etag


def test_an_admins_change_in_the_directory_changes_the_etag(scim):
    ann = scim.create_user("ann@example.com", title="Clerk")
    etag = scim.get(f"Users/{ann['id']}")[2]["ETag"]
    User.objects.filter(email="ann@example.com").update(job_title="Chief clerk")
    status, body, response = scim.get(f"Users/{ann['id']}", HTTP_IF_NONE_MATCH=etag)
    assert status == 200 and body["title"] == "Chief clerk" and response["ETag"] != etag


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type"),
    [
        ("GET", "Users/not-a-uuid", None, 404, None),
        ("GET", "Nope", None, 404, None),
        ("POST", "Users", "{not json", 400, "invalidSyntax"),
        ("POST", "Users", {"schemas": [USER]}, 400, "invalidValue"),
        ("POST", "Users", {"schemas": [USER], "userName": "a\u0000b"}, 400, "invalidValue"),
        (
            "POST",
            "Users",
            {"schemas": [USER], "userName": "x", "emails": [{"value": "nope"}]},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Users",
            {"schemas": [USER], "userName": "x", "title": "t" * 200},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Users",
            {"schemas": [USER], "userName": "x", ENTERPRISE: {"manager": {"value": "nobody"}}},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Groups",
            {"schemas": [GROUP], "displayName": "G", "members": [{"value": "nobody"}]},
            400,
            "invalidValue",
        ),
        (
            "POST",
            "Bulk",
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []},
            501,
            None,
        ),
        ("DELETE", "Users", None, 405, None),
    ],
)
def test_a_bad_request_gets_a_scim_error_body(scim, method, path, body, status, scim_type):
    got, answer, response = scim.call(method, path, body)
    assert got == status, answer
    _error(answer, status, scim_type)
    assert response["Content-Type"].startswith("application/scim+json")


def test_a_body_over_a_megabyte_is_a_413(scim):
    status, body, _ = scim.post("Users", {"schemas": [USER], "userName": "x" * (1024 * 1024 + 1)})
    assert status == 413
    _error(body, 413)


def test_a_second_user_with_the_same_userName_is_a_409(scim):
    scim.create_user("ann@example.com")
    status, body, _ = scim.post("Users", {"schemas": [USER], "userName": "Ann@Example.com"})
    assert status == 409
    _error(body, 409, "uniqueness")
    assert ScimUser.objects.count() == 1


def test_every_write_is_audited_with_the_client_that_made_it(scim, provisioning):
    ann = scim.create_user("ann@example.com", title="Clerk")
    scim.patch(f"Users/{ann['id']}", [{"op": "replace", "path": "title", "value": "Boss"}])
    events = AuditEvent.objects.filter(target__email="ann@example.com").order_by("created")
    assert {"user.provisioned", "user.updated", "scimUser.created"} <= {e.action for e in events}
    for event in events:
        assert event.data["source"] == "scim"
        assert event.data["source_name"] == provisioning[0].name


# --- what identity providers send --------------------------------------------------------------


def test_entra_ids_manager_as_a_bare_id_sets_and_clears_the_manager(scim):
    boss = scim.create_user("boss@example.com")
    ann = scim.create_user("ann@example.com")
    path = f"{ENTERPRISE}:manager"
    status, body, _ = scim.patch(
        f"Users/{ann['id']}", [{"op": "Add", "path": path, "value": boss["id"]}]
    )
    assert status in (200, 204), body
    assert User.objects.get(email="ann@example.com").manager.email == "boss@example.com"
    status, body, _ = scim.patch(
        f"Users/{ann['id']}", [{"op": "Replace", "path": path, "value": ""}]
    )
    assert status in (200, 204), body
    assert User.objects.get(email="ann@example.com").manager is None


def test_replacing_the_work_email_of_someone_without_one_adds_it(scim):
    ann = scim.create_user("ann", displayName="Ann")
    operation = {
        "op": "replace",
        "path": 'emails[type eq "work"].value',
        "value": "ann@example.com",
    }
    status, body, _ = scim.patch(f"Users/{ann['id']}", [operation])
    assert status in (200, 204), body
    assert scim.get(f"Users/{ann['id']}")[1]["emails"] == [
        {"type": "work", "value": "ann@example.com"}
    ]
    assert User.objects.filter(email="ann@example.com").exists()
    operation["value"] = "ann.lee@example.com"
    assert scim.patch(f"Users/{ann['id']}", [operation])[0] in (200, 204)
    assert User.objects.filter(email="ann.lee@example.com").exists()


def test_a_person_without_any_email_gets_a_placeholder_address_never_shown(scim):
    ann = scim.create_user("ann", displayName="Ann")
    person = ScimUser.objects.get(scim_id=ann["id"]).user
    assert person.email == f"{ann['id']}@scim.invalid"
    assert "emails" not in scim.get(f"Users/{ann['id']}")[1]


def test_a_person_the_directory_knows_is_taken_over_by_email_by_a_matching_client(
    matching_scim, requester
):
    scim = matching_scim
    created = scim.create_user("requester@example.com", title="Analyst")
    requester.refresh_from_db()
    assert ScimUser.objects.get(scim_id=created["id"]).user == requester
    assert requester.job_title == "Analyst"


# --- replacing and deleting ---------------------------------------------------------------------


def test_a_put_replaces_the_resource_and_clears_what_it_leaves_out(scim):
    ann = scim.create_user(
        "ann@example.com",
        schemas=[USER, ENTERPRISE],
        title="Clerk",
        nickName="Annie",
        **{ENTERPRISE: {"department": "Sales", "employeeNumber": "E1"}},
    )
    status, body, _ = scim.put(
        f"Users/{ann['id']}",
        {
            "schemas": [USER, ENTERPRISE],
            "userName": "ann@example.com",
            ENTERPRISE: {"employeeNumber": "E2"},
        },
    )
    assert status == 200, body
    assert "title" not in body and "nickName" not in body
    assert body[ENTERPRISE] == {"employeeNumber": "E2"}
    person = User.objects.get(email="ann@example.com")
    assert (person.job_title, person.department, person.employee_id) == ("", "", "E2")


def test_fields_a_client_never_sent_stay_as_other_doors_set_them(matching_scim, requester):
    scim = matching_scim
    requester.department = "Finance"
    requester.save(update_fields=["department"])
    created = scim.create_user("requester@example.com")
    scim.patch(f"Users/{created['id']}", [{"op": "add", "path": "title", "value": "Analyst"}])
    requester.refresh_from_db()
    assert (requester.department, requester.job_title) == ("Finance", "Analyst")


def test_deleting_a_group_removes_its_members_and_keeps_the_group(scim):
    ann = scim.create_user("ann@example.com")
    status, group, _ = scim.post(
        "Groups", {"schemas": [GROUP], "displayName": "Sales", "members": [{"value": ann["id"]}]}
    )
    assert GroupMembership.objects.filter(group__display_name="Sales").count() == 1
    assert scim.delete(f"Groups/{group['id']}")[0] == 204
    assert scim.get(f"Groups/{group['id']}")[0] == 404
    assert Group.objects.filter(display_name="Sales").exists()
    assert not GroupMembership.objects.filter(group__display_name="Sales").exists()


def test_a_client_cannot_see_or_change_another_clients_groups(scim, client, admin_user):
    status, group, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": "Sales"})
    _other, token = client_create(name="Okta", actor=admin_user)
    okta = Scim(client, token)
    assert okta.get(f"Groups/{group['id']}")[0] == 404
    assert (
        okta.patch(
            f"Groups/{group['id']}", [{"op": "replace", "path": "displayName", "value": "X"}]
        )[0]
        == 404
    )
    assert okta.get("Groups")[1]["totalResults"] == 0


def test_sorting_is_not_offered_and_asking_for_it_is_a_scim_error(scim):
    status, body, _ = scim.get("Users", QUERY_STRING="sortBy=userName")
    assert status == 501
    _error(body, 501)


def test_a_search_by_post_filters_like_a_get(scim, people):
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "ann"',
        "attributes": ["userName"],
    }
    status, answer, _ = scim.post("Users/.search", body)
    assert status == 200, answer
    assert [r["userName"] for r in answer["Resources"]] == ["ann.lee@example.com"]
    assert "displayName" not in answer["Resources"][0]


def test_entra_ids_removal_of_members_by_value_removes_only_them(scim):
    a, b, c = (scim.create_user(f"{n}@example.com") for n in "abc")
    members = [{"value": p["id"]} for p in (a, b, c)]
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "G", "members": members})[1]
    remove = {"op": "Remove", "path": "members", "value": [{"value": a["id"]}, {"value": c["id"]}]}
    status, body, _ = scim.patch(f"Groups/{group['id']}", [remove])
    assert status in (200, 204), body
    assert [m["value"] for m in scim.get(f"Groups/{group['id']}")[1]["members"]] == [b["id"]]
    assert list(
        GroupMembership.objects.filter(group__display_name="G").values_list(
            "user__email", flat=True
        )
    ) == ["b@example.com"]


def test_a_nul_byte_in_the_query_is_a_scim_400_not_a_page(scim):
    status, body, response = scim.get("Users", QUERY_STRING="filter=userName%20eq%20%22a%00%22")
    assert status == 400
    _error(body, 400)
    assert response["Content-Type"].startswith("application/scim+json")


def test_someone_deleted_and_provisioned_again_comes_back_enabled_under_a_new_id(scim):
    first = scim.create_user("ann@example.com")
    assert scim.delete(f"Users/{first['id']}")[0] == 204
    assert not User.objects.get(email="ann@example.com").is_active
    again = scim.create_user("ann@example.com")
    assert again["id"] != first["id"]
    assert scim.get(f"Users/{first['id']}")[0] == 404
    person = User.objects.get(email="ann@example.com")
    assert person.is_active
    assert ScimUser.objects.filter(user=person).count() == 2
