"""Admin pages for access reviews: progress, stop and apply, CSV export, who may see them."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine

from entitlements.models import AdminRole, RoleAssignment
from reviews.models import Decision, ReviewItem, ReviewStatus
from reviews.services import review_instance_create
from tests.factories import CatalogFactory, UserFactory

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/reviews/reviewinstance/"
ITEMS = "/admin/reviews/reviewitem/"


@pytest.fixture(autouse=True)
def during_the_review():
    with time_machine.travel(START + timedelta(days=3), tick=False):
        yield


@pytest.fixture
def instance(policy, reviewer):
    open_assignments(policy, [UserFactory(display_name="Ann"), UserFactory(display_name="Ben")])
    instance = review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )
    ReviewItem.objects.filter(target__display_name="Ann").update(
        decision=Decision.DENY, decided_by=reviewer, justification="Moved on"
    )
    return instance


def test_the_list_shows_each_reviews_progress(admin_client, instance):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert "1/2" in response.content.decode()


def test_stop_and_apply_ends_the_review_and_removes_denied_access(
    admin_client, instance, policy, on_commit
):
    with on_commit():
        response = admin_client.post(
            CHANGELIST,
            {"action": "stop_and_apply", "_selected_action": [instance.pk]},
            follow=True,
        )

    instance.refresh_from_db()
    assert response.status_code == 200
    assert instance.status == ReviewStatus.APPLIED
    assert dict(instance.items.values_list("target__display_name", "apply_result")) == {
        "Ann": "Removed",
        "Ben": "Kept",
    }
    assert "1 removed, 1 kept" in admin_client.get(CHANGELIST).content.decode()


def test_the_items_of_one_review_are_listed_and_exported_as_csv(admin_client, instance):
    listed = admin_client.get(ITEMS, {"instance": str(instance.pk)})
    response = admin_client.post(
        CHANGELIST, {"action": "export_items", "_selected_action": [instance.pk]}
    )

    detail = admin_client.get(f"{ITEMS}{instance.items.get(target__display_name='Ann').pk}/change/")
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 2
    assert "Rhea Reviewer" in detail.content.decode()
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["review", "user", "email", "decision"]
    assert sorted((r[1], r[3], r[4]) for r in rows[1:]) == [
        ("Ann", "Deny", "Moved on"),
        ("Ben", "NotReviewed", ""),
    ]


def test_an_owner_of_another_catalog_does_not_see_the_review(client, instance):
    other_owner = UserFactory(is_staff=True)
    RoleAssignment.objects.create(
        principal=other_owner, role=AdminRole.CATALOG_OWNER, catalog=CatalogFactory()
    )
    client.force_login(other_owner)

    listed = client.get(CHANGELIST)
    detail = client.get(f"{CHANGELIST}{instance.pk}/change/")

    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 0
    assert detail.status_code == 302  # to the admin index: "does not exist"


def test_a_reader_of_the_catalog_sees_the_review_but_cannot_stop_it(client, instance, package):
    reader = UserFactory(is_staff=True)
    RoleAssignment.objects.create(
        principal=reader, role=AdminRole.CATALOG_READER, catalog=package.catalog
    )
    client.force_login(reader)

    listed = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "stop_and_apply", "_selected_action": [instance.pk]})

    assert listed.context["cl"].result_count == 1
    assert "stop_and_apply" not in dict(listed.context["action_form"].fields["action"].choices)
    instance.refresh_from_db()
    assert instance.status == ReviewStatus.IN_PROGRESS
