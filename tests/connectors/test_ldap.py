"""The LDAP connector against a real OpenLDAP slapd: membership, holders, discovery."""

import pytest

from entitlements.connectors import ConnectorError, ConnectorRefused, connector_for
from entitlements.models import ConnectedSystem
from tests.connectors.helpers import ldap_resource, member_role, person
from tests.ldapserver import PEOPLE, ldap_settings

pytestmark = pytest.mark.django_db


def test_grant_adds_the_member_and_granting_again_changes_nothing(ldap_server, ldap_system):
    dn = ldap_server.add_group("grant-once")
    role = member_role(ldap_resource(ldap_system, dn))
    ann = person(ldap_server, "ann")
    connector = connector_for(role.resource)

    connector.grant(role, ann)
    connector.grant(role, ann)

    assert ldap_server.members("grant-once") == {"ann"}
    assert connector.holders(role) == {"ann@example.org"}


def test_revoke_removes_the_member_and_revoking_someone_not_there_succeeds(
    ldap_server, ldap_system
):
    dn = ldap_server.add_group("revoke-once", members=["ann", "bob"])
    role = member_role(ldap_resource(ldap_system, dn))
    ann, cem = person(ldap_server, "ann"), person(ldap_server, "cem")
    connector = connector_for(role.resource)

    connector.revoke(role, ann)
    connector.revoke(role, ann)  # removed already
    connector.revoke(role, cem)  # never a member

    assert ldap_server.members("revoke-once") == {"bob"}


def test_the_last_member_removed_leaves_a_valid_group_with_no_holders(ldap_server, ldap_system):
    dn = ldap_server.add_group("last-one", members=["ann"])
    role = member_role(ldap_resource(ldap_system, dn))
    connector = connector_for(role.resource)

    connector.revoke(role, person(ldap_server, "ann"))

    assert ldap_server.members("last-one") == set()
    assert connector.holders(role) == set()
    connector.grant(role, person(ldap_server, "bob"))
    assert connector.holders(role) == {"bob@example.org"}


def test_a_batch_where_some_already_are_members_adds_the_rest(ldap_server, ldap_system):
    dn = ldap_server.add_group("batch", members=["ann", "bob"])
    role = member_role(ldap_resource(ldap_system, dn))
    users = [person(ldap_server, uid) for uid in PEOPLE]
    connector = connector_for(role.resource)

    connector.grant_many(role, users)
    assert ldap_server.members("batch") == set(PEOPLE)

    connector.revoke_many(role, users[:1])
    connector.revoke_many(role, users[:3])  # ann is gone already
    assert ldap_server.members("batch") == set(PEOPLE[3:])


def test_someone_missing_from_the_directory_is_a_refusal_naming_them(ldap_server, ldap_system):
    dn = ldap_server.add_group("refusal")
    role = member_role(ldap_resource(ldap_system, dn))
    stranger = person(ldap_server, "zed")

    with pytest.raises(ConnectorRefused, match=r"no person with mail Zed \(zed@example.org\)"):
        connector_for(role.resource).grant(role, stranger)
    assert not ConnectorRefused("").retryable


def test_a_group_deleted_in_the_directory_is_a_refusal(ldap_server, ldap_system):
    role = member_role(ldap_resource(ldap_system, ldap_server.group_dn("never-made")))

    with pytest.raises(ConnectorRefused, match="never-made"):
        connector_for(role.resource).holders(role)


def test_owner_role_is_the_owner_attribute(ldap_server, ldap_system):
    dn = ldap_server.add_group("owned", members=["ann"], owners=["bob"])
    resource = ldap_resource(ldap_system, dn)
    owner = resource.roles.get(origin_id="Owner")
    connector = connector_for(resource)

    connector.grant(owner, person(ldap_server, "cem"))

    assert connector.holders(owner) == {"bob@example.org", "cem@example.org"}
    assert ldap_server.members("owned") == {"ann"}


