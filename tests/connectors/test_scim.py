"""The SCIM 2.0 connector against a real SCIM server process (scim2-server, tests/scimserver.py)."""

import socket

import pytest

from entitlements.connectors import ConnectorError, ConnectorRefused, ConnectorTimeout
from entitlements.connectors import scim as scim_module
from entitlements.connectors.scim import ScimConnector
from entitlements.models import ConnectedSystem, ResourceRole
from tests.factories import UserFactory
from tests.scimserver import scim_group_resource, scim_system

pytestmark = pytest.mark.django_db


@pytest.fixture
def system(scim_server, monkeypatch):
    return scim_system(scim_server, monkeypatch)


@pytest.fixture
def group(scim_server):
    return scim_server.create_group("Engineers")


@pytest.fixture
def member(system, group):
    return scim_group_resource(system, group).roles.get(origin_id="Member")


@pytest.fixture
def connector(system):
    return ScimConnector(system)


def _patches(server):
    return server.requests("PATCH")


# --- grant ------------------------------------------------------------------------------


def test_a_grant_creates_the_missing_user_with_the_configured_attributes_and_adds_them(
    scim_server, connector, member, group
):
    rita = UserFactory(email="Rita.Requester@example.com", display_name="Rita Requester")

    connector.call("grant", member, rita)

    created = scim_server.user_named("Rita.Requester@example.com")
    assert created["displayName"] == "Rita Requester"
    assert created["emails"] == [
        {"value": "Rita.Requester@example.com", "primary": True, "type": "work"}
    ]
    assert created["name"] == {
        "formatted": "Rita Requester",
        "givenName": "Rita",
        "familyName": "Requester",
    }
    assert created["active"] is True
    assert created["externalId"] == str(rita.pk)
    assert scim_server.member_ids(group["id"]) == [created["id"]]


def test_only_the_configured_attributes_are_sent(scim_server, monkeypatch, group):
    system = scim_system(scim_server, monkeypatch, user_attributes=["userName", "emails"])
    role = scim_group_resource(system, group).roles.get()
    rita = UserFactory(email="rita@example.com", display_name="Rita Requester")

    ScimConnector(system).grant(role, rita)

    created = scim_server.user_named("rita@example.com")
    assert set(created) - {"schemas", "id", "meta"} == {"userName", "emails"}


def test_granting_twice_leaves_one_membership_and_one_user(scim_server, connector, member, group):
    rita = UserFactory(email="rita@example.com")

    connector.grant(member, rita)
    connector.grant(member, rita)

    assert len(scim_server.users()) == 1
    assert scim_server.member_names(group["id"]) == ["rita@example.com"]


def test_a_user_the_application_has_already_is_not_created_again(
    scim_server, connector, member, group
):
    existing = scim_server.create_user("RITA@example.com", "rita@example.com")
    rita = UserFactory(email="rita@example.com")

    connector.grant(member, rita)

    assert [u["id"] for u in scim_server.users()] == [existing["id"]]
    assert scim_server.member_ids(group["id"]) == [existing["id"]]


def test_users_can_be_matched_by_email_instead_of_user_name(scim_server, monkeypatch, group):
    system = scim_system(scim_server, monkeypatch, user_match="emails")
    role = scim_group_resource(system, group).roles.get()
    existing = scim_server.create_user("rrequester", "rita@example.com")
    rita = UserFactory(email="Rita@Example.com")
    connector = ScimConnector(system)

    connector.grant(role, rita)

    assert [u["id"] for u in scim_server.users()] == [existing["id"]]
    assert scim_server.member_ids(group["id"]) == [existing["id"]]
    assert connector.holders(role) == {connector.user_key(rita)} == {"rita@example.com"}


def test_a_user_name_taken_by_someone_else_is_refused_with_the_applications_message(
    scim_server, monkeypatch, group
):
    system = scim_system(scim_server, monkeypatch, user_match="emails")
    role = scim_group_resource(system, group).roles.get()
    scim_server.create_user("rita@example.com", "rita.old@example.com")  # another email

    with pytest.raises(ConnectorRefused) as refused:
        ScimConnector(system).grant(role, UserFactory(email="rita@example.com"))

    assert str(refused.value).startswith("Wiki refused creating the user rita@example.com (409): ")
    assert scim_server.member_ids(group["id"]) == []


