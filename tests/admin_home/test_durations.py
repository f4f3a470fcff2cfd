"""Durations typed and read as people say them: "30 days", "8 hours", "2 weeks"."""

from datetime import timedelta

import pytest
from django.utils import translation

from entitlements.admin.durations import HumanDurationField, parse, words
from entitlements.models import AdminRole, ApprovalStage, AssignmentPolicy
from tests.factories import UserFactory
from tests.foundation.admin_support import admin_url, errors_of, give_role, page_data


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("30 days", timedelta(days=30)),
        ("1 day", timedelta(days=1)),
        ("8 hours", timedelta(hours=8)),
        ("2 weeks", timedelta(weeks=2)),
        ("1 day 12 hours", timedelta(days=1, hours=12)),
        ("1 day, 12 hours", timedelta(days=1, hours=12)),
        ("1 day and 12 hours", timedelta(days=1, hours=12)),
        ("90 minutes", timedelta(minutes=90)),
        ("  30 Days ", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("36h", timedelta(hours=36)),
        ("1.5 hours", timedelta(minutes=90)),
        ("P30D", timedelta(days=30)),
        ("PT8H", timedelta(hours=8)),
        ("p14d", timedelta(days=14)),
        ("P2W", timedelta(weeks=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("3 00:00:00", timedelta(days=3)),
        ("01:00:00", timedelta(hours=1)),
    ],
)
def test_it_reads_what_a_person_types(typed, expected):
    assert parse(typed) == expected
    assert HumanDurationField().clean(typed) == expected


@pytest.mark.parametrize(
    "typed", ["30", "soon", "30 dayz", "days 30", "30 days please", "P", "1 day 12", "-P1D"]
)
def test_it_refuses_what_is_not_a_duration_with_a_message_that_shows_how(typed):
    field = HumanDurationField()

    with pytest.raises(Exception) as excinfo:
        field.clean(typed)

    message = " ".join(excinfo.value.messages)
    assert "30 days" in message or "negative" in message


def test_it_refuses_a_duration_longer_than_a_hundred_years_instead_of_overflowing():
    with pytest.raises(Exception) as excinfo:
        HumanDurationField().clean("99999999999 weeks")

    assert excinfo.value.messages  # a message, not an OverflowError


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (timedelta(days=30), "30 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=8), "8 hours"),
        (timedelta(days=1, hours=12), "1 day 12 hours"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
        (timedelta(0), "0 seconds"),
        (timedelta(seconds=1, microseconds=500000), "P0DT00H00M01.500000S"),
    ],
)
def test_it_shows_a_stored_duration_in_words_that_it_reads_back(value, shown):
    assert words(value) == shown
    assert parse(shown) == value


def test_the_words_follow_the_active_language():
    with translation.override("de"):
        shown = words(timedelta(days=2))

    assert shown.startswith("2 ")


@pytest.mark.django_db
def test_the_stage_page_shows_and_takes_durations_in_words(client, admin_user, stage):
    client.force_login(admin_user)
    url = admin_url(ApprovalStage, "change", stage.pk)

    page = client.get(url)
    assert 'value="14 days"' in page.content.decode()

    data = page_data(page)
    data["duration_before_automatic_denial"] = "1 week 2 days"
    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    stage.refresh_from_db()
    assert stage.duration_before_automatic_denial == timedelta(days=9)


@pytest.mark.django_db
def test_a_duration_that_is_not_one_is_refused_and_nothing_changes(client, admin_user, stage):
    client.force_login(admin_user)
    url = admin_url(ApprovalStage, "change", stage.pk)
    data = page_data(client.get(url))
    data["duration_before_automatic_denial"] = "a fortnight"

    response = client.post(url, data)

    assert response.status_code == 200
    assert any("30 days" in str(error) for error in errors_of(response))
    stage.refresh_from_db()
    assert stage.duration_before_automatic_denial == timedelta(days=14)


@pytest.mark.django_db
def test_the_policy_page_and_its_stage_table_take_words(client, admin_user, policy, stage):
    client.force_login(admin_user)
    url = admin_url(AssignmentPolicy, "change", policy.pk)

    page = client.get(url)
    content = page.content.decode()
    assert 'value="30 days"' in content
    assert 'value="14 days"' in content

    data = page_data(page)
    data["expiration_duration"] = "P90D"
    data["approval_stages-0-duration_before_automatic_denial"] = "8 hours"
    response = client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    policy.refresh_from_db()
    assert policy.expiration_duration == timedelta(days=90)
    assert policy.approval_stages.get().duration_before_automatic_denial == timedelta(hours=8)


@pytest.mark.django_db
def test_the_stage_list_shows_durations_in_words(client, admin_user, stage):
    client.force_login(admin_user)

    listing = client.get(admin_url(ApprovalStage, "changelist")).content.decode()

    assert '<td class="field-duration_before_automatic_denial">14 days</td>' in listing


@pytest.mark.django_db
def test_a_catalog_reader_sees_the_durations_in_words_on_the_read_only_page(client, stage):
    reader = UserFactory(is_staff=False)
    give_role(reader, AdminRole.CATALOG_READER, stage.policy.access_package.catalog)
    client.force_login(reader)

    page = client.get(admin_url(ApprovalStage, "change", stage.pk)).content.decode()

    assert "14 days" in page
    assert "14 days, 0:00:00" not in page
    assert 'name="duration_before_automatic_denial"' not in page