def test_uid_as_the_user_attribute_matches_the_local_part_of_the_email(ldap_server, db, tmp_path):
    secret = tmp_path / "ldap.secret"
    secret.write_text(ldap_server.password + "\n")
    system = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP,
        name="By uid",
        settings=ldap_settings(ldap_server, user_attribute="uid", user_match="local_part"),
        secret_reference=str(secret),
    )
    dn = ldap_server.add_group("by-uid")
    role = member_role(ldap_resource(system, dn))
    connector = connector_for(role.resource)

    connector.grant(role, person(ldap_server, "dora"))

    assert connector.holders(role) == {"dora"}
    assert connector.user_key(person(ldap_server, "eve")) == "eve"


def test_group_of_unique_names_uses_unique_member(ldap_server, db, monkeypatch):
    monkeypatch.setenv("TEST_LDAP_PASSWORD", ldap_server.password)
    system = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP,
        name="Unique",
        settings=ldap_settings(ldap_server, group_object_class="groupOfUniqueNames"),
        secret_reference="TEST_LDAP_PASSWORD",
    )
    dn = ldap_server.add_group("unique", members=["ann"], object_class="groupOfUniqueNames")
    role = member_role(ldap_resource(system, dn))
    connector = connector_for(role.resource)

    connector.grant(role, person(ldap_server, "bob"))

    assert ldap_server.members("unique", "uniqueMember") == {"ann", "bob"}
    assert connector.holders(role) == {"ann@example.org", "bob@example.org"}


def test_holders_of_a_group_with_many_members_page_through_the_people(ldap_server, ldap_system):
    uids = [f"many{i:04d}" for i in range(1200)]
    ldap_server.add_people(uids)
    dn = ldap_server.add_group("many", members=uids)
    ldap_system.settings = {**ldap_system.settings, "page_size": 100}
    ldap_system.save()
    role = member_role(ldap_resource(ldap_system, dn))

    holders = connector_for(role.resource).holders(role)

    assert holders == {ldap_server.mail(uid) for uid in uids}


def test_test_connection_says_what_it_found(ldap_server, ldap_system):
    ldap_server.add_group("counted")

    sentence = connector_for(ldap_resource(ldap_system, ldap_server.group_dn("counted"))).call(
        "test_connection"
    )

    assert sentence.startswith(f"Connected to {ldap_server.url} as cn=admin,dc=example,dc=org: ")
    assert "groups under ou=groups,dc=example,dc=org" in sentence
    assert "people under ou=people,dc=example,dc=org." in sentence


def test_a_wrong_password_is_a_refusal_and_a_stopped_server_a_retryable_error(
    ldap_server, db, monkeypatch
):
    monkeypatch.setenv("WRONG_PASSWORD", "not-it")
    system = ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.LDAP,
        name="Wrong password",
        settings=ldap_settings(ldap_server),
        secret_reference="WRONG_PASSWORD",
    )
    from entitlements.connectors import connector_for_system

    with pytest.raises(ConnectorRefused, match="Binding as cn=admin,dc=example,dc=org failed"):
        connector_for_system(system).test_connection()

    monkeypatch.setenv("WRONG_PASSWORD", ldap_server.password)
    system.name = "Stopped"
    system.save()
    ldap_server.stop_process()
    with pytest.raises(ConnectorError, match="did not answer") as raised:
        connector_for_system(system).test_connection()
    assert raised.value.retryable


def test_search_groups_pages_by_name_and_reports_owners(ldap_server, ldap_system):
    for n in range(7):
        ldap_server.add_group(f"Search team {n}", owners=["ann"] if n == 3 else ())
    from entitlements.connectors import connector_for_system

    connector = connector_for_system(ldap_system)
    first, cursor = connector.search_groups("search team", limit=5)
    second, end = connector.search_groups("search team", cursor=cursor, limit=5)

    names = [g.display_name for g in first + second]
    assert names == [f"Search team {n}" for n in range(7)]
    assert end is None
    assert first[3].owner_keys == ("ann@example.org",)
    assert first[3].origin_id == ldap_server.group_dn("Search team 3")
    assert connector.search_groups("no such group") == ([], None)
