"""The guest lifecycle under concurrency, on the real PostgreSQL: two sign-ins from a new
domain share one proposal, and a guest is blocked once and removed once however many runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from directory.models import ConnectedOrganization, EntitlementManagementSettings, User
from entitlements.models import AllowedTargetScope, AuditEvent, Channel
from entitlements.services.ending import assignment_remove
from identity.guests import guest_sign_up, guests_lifecycle_apply, guests_lifecycle_sweep
from identity.services import Source
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    ConnectedOrganizationFactory,
    PolicyFactory,
    UserFactory,
)
from tests.lifecycle.assignment_helpers import assign, group_resources, package_giving
from tests.lifecycle.test_races_requests import run_together
from tests.services import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]

Action = EntitlementManagementSettings.ExternalUserLifecycleAction
SSO = Source(kind=Source.SSO, name="openid_connect")


@pytest.fixture
def ended_guest(db):
    """A guest whose only assignment an administrator just removed, unnoticed so far."""
    require_postgres()
    # "none" while it ends: these tests commit, so the receivers would act at once
    settings = EntitlementManagementSettings.objects.create(
        external_user_lifecycle_action=Action.NONE,
        duration_until_external_user_deleted_after_blocked=timedelta(0),
    )
    contoso = ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])
    guest = UserFactory(
        email="gail@contoso.com", user_type=User.UserType.GUEST, connected_organization=contoso
    )
    admin = UserFactory(is_staff=True, is_superuser=True)
    catalog = CatalogFactory(is_externally_visible=True)
    package = package_giving(
        *group_resources(1, catalog=catalog),
        allowed_target_scope=AllowedTargetScope.ALL_DIRECTORY_USERS,
    )
    assignment_remove(actor=admin, assignment=assign(guest, *package), channel=Channel.ADMIN)
    settings.external_user_lifecycle_action = Action.BLOCK_SIGN_IN_AND_DELETE
    settings.save()
    assert User.objects.get(pk=guest.pk).is_active
    return guest


def test_two_people_of_a_new_domain_signing_in_at_once_share_one_proposal():
    require_postgres()
    PolicyFactory(
        access_package=AccessPackageFactory(catalog=CatalogFactory(is_externally_visible=True)),
        allowed_target_scope=AllowedTargetScope.ALL_EXTERNAL_USERS,
    )

    def sign_up(email):
        return lambda: guest_sign_up(email=email, display_name="", source=SSO).pk

    results, conflicts, errors = run_together(
        [sign_up("kim@litware.com"), sign_up("lee@litware.com")]
    )

    assert errors == [] and conflicts == [] and len(results) == 2
    proposal = ConnectedOrganization.objects.get()
    assert proposal.state == ConnectedOrganization.State.PROPOSED
    assert set(
        User.objects.filter(connected_organization=proposal).values_list("pk", flat=True)
    ) == set(results)
    assert AuditEvent.objects.filter(action="connectedOrganization.proposed").count() == 1


def test_two_runs_for_the_same_end_at_once_block_the_guest_once(ended_guest):
    def apply():
        return guests_lifecycle_apply(user_ids=[ended_guest.pk])

    results, conflicts, errors = run_together([apply, apply])

    assert errors == [] and conflicts == []
    assert sorted(results) == [0, 1]
    assert AuditEvent.objects.filter(action="guest.signInBlocked").count() == 1
    assert AuditEvent.objects.filter(action="user.disabled", target=ended_guest).count() == 1


def test_two_sweeps_at_once_remove_the_guest_once(ended_guest):
    guests_lifecycle_apply(user_ids=[ended_guest.pk])
    later = timezone.now() + timedelta(minutes=1)

    def sweep():
        return guests_lifecycle_sweep(now=later)["removed"]

    results, conflicts, errors = run_together([sweep, sweep])

    assert errors == [] and conflicts == []
    assert sorted(results) == [0, 1]
    assert AuditEvent.objects.filter(action="guest.deleted", target=ended_guest).count() == 1


def test_one_person_signing_in_twice_at_once_gets_one_guest_account():
    require_postgres()
    ConnectedOrganizationFactory(display_name="Contoso", domains=["contoso.com"])

    def sign_up():
        return guest_sign_up(email="gail@contoso.com", display_name="Gail", source=SSO).pk

    results, conflicts, errors = run_together([sign_up, sign_up])

    assert errors == [] and conflicts == []
    assert len(set(results)) == 1
    assert User.objects.filter(email="gail@contoso.com").count() == 1
    assert AuditEvent.objects.filter(action="user.provisioned").count() == 1
