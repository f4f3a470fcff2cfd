"""Automatic policies give their package to the people their rule matches, and take it back."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from entitlements.models import (
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    RequestState,
    RequestType,
)
from entitlements.services.automatic import automatic_policies_evaluate, users_reevaluate
from entitlements.tasks import evaluate_automatic_policies
from tests.factories import UserFactory
from tests.lifecycle.assignment_helpers import approved_request, is_member
from tests.rules.conftest import automatic_policy

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
SALES = 'user.department -eq "Sales"'


def test_everyone_the_rule_matches_gets_the_package_without_a_request(
    django_capture_on_commit_callbacks,
):
    package, policy, resource = automatic_policy(SALES)
    sellers = [UserFactory(department=d) for d in ("Sales", "sales", "SALES")]
    engineer = UserFactory(department="Engineering")

    with django_capture_on_commit_callbacks(execute=True):
        result = automatic_policies_evaluate(now=NOW)

    assert result.added == 3
    for seller in sellers:
        assignment = seller.assignments.get(access_package=package)
        assert assignment.state == AssignmentState.DELIVERED
        assert assignment.assignment_policy == policy
        assert is_member(seller, resource)
        request = assignment.requests.get()
        assert (request.request_type, request.state) == (
            RequestType.SYSTEM_ADD,
            RequestState.DELIVERED,
        )
    assert not engineer.assignments.exists()
    assert not is_member(engineer, resource)


def test_each_automatic_assignment_is_audited_with_its_rule():
    package, policy, _resource = automatic_policy(SALES)
    seller = UserFactory(department="Sales")

    automatic_policies_evaluate(now=NOW)

    events = AuditEvent.objects.filter(target=seller, action="assignment.created")
    assert [e.data for e in events] == [{"rule": SALES, "policy": str(policy.pk)}]
    assert events.get().request == seller.assignment_requests.get()


def test_a_second_evaluation_adds_nobody_twice():
    automatic_policy(SALES)
    UserFactory(department="Sales")
    automatic_policies_evaluate(now=NOW)

    assert automatic_policies_evaluate(now=NOW).added == 0
    assert AssignmentRequest.objects.count() == 1


def test_disabled_accounts_and_people_who_requested_it_are_left_out():
    package, policy, _resource = automatic_policy(SALES)
    UserFactory(department="Sales", is_active=False)
    asked = UserFactory(department="Sales")
    approved_request(asked, package, policy)

    assert automatic_policies_evaluate(now=NOW).added == 0


def test_someone_who_stops_matching_loses_the_package_after_the_grace_period(
    django_capture_on_commit_callbacks,
):
    grace = timedelta(days=1)
    package, _policy, resource = automatic_policy(SALES, grace=grace)
    seller = UserFactory(department="Sales")
    with django_capture_on_commit_callbacks(execute=True):
        users_reevaluate(user_ids=[seller.pk], now=NOW)
    seller.department = "Engineering"
    seller.save()

    assert users_reevaluate(user_ids=[seller.pk], now=NOW).removed == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert users_reevaluate(user_ids=[seller.pk], now=NOW + grace).removed == 1

    assignment = seller.assignments.get(access_package=package)
    assert assignment.state == AssignmentState.EXPIRED
    assert not is_member(seller, resource)
    removal = AuditEvent.objects.get(target=seller, action="assignment.removed")
    assert removal.data["rule"] == SALES
    assert "no longer matches the rule" in removal.reason
    lost = AuditEvent.objects.get(target=seller, action="assignment.eligibilityLost")
    assert lost.data["rule"] == SALES


def test_matching_again_within_the_grace_period_keeps_the_package():
    package, _policy, _resource = automatic_policy(SALES, grace=timedelta(days=2))
    seller = UserFactory(department="Sales")
    users_reevaluate(user_ids=[seller.pk], now=NOW)
    seller.department = "Marketing"
    seller.save()
    users_reevaluate(user_ids=[seller.pk], now=NOW)
    seller.department = "Sales"
    seller.save()

    result = users_reevaluate(user_ids=[seller.pk], now=NOW + timedelta(days=3))

    assert (result.added, result.removed) == (0, 0)
    assignment = seller.assignments.get(access_package=package)
    assert assignment.is_open and assignment.eligibility_lost_datetime is None


def test_a_mover_into_the_rule_is_added_and_nobody_else_is_looked_at():
    automatic_policy(SALES)
    mover = UserFactory(department="Engineering")
    bystander = UserFactory(department="Sales")
    mover.department = "Sales"
    mover.save()

    assert users_reevaluate(user_ids=[mover.pk], now=NOW).added == 1

    assert mover.assignments.exists()
    assert not bystander.assignments.exists()


def test_the_schedule_evaluates_every_automatic_policy():
    automatic_policy(SALES)
    automatic_policy('user.department -eq "Engineering"')
    UserFactory(department="Sales")
    UserFactory(department="Engineering")

    assert evaluate_automatic_policies.delay().get() == {"added": 2, "removed": 0}


def test_evaluating_a_policy_writes_a_fixed_number_of_queries_whatever_the_people(
    django_assert_max_num_queries,
):
    automatic_policy(SALES)
    for _n in range(30):
        UserFactory(department="Sales")

    # SQLite links the audit chain in Python: one query to read its last link (docs/audit.md).
    with django_assert_max_num_queries(19 + (connection.vendor != "postgresql")):
        assert automatic_policies_evaluate(now=NOW).added == 30
