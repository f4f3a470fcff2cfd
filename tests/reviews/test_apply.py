"""Ending a review and applying its results through the assignment lifecycle."""

from datetime import timedelta

import pytest

from entitlements.errors import PermissionDenied, StateConflict
from entitlements.models import (
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    AuditEvent,
    GrantState,
    RequestState,
    RequestType,
)
from reviews.models import ApplyResult, Decision, ReviewItem, ReviewStatus
from reviews.services import (
    ENDED_MESSAGE,
    review_instance_apply,
    review_instance_apply_results,
    review_instance_create,
    review_instance_stop,
    review_item_decide,
    reviews_complete_due,
)
from tests.factories import UserFactory

from .conftest import START, has_open_assignment, is_member

pytestmark = pytest.mark.django_db
DURING = START + timedelta(days=3)
AFTER = START + timedelta(days=14, minutes=1)


@pytest.fixture
def ann(db):
    return UserFactory(display_name="Ann", last_login=START - timedelta(days=1))


@pytest.fixture
def ben(db):
    return UserFactory(display_name="Ben", last_login=None)


@pytest.fixture
def review(policy, deliver, ann, ben):
    """A running review of two people holding the package (and its group) for real."""
    deliver(policy, ann, now=START - timedelta(days=10))
    deliver(policy, ben, now=START - timedelta(days=10))
    return review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )


def decide(instance, user, decision, reviewer):
    item = instance.items.select_related("instance__policy").get(target=user)
    review_item_decide(actor=reviewer, item=item, decision=decision, now=DURING)


def result_of(instance, user):
    return ReviewItem.objects.get(instance=instance, target=user).apply_result


def test_denied_access_is_removed_when_the_review_ends(
    review, policy, reviewer, ann, ben, group_resource, on_commit
):
    decide(review, ann, Decision.DENY, reviewer)
    decide(review, ben, Decision.APPROVE, reviewer)

    with on_commit():
        ended = reviews_complete_due(now=AFTER)

    review.refresh_from_db()
    assert ended == 1
    assert (review.status, review.applied_datetime) == (ReviewStatus.APPLIED, AFTER)
    assert not has_open_assignment(policy, ann)
    assert not is_member(group_resource, ann)
    assert has_open_assignment(policy, ben)
    assert is_member(group_resource, ben)
    assert result_of(review, ann) == ApplyResult.REMOVED
    assert result_of(review, ben) == ApplyResult.KEPT


def test_a_review_removal_goes_through_a_system_removal_request(review, reviewer, ann, on_commit):
    decide(review, ann, Decision.DENY, reviewer)

    with on_commit():
        reviews_complete_due(now=AFTER)

    removal = AssignmentRequest.objects.get(target=ann, request_type=RequestType.SYSTEM_REMOVE)
    assert removal.justification == "Denied in access review"
    assert removal.state == RequestState.DELIVERED
    assert removal.assignment.state == AssignmentState.EXPIRED
    assert set(
        AssignmentResourceRole.objects.filter(assignment=removal.assignment).values_list(
            "state", flat=True
        )
    ) == {GrantState.REMOVED}
    assert AuditEvent.objects.filter(
        action="assignment.removed", object_id=str(removal.assignment_id)
    ).exists()


def test_the_user_is_told_their_access_ended(review, reviewer, ann, on_commit, mailoutbox):
    decide(review, ann, Decision.DENY, reviewer)

    with on_commit():
        reviews_complete_due(now=AFTER)

    ended = [m for m in mailoutbox if m.to == [ann.email] and "has ended" in m.body]
    assert len(ended) == 1
    assert "Denied in access review" in ended[0].body


@pytest.mark.parametrize(
    ("behavior", "ann_result", "ben_result"),
    [
        ("keepAccess", ApplyResult.KEPT, ApplyResult.KEPT),
        ("removeAccess", ApplyResult.REMOVED, ApplyResult.REMOVED),
        # Ann signed in yesterday (approve); Ben never did (deny).
        ("acceptAccessRecommendation", ApplyResult.KEPT, ApplyResult.REMOVED),
    ],
)
def test_items_nobody_decided_follow_the_policys_expiration_behavior(
    review, policy, ann, ben, on_commit, behavior, ann_result, ben_result
):
    policy.review_expiration_behavior = behavior
    policy.save()

    with on_commit():
        reviews_complete_due(now=AFTER)

    assert (result_of(review, ann), result_of(review, ben)) == (ann_result, ben_result)
    assert has_open_assignment(policy, ann) == (ann_result == ApplyResult.KEPT)
    assert has_open_assignment(policy, ben) == (ben_result == ApplyResult.KEPT)


