"""Administrators see the organizations that sign-ins from new domains proposed, and the
guests the lifecycle blocked or removed."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from directory.models import ConnectedOrganization, EntitlementManagementSettings, User
from identity.models.guests import GuestLifecycle
from tests.factories import ConnectedOrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:directory_connectedorganization_changelist")
PROPOSED = ConnectedOrganization.State.PROPOSED


def proposals(count):
    return [
        ConnectedOrganizationFactory(
            display_name=f"new{n}.example", domains=[f"new{n}.example"], state=PROPOSED
        )
        for n in range(count)
    ]


def notices(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_organizations_list_says_how_many_proposals_wait_for_review(client, admin_user):
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    proposals(2)
    client.force_login(admin_user)

    response = client.get(LIST)

    assert response.status_code == 200
    assert notices(response) == [
        "2 proposed organizations are waiting for review: people who signed in from their "
        "domains are their guests until you configure or remove them."
    ]


def test_one_proposal_is_named_in_the_singular(client, admin_user):
    proposals(1)
    client.force_login(admin_user)

    assert notices(client.get(LIST))[0].startswith("1 proposed organization is waiting")


def test_without_proposals_the_list_says_nothing(client, admin_user):
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    client.force_login(admin_user)

    assert notices(client.get(LIST)) == []


def test_the_state_filter_lists_only_the_proposals(client, admin_user):
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    proposals(2)
    client.force_login(admin_user)

    response = client.get(LIST, {"state__exact": PROPOSED})

    shown = [o.display_name for o in response.context["cl"].result_list]
    assert shown == ["new0.example", "new1.example"]


def test_the_list_costs_the_same_queries_for_3_or_30_proposals(
    client, admin_user, django_assert_max_num_queries
):
    client.force_login(admin_user)
    proposals(3)
    with django_assert_max_num_queries(12) as few:
        client.get(LIST)
    ConnectedOrganization.objects.all().delete()
    proposals(30)

    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(LIST).status_code == 200


def test_a_person_without_an_admin_role_never_sees_the_list(client, outsider):
    proposals(1)
    client.force_login(outsider)

    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- The guest lifecycle's list --------------------------------------------------------------

LIFECYCLE = reverse("admin:identity_guestlifecycle_changelist")
Action = EntitlementManagementSettings.ExternalUserLifecycleAction


def blocked_guests(count, blocked_at, start=0):
    return [
        GuestLifecycle.objects.create(
            user=UserFactory(email=f"gone{n}@partner.example", user_type=User.UserType.GUEST),
            last_assignment_ended=blocked_at,
            blocked_at=blocked_at,
        )
        for n in range(start, start + count)
    ]


def lifecycle_settings(action, days=30):
    EntitlementManagementSettings.objects.create(
        external_user_lifecycle_action=action,
        duration_until_external_user_deleted_after_blocked=timedelta(days=days),
    )


def test_the_guest_lifecycle_list_shows_when_each_blocked_guest_will_be_removed(client, admin_user):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE, days=30)
    blocked_at = timezone.now().replace(microsecond=0)
    (row,) = blocked_guests(1, blocked_at)
    client.force_login(admin_user)

    response = client.get(LIFECYCLE)

    assert response.status_code == 200
    (shown,) = response.context["cl"].result_list
    assert shown.pk == row.pk
    assert response.context["cl"].model_admin.removal_due(shown) == blocked_at + timedelta(days=30)


def test_with_block_sign_in_only_no_removal_is_due(client, admin_user):
    lifecycle_settings(Action.BLOCK_SIGN_IN)
    blocked_guests(1, timezone.now())
    client.force_login(admin_user)

    response = client.get(LIFECYCLE)

    (shown,) = response.context["cl"].result_list
    assert response.context["cl"].model_admin.removal_due(shown) is None


def test_the_guest_lifecycle_is_read_only_in_the_admin(client, admin_user):
    (row,) = blocked_guests(1, timezone.now())
    client.force_login(admin_user)

    add = client.get(reverse("admin:identity_guestlifecycle_add"))
    delete = client.post(reverse("admin:identity_guestlifecycle_delete", args=[row.pk]))

    assert add.status_code == 403
    assert delete.status_code == 403
    assert GuestLifecycle.objects.filter(pk=row.pk).exists()


def test_the_guest_lifecycle_list_costs_the_same_queries_for_3_or_30_guests(
    client, admin_user, django_assert_max_num_queries
):
    lifecycle_settings(Action.BLOCK_SIGN_IN_AND_DELETE)
    client.force_login(admin_user)
    blocked_guests(3, timezone.now())
    with django_assert_max_num_queries(12) as few:
        client.get(LIFECYCLE)
    blocked_guests(27, timezone.now(), start=3)

    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(LIFECYCLE).status_code == 200


def test_a_catalog_owner_without_the_permission_never_sees_the_guest_lifecycle(
    client, catalog_owner
):
    client.force_login(catalog_owner)

    response = client.get(LIFECYCLE)

    assert response.status_code == 403
