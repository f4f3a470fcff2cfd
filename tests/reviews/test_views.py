"""The Access reviews tab of My Access."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from reviews.models import Decision, ReviewItem
from reviews.services import review_instance_create
from tests.factories import UserFactory

from .conftest import START, many_users, open_assignments

pytestmark = pytest.mark.django_db
LIST = "/access-reviews/"
DECIDE = "/access-reviews/decide/"


@pytest.fixture(autouse=True)
def during_the_review():
    with time_machine.travel(START + timedelta(days=3), tick=False):
        yield


@pytest.fixture
def instance(policy):
    open_assignments(
        policy,
        [
            UserFactory(display_name="Ann Active", last_login=START - timedelta(days=1)),
            UserFactory(display_name="Ben Bygone", last_login=None),
        ],
    )
    return review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )


def item_of(instance, name):
    return instance.items.get(target__display_name=name)


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_the_tab_is_mounted_at_access_reviews():
    assert reverse("reviews:list") == LIST


def test_signing_in_is_required(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_someone_with_nothing_to_review_sees_the_empty_state(client, outsider, instance):
    client.force_login(outsider)

    response = client.get(LIST)

    assert response.context["tab"] == "reviews"
    assert "No access reviews need your attention" in response.content.decode()


def test_a_reviewer_sees_each_user_with_package_recommendation_and_last_sign_in(
    client, reviewer, instance
):
    client.force_login(reviewer)

    response = client.get(LIST)

    page = response.content.decode()
    assert "Ann Active" in page and "Ben Bygone" in page
    assert "Finance reports" in page
    assert "Never signed in" in page
    assert "Dec. 31, 2024" in page  # Ann's last sign-in
    [group] = response.context["groups"]
    assert [i.recommendation for i in group["items"]] == ["Approve", "Deny"]
    assert group["undecided"] == 2


def test_recommendations_are_hidden_without_decision_helpers(client, reviewer, instance, policy):
    policy.review_is_recommendation_enabled = False
    policy.save()
    client.force_login(reviewer)

    page = client.get(LIST).content.decode()

    assert "Recommendation" not in page
    assert "Never signed in" not in page


def test_a_reviewer_decides_several_items_at_once(client, reviewer, instance):
    client.force_login(reviewer)
    ann, ben = item_of(instance, "Ann Active"), item_of(instance, "Ben Bygone")

    response = client.post(
        DECIDE,
        {"items": [ann.pk, ben.pk], "decision": "Deny", "justification": "Project over"},
        follow=True,
    )

    assert messages_of(response) == [
        "You denied the access of 2 people: "
        "Ann Active – Finance reports; Ben Bygone – Finance reports."
    ]
    assert set(ReviewItem.objects.values_list("decision", "justification")) == {
        (Decision.DENY, "Project over")
    }


def test_each_refused_item_is_reported(client, reviewer, instance, policy):
    policy.review_is_reviewer_justification_required = True
    policy.save()
    client.force_login(reviewer)
    ann = item_of(instance, "Ann Active")

    response = client.post(DECIDE, {"items": [ann.pk], "decision": "Approve"}, follow=True)

    assert messages_of(response) == [
        "Ann Active – Finance reports: Give a reason for your decision."
    ]
    ann.refresh_from_db()
    assert ann.decision == Decision.NOT_REVIEWED


def test_another_reviewers_item_is_refused_and_nothing_changes(client, outsider, instance):
    client.force_login(outsider)
    ann = item_of(instance, "Ann Active")

    response = client.post(DECIDE, {"items": [ann.pk], "decision": "Deny"}, follow=True)

    assert messages_of(response) == [
        "1 item is not waiting for your review; nothing was changed for it."
    ]
    ann.refresh_from_db()
    assert ann.decision == Decision.NOT_REVIEWED


def test_decisions_are_taken_only_by_post(client, reviewer, instance):
    client.force_login(reviewer)
    ann = item_of(instance, "Ann Active")

    response = client.get(DECIDE, {"items": [ann.pk], "decision": "Deny"})

    assert response.status_code == 405
    ann.refresh_from_db()
    assert ann.decision == Decision.NOT_REVIEWED


def test_a_decision_needs_the_csrf_token(reviewer, instance):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    ann = item_of(instance, "Ann Active")

    response = client.post(DECIDE, {"items": [ann.pk], "decision": "Deny"})

    assert response.status_code == 403
    ann.refresh_from_db()
    assert ann.decision == Decision.NOT_REVIEWED


def test_a_decision_without_a_choice_is_refused(client, reviewer, instance):
    client.force_login(reviewer)
    ann = item_of(instance, "Ann Active")

    response = client.post(DECIDE, {"items": [ann.pk]}, follow=True)

    assert messages_of(response) == ["Choose approve, deny or don't know."]


def test_a_reviewer_accepts_the_recommendations(client, reviewer, instance):
    client.force_login(reviewer)

    response = client.post(reverse("reviews:accept", args=[instance.pk]), follow=True)

    assert messages_of(response) == ["Accepted the recommendations for 2 people."]
    assert dict(ReviewItem.objects.values_list("target__display_name", "decision")) == {
        "Ann Active": Decision.APPROVE,
        "Ben Bygone": Decision.DENY,
    }


def test_someone_else_cannot_accept_the_recommendations(client, outsider, instance):
    client.force_login(outsider)

    response = client.post(reverse("reviews:accept", args=[instance.pk]))

    assert response.status_code == 404
    assert not ReviewItem.objects.exclude(decision=Decision.NOT_REVIEWED).exists()


def test_a_self_review_asks_whether_i_still_need_the_access(client, policy):
    policy.review_is_self_review = True
    policy.save()
    rita = UserFactory(display_name="Rita")
    open_assignments(policy, [rita])
    instance = review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )
    client.force_login(rita)

    page = client.get(LIST).content.decode()
    response = client.post(
        DECIDE, {"items": [instance.items.get().pk], "decision": "Deny"}, follow=True
    )

    assert "Do you still need access to Finance reports?" in page
    assert messages_of(response) == ["You denied the access of 1 person: Rita – Finance reports."]
    assert instance.items.get().decision == Decision.DENY


@pytest.mark.parametrize("people", [10, 500])
def test_the_list_takes_a_bounded_number_of_queries(
    client, reviewer, policy, people, django_assert_max_num_queries
):
    open_assignments(policy, many_users(people))
    review_instance_create(policy=policy, start=START, end=START + timedelta(days=14), now=START)
    client.force_login(reviewer)

    with django_assert_max_num_queries(10):
        response = client.get(LIST)

    assert response.status_code == 200
    assert sum(len(g["items"]) for g in response.context["groups"]) == min(people, 100)
