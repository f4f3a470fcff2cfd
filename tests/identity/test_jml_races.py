"""Leavers under concurrency, on the real PostgreSQL: a person leaves once, and leaving while
someone approves their request neither deadlocks nor leaves them with access."""

import pytest

from approvals.models import RequestApprovalStage, ReviewResult
from approvals.services import stage_decide
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    Assignment,
    AssignmentRequest,
    AuditEvent,
    Channel,
    RequestState,
    RequestType,
)
from entitlements.services.requests import request_submit
from identity.services import Source, user_disable
from tests.factories import GroupResourceFactory, UserFactory
from tests.lifecycle.assignment_helpers import assign, is_member, package_giving
from tests.lifecycle.requests_setup import approval_policy
from tests.lifecycle.test_races_requests import run_together
from tests.services import require_postgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]

HR = Source(kind=Source.SCIM, name="Workday")


def test_two_disables_of_the_same_person_at_once_do_it_once():
    require_postgres()
    person = UserFactory()
    resource = GroupResourceFactory()
    package, policy = package_giving(resource)
    assign(person, package, policy)

    def disable():
        return user_disable(user=UserFactory._meta.model.objects.get(pk=person.pk), source=HR)

    results, conflicts, errors = run_together([disable, disable])

    assert errors == [] and conflicts == []
    assert sorted(results) == [False, True]
    assert AuditEvent.objects.filter(action="user.disabled", target=person).count() == 1
    assert AssignmentRequest.objects.filter(request_type=RequestType.SYSTEM_REMOVE).count() == 1
    assert not is_member(person, resource)


@pytest.mark.parametrize("attempt", range(3))
def test_leaving_while_an_approver_approves_ends_with_no_access_and_no_deadlock(attempt):
    require_postgres()
    person, approver = UserFactory(), UserFactory()
    policy = approval_policy(approvers=[approver])
    request = request_submit(actor=person, target=person, access_package=policy.access_package)
    stage = RequestApprovalStage.objects.get(request=request)

    def approve():
        return stage_decide(
            actor=approver,
            stage=RequestApprovalStage.objects.get(pk=stage.pk),
            decision=ReviewResult.APPROVED,
            channel=Channel.EMAIL,
        )

    def disable():
        return user_disable(user=UserFactory._meta.model.objects.get(pk=person.pk), source=HR)

    results, conflicts, errors = run_together([approve, disable])

    assert errors == []
    request.refresh_from_db()
    # Either the cancel came first (the approval then finds it closed), or the approval did
    # and the leaver's new assignment ended with everything else.
    if conflicts:
        assert request.state == RequestState.CANCELED
    assert not Assignment.objects.filter(target=person, state__in=OPEN_ASSIGNMENT_STATES).exists()
