"""People brought into a quorum stage after it opened (a leaver's stand-ins, a new manager)
count for the entries they come from, and a quorum nobody can meet any more is rerouted."""

import pytest

from approvals.models import StageApprover, StageStatus
from approvals.services import approvals_reresolve_managers, approvals_reroute_from
from entitlements.models import QuorumMode, RequestState, SubjectType
from tests.approvals_quorum.setup import decide, group_of, quorum_policy, submitted
from tests.factories import UserFactory, add_approver, add_member

pytestmark = pytest.mark.django_db


def leaves(person):
    person.is_active = False
    person.save(update_fields=["is_active"])
    return approvals_reroute_from(user=person)


def new_manager_of(person, name="New manager"):
    person.manager = UserFactory(display_name=name)
    person.save(update_fields=["manager"])
    approvals_reresolve_managers(target_ids=[person.pk])
    return person.manager


def security_and_manager_policy(sam):
    policy = quorum_policy(groups=[group_of("Security", sam)])
    add_approver(policy.approval_stages.get(), subject_type=SubjectType.TARGET_MANAGER)
    return policy


def test_a_new_manager_alone_does_not_complete_a_one_from_each_stage(requester, manager):
    sam = UserFactory(display_name="Sam")
    request = submitted(requester, security_and_manager_policy(sam))

    new_manager = new_manager_of(requester)
    stage = decide(new_manager, request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.IN_PROGRESS
    assert StageApprover.objects.get(user=new_manager).approver_set_ids != []
    stage = decide(sam, request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_re_resolving_the_manager_keeps_the_old_managers_approval(requester, manager):
    sam = UserFactory(display_name="Sam")
    request = submitted(requester, security_and_manager_policy(sam))
    decide(manager, request)

    new_manager_of(requester)

    stage = request.approval_stages.get()
    assert StageApprover.objects.get(stage=stage, user=manager).decision == "Approved"
    stage = decide(sam, request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_people_rerouted_to_stand_in_for_leavers_count_only_for_their_own_entry(requester):
    sam, dora = UserFactory(display_name="Sam"), UserFactory(display_name="Dora")
    security, data = group_of("Security", sam), group_of("Data", dora)
    request = submitted(requester, quorum_policy(groups=[security, data]))
    sam2, dee = UserFactory(display_name="Sam2"), UserFactory(display_name="Dee")
    add_member(security, sam2)
    add_member(data, dee)

    leaves(sam)
    leaves(dora)
    stage = decide(sam2, request)

    stage.refresh_from_db()
    assert stage.status == StageStatus.IN_PROGRESS
    stage = decide(dee, request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_when_a_leaver_was_the_only_one_for_an_entry_the_new_members_are_asked(requester):
    sam, dora = UserFactory(display_name="Sam"), UserFactory(display_name="Dora")
    security = group_of("Security", sam)
    request = submitted(requester, quorum_policy(groups=[security, group_of("Data", dora)]))
    sam2 = UserFactory(display_name="Sam2")
    add_member(security, sam2)

    leaves(sam)

    assert StageApprover.objects.filter(user=sam2, stage__request=request).exists()
    decide(dora, request)
    stage = decide(sam2, request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_when_nobody_is_left_for_an_entry_the_fallback_approvers_are_asked(requester):
    sam, dora, fay = (UserFactory(display_name=n) for n in ("Sam", "Dora", "Fay"))
    policy = quorum_policy(groups=[group_of("Security", sam), group_of("Data", dora)])
    add_approver(policy.approval_stages.get(), user=fay, purpose="fallbackPrimaryApprover")
    request = submitted(requester, policy)

    leaves(sam)

    request.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL
    assert StageApprover.objects.get(user=fay).kind == "fallbackPrimary"
    stage = decide(fay, request)
    stage.refresh_from_db()
    assert stage.status == StageStatus.COMPLETED


def test_when_nobody_can_stand_in_for_an_entry_the_request_is_denied(requester):
    sam, dora = UserFactory(display_name="Sam"), UserFactory(display_name="Dora")
    request = submitted(
        requester, quorum_policy(groups=[group_of("Security", sam), group_of("Data", dora)])
    )

    leaves(sam)

    request.refresh_from_db()
    assert (request.state, request.status) == (RequestState.DENIED, "NoApprovers")


def test_a_leaver_of_a_two_of_three_stage_with_two_left_changes_nothing_else(requester):
    sam, sue, dora = UserFactory(), UserFactory(), UserFactory()
    request = submitted(
        requester, quorum_policy(users=[sam, sue, dora], mode=QuorumMode.SOME_OF, count=2)
    )

    leaves(sam)

    request.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL
    assert set(StageApprover.objects.values_list("user", flat=True)) == {sue.pk, dora.pk}