def test_a_batch_of_fifty_is_added_and_removed_in_one_patch_each(
    scim_server, connector, member, group
):
    users = [UserFactory() for _ in range(50)]
    scim_server.create_user(users[0].email)  # one of them exists already
    scim_server.forget_requests()

    connector.call("grant_many", member, users)

    assert len(_patches(scim_server)) == 1
    assert len(scim_server.member_ids(group["id"])) == 50
    assert len(scim_server.users()) == 50

    scim_server.forget_requests()
    connector.call("revoke_many", member, users)

    assert len(_patches(scim_server)) == 1
    assert scim_server.member_ids(group["id"]) == []


def test_a_grant_to_an_app_role_that_stands_for_a_group_adds_the_member_to_that_group(
    scim_server, connector, member, group
):
    admins = scim_server.create_group("Wiki admins")
    admin_role = ResourceRole.objects.create(
        resource=member.resource, display_name="Administrator", origin_id=admins["id"]
    )
    rita = UserFactory(email="rita@example.com")

    connector.grant(admin_role, rita)

    assert scim_server.member_names(admins["id"]) == ["rita@example.com"]
    assert scim_server.member_ids(group["id"]) == []


# --- revoke -----------------------------------------------------------------------------


def test_revoke_removes_the_member_and_keeps_the_user(scim_server, connector, member, group):
    rita, otto = UserFactory(email="rita@example.com"), UserFactory(email="otto@example.com")
    connector.grant_many(member, [rita, otto])

    connector.call("revoke", member, rita)

    assert scim_server.member_names(group["id"]) == ["otto@example.com"]
    assert scim_server.user_named("rita@example.com") is not None


def test_revoking_an_absent_member_succeeds(scim_server, connector, member, group):
    rita = UserFactory(email="rita@example.com")
    connector.grant(member, rita)
    connector.revoke(member, rita)

    connector.revoke(member, rita)  # removed already (by us, or by hand in the application)

    assert scim_server.member_ids(group["id"]) == []


def test_revoking_a_user_the_application_never_had_succeeds_without_a_change(
    scim_server, connector, member
):
    scim_server.forget_requests()

    connector.revoke(member, UserFactory(email="nobody@example.com"))

    assert _patches(scim_server) == []
    assert scim_server.users() == []


# --- holders ----------------------------------------------------------------------------


def test_holders_are_the_external_keys_of_the_members_whoever_added_them(
    scim_server, connector, member, group
):
    rita = UserFactory(email="Rita@Example.com")
    connector.grant(member, rita)
    by_hand = scim_server.create_user("Henry.Hand@example.com")
    scim_server.add_member(group["id"], by_hand["id"])

    holders = connector.call("holders", member)

    assert holders == {"rita@example.com", "henry.hand@example.com"}
    assert connector.user_key(rita) in holders


def test_holders_of_a_large_group_read_the_users_page_by_page(
    scim_server, monkeypatch, group, member
):
    monkeypatch.setattr(scim_module, "LOOKUP_LIMIT", 3)
    member.resource.connected_system.settings["page_size"] = 2
    connector = ScimConnector(member.resource.connected_system)
    users = [UserFactory() for _ in range(7)]
    connector.grant_many(member, users)
    scim_server.create_user("not-a-member@example.com")
    scim_server.forget_requests()

    holders = connector.holders(member)

    assert holders == {u.email.lower() for u in users}
    pages = [r for r in scim_server.requests("GET") if r["path"].endswith("/Users")]
    assert len(pages) == 4  # 8 users, 2 a page


def test_revoke_keys_removes_members_known_only_by_their_key(scim_server, connector, member, group):
    rita, otto = UserFactory(email="rita@example.com"), UserFactory(email="otto@example.com")
    connector.grant_many(member, [rita, otto])

    connector.call("revoke_keys", member, {"OTTO@example.com", "unknown@example.com"})

    assert scim_server.member_names(group["id"]) == ["rita@example.com"]


# --- roles as a user attribute ----------------------------------------------------------


