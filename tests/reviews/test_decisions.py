"""Reviewers' decisions: who may decide, justification, changing a decision, bulk, helpers."""

from datetime import timedelta

import pytest

from entitlements.errors import InvalidRequest, PermissionDenied, StateConflict
from entitlements.models import AuditEvent
from reviews.models import Decision, ReviewItem
from reviews.services import (
    review_accept_recommendations,
    review_instance_create,
    review_item_decide,
    review_items_decide,
)
from tests.factories import UserFactory

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db
DURING = START + timedelta(days=3)


@pytest.fixture
def instance(policy):
    open_assignments(policy, [UserFactory(display_name="Ann"), UserFactory(display_name="Ben")])
    return review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )


def item_of(instance, name):
    return instance.items.select_related("instance__policy").get(target__display_name=name)


def test_a_reviewer_approves_an_item(instance, reviewer):
    item = item_of(instance, "Ann")

    review_item_decide(actor=reviewer, item=item, decision=Decision.APPROVE, now=DURING)

    item.refresh_from_db()
    assert (item.decision, item.decided_by, item.decided_datetime) == (
        Decision.APPROVE,
        reviewer,
        DURING,
    )


def test_someone_who_is_not_a_reviewer_is_refused(instance, outsider):
    item = item_of(instance, "Ann")

    with pytest.raises(PermissionDenied, match="not a reviewer"):
        review_item_decide(actor=outsider, item=item, decision=Decision.DENY, now=DURING)

    item.refresh_from_db()
    assert item.decision == Decision.NOT_REVIEWED


def test_a_justification_is_required_when_the_policy_says_so(instance, policy, reviewer):
    policy.review_is_reviewer_justification_required = True
    policy.save()
    item = item_of(instance, "Ann")

    with pytest.raises(InvalidRequest, match="reason") as refused:
        review_item_decide(actor=reviewer, item=item, decision=Decision.DENY, now=DURING)

    assert refused.value.field == "justification"
    review_item_decide(
        actor=reviewer, item=item, decision=Decision.DENY, justification="Left the team", now=DURING
    )
    item.refresh_from_db()
    assert (item.decision, item.justification) == (Decision.DENY, "Left the team")


def test_not_reviewed_is_not_a_decision(instance, reviewer):
    with pytest.raises(InvalidRequest):
        review_item_decide(
            actor=reviewer,
            item=item_of(instance, "Ann"),
            decision=Decision.NOT_REVIEWED,
            now=DURING,
        )


def test_the_last_decision_counts_and_every_decision_is_audited(instance, reviewer):
    item = item_of(instance, "Ann")

    review_item_decide(actor=reviewer, item=item, decision=Decision.DENY, now=DURING)
    review_item_decide(actor=reviewer, item=item, decision=Decision.DONT_KNOW, now=DURING)
    review_item_decide(actor=reviewer, item=item, decision=Decision.APPROVE, now=DURING)

    item.refresh_from_db()
    assert item.decision == Decision.APPROVE
    events = AuditEvent.objects.filter(object_id=str(item.pk)).order_by("created", "action")
    assert sorted((e.before, e.after) for e in events) == sorted(
        [
            (Decision.NOT_REVIEWED, Decision.DENY),
            (Decision.DENY, Decision.DONT_KNOW),
            (Decision.DONT_KNOW, Decision.APPROVE),
        ]
    )


def test_a_decision_after_the_end_is_refused(instance, reviewer):
    item = item_of(instance, "Ann")

    with pytest.raises(StateConflict, match="This review has ended"):
        review_item_decide(
            actor=reviewer, item=item, decision=Decision.DENY, now=instance.end + timedelta(1)
        )


def test_bulk_decisions_decide_each_item_and_report_each_refusal(instance, reviewer, policy):
    policy.review_is_reviewer_justification_required = True
    policy.save()
    ann, ben = item_of(instance, "Ann"), item_of(instance, "Ben")

    refused = review_items_decide(actor=reviewer, items=[ann, ben], decision="Deny", now=DURING)
    done = review_items_decide(
        actor=reviewer, items=[ann, ben], decision="Deny", justification="Gone", now=DURING
    )

    assert refused.done == []
    assert refused.refused == [
        (ann, "Give a reason for your decision."),
        (ben, "Give a reason for your decision."),
    ]
    assert {i.pk for i in done.done} == {ann.pk, ben.pk}
    assert set(ReviewItem.objects.values_list("decision", flat=True)) == {Decision.DENY}


def test_accepting_recommendations_decides_only_my_undecided_items(instance, reviewer):
    ann, ben = item_of(instance, "Ann"), item_of(instance, "Ben")
    ReviewItem.objects.filter(pk=ann.pk).update(recommendation="Deny")
    review_item_decide(actor=reviewer, item=ben, decision=Decision.DENY, now=DURING)

    result = review_accept_recommendations(actor=reviewer, instance=instance, now=DURING)

    assert [i.pk for i in result.done] == [ann.pk]
    ann.refresh_from_db()
    ben.refresh_from_db()
    assert (ann.decision, ann.decided_by, ann.justification) == (
        Decision.DENY,
        reviewer,
        "Accepted the recommendation.",
    )
    assert ben.decision == Decision.DENY
    assert AuditEvent.objects.filter(object_id=str(ann.pk), after="Deny").exists()


def test_accepting_recommendations_is_refused_without_decision_helpers(instance, policy, reviewer):
    policy.review_is_recommendation_enabled = False
    policy.save()
    instance.refresh_from_db()

    with pytest.raises(InvalidRequest, match="no recommendations"):
        review_accept_recommendations(actor=reviewer, instance=instance, now=DURING)


def test_accepting_recommendations_by_someone_else_decides_nothing(instance, outsider):
    result = review_accept_recommendations(actor=outsider, instance=instance, now=DURING)

    assert result.done == []
    assert not ReviewItem.objects.exclude(decision=Decision.NOT_REVIEWED).exists()
