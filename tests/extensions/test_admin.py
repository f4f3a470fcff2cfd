"""The extensions' admin: only the catalog's owners manage its extensions; a policy calls only
its own catalog's; the callouts' list costs the same whatever it shows."""

from datetime import timedelta

import pytest
from django.urls import reverse

from entitlements.models import AdminRole, RoleAssignment
from extensions.models import (
    Behavior,
    CustomExtensionCallout,
    CustomExtensionStageSetting,
    Stage,
)
from tests.extensions.helpers import SECRET_VARIABLE, attach_extension
from tests.factories import CatalogFactory, UserFactory
from tests.lifecycle.requests_setup import open_policy

pytestmark = pytest.mark.django_db
PIN = 8  # the same for 5 rows or 50: the related rows are joined, attempts are JSON


def owner_of(catalog, user=None):
    user = user or UserFactory(is_staff=True)
    RoleAssignment.objects.create(principal=user, catalog=catalog, role=AdminRole.CATALOG_OWNER)
    return user


@pytest.fixture
def extension(settings, signing_secret):
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = True
    policy = open_policy()
    return attach_extension(policy, Stage.REQUEST_GRANTED, url="https://hr.example.com/hook")


def _change_form(extension, **changes):
    data = {
        "display_name": extension.display_name,
        "description": "",
        "endpoint_url": extension.endpoint_url,
        "secret_reference": extension.secret_reference,
        "timeout_seconds": "30",
        "behavior": extension.behavior,
        "max_wait_0": "1",
        "max_wait_1": "days",
        "max_wait": "1 00:00:00",
        "stage_settings-TOTAL_FORMS": "0",
        "stage_settings-INITIAL_FORMS": "0",
        "stage_settings-MIN_NUM_FORMS": "0",
        "stage_settings-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_an_owner_of_another_catalog_sees_no_extension_and_cannot_open_one(client, extension):
    client.force_login(owner_of(CatalogFactory()))

    listing = client.get(reverse("admin:extensions_customextension_changelist"))
    page = client.get(reverse("admin:extensions_customextension_change", args=[extension.pk]))
    posted = client.post(
        reverse("admin:extensions_customextension_change", args=[extension.pk]),
        _change_form(extension, display_name="Taken over"),
    )

    assert listing.status_code == 200
    assert extension.display_name not in listing.content.decode()
    assert page.status_code == 302 and page["Location"] == reverse("admin:index")
    assert posted.status_code == 302 and posted["Location"] == reverse("admin:index")
    extension.refresh_from_db()
    assert extension.display_name != "Taken over"


def test_an_owner_of_another_catalog_cannot_open_a_callout(client, extension):
    callout = CustomExtensionCallout.objects.create(
        custom_extension=extension, stage=Stage.REQUEST_GRANTED, dedupe_key="x"
    )
    client.force_login(owner_of(CatalogFactory()))

    page = client.get(reverse("admin:extensions_customextensioncallout_change", args=[callout.pk]))

    assert page.status_code == 302 and page["Location"] == reverse("admin:index")


def test_the_catalogs_owner_changes_the_extension(client, extension):
    client.force_login(owner_of(extension.catalog))

    posted = client.post(
        reverse("admin:extensions_customextension_change", args=[extension.pk]),
        _change_form(extension, display_name="Ticketing"),
    )

    assert posted.status_code == 302, posted.context["adminform"].form.errors
    extension.refresh_from_db()
    assert extension.display_name == "Ticketing"


def test_a_missing_secret_reference_is_a_field_error(client, extension, monkeypatch):
    monkeypatch.delenv(SECRET_VARIABLE)
    client.force_login(owner_of(extension.catalog))

    posted = client.post(
        reverse("admin:extensions_customextension_change", args=[extension.pk]),
        _change_form(extension, display_name="Ticketing"),
    )

    assert posted.status_code == 200
    errors = posted.context["adminform"].form.errors
    assert "CUSTOM_EXTENSION_TEST_SIGNING_SECRET is not set" in str(errors["secret_reference"])


def test_a_plain_http_endpoint_is_refused_outside_local_testing(extension, settings):
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = False
    extension.endpoint_url = "http://hr.example.com/hook"

    with pytest.raises(Exception) as refused:
        extension.full_clean()

    assert "https" in str(refused.value)


def test_a_policy_cannot_call_an_extension_of_another_catalog(client, extension, admin_user):
    other_policy = open_policy()  # its own catalog
    client.force_login(admin_user)

    posted = client.post(
        reverse("admin:extensions_customextension_change", args=[extension.pk]),
        _change_form(
            extension,
            **{
                "stage_settings-TOTAL_FORMS": "1",
                "stage_settings-0-policy": str(other_policy.pk),
                "stage_settings-0-stage": Stage.REQUEST_GRANTED,
            },
        ),
    )

    assert posted.status_code == 200
    errors = posted.context["inline_admin_formsets"][0].formset.errors
    assert "belongs to another catalog" in str(errors)
    assert not CustomExtensionStageSetting.objects.filter(policy=other_policy).exists()


def test_launch_and_wait_is_refused_at_a_stage_that_cannot_wait(extension):
    extension.behavior = Behavior.LAUNCH_AND_WAIT
    extension.save()
    setting = CustomExtensionStageSetting(
        policy=extension.stage_settings.get().policy,
        stage=Stage.REQUEST_REMOVED,
        custom_extension=extension,
    )

    with pytest.raises(Exception) as refused:
        setting.full_clean()

    assert "only the stages" in str(refused.value)


def test_the_wait_is_at_most_fourteen_days(extension):
    extension.max_wait = timedelta(days=15)

    with pytest.raises(Exception) as refused:
        extension.full_clean()

    assert "14 days" in str(refused.value)


def test_the_callouts_list_costs_the_same_for_five_rows_or_fifty(
    client, extension, django_assert_max_num_queries
):
    owner = owner_of(extension.catalog)
    client.force_login(owner)
    url = reverse("admin:extensions_customextensioncallout_changelist")

    def add(n):
        for i in range(n):
            CustomExtensionCallout.objects.create(
                custom_extension=extension,
                stage=Stage.REQUEST_GRANTED,
                dedupe_key=f"{CustomExtensionCallout.objects.count()}-{i}",
                attempts=[{"at": "2026-01-01T00:00:00", "status": 503, "error": "down"}],
            )

    add(5)
    client.get(url)  # warm: sessions, content types
    with django_assert_max_num_queries(PIN):
        five = client.get(url)
    add(45)
    with django_assert_max_num_queries(PIN):
        fifty = client.get(url)

    assert five.status_code == fifty.status_code == 200
    assert fifty.content.decode().count("Waiting to be sent") >= 50


def test_the_catalogs_owner_sees_each_attempt_of_a_callout(client, extension):
    callout = CustomExtensionCallout.objects.create(
        custom_extension=extension,
        stage=Stage.REQUEST_GRANTED,
        dedupe_key="attempts",
        attempt_count=2,
        attempts=[
            {
                "at": "2026-12-01T10:00:00+00:00",
                "status": 503,
                "error": "HTTP 503",
                "durationMs": 12,
            },
            {"at": "2026-12-01T10:00:30+00:00", "status": 200, "error": "", "durationMs": 9},
        ],
    )
    client.force_login(owner_of(extension.catalog))

    page = client.get(reverse("admin:extensions_customextensioncallout_change", args=[callout.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "2026-12-01T10:00:00+00:00 · 503 · 12 ms · HTTP 503" in text
    assert "2026-12-01T10:00:30+00:00 · 200 · 9 ms" in text