def test_app_roles_mapped_to_a_multi_valued_attribute(scim_server, monkeypatch, group):
    system = scim_system(scim_server, monkeypatch, role_mapping={"attribute": "roles"})
    resource = scim_group_resource(system, group)
    editor = ResourceRole.objects.create(resource=resource, display_name="Editor", origin_id="ed")
    rita, otto = UserFactory(email="rita@example.com"), UserFactory(email="otto@example.com")
    connector = ScimConnector(system)

    connector.grant_many(editor, [rita, otto])
    connector.grant(editor, rita)

    assert connector.holders(editor) == {"rita@example.com", "otto@example.com"}
    assert scim_server.user_named("rita@example.com")["roles"] == [{"value": "ed"}]
    assert scim_server.member_ids(group["id"]) == []

    connector.revoke(editor, rita)
    connector.revoke(editor, rita)

    assert connector.holders(editor) == {"otto@example.com"}
    assert "roles" not in scim_server.user_named("rita@example.com")


def test_app_roles_mapped_to_a_single_valued_enterprise_attribute(scim_server, monkeypatch, group):
    path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
    system = scim_system(
        scim_server, monkeypatch, role_mapping={"attribute": path, "multi_valued": False}
    )
    resource = scim_group_resource(system, group)
    finance = ResourceRole.objects.create(resource=resource, display_name="Finance", origin_id="F1")
    sales = ResourceRole.objects.create(resource=resource, display_name="Sales", origin_id="S1")
    rita = UserFactory(email="rita@example.com")
    connector = ScimConnector(system)

    connector.grant(finance, rita)
    assert connector.holders(finance) == {"rita@example.com"}

    connector.revoke(sales, rita)  # she does not hold Sales: her cost center stays
    assert connector.holders(finance) == {"rita@example.com"}

    connector.revoke(finance, rita)
    assert connector.holders(finance) == set()


# --- test connection and discovery -------------------------------------------------------


def test_test_connection_says_what_it_found(scim_server, connector, group):
    scim_server.create_user("rita@example.com")

    sentence = connector.call("test_connection")

    assert sentence == (
        f"Connected to {scim_server.url}: 1 users and 1 groups; PATCH is supported."
    )


def test_search_groups_pages_through_the_groups_whose_name_contains_the_query(
    scim_server, connector
):
    for name in ["Team Alpha", "Team Beta", "Gamma team", "Team Delta", "Team Epsilon", "Other"]:
        scim_server.create_group(name)

    seen, cursor, pages = [], None, 0
    while True:
        found, cursor = connector.call("search_groups", "team", cursor=cursor, limit=2)
        pages += 1
        seen += found
        if cursor is None:
            break

    assert pages == 3
    assert [g.display_name for g in seen] == [  # in name order, the application sorts
        "Gamma team",
        "Team Alpha",
        "Team Beta",
        "Team Delta",
        "Team Epsilon",
    ]
    assert len({g.origin_id for g in seen}) == 5
    assert not any(g.has_owners for g in seen)


def test_search_groups_with_no_query_lists_every_group(scim_server, connector):
    scim_server.create_group("A")
    scim_server.create_group("B")

    found, cursor = connector.search_groups("")

    assert sorted(g.display_name for g in found) == ["A", "B"]
    assert cursor is None


def test_search_groups_finds_a_group_by_its_id_and_refuses_a_cursor_it_did_not_give(
    scim_server, connector
):
    group = scim_server.create_group("Engineers")
    scim_server.create_group("Sales")

    found, _cursor = connector.search_groups(group["id"])

    assert [(g.origin_id, g.display_name) for g in found] == [(group["id"], "Engineers")]
    for cursor in ("abc", "0"):
        with pytest.raises(ValueError):
            connector.search_groups("", cursor=cursor)


def test_a_query_with_quotes_is_searched_for_as_text(scim_server, connector):
    scim_server.create_group('The "quoted" group')

    found, _cursor = connector.search_groups('"quoted"')

    assert [g.display_name for g in found] == ['The "quoted" group']


# --- authentication ---------------------------------------------------------------------


def test_basic_authentication_reads_the_password_from_a_file(
    scim_server, scim_server_process, tmp_path, group
):
    secret = tmp_path / "scim-password"
    secret.write_text(scim_server_process.basic_password + "\n")
    system = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.SCIM,
        name="Basic",
        settings={"url": scim_server.url, "auth": "basic", "username": "provisioning"},
        secret_reference=str(secret),
    )
    role = scim_group_resource(system, group).roles.get()

    ScimConnector(system).grant(role, UserFactory(email="rita@example.com"))

    assert scim_server.member_names(group["id"]) == ["rita@example.com"]
    assert scim_server_process.basic_password not in str(system.settings)


