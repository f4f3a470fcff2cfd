"""A policy with access reviews on must say who reviews, like a stage must say who approves."""

import pytest

from entitlements.models import AssignmentPolicy, PolicySubjectSet, SubjectType
from tests.factories import PolicyFactory, UserFactory, add_subject
from tests.foundation.admin_support import add_row, admin_url, errors_of, page_data

Purpose = PolicySubjectSet.Purpose


@pytest.fixture
def signed_in(client, admin_user):
    client.force_login(admin_user)
    return client


def _reviews_switched_on(client, policy):
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    data = page_data(client.get(url))
    data.update(review_is_enabled="on", review_start_date="2030-01-01")
    return url, data


def _reviews_enabled(policy):
    policy.refresh_from_db()
    return policy.review_is_enabled


def test_the_admin_refuses_access_reviews_that_nobody_reviews(signed_in):
    policy = PolicyFactory()
    url, data = _reviews_switched_on(signed_in, policy)

    response = signed_in.post(url, data)

    assert response.status_code == 200
    assert any("nobody reviews" in e for e in errors_of(response))
    assert not _reviews_enabled(policy)


def test_the_admin_refuses_manager_reviewers_without_a_fallback_reviewer(signed_in):
    policy = PolicyFactory()
    url, data = _reviews_switched_on(signed_in, policy)
    add_row(
        data,
        "subject_sets",
        purpose=Purpose.PRIMARY_REVIEWER,
        subject_type=SubjectType.TARGET_MANAGER,
        manager_level=1,
    )

    response = signed_in.post(url, data)

    assert response.status_code == 200
    assert any("no fallback reviewer" in e for e in errors_of(response))
    assert not _reviews_enabled(policy)
    assert not policy.subject_sets.exists()


def test_the_admin_accepts_manager_reviewers_with_a_fallback_reviewer(signed_in):
    policy = PolicyFactory()
    url, data = _reviews_switched_on(signed_in, policy)
    add_row(
        data,
        "subject_sets",
        purpose=Purpose.PRIMARY_REVIEWER,
        subject_type=SubjectType.TARGET_MANAGER,
        manager_level=1,
    )
    add_row(
        data,
        "subject_sets",
        purpose=Purpose.FALLBACK_REVIEWER,
        subject_type=SubjectType.SINGLE_USER,
        user=UserFactory(),
    )

    assert signed_in.post(url, data).status_code == 302
    assert _reviews_enabled(policy)


def test_the_admin_accepts_access_reviews_by_a_named_reviewer_or_by_the_users_themselves(
    signed_in,
):
    named, themselves = PolicyFactory(), PolicyFactory()
    add_subject(named, Purpose.PRIMARY_REVIEWER, SubjectType.SINGLE_USER, user=UserFactory())
    url, data = _reviews_switched_on(signed_in, named)
    assert signed_in.post(url, data).status_code == 302

    url, data = _reviews_switched_on(signed_in, themselves)
    data["review_is_self_review"] = "on"
    assert signed_in.post(url, data).status_code == 302

    assert _reviews_enabled(named) and _reviews_enabled(themselves)


def test_the_admin_refuses_removing_the_last_reviewer_of_a_reviewed_policy(signed_in):
    policy = PolicyFactory(review_is_enabled=True, review_start_date="2030-01-01")
    add_subject(policy, Purpose.PRIMARY_REVIEWER, SubjectType.SINGLE_USER, user=UserFactory())
    url = admin_url(AssignmentPolicy, "change", policy.pk)
    data = page_data(signed_in.get(url))
    data["subject_sets-0-DELETE"] = "on"

    response = signed_in.post(url, data)

    assert any("nobody reviews" in e for e in errors_of(response))
    assert policy.subject_sets.count() == 1


def test_the_check_names_the_reviews_field_for_every_door():
    from django.core.exceptions import ValidationError

    from entitlements import validation

    policy = AssignmentPolicy(review_is_enabled=True)
    with pytest.raises(ValidationError) as excinfo:
        validation.check_policy_reviewers(policy, [])

    assert set(excinfo.value.message_dict) == {"review_is_enabled"}
