"""When a guest's last assignment ends, the entitlement management settings act: nothing,
sign-in blocked at once (sessions ended), or blocked and the account removed after a while."""

from datetime import timedelta

import pytest
import time_machine
from allauth.socialaccount.models import SocialAccount
from django.contrib.sessions.models import Session
from django.utils import timezone

from directory.models import EntitlementManagementSettings, GroupMembership, User
from entitlements.models import AllowedTargetScope, AuditEvent, Channel
from entitlements.services.ending import assignment_remove, assignments_expire_due
from identity.guests import guests_lifecycle_apply, guests_lifecycle_sweep
from identity.models.guests import GuestLifecycle, GuestState
from tests.factories import CatalogFactory, ConnectedOrganizationFactory, GroupFactory, UserFactory
from tests.lifecycle.assignment_helpers import assign, group_resources, package_giving

pytestmark = pytest.mark.django_db

Action = EntitlementManagementSettings.ExternalUserLifecycleAction


def lifecycle_settings(action, days=30):
    return EntitlementManagementSettings.objects.create(
        external_user_lifecycle_action=action,
        duration_until_external_user_deleted_after_blocked=timedelta(days=days),
    )


@pytest.fixture
def guest(db):
    contoso = ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    return UserFactory(
        email="gail@contoso.com",
        display_name="Gail Guest",
        user_type=User.UserType.GUEST,
        connected_organization=contoso,
        job_title="Consultant",
    )


@pytest.fixture
def package(db):
    catalog = CatalogFactory(is_externally_visible=True)
    return package_giving(
        *group_resources(1, catalog=catalog),
        allowed_target_scope=AllowedTargetScope.ALL_DIRECTORY_USERS,
    )


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return Session.objects.count()

    return sign_in


def remove(assignment, admin_user, capture):
    with capture(execute=True):
        assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)


def reload(user):
    return User.objects.get(pk=user.pk)


def test_a_guest_whose_last_assignment_ends_is_blocked_at_once_and_signed_out(
    guest, package, admin_user, signed_in, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN)
    assignment = assign(guest, *package)
    assert signed_in(guest) == 1

    remove(assignment, admin_user, django_capture_on_commit_callbacks)

    assert not reload(guest).is_active
    assert Session.objects.count() == 0
    blocked = AuditEvent.objects.get(action="guest.signInBlocked", target=guest)
    assert (blocked.before, blocked.after) == ("enabled", "disabled")
    assert blocked.data["lifecycle_action"] == Action.BLOCK_SIGN_IN
    assert blocked.data["removal_due"] is None
    disabled = AuditEvent.objects.get(action="user.disabled", target=guest)
    assert disabled.data["source"] == "lifecycle"
    assert GuestLifecycle.objects.get(user=guest).state == GuestState.BLOCKED


def test_a_guest_who_still_has_another_assignment_stays_enabled(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE)
    other = package_giving(*group_resources(1, catalog=package[0].catalog))
    first = assign(guest, *package)
    assign(guest, *other)

    remove(first, admin_user, django_capture_on_commit_callbacks)

    assert reload(guest).is_active
    assert not AuditEvent.objects.filter(action="guest.signInBlocked").exists()
    assert not GuestLifecycle.objects.exists()


def test_with_the_setting_none_nothing_happens_to_the_guest(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.NONE)
    assignment = assign(guest, *package)

    remove(assignment, admin_user, django_capture_on_commit_callbacks)
    with time_machine.travel(timezone.now() + timedelta(days=400)):
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}

    assert reload(guest).is_active
    assert not GuestLifecycle.objects.exists()


def test_a_member_whose_last_assignment_ends_stays_enabled(
    requester, package, admin_user, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE)
    assignment = assign(requester, *package)

    remove(assignment, admin_user, django_capture_on_commit_callbacks)

    assert reload(requester).is_active
    assert not GuestLifecycle.objects.exists()


def test_an_assignment_reaching_its_end_date_blocks_its_guest_too(
    guest, package, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN)
    assignment = assign(guest, *package)

    with django_capture_on_commit_callbacks(execute=True):
        assert assignments_expire_due(now=assignment.schedule_end + timedelta(minutes=1)) == 1

    assert not reload(guest).is_active
    assert AuditEvent.objects.filter(action="guest.signInBlocked", target=guest).count() == 1


def test_the_same_end_is_acted_on_once(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE)
    remove(assign(guest, *package), admin_user, django_capture_on_commit_callbacks)

    assert guests_lifecycle_apply(user_ids=[guest.pk]) == 0
    assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}
    assert AuditEvent.objects.filter(action="guest.signInBlocked").count() == 1


def test_a_blocked_guest_is_removed_after_the_duration_and_their_history_stays(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE, days=30)
    assignment = assign(guest, *package)
    GroupMembership.objects.create(group=GroupFactory(), user=guest)
    SocialAccount.objects.create(user=guest, provider="openid_connect", uid="subject-1")
    remove(assignment, admin_user, django_capture_on_commit_callbacks)
    blocked_at = GuestLifecycle.objects.get(user=guest).blocked_at
    assert AuditEvent.objects.get(action="guest.signInBlocked").data["removal_due"] == (
        (blocked_at + timedelta(days=30)).isoformat()
    )

    with time_machine.travel(blocked_at + timedelta(days=29, hours=23)):
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}
    assert reload(guest).email == "gail@contoso.com"

    with time_machine.travel(blocked_at + timedelta(days=30, minutes=1)):
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 1}

    removed = reload(guest)
    assert removed.email == f"deleted-{guest.pk}@deleted.invalid"
    assert (removed.display_name, removed.job_title) == ("Removed guest", "")
    assert not removed.is_active and not removed.has_usable_password()
    assert not GroupMembership.objects.filter(user=guest).exists()
    assert not SocialAccount.objects.filter(user=guest).exists()
    assignment.refresh_from_db()
    assert assignment.target_id == guest.pk
    row = GuestLifecycle.objects.get(user=guest)
    assert row.state == GuestState.DELETED and row.deleted_at is not None
    event = AuditEvent.objects.get(action="guest.deleted", target=guest)
    assert event.data["removed"]["group_memberships"] == 1
    assert event.data["removed"]["sign_in_identities"] == 1