def test_a_wrong_token_is_a_refusal_with_the_applications_message(
    scim_server, monkeypatch, system, member
):
    monkeypatch.setenv(system.secret_reference, "wrong")

    with pytest.raises(ConnectorRefused) as refused:
        ScimConnector(system).grant(member, UserFactory(email="rita@example.com"))

    assert "Wiki refused looking up 1 user(s) (401)" in str(refused.value)
    assert "Authorization failure" in str(refused.value)


# --- errors -----------------------------------------------------------------------------


def test_a_server_error_is_retryable_and_says_what_the_application_said(
    scim_server, connector, member
):
    scim_server.fail_next(1, status=500, detail="Database is down")

    with pytest.raises(ConnectorError) as failed:
        connector.grant(member, UserFactory(email="rita@example.com"))

    assert failed.value.retryable
    assert not isinstance(failed.value, ConnectorRefused)
    assert str(failed.value) == "Wiki answered 500 while looking up 1 user(s): Database is down"
    assert failed.value.retry_after is None


def test_too_many_requests_is_retryable_after_the_retry_after_seconds(
    scim_server, connector, member
):
    scim_server.fail_next(1, status=429, retry_after=7, detail="Slow down")

    with pytest.raises(ConnectorError) as failed:
        connector.grant(member, UserFactory(email="rita@example.com"))

    assert failed.value.retryable
    assert failed.value.retry_after == 7
    assert "Slow down" in str(failed.value)


def test_retry_after_as_an_http_date_is_read_as_seconds_from_now():
    from email.utils import format_datetime

    import httpx
    from django.utils import timezone

    later = format_datetime(timezone.now() + timezone.timedelta(seconds=120), usegmt=True)
    response = httpx.Response(429, headers={"Retry-After": later})

    assert 115 <= scim_module._retry_after(response) <= 120
    assert scim_module._retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None


def test_a_group_that_no_longer_exists_is_a_definite_refusal(scim_server, connector, member):
    scim_server.http.delete(f"/Groups/{member.resource.origin_id}")

    with pytest.raises(ConnectorRefused) as refused:
        connector.grant(member, UserFactory(email="rita@example.com"))

    assert not refused.value.retryable
    assert f"Group '{member.resource.origin_id}' not found" in str(refused.value)
    assert "(404)" in str(refused.value)


def test_an_application_that_cannot_be_reached_is_a_retryable_error(monkeypatch, db, member):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    system = member.resource.connected_system
    system.settings["url"] = f"http://127.0.0.1:{port}/v2"

    with pytest.raises(ConnectorError) as failed:
        ScimConnector(system).grant(member, UserFactory(email="rita@example.com"))

    assert failed.value.retryable
    assert str(failed.value).startswith("Wiki could not be reached while looking up 1 user(s):")


def test_an_application_that_does_not_answer_in_time_is_a_timeout(monkeypatch, db, member):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        system = member.resource.connected_system
        system.settings.update(url=f"http://127.0.0.1:{silent.getsockname()[1]}/v2", timeout=0.5)

        with pytest.raises(ConnectorTimeout):
            ScimConnector(system).call("grant", member, UserFactory(email="rita@example.com"))


@pytest.mark.parametrize(
    ("system_settings", "problem"),
    [
        ({}, "“url” must be the http(s) address of the SCIM endpoints."),
        ({"url": "https://x", "auth": "oauth"}, "“auth” must be “bearer” or “basic”."),
        ({"url": "https://x", "auth": "basic"}, "basic authentication needs a “username”."),
        ({"url": "https://x", "user_match": "id"}, "“user_match” must be “userName” or “emails”."),
        ({"url": "https://x", "user_attributes": ["password"]}, "“user_attributes” may list"),
        ({"url": "https://x", "role_mapping": "roles"}, "“role_mapping” must be “groups” or"),
        ({"url": "https://x", "page_size": 0}, "“page_size” must be a positive whole number."),
    ],
)
def test_unusable_settings_are_refused_with_what_to_fix(db, member, system_settings, problem):
    system = ConnectedSystem(
        kind=ConnectedSystem.Kind.SCIM, name="Broken", settings=system_settings
    )
    connector = ScimConnector(system)

    with pytest.raises(ConnectorRefused) as refused:
        connector.grant(member, UserFactory())

    assert str(refused.value).startswith("The settings of Broken are not usable: ")
    assert problem in str(refused.value)
