"""Separation of duties: open requests count, both directions count, and approval and
delivery check again, so two incompatible packages never both reach one person."""

import threading

import pytest
from django.db import connection, transaction

from approvals.models import ReviewResult, StageStatus
from approvals.services import stage_decide
from directory.models import GroupMembership
from entitlements import selectors
from entitlements.errors import NotEligible
from entitlements.models import (
    AccessPackage,
    Assignment,
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    Channel,
    RequestState,
    RequestType,
)
from entitlements.services.delivery import assignment_deliver
from entitlements.services.fulfilment import request_fulfil
from entitlements.services.requests import request_submit, requests_admin_add
from tests.factories import GroupFactory, UserFactory, add_member
from tests.foundation.admin_support import admin_url
from tests.lifecycle.requests_setup import (
    approval_policy,
    give_assignment,
    package_with_roles,
)
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


def submit(user, policy):
    return request_submit(actor=user, target=user, access_package=policy.access_package)


def approve(approver, request):
    stage = request.approval_stages.get(sequence=1)
    return stage_decide(
        actor=approver, stage=stage, decision=ReviewResult.APPROVED, channel=Channel.PORTAL
    )


@pytest.fixture
def pair(approver):
    """Two packages needing approval, "Initiate payments" listing "Approve payments"."""
    initiate = approval_policy(
        package=package_with_roles(display_name="Initiate payments"), approvers=[approver]
    )
    approve_ = approval_policy(
        package=package_with_roles(display_name="Approve payments"), approvers=[approver]
    )
    initiate.access_package.incompatible_access_packages.add(approve_.access_package)
    return initiate, approve_


# --- the gate -------------------------------------------------------------------------


def test_a_pending_request_for_an_incompatible_package_blocks_a_new_request(requester, pair):
    initiate, approve_ = pair
    submit(requester, approve_)

    result = selectors.eligibility(user=requester, access_package=initiate.access_package)

    assert result.reasons == [
        "This access package is incompatible with the access package Approve payments, "
        "which you have already requested (separation of duties)."
    ]
    with pytest.raises(NotEligible, match="which you have already requested"):
        submit(requester, initiate)


def test_the_incompatibility_blocks_in_both_directions_whichever_package_lists_it(requester, pair):
    initiate, approve_ = pair
    submit(requester, initiate)  # the package that lists the other

    # Approve payments lists nothing, yet a pending Initiate payments blocks it too.
    with pytest.raises(NotEligible) as refused:
        submit(requester, approve_)

    assert str(refused.value) == (
        "This access package is incompatible with the access package Initiate payments, "
        "which you have already requested (separation of duties)."
    )


def test_holding_the_package_that_lists_the_incompatibility_blocks_the_other_one(requester, pair):
    initiate, approve_ = pair
    give_assignment(requester, initiate.access_package)

    result = selectors.eligibility(user=requester, access_package=approve_.access_package)

    assert result.reasons == [
        "This access package is incompatible with the access package Initiate payments, "
        "which you already have (separation of duties)."
    ]


def test_a_direct_assignment_is_refused_while_an_incompatible_request_is_open(
    admin_user, requester, pair
):
    initiate, approve_ = pair
    submit(requester, approve_)

    result = requests_admin_add(
        actor=admin_user,
        targets=[requester],
        access_package=initiate.access_package,
        policy=initiate,
    )

    assert result.refused == [
        (
            requester,
            "This access package is incompatible with the access package Approve payments, "
            "which has already been requested for Rita Requester (separation of duties).",
        )
    ]


def test_a_closed_request_for_an_incompatible_package_does_not_block(approver, requester, pair):
    initiate, approve_ = pair
    request = submit(requester, approve_)
    stage_decide(
        actor=approver,
        stage=request.approval_stages.get(),
        decision=ReviewResult.DENIED,
        channel=Channel.PORTAL,
    )

    assert selectors.eligibility(user=requester, access_package=initiate.access_package).can_request


# --- approval -------------------------------------------------------------------------


def test_approving_a_request_that_conflicts_with_access_given_meanwhile_denies_it(
    approver, requester, pair
):
    initiate, approve_ = pair
    # Both were asked for before anyone made the packages incompatible.
    initiate.access_package.incompatible_access_packages.clear()
    first, second = submit(requester, initiate), submit(requester, approve_)
    initiate.access_package.incompatible_access_packages.add(approve_.access_package)
    approve(approver, first)

    with pytest.raises(NotEligible) as refused:
        approve(approver, second)

    reason = (
        "This access package is incompatible with the access package Initiate payments, "
        "which Rita Requester already has (separation of duties)."
    )
    assert str(refused.value) == f"This request cannot be approved, so it was denied: {reason}"
    second.refresh_from_db()
    assert (second.state, second.status) == (RequestState.DENIED, "Denied")
    assert second.assignment is None
    stage = second.approval_stages.get()
    assert (stage.status, stage.reviewed_by) == (StageStatus.CANCELED, None)
    assert AuditEvent.objects.filter(request=second, action="request.deny", reason=reason).exists()
    assert not Assignment.objects.filter(access_package=approve_.access_package).exists()


