"""The identity services every door calls: joiners, movers, leavers, groups and their members."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.errors import InvalidRequest
from entitlements.models import AuditEvent, Channel
from identity.services import (
    Source,
    group_members_change,
    group_provision,
    group_update,
    user_disable,
    user_enable,
    user_provision,
    user_update,
    users_provision_many,
)
from tests.factories import ConnectedOrganizationFactory, GroupFactory, UserFactory, add_member

pytestmark = pytest.mark.django_db

SCIM = Source(kind=Source.SCIM, name="Workday")
ADMIN = Source(kind=Source.ADMIN)
LDAP_IMPORT = Source(kind=Source.LDAP, name="Head office")


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("created"))


def test_a_joiner_is_created_and_the_source_is_in_the_audit_trail():
    user = user_provision(
        attributes={"email": "Jane.Doe@Example.com", "display_name": "Jane Doe"},
        source=Source(kind=Source.SCIM, name="Workday", id="ext-1"),
    )

    assert user.email == "jane.doe@example.com"
    assert user.is_active and not user.has_usable_password()
    (event,) = events("user.provisioned")
    assert event.target_id == user.pk
    assert event.channel == Channel.API
    assert event.data["source"] == "scim"
    assert event.data["source_name"] == "Workday"
    assert event.data["source_id"] == "ext-1"
    assert event.data["after"]["display_name"] == "Jane Doe"


def test_a_joiner_from_a_connected_organizations_domain_is_its_guest():
    partner = ConnectedOrganizationFactory(display_name="Fabrikam", domains=["fabrikam.com"])

    user = user_provision(attributes={"email": "pat@fabrikam.com"}, source=SCIM)

    assert user.user_type == User.UserType.GUEST
    assert user.connected_organization == partner


def test_a_second_joiner_with_the_same_email_is_refused(requester):
    with pytest.raises(InvalidRequest, match="already exists"):
        user_provision(attributes={"email": "REQUESTER@example.com"}, source=SCIM)


def test_a_door_cannot_set_a_field_it_does_not_own():
    with pytest.raises(InvalidRequest, match="is_superuser cannot be set here"):
        user_provision(attributes={"email": "x@example.com", "is_superuser": True}, source=SCIM)


@pytest.mark.parametrize("manager_id", ["not-an-id", "00000000-0000-0000-0000-000000000000"])
def test_a_manager_named_by_an_id_nobody_has_is_refused(requester, manager_id):
    with pytest.raises(InvalidRequest, match="has the id"):
        user_update(user=requester, changes={"manager": manager_id}, source=SCIM)


def test_a_mover_audits_only_the_fields_that_changed(requester, manager):
    new_manager = UserFactory(display_name="Nina New")

    changed = user_update(
        user=requester,
        changes={"department": "Sales", "manager": new_manager, "display_name": "Rita Requester"},
        source=SCIM,
    )

    assert changed == {"department", "manager"}
    requester.refresh_from_db()
    assert requester.department == "Sales" and requester.manager == new_manager
    (event,) = events("user.updated")
    assert event.data["before"] == {"department": "Engineering", "manager": str(manager.pk)}
    assert event.data["after"] == {"department": "Sales", "manager": str(new_manager.pk)}
    assert event.data["source"] == "scim"


def test_a_manager_can_be_given_by_id(requester):
    new_manager = UserFactory()

    user_update(user=requester, changes={"manager_id": str(new_manager.pk)}, source=SCIM)

    requester.refresh_from_db()
    assert requester.manager == new_manager


def test_the_employee_id_is_a_field_and_not_a_foreign_key(requester):
    user = user_provision(attributes={"email": "e@example.com", "employee_id": "E-1"}, source=SCIM)

    assert user.employee_id == "E-1"
    assert user_update(user=user, changes={"employee_id": "E-2"}, source=SCIM) == {"employee_id"}


def test_updating_with_identical_values_writes_nothing(requester, manager):
    changed = user_update(
        user=requester,
        changes={"department": "Engineering", "manager": manager, "is_active": True},
        source=SCIM,
    )

    assert changed == set()
    assert not AuditEvent.objects.filter(target=requester).exists()


def test_a_leaver_is_disabled_once_and_a_second_disable_is_a_no_op(requester):
    assert user_disable(user=requester, source=ADMIN, reason="Left the company") is True
    assert user_disable(user=requester, source=ADMIN, reason="Left the company") is False

    requester.refresh_from_db()
    assert not requester.is_active
    (event,) = events("user.disabled")
    assert event.reason == "Left the company"
    assert (event.before, event.after) == ("enabled", "disabled")
    assert event.channel == Channel.ADMIN


def test_disabling_ends_the_persons_sessions_and_no_one_elses(requester, outsider):
    theirs, others = SessionStore(), SessionStore()
    theirs[SESSION_KEY] = str(requester.pk)
    others[SESSION_KEY] = str(outsider.pk)
    theirs.create()
    others.create()

    user_disable(user=requester, source=ADMIN)

    assert list(Session.objects.values_list("session_key", flat=True)) == [others.session_key]


def test_is_active_among_a_movers_changes_disables_them(requester):
    changed = user_update(user=requester, changes={"is_active": False}, source=SCIM)

    assert changed == {"is_active"}
    assert not requester.is_active
    assert len(events("user.disabled")) == 1


def test_an_enabled_user_is_enabled_once(requester):
    user_disable(user=requester, source=ADMIN)

    assert user_enable(user=requester, source=ADMIN) is True
    assert user_enable(user=requester, source=ADMIN) is False
    requester.refresh_from_db()
    assert requester.is_active
    assert len(events("user.enabled")) == 1


def test_a_group_is_provisioned_and_renamed_with_its_source():
    group = group_provision(attributes={"display_name": "Sales"}, source=SCIM)

    assert group_update(group=group, changes={"display_name": "Sales EMEA"}, source=SCIM) == {
        "display_name"
    }
    assert group_update(group=group, changes={"display_name": "Sales EMEA"}, source=SCIM) == set()
    assert Group.objects.get().display_name == "Sales EMEA"
    (event,) = events("group.updated")
    assert event.data["before"] == {"display_name": "Sales"}
    assert len(events("group.provisioned")) == 1


def test_group_members_change_adds_and_removes_direct_members_only(requester, outsider, approver):
    group = GroupFactory()
    add_member(group, outsider)
    GroupMembership.objects.create(group=group, user=approver, source=GrantSource.ENTITLEMENT)

    added, removed = group_members_change(
        group=group, add=[requester], remove=[outsider, approver], source=SCIM
    )

    assert added == [str(requester.pk)]
    assert removed == [str(outsider.pk)]
    assert set(group.memberships.values_list("user", flat=True)) == {requester.pk, approver.pk}
    (event,) = events("group.membersChanged")
    assert event.data["added"] == [str(requester.pk)]
    assert event.data["removed"] == [str(outsider.pk)]
    assert event.data["source"] == "scim"


def test_group_members_change_that_changes_nothing_writes_nothing(requester):
    group = GroupFactory()
    add_member(group, requester)

    assert group_members_change(group=group, add=[requester], source=SCIM) == ([], [])
    assert not events("group.membersChanged")


def people(count, start=0):
    return [
        {"email": f"person{n}@example.com", "display_name": f"Person {n}", "employee_id": f"E{n}"}
        for n in range(start, start + count)
    ]


def test_joiners_in_bulk_are_created_and_audited_one_event_each():
    partner = ConnectedOrganizationFactory(domains=["fabrikam.com"])

    users = users_provision_many(
        rows=[*people(3), {"email": "guest@fabrikam.com"}], source=LDAP_IMPORT
    )

    assert len(users) == 4 and User.objects.count() == 4
    assert User.objects.get(email="guest@fabrikam.com").connected_organization == partner
    assert User.objects.get(email="person2@example.com").employee_id == "E2"
    joined = AuditEvent.objects.filter(action="user.provisioned")
    assert sorted(str(e.target_id) for e in joined) == sorted(str(u.pk) for u in users)
    assert {e.data["source_name"] for e in joined} == {"Head office"}


def test_joiners_in_bulk_take_the_same_number_of_queries_for_ten_or_a_hundred(
    django_assert_max_num_queries,
):
    with django_assert_max_num_queries(12):
        users_provision_many(rows=people(10), source=LDAP_IMPORT)
    with django_assert_max_num_queries(12):
        users_provision_many(rows=people(100, start=10), source=LDAP_IMPORT)
    assert User.objects.count() == 110


def test_a_bulk_with_someone_who_exists_creates_nobody_and_names_them(requester):
    rows = [*people(2), {"email": "requester@example.com"}]

    with pytest.raises(InvalidRequest, match="requester@example.com already exists"):
        users_provision_many(rows=rows, source=LDAP_IMPORT)

    assert not User.objects.filter(email__startswith="person").exists()


def test_a_bulk_naming_one_person_twice_is_refused_at_that_row():
    rows = [*people(2), {"email": "PERSON0@example.com"}]

    with pytest.raises(InvalidRequest, match=r"Person 3 \(PERSON0@example.com\)"):
        users_provision_many(rows=rows, source=LDAP_IMPORT)

    assert not User.objects.exists()


def test_a_person_cannot_be_made_their_own_manager(requester):
    with pytest.raises(InvalidRequest, match="their own manager"):
        user_update(user=requester, changes={"manager_id": requester.pk}, source=SCIM)
