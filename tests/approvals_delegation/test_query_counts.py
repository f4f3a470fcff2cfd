"""The approvals pages cost the same number of queries with few delegated items as with many."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import (
    ApprovalDelegation,
    RequestApprovalStage,
    ReviewResult,
    StageApprover,
    StageStatus,
)
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    AssignmentRequest,
    RequestState,
    RequestType,
)
from tests.factories import CatalogFactory, UserFactory

pytestmark = pytest.mark.django_db

# Session, user, admin-link check, count and page, the answers' prefetch (as tests/portal).
APPROVALS_QUERIES = 6
HISTORY_QUERIES = 5
DELEGATION_QUERIES = 5  # session, user, admin-link check, my delegations, delegated to me


def stages_on_behalf_of(ann, ben, count, *, decided=False):
    catalog = CatalogFactory()
    packages = AccessPackage.objects.bulk_create(
        [AccessPackage(catalog=catalog, display_name=f"Package {n:03}") for n in range(count)]
    )
    policies = AssignmentPolicy.objects.bulk_create(
        [
            AssignmentPolicy(
                access_package=p, display_name="Employees", expiration_duration=timedelta(days=9)
            )
            for p in packages
        ]
    )
    policy_stages = ApprovalStage.objects.bulk_create(
        [ApprovalStage(policy=p, sequence=1) for p in policies]
    )
    rita = UserFactory()
    now = timezone.now()
    requests = AssignmentRequest.objects.bulk_create(
        [
            AssignmentRequest(
                access_package=p,
                assignment_policy=policy,
                target=rita,
                requestor=rita,
                request_type=RequestType.USER_ADD,
                # Approved and waiting for its start: the approval can still be revoked.
                state=RequestState.SCHEDULED if decided else RequestState.PENDING_APPROVAL,
            )
            for p, policy in zip(packages, policies, strict=True)
        ]
    )
    stages = RequestApprovalStage.objects.bulk_create(
        [
            RequestApprovalStage(
                request=r,
                policy_stage=s,
                sequence=1,
                status=StageStatus.COMPLETED if decided else StageStatus.IN_PROGRESS,
                review_result=ReviewResult.APPROVED if decided else ReviewResult.NOT_REVIEWED,
                reviewed_by=ben if decided else None,
                reviewed_datetime=now if decided else None,
                opened_datetime=now,
                deadline=now + timedelta(days=14),
            )
            for r, s in zip(requests, policy_stages, strict=True)
        ]
    )
    StageApprover.objects.bulk_create(
        [StageApprover(stage=s, user=ann, kind=StageApprover.Kind.PRIMARY) for s in stages]
        + [
            StageApprover(
                stage=s,
                user=ben,
                kind=StageApprover.Kind.PRIMARY,
                on_behalf_of=ann,
                decision=ReviewResult.APPROVED if decided else ReviewResult.NOT_REVIEWED,
                decided_datetime=now if decided else None,
            )
            for s in stages
        ]
    )


@pytest.fixture(params=[2, 40], ids=["2 rows", "40 rows"])
def rows(request):
    return request.param


def test_the_approvals_tab_with_delegated_items_runs_a_fixed_number_of_queries(
    client, ann, ben, rows, django_assert_max_num_queries
):
    stages_on_behalf_of(ann, ben, rows)
    client.force_login(ben)

    with django_assert_max_num_queries(APPROVALS_QUERIES):
        response = client.get(reverse("myaccess:approvals"))

    assert response.content.decode().count("On behalf of Ann Example") == min(rows, 25)


def test_the_history_with_revocable_approvals_runs_a_fixed_number_of_queries(
    client, ann, ben, rows, django_assert_max_num_queries
):
    stages_on_behalf_of(ann, ben, rows, decided=True)
    client.force_login(ben)

    with django_assert_max_num_queries(HISTORY_QUERIES):
        response = client.get(reverse("myaccess:approval_history"))

    assert len(response.context["page"].object_list) == min(rows, 25)
    page = response.content.decode()
    revoke_links = [
        row.pk
        for row in StageApprover.objects.filter(user=ben)
        if f'href="{reverse("myaccess:approval_revoke", args=[row.pk])}"' in page
    ]
    assert len(revoke_links) == min(rows, 25)
    assert page.count("on behalf of Ann Example</span>") == min(rows, 25)


def test_the_delegation_page_runs_a_fixed_number_of_queries(
    client, ann, ben, rows, django_assert_max_num_queries
):
    now = timezone.now()
    ApprovalDelegation.objects.bulk_create(
        [
            ApprovalDelegation(
                delegator=ann,
                delegate=UserFactory() if n else ben,
                start=now + timedelta(days=2 * n),
                end=now + timedelta(days=2 * n + 1),
            )
            for n in range(rows)
        ]
    )
    client.force_login(ann)

    with django_assert_max_num_queries(DELEGATION_QUERIES):
        response = client.get(reverse("myaccess:approval_delegation"))

    assert len(response.context["delegations"]) == rows
