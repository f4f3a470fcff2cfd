"""Fixtures for access reviews: a package giving a group, a reviewed policy, delivered access."""

from datetime import UTC, date, datetime

import pytest

from directory.models import GroupMembership, User
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    Assignment,
    AssignmentState,
    PolicySubjectSet,
    RequestType,
    SubjectType,
)
from entitlements.services.requests import request_submit
from tests.factories import (
    AccessPackageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_subject,
    grant_role,
)

# The policy's first review: it starts at midnight (UTC) and runs 14 days.
FIRST_REVIEW = date(2025, 1, 1)
START = datetime(2025, 1, 1, tzinfo=UTC)
Purpose = PolicySubjectSet.Purpose


@pytest.fixture
def reviewer(db):
    return UserFactory(email="reviewer@example.com", display_name="Rhea Reviewer")


@pytest.fixture
def group_resource(db):
    return GroupResourceFactory()


@pytest.fixture
def package(group_resource):
    package = AccessPackageFactory(catalog=group_resource.catalog, display_name="Finance reports")
    grant_role(package, group_resource.roles.get(origin_id="Member"))
    return package


@pytest.fixture
def policy(package, reviewer):
    """Reviewed quarterly from 1 January 2025 for 14 days by Rhea Reviewer."""
    policy = PolicyFactory(
        access_package=package,
        expiration_type="noExpiration",
        expiration_duration=None,
        review_is_enabled=True,
        review_start_date=FIRST_REVIEW,
        review_recurrence="quarterly",
        review_duration_in_days=14,
        review_is_reviewer_justification_required=False,
    )
    add_subject(policy, Purpose.PRIMARY_REVIEWER, SubjectType.SINGLE_USER, user=reviewer)
    return policy


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what services enqueue on commit (delivery, emails, applying) inside a test."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def deliver(admin_user, on_commit):
    """Give ``user`` the policy's package through the lifecycle: a direct assignment that is
    delivered by the built-in connector (a group membership with source=entitlement)."""

    def give(policy, user, now=None):
        with on_commit():
            request = request_submit(
                actor=admin_user,
                target=user,
                access_package=policy.access_package,
                policy=policy,
                request_type=RequestType.ADMIN_ADD,
                now=now,
            )
        assignment = Assignment.objects.get(pk=request.assignment_id)
        assert assignment.state == AssignmentState.DELIVERED
        return assignment

    return give


def many_users(count, prefix="person"):
    """``count`` users inserted in one statement (no password), named in sorting order."""
    return User.objects.bulk_create(
        [
            User(email=f"{prefix}{n}@example.com", display_name=f"{prefix.title()} {n:05}")
            for n in range(count)
        ]
    )


def open_assignments(policy, users, **fields):
    """Open assignments made directly in the database, for tests about many users."""
    fields = {"state": AssignmentState.DELIVERED, **fields}
    return Assignment.objects.bulk_create(
        [
            Assignment(
                access_package_id=policy.access_package_id,
                assignment_policy=policy,
                target=user,
                **fields,
            )
            for user in users
        ]
    )


def is_member(group_resource, user):
    return GroupMembership.objects.filter(group_id=group_resource.group_id, user=user).exists()


def has_open_assignment(policy, user):
    return Assignment.objects.filter(
        assignment_policy=policy, target=user, state__in=OPEN_ASSIGNMENT_STATES
    ).exists()