def test_dont_know_keeps_the_access(review, policy, reviewer, ann, on_commit):
    policy.review_expiration_behavior = "removeAccess"
    policy.save()
    decide(review, ann, Decision.DONT_KNOW, reviewer)

    with on_commit():
        reviews_complete_due(now=AFTER)

    assert result_of(review, ann) == ApplyResult.KEPT
    assert has_open_assignment(policy, ann)


def test_without_auto_apply_the_review_completes_and_changes_nothing(
    review, policy, reviewer, ann, on_commit
):
    policy.review_is_auto_apply_enabled = False
    policy.save()
    decide(review, ann, Decision.DENY, reviewer)

    with on_commit():
        reviews_complete_due(now=AFTER)

    review.refresh_from_db()
    assert review.status == ReviewStatus.COMPLETED
    assert has_open_assignment(policy, ann)
    assert result_of(review, ann) == ApplyResult.NEW


def test_an_admin_applies_a_completed_review_as_an_admin_removal(
    review, policy, reviewer, ann, admin_user, on_commit
):
    policy.review_is_auto_apply_enabled = False
    policy.save()
    decide(review, ann, Decision.DENY, reviewer)
    with on_commit():
        reviews_complete_due(now=AFTER)
    review.refresh_from_db()

    with on_commit():
        review_instance_apply(actor=admin_user, instance=review, now=AFTER)

    review.refresh_from_db()
    assert review.status == ReviewStatus.APPLIED
    assert not has_open_assignment(policy, ann)
    removal = AssignmentRequest.objects.get(target=ann, request_type=RequestType.ADMIN_REMOVE)
    assert removal.requestor == admin_user


def test_an_admin_stops_a_review_early_and_its_results_are_applied(
    review, policy, reviewer, ann, ben, admin_user, group_resource, on_commit
):
    decide(review, ann, Decision.DENY, reviewer)

    with on_commit():
        review_instance_stop(actor=admin_user, instance=review, now=DURING)

    review.refresh_from_db()
    assert (review.status, review.stopped_by) == (ReviewStatus.APPLIED, admin_user)
    assert not is_member(group_resource, ann)
    assert is_member(group_resource, ben)
    item = review.items.select_related("instance__policy").get(target=ben)
    with pytest.raises(StateConflict, match=ENDED_MESSAGE):
        review_item_decide(actor=reviewer, item=item, decision=Decision.DENY, now=DURING)


def test_only_a_manager_of_the_catalogs_assignments_may_stop_a_review(review, reviewer):
    with pytest.raises(PermissionDenied):
        review_instance_stop(actor=reviewer, instance=review, now=DURING)

    review.refresh_from_db()
    assert review.status == ReviewStatus.IN_PROGRESS


def test_a_stopped_review_cannot_be_stopped_again(review, admin_user, on_commit):
    with on_commit():
        review_instance_stop(actor=admin_user, instance=review, now=DURING)

    with pytest.raises(StateConflict, match="already ended"):
        review_instance_stop(actor=admin_user, instance=review, now=DURING)


def test_access_that_ended_during_the_review_is_reported_as_already_ended(
    review, policy, reviewer, ann, admin_user, on_commit
):
    from entitlements.services.ending import assignment_remove

    decide(review, ann, Decision.DENY, reviewer)
    assignment = review.items.get(target=ann).assignment
    with on_commit():
        assignment_remove(actor=admin_user, assignment=assignment, channel="admin", now=DURING)

    with on_commit():
        reviews_complete_due(now=AFTER)

    assert result_of(review, ann) == ApplyResult.ALREADY_ENDED
    assert AssignmentRequest.objects.filter(target=ann, request_type="adminRemove").count() == 1
    assert not AssignmentRequest.objects.filter(target=ann, request_type="systemRemove").exists()


def test_applying_in_small_batches_applies_every_item(review, policy, ann, ben, on_commit):
    policy.review_expiration_behavior = "removeAccess"
    policy.save()
    with on_commit():
        review_instance_stop_without_apply(review)
        counts = review_instance_apply_results(instance_id=review.pk, now=AFTER, batch_size=1)

    assert counts == {ApplyResult.REMOVED: 2}
    assert not has_open_assignment(policy, ann)
    assert not has_open_assignment(policy, ben)


def review_instance_stop_without_apply(instance):
    """Put the instance in Applying as the stop does, without running the apply task."""
    type(instance).objects.filter(pk=instance.pk).update(status=ReviewStatus.APPLYING)


def test_applying_an_instance_twice_changes_nothing_more(review, policy, on_commit):
    policy.review_expiration_behavior = "removeAccess"
    policy.save()
    with on_commit():
        reviews_complete_due(now=AFTER)
    requests = AssignmentRequest.objects.count()

    with on_commit():
        again = review_instance_apply_results(instance_id=review.pk, now=AFTER)
        reviews_complete_due(now=AFTER + timedelta(hours=1))

    assert again is None
    assert AssignmentRequest.objects.count() == requests
