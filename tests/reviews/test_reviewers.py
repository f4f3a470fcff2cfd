"""Who reviews: the user themselves, specific people or groups, the manager, the fallback."""

from datetime import timedelta

import pytest

from entitlements.models import PolicySubjectSet, SubjectType
from reviews.models import Recommendation, ReviewItemReviewer
from reviews.selectors import is_reviewer, reviewable_items, reviewers_of
from reviews.services import review_instance_create
from tests.factories import GroupFactory, UserFactory, add_member, add_subject

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db
Purpose = PolicySubjectSet.Purpose


def start_review(policy):
    return review_instance_create(
        policy=policy, start=START, end=START + timedelta(days=14), now=START
    )


def only_reviewers(policy, *subjects):
    policy.subject_sets.filter(purpose=Purpose.PRIMARY_REVIEWER).delete()
    for subject_type, fields in subjects:
        add_subject(policy, Purpose.PRIMARY_REVIEWER, subject_type, **fields)


def test_a_specific_reviewer_reviews_every_item_with_one_row(policy, reviewer):
    users = UserFactory.create_batch(3)
    open_assignments(policy, users)

    instance = start_review(policy)

    assert list(ReviewItemReviewer.objects.values_list("user", "item")) == [(reviewer.pk, None)]
    assert reviewable_items(user=reviewer).filter(instance=instance).count() == 3


def test_group_members_review_every_item(policy):
    group = GroupFactory()
    alice, bob = UserFactory.create_batch(2)
    add_member(group, alice)
    add_member(group, bob)
    only_reviewers(policy, (SubjectType.GROUP_MEMBERS, {"group": group}))
    open_assignments(policy, [UserFactory()])

    start_review(policy)

    assert reviewable_items(user=alice).count() == 1
    assert reviewable_items(user=bob).count() == 1


def test_in_a_self_review_each_user_reviews_only_their_own_access(policy, reviewer):
    policy.review_is_self_review = True
    policy.save()
    rita, sam = UserFactory.create_batch(2)
    open_assignments(policy, [rita, sam])

    start_review(policy)

    assert [i.target for i in reviewable_items(user=rita)] == [rita]
    assert [i.target for i in reviewable_items(user=sam)] == [sam]
    assert not reviewable_items(user=reviewer).exists()


def test_the_manager_reviews_their_direct_reports(policy, manager, requester):
    only_reviewers(policy, (SubjectType.TARGET_MANAGER, {"manager_level": 1}))
    someone_else = UserFactory(manager=UserFactory())
    open_assignments(policy, [requester, someone_else])

    start_review(policy)

    assert [i.target for i in reviewable_items(user=manager)] == [requester]


def test_fallback_reviewers_step_in_when_the_user_has_no_manager(policy, manager, requester):
    only_reviewers(policy, (SubjectType.TARGET_MANAGER, {"manager_level": 1}))
    fallback = UserFactory(display_name="Fiona Fallback")
    add_subject(policy, Purpose.FALLBACK_REVIEWER, SubjectType.SINGLE_USER, user=fallback)
    orphan = UserFactory(manager=None)
    open_assignments(policy, [requester, orphan])

    start_review(policy)

    assert [i.target for i in reviewable_items(user=fallback)] == [orphan]
    assert [i.target for i in reviewable_items(user=manager)] == [requester]


def test_a_disabled_manager_is_replaced_by_the_fallback(policy, manager, requester):
    only_reviewers(policy, (SubjectType.TARGET_MANAGER, {"manager_level": 1}))
    fallback = UserFactory()
    add_subject(policy, Purpose.FALLBACK_REVIEWER, SubjectType.SINGLE_USER, user=fallback)
    manager.is_active = False
    manager.save()
    open_assignments(policy, [requester])

    start_review(policy)

    assert [i.target for i in reviewable_items(user=fallback)] == [requester]


def test_a_reviewer_does_not_review_their_own_access(policy, reviewer):
    colleague = UserFactory()
    open_assignments(policy, [reviewer, colleague])

    instance = start_review(policy)
    own = instance.items.get(target=reviewer)

    assert [i.target for i in reviewable_items(user=reviewer)] == [colleague]
    assert not is_reviewer(user=reviewer, item=own)
    assert reviewer not in reviewers_of(item=own)


def test_the_only_reviewers_own_item_goes_to_the_fallback(policy, reviewer):
    fallback = UserFactory()
    add_subject(policy, Purpose.FALLBACK_REVIEWER, SubjectType.SINGLE_USER, user=fallback)
    open_assignments(policy, [reviewer])

    start_review(policy)

    assert [i.target for i in reviewable_items(user=fallback)] == [reviewer]


def test_nobody_outside_the_resolved_reviewers_may_review(policy, outsider):
    open_assignments(policy, [UserFactory()])

    instance = start_review(policy)

    assert not reviewable_items(user=outsider).exists()
    assert not is_reviewer(user=outsider, item=instance.items.get())


@pytest.mark.parametrize(
    ("last_login", "recommendation"),
    [
        (None, Recommendation.DENY),
        (START - timedelta(days=31), Recommendation.DENY),
        (START - timedelta(days=29), Recommendation.APPROVE),
    ],
)
def test_the_recommendation_follows_the_last_sign_in_at_the_start(
    policy, last_login, recommendation
):
    user = UserFactory(last_login=last_login)
    open_assignments(policy, [user])

    item = start_review(policy).items.get()

    assert item.recommendation == recommendation
    assert item.last_sign_in == last_login