def test_two_pending_incompatible_requests_do_not_block_each_others_approval(
    approver, requester, pair
):
    initiate, approve_ = pair
    initiate.access_package.incompatible_access_packages.clear()
    first, _second = submit(requester, initiate), submit(requester, approve_)
    initiate.access_package.incompatible_access_packages.add(approve_.access_package)

    approve(approver, first)

    first.refresh_from_db()
    assert first.state == RequestState.DELIVERING  # delivered on commit
    assert first.assignment is not None


# --- delivery -------------------------------------------------------------------------


def _fulfilled(user, policy):
    """An approved request and its assignment, not yet delivered."""
    request = AssignmentRequest.objects.create(
        access_package=policy.access_package,
        assignment_policy=policy,
        requestor=user,
        target=user,
        request_type=RequestType.USER_ADD,
        state=RequestState.PENDING_APPROVAL,
    )
    with transaction.atomic():
        assignment = request_fulfil(
            request=AssignmentRequest.objects.select_for_update().get(pk=request.pk),
            now=request.created,
        )
    return request, assignment


def test_delivery_refuses_an_assignment_that_conflicts_with_one_already_delivered(requester, pair):
    initiate, approve_ = pair
    first_request, first = _fulfilled(requester, initiate)
    second_request, second = _fulfilled(requester, approve_)

    assignment_deliver(assignment_id=first.pk)
    outcome = assignment_deliver(assignment_id=second.pk)

    reason = (
        "This access package is incompatible with the access package Initiate payments, "
        "which Rita Requester already has (separation of duties)."
    )
    first.refresh_from_db(), second.refresh_from_db(), second_request.refresh_from_db()
    assert first.state == AssignmentState.DELIVERED
    assert (outcome.ok, second.state) == (True, AssignmentState.EXPIRED)
    assert (second_request.state, second_request.status) == (RequestState.DENIED, "Denied")
    assert AuditEvent.objects.filter(
        request=second_request, action="request.deny", reason=reason
    ).exists()
    approve_group = approve_.access_package.resource_role_scopes.get().role.resource.group
    assert not GroupMembership.objects.filter(group=approve_group, user=requester).exists()
    assert set(second.grants.values_list("state", flat=True)) == {"removed"}


def test_delivery_goes_ahead_when_the_incompatible_assignment_delivered_nothing_yet(
    requester, pair
):
    initiate, approve_ = pair
    _fulfilled(requester, initiate)
    _request, second = _fulfilled(requester, approve_)

    # The first delivered to run wins; the other is refused when its turn comes.
    assert assignment_deliver(assignment_id=second.pk).state == AssignmentState.DELIVERED


# --- at the same moment -----------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_incompatible_requests_approved_at_the_same_moment_deliver_exactly_one():
    require_postgres()
    approver, requester = UserFactory(), UserFactory()
    initiate = approval_policy(package=package_with_roles(), approvers=[approver])
    approve_ = approval_policy(package=package_with_roles(), approvers=[approver])
    requests = [submit(requester, initiate), submit(requester, approve_)]
    # Made incompatible while both wait for approval.
    initiate.access_package.incompatible_access_packages.add(approve_.access_package)

    barrier = threading.Barrier(2)
    approved, refused, errors = [], [], []

    def click(request):
        try:
            barrier.wait(timeout=30)
            approved.append(approve(approver, request))
        except NotEligible as exc:
            refused.append(exc)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert (errors, len(approved), len(refused)) == ([], 1, 1)
    states = sorted(
        AssignmentRequest.objects.filter(pk__in=[r.pk for r in requests]).values_list(
            "state", flat=True
        )
    )
    assert states == [RequestState.DELIVERED, RequestState.DENIED]
    assert Assignment.objects.filter(target=requester, state=AssignmentState.DELIVERED).count() == 1


# --- the admin page ---------------------------------------------------------------------


def test_the_package_admin_page_lists_the_people_already_in_conflict(client, admin_user, pair):
    initiate, approve_ = pair
    both, only_one = UserFactory(display_name="Bea Both"), UserFactory(display_name="Oli One")
    give_assignment(both, initiate.access_package)
    give_assignment(both, approve_.access_package)
    give_assignment(only_one, initiate.access_package)
    auditors = GroupFactory(display_name="Auditors")
    approve_.access_package.incompatible_groups.add(auditors)
    add_member(auditors, both)
    client.force_login(admin_user)

    # On both packages' pages, whichever of the two lists the incompatibility.
    pages = [
        client.get(admin_url(AccessPackage, "change", p.pk)).content.decode()
        for p in (initiate.access_package, approve_.access_package)
    ]

    assert "1 person has this package and something incompatible with it:" in pages[0]
    assert f"Bea Both &lt;{both.email}&gt;: the access package Approve payments</li>" in pages[0]
    assert (
        f"Bea Both &lt;{both.email}&gt;: the access package Initiate payments and the group "
        "Auditors</li>"
    ) in pages[1]
    assert "Oli One" not in pages[0] + pages[1]


def test_package_conflicts_takes_one_query_however_many_people_are_in_conflict(
    pair, django_assert_num_queries
):
    initiate, approve_ = pair
    for _ in range(5):
        user = UserFactory()
        give_assignment(user, initiate.access_package)
        give_assignment(user, approve_.access_package)
    package = AccessPackage.objects.get(pk=initiate.access_package.pk)

    with django_assert_num_queries(1):
        people, total = selectors.package_conflicts(access_package=package, limit=3)

    assert (len(people), total) == (3, 5)
