"""Taking over people and groups the directory already has: only a client an administrator
lets match existing ones, never an administrator's account, audited as a link, and only
the attributes the client sent change."""

import pytest

from directory.models import Group, GroupMembership
from entitlements.models import AuditEvent
from identity.services import Source, user_disable
from scim.models import ScimGroup, ScimUser
from tests.factories import UserFactory
from tests.scim.conftest import GROUP, USER, Scim

pytestmark = pytest.mark.django_db


def _user(email, **attributes):
    return {"schemas": [USER], "userName": email, "emails": [{"value": email}], **attributes}


def test_a_client_cannot_take_over_someone_it_did_not_provision(scim, requester):
    status, body, _ = scim.post("Users", _user("requester@example.com", active=False))
    assert status == 409, body
    assert body["scimType"] == "uniqueness"
    assert "was not provisioned by Entra ID" in body["detail"]
    requester.refresh_from_db()
    assert requester.is_active
    assert not ScimUser.objects.filter(user=requester).exists()


def test_a_second_client_cannot_take_over_and_re_address_a_superuser(scim, admin_user):
    status, body, _ = scim.post("Users", _user("admin@example.com"))
    assert status == 409, body
    admin_user.refresh_from_db()
    assert admin_user.email == "admin@example.com"
    assert not ScimUser.objects.filter(user=admin_user).exists()


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_even_a_matching_client_never_takes_over_an_administrator(matching_scim, flag):
    person = UserFactory(email="boss@example.com", display_name="Bo Boss", **{flag: True})
    status, body, _ = matching_scim.post("Users", _user("boss@example.com", active=False))
    assert status == 409, body
    assert body["scimType"] == "uniqueness"
    assert "an administrator's account cannot be taken over by provisioning" in body["detail"]
    person.refresh_from_db()
    assert person.is_active and person.display_name == "Bo Boss"
    assert not ScimUser.objects.filter(user=person).exists()


def test_a_group_whose_name_exists_is_a_409_for_a_client_that_does_not_match(scim, requester):
    approvers = Group.objects.create(display_name="Access Approvers")
    status, body, _ = scim.post("Groups", {"schemas": [GROUP], "displayName": "Access Approvers"})
    assert status == 409, body
    assert body["scimType"] == "uniqueness"
    assert "was not provisioned by Entra ID" in body["detail"]
    assert not ScimGroup.objects.filter(group=approvers).exists()
    assert not GroupMembership.objects.filter(group=approvers).exists()


def test_a_matching_client_takes_over_a_person_audited_and_changes_only_what_it_sent(
    matching_scim, requester
):
    requester.department = "Finance"
    requester.save(update_fields=["department"])
    created = matching_scim.create_user("requester@example.com", title="Analyst")
    requester.refresh_from_db()
    assert ScimUser.objects.get(scim_id=created["id"]).user == requester
    assert (requester.display_name, requester.department, requester.job_title) == (
        "Rita Requester",
        "Finance",
        "Analyst",
    )
    linked = AuditEvent.objects.get(action="user.linked", target=requester)
    assert linked.data["source"] == "scim"
    assert linked.data["source_name"] == "Okta"
    assert linked.data["userName"] == "requester@example.com"
    updated = AuditEvent.objects.get(action="user.updated", target=requester)
    assert "display_name" not in (updated.data or {}).get("after", {})


def test_a_matching_client_takes_over_a_group_audited(matching_scim):
    approvers = Group.objects.create(display_name="Access Approvers")
    status, body, _ = matching_scim.post(
        "Groups", {"schemas": [GROUP], "displayName": "Access Approvers"}
    )
    assert status == 201, body
    assert ScimGroup.objects.get(scim_id=body["id"]).group == approvers
    linked = AuditEvent.objects.get(action="group.linked", object_id=str(approvers.pk))
    assert (linked.data["source"], linked.data["source_name"]) == ("scim", "Okta")


def test_a_take_over_without_active_does_not_re_enable_someone_another_door_disabled(
    matching_scim, requester
):
    user_disable(user=requester, source=Source(kind=Source.LIFECYCLE, name="guests"))
    matching_scim.create_user("requester@example.com")
    requester.refresh_from_db()
    assert not requester.is_active
    assert not AuditEvent.objects.filter(action="user.enabled", target=requester).exists()


def test_a_take_over_with_active_true_re_enables(matching_scim, requester):
    user_disable(user=requester, source=Source(kind=Source.LIFECYCLE, name="guests"))
    matching_scim.create_user("requester@example.com", active=True)
    requester.refresh_from_db()
    assert requester.is_active


def test_a_person_someone_else_provisions_cannot_be_re_addressed_by_a_second_client(
    scim, client, matching
):
    ann = scim.create_user("ann@example.com")
    second = Scim(client, matching[1])
    status, body, _ = second.post("Users", _user("ann@example.com"))
    assert status == 409, body
    status, _, _ = second.patch(
        f"Users/{ann['id']}",
        [{"op": "replace", "path": "emails", "value": [{"value": "x@evil.example"}]}],
    )
    assert status == 404
    assert ScimUser.objects.get(scim_id=ann["id"]).user.email == "ann@example.com"


def test_a_provisioned_person_made_an_administrator_is_not_re_addressed_by_the_client(scim):
    ann = scim.create_user("ann@example.com")
    person = ScimUser.objects.get(scim_id=ann["id"]).user
    person.is_staff = True
    person.save(update_fields=["is_staff"])
    status, body, _ = scim.patch(
        f"Users/{ann['id']}",
        [{"op": "replace", "path": "emails", "value": [{"value": "x@evil.example"}]}],
    )
    assert status == 409, body
    assert "cannot be taken over by provisioning" in body["detail"]
    person.refresh_from_db()
    assert person.email == "ann@example.com"
