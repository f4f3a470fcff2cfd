"""Access reviews through the API: definitions (policies with reviews), their instances and
decisions; reviewers decide their items, catalog admins stop and apply; anybody else is
refused and nothing changes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.permissions import REVIEW_READ, REVIEW_READWRITE
from entitlements.models import (
    AdminRole,
    AuditEvent,
    PolicySubjectSet,
    RoleAssignment,
    SubjectType,
)
from reviews.models import Decision, Recommendation, ReviewItem, ReviewStatus
from reviews.services import review_instance_create
from tests.factories import (
    AccessPackageFactory,
    CatalogFactory,
    PolicyFactory,
    UserFactory,
    add_subject,
)
from tests.reviews.conftest import open_assignments

URL = "/v1.0/identityGovernance/accessReviews/definitions"
NOBODY = "00000000-0000-0000-0000-000000000000"
Purpose = PolicySubjectSet.Purpose

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(db):
    return UserFactory(email="reviewer@example.com", display_name="Rhea Reviewer")


@pytest.fixture
def policy(reviewer):
    policy = PolicyFactory(
        access_package=AccessPackageFactory(display_name="Finance reports"),
        display_name="Employees",
        expiration_type="noExpiration",
        expiration_duration=None,
        review_is_enabled=True,
        review_start_date=timezone.localdate() - timedelta(days=1),
        review_recurrence="quarterly",
        review_duration_in_days=14,
        review_is_reviewer_justification_required=False,
        review_is_auto_apply_enabled=False,
    )
    add_subject(policy, Purpose.PRIMARY_REVIEWER, SubjectType.SINGLE_USER, user=reviewer)
    return policy


@pytest.fixture
def instance(policy):
    """A running review of Ann's and Ben's access; Ann has not signed in for months."""
    now = timezone.now()
    open_assignments(policy, [UserFactory(display_name="Ann"), UserFactory(display_name="Ben")])
    return review_instance_create(
        policy=policy, start=now - timedelta(days=1), end=now + timedelta(days=13), now=now
    )


def urls(instance):
    base = f"{URL}/{instance.policy_id}/instances/{instance.pk}"
    return {"instance": base, "decisions": f"{base}/decisions"}


def item_of(instance, name):
    return instance.items.get(target__display_name=name)


def owner_of(catalog, user):
    RoleAssignment.objects.create(catalog=catalog, principal=user, role=AdminRole.CATALOG_OWNER)
    return user


def snapshot(instance):
    instance.refresh_from_db()
    items = instance.items.order_by("pk").values_list("decision", "decided_by_id", "apply_result")
    return instance.status, list(items), AuditEvent.objects.count()


def test_a_definition_is_a_policy_with_its_review_settings(client, admin_user, policy, reviewer):
    client.force_login(admin_user)

    body = client.get(f"{URL}/{policy.pk}").json()

    assert body["id"] == str(policy.pk)
    assert body["displayName"] == "Finance reports: Employees"
    assert body["status"] == "InProgress"
    assert body["scope"]["@odata.type"] == "#microsoft.graph.accessReviewQueryScope"
    assert f"assignmentPolicyId eq '{policy.pk}'" in body["scope"]["query"]
    assert body["reviewers"] == [
        {
            "@odata.type": "#microsoft.graph.accessReviewReviewerScope",
            "query": f"/users/{reviewer.pk}",
            "queryType": "MicrosoftGraph",
            "queryRoot": None,
        }
    ]
    settings = body["settings"]
    assert settings["recurrence"]["pattern"] == {"type": "absoluteMonthly", "interval": 3}
    assert settings["instanceDurationInDays"] == 14
    assert settings["autoApplyDecisionsEnabled"] is False
    assert settings["defaultDecision"] == "Approve"
    assert [row["id"] for row in client.get(URL).json()["value"]] == [str(policy.pk)]


def test_the_instances_and_decisions_of_a_review_as_graph_shows_them(
    client, admin_user, reviewer, instance
):
    client.force_login(admin_user)
    ann = item_of(instance, "Ann")

    instances = client.get(f"{URL}/{instance.policy_id}/instances").json()["value"]
    one = client.get(urls(instance)["instance"]).json()
    decisions = client.get(urls(instance)["decisions"]).json()["value"]
    decision = client.get(f"{urls(instance)['decisions']}/{ann.pk}").json()

    assert [row["id"] for row in instances] == [str(instance.pk)]
    assert one["status"] == "InProgress" and one["startDateTime"].endswith("Z")
    assert [r["query"] for r in one["reviewers"]] == [f"/users/{reviewer.pk}"]
    assert one["fallbackReviewers"] == []
    assert [row["principal"]["displayName"] for row in decisions] == ["Ann", "Ben"]
    assert decision["accessReviewId"] == str(instance.pk)
    assert decision["decision"] == "NotReviewed"
    assert decision["recommendation"] == Recommendation.DENY  # never signed in
    assert decision["reviewedBy"]["id"] == NOBODY
    assert decision["applyResult"] == "New"
    assert decision["principal"] == {
        "@odata.type": "#microsoft.graph.userIdentity",
        "id": str(ann.target_id),
        "displayName": "Ann",
        "userPrincipalName": ann.target.email,
    }
    assert decision["resource"] == {
        "id": str(instance.access_package_id),
        "displayName": "Finance reports",
        "type": "accessPackage",
    }
    assert decision["principalLink"].endswith(f"/v1.0/users/{ann.target_id}")


def test_a_reviewer_decides_an_item_and_filters_the_undecided(client, reviewer, instance):
    client.force_login(reviewer)
    ann = item_of(instance, "Ann")
    decisions = urls(instance)["decisions"]

    response = client.patch(
        f"{decisions}/{ann.pk}",
        {"decision": "Deny", "justification": "Left the team"},
        content_type="application/json",
    )

    assert response.status_code == 204, response.content
    ann.refresh_from_db()
    assert (ann.decision, ann.decided_by, ann.justification) == (
        Decision.DENY,
        reviewer,
        "Left the team",
    )
    assert AuditEvent.objects.filter(action="reviewItem.deny", channel="api").count() == 1
    undecided = client.get(f"{decisions}?$filter=decision eq 'NotReviewed'").json()["value"]
    assert [row["principal"]["displayName"] for row in undecided] == ["Ben"]
    mine = client.get(f"{decisions}/filterByCurrentUser(on='reviewer')").json()["value"]
    assert {row["decision"] for row in mine} == {"Deny", "NotReviewed"}
    shown = client.get(f"{decisions}/{ann.pk}").json()
    assert shown["reviewedBy"]["displayName"] == reviewer.display_name
    assert shown["reviewedBy"]["userPrincipalName"] == reviewer.email


def test_a_reviewer_sees_the_definitions_and_instances_they_review(client, reviewer, instance):
    client.force_login(reviewer)

    definitions = client.get(f"{URL}/filterByCurrentUser(on='reviewer')").json()["value"]
    listed = client.get(URL).json()["value"]
    instances = client.get(
        f"{URL}/{instance.policy_id}/instances/filterByCurrentUser(on='reviewer')"
    ).json()["value"]

    assert [row["id"] for row in definitions] == [str(instance.policy_id)]
    assert [row["id"] for row in listed] == [str(instance.policy_id)]
    assert [row["id"] for row in instances] == [str(instance.pk)]


def test_a_reviewer_accepts_the_recommendations(client, reviewer, instance):
    client.force_login(reviewer)

    response = client.post(f"{urls(instance)['instance']}/acceptRecommendations")  # no body

    assert response.status_code == 204
    assert dict(instance.items.values_list("target__display_name", "decision")) == {
        "Ann": Decision.DENY,
        "Ben": Decision.DENY,
    }


@pytest.mark.parametrize(
    "body, words",
    [
        ({"decision": "Maybe"}, "decision"),
        ({"justification": "no decision"}, "decision"),
        ([1], "JSON object"),
    ],
)
def test_a_bad_decision_body_is_400_and_changes_nothing(client, reviewer, instance, body, words):
    client.force_login(reviewer)
    before = snapshot(instance)

    response = client.patch(
        f"{urls(instance)['decisions']}/{item_of(instance, 'Ann').pk}",
        body,
        content_type="application/json",
    )

    assert response.status_code == 400
    assert words in response.json()["error"]["message"]
    assert snapshot(instance) == before


def test_the_catalogs_owner_stops_the_review_and_applies_its_decisions(
    client, catalog_owner, reviewer, instance, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    ann = item_of(instance, "Ann")
    client.patch(
        f"{urls(instance)['decisions']}/{ann.pk}", {"decision": "Deny"}, "application/json"
    )
    owner_of(instance.access_package.catalog, catalog_owner)
    client.force_login(catalog_owner)

    stopped = client.post(f"{urls(instance)['instance']}/stop")
    instance.refresh_from_db()
    assert stopped.status_code == 204
    assert (instance.status, instance.stopped_by) == (ReviewStatus.COMPLETED, catalog_owner)
    again = client.post(f"{urls(instance)['instance']}/stop")
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "This review has already ended."

    client.force_login(reviewer)
    late = client.patch(
        f"{urls(instance)['decisions']}/{ann.pk}", {"decision": "Approve"}, "application/json"
    )
    assert late.status_code == 409
    assert late.json()["error"]["message"] == "This review has ended."
    client.force_login(catalog_owner)

    with django_capture_on_commit_callbacks(execute=True):
        applied = client.post(f"{urls(instance)['instance']}/applyDecisions")
    assert applied.status_code == 204
    instance.refresh_from_db()
    assert instance.status == ReviewStatus.APPLIED
    shown = client.get(f"{urls(instance)['decisions']}/{ann.pk}").json()
    assert shown["applyResult"] == "AppliedSuccessfully"
    assert shown["appliedBy"]["id"] == str(catalog_owner.pk)
    assert shown["appliedDateTime"].endswith("Z")


def test_applying_a_running_review_is_a_conflict(client, admin_user, instance):
    client.force_login(admin_user)
    before = snapshot(instance)

    response = client.post(f"{urls(instance)['instance']}/applyDecisions")

    assert response.status_code == 409
    assert snapshot(instance) == before


def test_people_without_a_part_in_the_review_see_nothing_and_change_nothing(
    client, outsider, instance
):
    other_owner = owner_of(CatalogFactory(), UserFactory())
    ann = item_of(instance, "Ann")
    # Ann is under review, not a reviewer: she does not review her own access.
    people = (outsider, other_owner, ann.target)
    before = snapshot(instance)
    for person in people:
        client.force_login(person)
        assert client.get(URL).json()["value"] == []
        assert client.get(f"{URL}/filterByCurrentUser(on='reviewer')").json()["value"] == []
        for url in (
            f"{URL}/{instance.policy_id}",
            f"{URL}/{instance.policy_id}/instances",
            urls(instance)["instance"],
            f"{URL}/{instance.policy_id}/instances/filterByCurrentUser(on='reviewer')",
            urls(instance)["decisions"],
            f"{urls(instance)['decisions']}/filterByCurrentUser(on='reviewer')",
            f"{urls(instance)['decisions']}/{ann.pk}",
        ):
            assert client.get(url).status_code == 404, (person, url)
        for action in ("stop", "applyDecisions", "acceptRecommendations"):
            assert client.post(f"{urls(instance)['instance']}/{action}").status_code == 404
        response = client.patch(
            f"{urls(instance)['decisions']}/{ann.pk}", {"decision": "Approve"}, "application/json"
        )
        assert response.status_code == 404
    assert snapshot(instance) == before


def test_a_reviewer_may_not_stop_or_apply_and_a_catalog_owner_may_not_decide(
    client, reviewer, catalog_owner, instance
):
    before = snapshot(instance)
    client.force_login(reviewer)
    for action in ("stop", "applyDecisions"):
        response = client.post(f"{urls(instance)['instance']}/{action}")
        assert response.status_code == 403, action
        assert "catalog's owners" in response.json()["error"]["message"]
    owner_of(instance.access_package.catalog, catalog_owner)
    client.force_login(catalog_owner)
    response = client.patch(
        f"{urls(instance)['decisions']}/{item_of(instance, 'Ann').pk}",
        {"decision": "Approve"},
        "application/json",
    )
    assert response.status_code == 403
    assert "not a reviewer" in response.json()["error"]["message"]
    accepted = client.post(f"{urls(instance)['instance']}/acceptRecommendations")
    assert accepted.status_code == 403
    assert accepted.json()["error"]["message"] == "You are not a reviewer in this review."
    assert snapshot(instance) == before


def test_a_decision_in_another_instance_is_not_found(client, reviewer, instance, policy):
    now = timezone.now()
    other = review_instance_create(
        policy=policy, start=now - timedelta(days=30), end=now - timedelta(days=20), now=now
    )
    client.force_login(reviewer)
    ann = item_of(instance, "Ann")

    response = client.get(f"{urls(other)['decisions']}/{ann.pk}")

    assert response.status_code == 404


def test_tokens_act_within_their_permissions(api, user_token, app_token, reviewer, instance):
    ann = item_of(instance, "Ann")
    decision_url = f"{urls(instance)['decisions']}/{ann.pk}"
    api.as_token(user_token(reviewer, [REVIEW_READ]))
    assert len(api.get(urls(instance)["decisions"]).json()["value"]) == 2
    assert api.patch(decision_url, {"decision": "Approve"}).status_code == 403

    api.as_token(user_token(reviewer, [REVIEW_READWRITE]))
    assert api.patch(decision_url, {"decision": "Approve"}).status_code == 204

    api.as_token(app_token([REVIEW_READ]))
    assert [row["id"] for row in api.get(URL).json()["value"]] == [str(instance.policy_id)]
    assert api.post(f"{urls(instance)['instance']}/stop").status_code == 403
    instance.refresh_from_db()
    assert instance.status == ReviewStatus.IN_PROGRESS

    # AccessReview.ReadWrite.All is product-wide for an application, as in Graph.
    api.as_token(app_token([REVIEW_READWRITE]))
    assert api.post(f"{urls(instance)['instance']}/stop").status_code == 204
    instance.refresh_from_db()
    assert instance.status == ReviewStatus.COMPLETED
    assert instance.stopped_by_id == app_token.last.service_principal.pk
    assert AuditEvent.objects.filter(action="reviewInstance.stopped", channel="api").exists()


@pytest.mark.parametrize("count", [3, 15])
def test_listing_decisions_is_a_fixed_number_of_queries(
    client, django_assert_max_num_queries, admin_user, reviewer, policy, count
):
    now = timezone.now()
    open_assignments(policy, [UserFactory() for _ in range(count)])
    instance = review_instance_create(
        policy=policy, start=now - timedelta(days=1), end=now + timedelta(days=13), now=now
    )
    ReviewItem.objects.filter(instance=instance).update(
        decision=Decision.APPROVE, decided_by=reviewer, decided_datetime=now
    )
    for _ in range(count):  # more definitions, each with its reviewers and a run
        other = PolicyFactory(review_is_enabled=True, review_start_date=policy.review_start_date)
        add_subject(other, Purpose.PRIMARY_REVIEWER, SubjectType.SINGLE_USER, user=reviewer)
        add_subject(other, Purpose.FALLBACK_REVIEWER, SubjectType.SINGLE_USER, user=admin_user)
        review_instance_create(
            policy=other, start=now - timedelta(days=1), end=now + timedelta(days=13), now=now
        )
    for person in (admin_user, reviewer):
        client.force_login(person)
        with django_assert_max_num_queries(8):
            body = client.get(urls(instance)["decisions"]).json()
        assert len(body["value"]) == count
    client.force_login(admin_user)
    with django_assert_max_num_queries(8):
        definitions = client.get(URL).json()
    assert len(definitions["value"]) == count + 1
    with django_assert_max_num_queries(8):
        client.get(f"{URL}/{policy.pk}/instances")
