"""List pages cost the same number of queries with 10 rows as with 1,000."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import RequestApprovalStage, StageApprover, StageStatus
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    AssignmentRequest,
    RequestAnswer,
    RequestState,
    RequestType,
    ResourceRoleScope,
)
from entitlements.pagination import PORTAL_CAP
from tests.factories import GroupResourceFactory, QuestionFactory

pytestmark = pytest.mark.django_db

# Session, user, admin-link check, count and page, plus each page's prefetches.
PACKAGE_LIST_QUERIES = 11  # grants, policies, stages, approvers, subject sets, my groups
HISTORY_QUERIES = 5
APPROVALS_QUERIES = 6  # answers


def make_packages(catalog, count):
    role = GroupResourceFactory(catalog=catalog).roles.get(origin_id="Member")
    packages = AccessPackage.objects.bulk_create(
        [
            AccessPackage(catalog=catalog, display_name=f"Package {n:04}", description="Bulk")
            for n in range(count)
        ]
    )
    ResourceRoleScope.objects.bulk_create(
        [ResourceRoleScope(access_package=p, role=role) for p in packages]
    )
    policies = AssignmentPolicy.objects.bulk_create(
        [
            AssignmentPolicy(
                access_package=p,
                display_name="Employees",
                expiration_duration=timedelta(days=30),
            )
            for p in packages
        ]
    )
    ApprovalStage.objects.bulk_create([ApprovalStage(policy=p, sequence=1) for p in policies])
    return packages, policies


def make_requests(target, requestor, packages, policies, state):
    return AssignmentRequest.objects.bulk_create(
        [
            AssignmentRequest(
                access_package=package,
                assignment_policy=policy,
                target=target,
                requestor=requestor,
                request_type=RequestType.USER_ADD,
                state=state,
                justification="Needed",
            )
            for package, policy in zip(packages, policies, strict=True)
        ]
    )


@pytest.fixture(params=[10, 1000], ids=["10 rows", "1000 rows"])
def rows(request):
    return request.param


def test_the_package_list_runs_a_fixed_number_of_queries(
    client, requester, catalog, rows, django_assert_max_num_queries
):
    make_packages(catalog, rows)
    client.force_login(requester)

    with django_assert_max_num_queries(PACKAGE_LIST_QUERIES):
        response = client.get(reverse("myaccess:packages"))

    # The count stops at PORTAL_CAP (entitlements.pagination): past it the page says "more
    # than", so counting costs the same with 1,000 rows as with 300,000.
    assert response.context["page"].paginator.count == min(rows, PORTAL_CAP)
    assert response.context["page"].paginator.capped == (rows > PORTAL_CAP)
    assert len(response.context["page"].object_list) == min(rows, 25)


def test_the_request_history_runs_a_fixed_number_of_queries(
    client, requester, catalog, rows, django_assert_max_num_queries
):
    packages, policies = make_packages(catalog, rows)
    make_requests(requester, requester, packages, policies, RequestState.DENIED)
    client.force_login(requester)

    with django_assert_max_num_queries(HISTORY_QUERIES):
        response = client.get(reverse("myaccess:requests"))

    # The count stops at PORTAL_CAP (entitlements.pagination): past it the page says "more
    # than", so counting costs the same with 1,000 rows as with 300,000.
    assert response.context["page"].paginator.count == min(rows, PORTAL_CAP)
    assert response.context["page"].paginator.capped == (rows > PORTAL_CAP)


def test_the_approvals_page_runs_a_fixed_number_of_queries(
    client, requester, approver, catalog, rows, django_assert_max_num_queries
):
    packages, policies = make_packages(catalog, rows)
    requests = make_requests(requester, requester, packages, policies, "pendingApproval")
    policy_stages = {s.policy_id: s for s in ApprovalStage.objects.all()}
    stages = RequestApprovalStage.objects.bulk_create(
        [
            RequestApprovalStage(
                request=r,
                policy_stage=policy_stages[r.assignment_policy_id],
                sequence=1,
                status=StageStatus.IN_PROGRESS,
                opened_datetime=timezone.now(),
                deadline=timezone.now() + timedelta(days=14),
            )
            for r in requests
        ]
    )
    StageApprover.objects.bulk_create(
        [StageApprover(stage=s, user=approver, kind=StageApprover.Kind.PRIMARY) for s in stages]
    )
    question = QuestionFactory(policy=policies[0])
    RequestAnswer.objects.create(
        request=requests[0], question=question, value="42", display_value="42"
    )
    client.force_login(approver)

    with django_assert_max_num_queries(APPROVALS_QUERIES):
        response = client.get(reverse("myaccess:approvals"))

    # The count stops at PORTAL_CAP (entitlements.pagination): past it the page says "more
    # than", so counting costs the same with 1,000 rows as with 300,000.
    assert response.context["page"].paginator.count == min(rows, PORTAL_CAP)
    assert response.context["page"].paginator.capped == (rows > PORTAL_CAP)
    assert len(response.context["page"].object_list) == min(rows, 25)