def test_with_block_sign_in_only_a_blocked_guest_is_never_removed(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    lifecycle_settings(Action.BLOCK_SIGN_IN, days=1)
    remove(assign(guest, *package), admin_user, django_capture_on_commit_callbacks)

    with time_machine.travel(timezone.now() + timedelta(days=60)):
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}

    assert reload(guest).email == "gail@contoso.com"


def test_a_guest_enabled_again_before_the_removal_is_kept(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    from identity.services import Source, user_disable, user_enable

    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE, days=30)
    remove(assign(guest, *package), admin_user, django_capture_on_commit_callbacks)
    # enabled by an administrator, then disabled again for another reason
    user_enable(user=reload(guest), source=Source(kind=Source.ADMIN), actor=admin_user)
    user_disable(user=reload(guest), source=Source(kind=Source.ADMIN), actor=admin_user)

    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}

    assert reload(guest).email == "gail@contoso.com"
    assert GuestLifecycle.objects.get(user=guest).state == GuestState.CANCELED
    assert AuditEvent.objects.filter(action="guest.removalCanceled", target=guest).exists()


def test_the_sweep_blocks_a_guest_whose_end_nobody_acted_on(guest, package, admin_user):
    lifecycle_settings(Action.BLOCK_SIGN_IN)
    # without the on-commit callbacks: the receivers never heard of this end
    assignment_remove(actor=admin_user, assignment=assign(guest, *package), channel=Channel.ADMIN)
    assert reload(guest).is_active

    assert guests_lifecycle_sweep() == {"blocked": 1, "removed": 0}

    assert not reload(guest).is_active


def test_the_sweep_leaves_ends_from_before_the_settings_changed(guest, package, admin_user):
    assignment_remove(actor=admin_user, assignment=assign(guest, *package), channel=Channel.ADMIN)

    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        lifecycle_settings(Action.BLOCK_SIGN_IN)
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}

    assert reload(guest).is_active


def test_a_guest_waiting_for_more_access_is_blocked_only_once_that_request_closes(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    from entitlements.services.requests import request_cancel
    from tests.lifecycle.assignment_helpers import approved_request

    lifecycle_settings(Action.BLOCK_SIGN_IN)
    other = package_giving(*group_resources(1, catalog=package[0].catalog))
    assignment = assign(guest, *package)
    waiting = approved_request(guest, *other)

    remove(assignment, admin_user, django_capture_on_commit_callbacks)
    assert reload(guest).is_active

    with django_capture_on_commit_callbacks(execute=True):
        request_cancel(actor=guest, request=waiting, channel=Channel.PORTAL)

    assert not reload(guest).is_active
    assert AuditEvent.objects.filter(action="guest.signInBlocked", target=guest).count() == 1


def test_a_removed_guest_signing_in_again_is_a_new_guest(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialLogin
    from django.test import RequestFactory

    from identity.adapters import GuestSocialAccountAdapter

    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE, days=0)
    remove(assign(guest, *package), admin_user, django_capture_on_commit_callbacks)
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert guests_lifecycle_sweep()["removed"] == 1

    login = SocialLogin(
        user=User(email="gail@contoso.com", display_name="Gail Guest"),
        account=SocialAccount(provider="openid_connect", uid="subject-1", extra_data={}),
        email_addresses=[EmailAddress(email="gail@contoso.com", verified=True, primary=True)],
    )
    login.connect = lambda request, user: setattr(login, "linked", user)
    GuestSocialAccountAdapter().pre_social_login(RequestFactory().get("/"), login)

    assert login.linked.pk != guest.pk
    assert login.linked.is_guest and login.linked.is_active


@pytest.mark.parametrize("guests", [2, 20])
def test_a_sweep_with_nothing_to_do_costs_three_queries_however_many_guests(
    guests, package, admin_user, django_assert_num_queries
):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE, days=30)
    for n in range(guests):
        holder = UserFactory(email=f"holder{n}@contoso.com", user_type=User.UserType.GUEST)
        assign(holder, *package)
        leaver = UserFactory(email=f"leaver{n}@contoso.com", user_type=User.UserType.GUEST)
        assignment_remove(
            actor=admin_user, assignment=assign(leaver, *package), channel=Channel.ADMIN
        )
        assert guests_lifecycle_apply(user_ids=[leaver.pk]) == 1

    # the settings, the guests whose end nobody acted on, the blocked guests due for removal
    with django_assert_num_queries(3):
        assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}


def test_a_guest_an_administrator_enabled_again_is_not_blocked_again_for_the_same_end(
    guest, package, admin_user, django_capture_on_commit_callbacks
):
    from identity.services import Source, user_enable

    lifecycle_settings(Action.BLOCK_SIGN_IN)
    remove(assign(guest, *package), admin_user, django_capture_on_commit_callbacks)
    user_enable(user=reload(guest), source=Source(kind=Source.ADMIN), actor=admin_user)

    assert guests_lifecycle_sweep() == {"blocked": 0, "removed": 0}
    assert guests_lifecycle_apply(user_ids=[guest.pk]) == 0

    assert reload(guest).is_active
