"""The guest lifecycle benchmark runs end to end at a tiny size and leaves nothing behind."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from directory.models import ConnectedOrganization, EntitlementManagementSettings, User
from entitlements.models import Assignment, AuditEvent, Catalog
from identity.models import GuestLifecycle

pytestmark = pytest.mark.django_db

Action = EntitlementManagementSettings.ExternalUserLifecycleAction


def test_the_guest_benchmark_blocks_removes_and_cleans_up_after_itself():
    EntitlementManagementSettings.objects.create(
        external_user_lifecycle_action=Action.NONE,
        duration_until_external_user_deleted_after_blocked=timedelta(days=5),
    )
    out = StringIO()

    call_command("bench_guests", guests=3, missed=2, remove=2, stdout=out)

    printed = out.getvalue()
    assert "11 people made" in printed
    assert "sweep blocking the missed: 2 blocked" in printed
    assert "sweep with nothing to do: 0 changes" in printed
    assert "removed 2 due guests" in printed
    assert not User.objects.filter(email__startswith="bench-").exists()
    assert not User.objects.filter(email__endswith="@deleted.invalid").exists()
    assert not (Assignment.objects.exists() or GuestLifecycle.objects.exists())
    assert not (Catalog.objects.filter(display_name__startswith="bench-").exists())
    assert not ConnectedOrganization.objects.exists()
    # Its audit events stay: the trail is append-only (docs/audit.md).
    assert AuditEvent.objects.filter(action__startswith="guest.").exists()
    settings = EntitlementManagementSettings.current()
    assert settings.external_user_lifecycle_action == Action.NONE
    assert settings.duration_until_external_user_deleted_after_blocked == timedelta(days=5)
