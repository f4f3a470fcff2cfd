"""The admin's people and groups pages go through the identity services."""

import pytest

from approvals.models import StageApprover
from directory.models import Group, GroupMembership, User
from entitlements.models import AssignmentState, AuditEvent, Channel, RequestState, SubjectType
from entitlements.services.requests import request_submit
from tests.factories import GroupFactory, GroupResourceFactory, UserFactory, add_approver
from tests.foundation.admin_support import add_row, admin_url, page_data
from tests.lifecycle.assignment_helpers import assign, is_member, package_giving
from tests.lifecycle.requests_setup import approval_policy, stage_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def change_user(client, user, **fields):
    url = admin_url(User, "change", user.pk)
    data = page_data(client.get(url))
    for name, value in fields.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = str(getattr(value, "pk", value))
    return client.post(url, data)


def test_unticking_enabled_in_the_admin_runs_the_leaver_path(
    admin_client, admin_user, requester, django_capture_on_commit_callbacks
):
    resource = GroupResourceFactory()
    package, policy = package_giving(resource)
    assignment = assign(requester, package, policy)

    with django_capture_on_commit_callbacks(execute=True):
        response = change_user(admin_client, requester, is_active=False)

    assert response.status_code == 302, response.content
    assert response["Location"] == admin_url(User, "changelist")
    requester.refresh_from_db()
    assignment.refresh_from_db()
    assert not requester.is_active
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(requester, resource)
    event = AuditEvent.objects.get(action="user.disabled")
    assert (event.actor, event.channel, event.data["source"]) == (
        admin_user,
        Channel.ADMIN,
        "admin",
    )


def test_a_new_manager_set_in_the_admin_takes_over_the_managers_approvals(
    admin_client, requester, manager
):
    new_manager = UserFactory(display_name="Nina New")
    policy = approval_policy()
    add_approver(stage_of(policy), subject_type=SubjectType.REQUESTOR_MANAGER, manager_level=1)
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )

    response = change_user(admin_client, requester, manager=new_manager, department="Sales")

    assert response.status_code == 302, response.content
    stage = request.approval_stages.get()
    assert [a.user for a in StageApprover.objects.filter(stage=stage)] == [new_manager]
    event = AuditEvent.objects.get(action="user.updated")
    assert event.data["after"] == {"department": "Sales", "manager": str(new_manager.pk)}


def test_saving_the_admin_page_unchanged_writes_no_event(admin_client, requester):
    response = change_user(admin_client, requester)

    assert response.status_code == 302
    assert not AuditEvent.objects.filter(target=requester).exists()


def test_the_admins_own_fields_are_still_saved(admin_client, requester):
    response = change_user(admin_client, requester, is_staff="on")

    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.is_staff


def test_someone_who_may_only_look_people_up_cannot_disable_them(client, catalog_owner, requester):
    client.force_login(catalog_owner)

    response = change_user(client, requester, is_active=False)

    assert response.status_code == 403
    requester.refresh_from_db()
    assert requester.is_active
    assert not AuditEvent.objects.filter(action="user.disabled").exists()


def test_a_person_added_in_the_admin_is_a_joiner(admin_client):
    response = admin_client.post(
        admin_url(User, "add"),
        {
            "email": "New.Person@example.com",
            "display_name": "New Person",
            "usable_password": "true",
            "password1": "a long enough pass phrase",
            "password2": "a long enough pass phrase",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("a long enough pass phrase")
    assert AuditEvent.objects.get(action="user.provisioned").target_id == user.pk


def test_a_member_added_in_the_group_admin_is_audited_and_re_evaluated(admin_client, requester):
    group = GroupFactory()
    url = admin_url(Group, "change", group.pk)
    data = page_data(admin_client.get(url))
    add_row(data, "memberships", user=requester, role="Member", source="direct")

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content
    assert GroupMembership.objects.filter(group=group, user=requester).exists()
    event = AuditEvent.objects.get(action="group.membersChanged")
    assert event.data["added"] == [str(requester.pk)]
    assert event.channel == Channel.ADMIN


def test_a_member_removed_in_the_group_admin_leaves_through_the_service(admin_client, requester):
    group = GroupFactory()
    GroupMembership.objects.create(group=group, user=requester)
    url = admin_url(Group, "change", group.pk)
    data = page_data(admin_client.get(url))
    data["memberships-0-DELETE"] = "on"

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content
    assert not GroupMembership.objects.filter(group=group).exists()
    assert AuditEvent.objects.get(action="group.membersChanged").data["removed"] == [
        str(requester.pk)
    ]


def run_action(client, action, users):
    return client.post(
        admin_url(User, "changelist"),
        {"action": action, "_selected_action": [str(u.pk) for u in users]},
    )


def test_the_disable_action_runs_the_leaver_path_for_each_selected_person(
    admin_client, requester, approver, outsider
):
    policy = approval_policy(approvers=[approver])
    request = request_submit(
        actor=requester, target=requester, access_package=policy.access_package
    )

    response = run_action(admin_client, "disable_selected", [requester, outsider])

    assert response.status_code == 302
    assert response["Location"] == admin_url(User, "changelist")
    assert not User.objects.filter(pk__in=[requester.pk, outsider.pk], is_active=True).exists()
    request.refresh_from_db()
    assert request.state == RequestState.CANCELED
    assert AuditEvent.objects.filter(action="user.disabled").count() == 2


def test_someone_who_may_only_look_people_up_has_no_disable_action(
    client, catalog_owner, requester
):
    client.force_login(catalog_owner)

    run_action(client, "disable_selected", [requester])

    requester.refresh_from_db()
    assert requester.is_active


def test_a_group_added_in_the_admin_is_provisioned_with_its_members(admin_client, requester):
    data = page_data(admin_client.get(admin_url(Group, "add")))
    data["display_name"] = "Sales"
    add_row(data, "memberships", user=requester, role="Member", source="direct")

    response = admin_client.post(admin_url(Group, "add"), data)

    assert response.status_code == 302, response.content
    group = Group.objects.get(display_name="Sales")
    assert list(group.memberships.values_list("user", flat=True)) == [requester.pk]
    assert AuditEvent.objects.get(action="group.provisioned").object_id == str(group.pk)
    assert AuditEvent.objects.get(action="group.membersChanged").data["added"] == [
        str(requester.pk)
    ]


def test_someone_who_may_only_look_groups_up_cannot_change_their_members(
    client, catalog_owner, requester
):
    group = GroupFactory()
    client.force_login(catalog_owner)
    url = admin_url(Group, "change", group.pk)
    data = page_data(client.get(url))
    add_row(data, "memberships", user=requester, role="Member", source="direct")

    response = client.post(url, data)

    assert response.status_code == 403
    assert not group.memberships.exists()
