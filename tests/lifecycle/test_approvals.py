"""Deciding approval stages, their deadlines and escalation, and the approvers' lists."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import selectors, tasks
from approvals.models import ReviewResult, StageApprover, StageStatus
from approvals.services import stage_decide, stages_decide, stages_escalate_due, stages_expire_due
from approvals.signals import stage_decided, stage_escalated
from entitlements.errors import InvalidRequest, PermissionDenied, StateConflict
from entitlements.models import ApprovalStage, AuditEvent, Channel, RequestState
from entitlements.services.requests import request_cancel, request_submit
from entitlements.signals import request_denied, request_expired
from tests.factories import GroupFactory, PolicyFactory, UserFactory, add_approver, add_member
from tests.lifecycle.requests_setup import (
    approval_policy,
    give_assignment,
    package_with_roles,
    stage_of,
)

pytestmark = pytest.mark.django_db

APPROVE, DENY = ReviewResult.APPROVED, ReviewResult.DENIED


@pytest.fixture
def received():
    """received(signal) -> the list of keyword arguments the signal is sent with."""
    listeners = []

    def listen(signal):
        calls = []

        def receive(sender, **kwargs):
            calls.append(kwargs)

        signal.connect(receive, weak=False)
        listeners.append((signal, receive))
        return calls

    yield listen
    for signal, receive in listeners:
        signal.disconnect(receive)


def submitted(requester, policy, **kw):
    return request_submit(
        actor=requester, target=requester, access_package=policy.access_package, **kw
    )


def decide(actor, request, decision=APPROVE, sequence=1, **kw):
    kw.setdefault("channel", Channel.PORTAL)
    stage = request.approval_stages.get(sequence=sequence)
    return stage_decide(actor=actor, stage=stage, decision=decision, **kw)


def refreshed(obj):
    obj.refresh_from_db()
    return obj


# --- deciding ---------------------------------------------------------------------------


def test_approving_the_only_stage_sends_the_request_to_delivery(requester, approver):
    request = submitted(requester, approval_policy(approvers=[approver]))

    stage = decide(approver, request, justification="Fine", channel=Channel.EMAIL)

    assert (stage.status, stage.review_result, stage.reviewed_by) == (
        "completed",
        APPROVE,
        approver,
    )
    assert stage.channel == Channel.EMAIL
    assert refreshed(request).state == RequestState.DELIVERING
    assert request.assignment.target == requester


def test_the_first_denial_ends_the_request(
    requester, approver, received, django_capture_on_commit_callbacks
):
    request = submitted(requester, approval_policy(approvers=[approver], stages=2))
    denied = received(request_denied)

    with django_capture_on_commit_callbacks(execute=True):
        decide(approver, request, DENY, justification="Not for contractors")

    request = refreshed(request)
    assert (request.state, request.status) == ("denied", "Denied")
    assert request.approval_stages.count() == 1
    assert denied[0]["reason"] == "Not for contractors"
    assert denied[0]["stage"].sequence == 1


def test_approving_stage_one_opens_stage_two_with_its_own_approvers(requester, approver):
    second = UserFactory(display_name="Sam Second")
    policy = approval_policy(approvers=[approver])
    stage_two = ApprovalStage.objects.create(
        policy=policy, sequence=2, is_approver_justification_required=False
    )
    add_approver(stage_two, user=second)
    request = submitted(requester, policy)

    decide(approver, request)

    assert refreshed(request).state == RequestState.PENDING_APPROVAL
    opened = request.approval_stages.get(sequence=2)
    assert opened.status == StageStatus.IN_PROGRESS
    assert [a.user for a in opened.approvers.all()] == [second]
    decide(second, request, sequence=2)
    assert refreshed(request).state == RequestState.DELIVERING


def test_an_approved_request_starting_later_waits_scheduled(requester, approver):
    policy = approval_policy(approvers=[approver], allow_custom_assignment_schedule=True)
    now = timezone.now()
    request = submitted(requester, policy, schedule_start=now + timedelta(days=2), now=now)

    decide(approver, request, now=now + timedelta(hours=1))

    assert (refreshed(request).state, request.status) == ("scheduled", "PendingNotBefore")


def test_it_refuses_a_second_decision_on_the_same_stage(requester, approver, settings):
    settings.TIME_ZONE = "Europe/Paris"
    colleague = UserFactory()
    decided_at = datetime(2030, 1, 15, 9, 30, tzinfo=UTC)
    with time_machine.travel(decided_at - timedelta(hours=1), tick=False):
        request = submitted(requester, approval_policy(approvers=[approver, colleague]))
    decide(approver, request, now=decided_at)

    with pytest.raises(StateConflict) as error:
        decide(colleague, request, DENY, now=decided_at + timedelta(minutes=1))

    assert str(error.value) == (
        "This stage was already approved by Arno Approver at 2030-01-15 10:30 CET."
    )
    assert AuditEvent.objects.filter(action__in=["stage.approve", "stage.deny"]).count() == 1


def test_someone_who_is_not_an_approver_cannot_decide(requester, approver, outsider):
    request = submitted(requester, approval_policy(approvers=[approver]))

    with pytest.raises(PermissionDenied, match="not an approver"):
        decide(outsider, request)


def test_the_person_the_access_is_for_never_decides_even_in_the_approver_group(requester):
    team = GroupFactory()
    colleague = UserFactory()
    for person in (requester, colleague):
        add_member(team, person)
    policy = approval_policy()
    add_approver(stage_of(policy), subject_type="groupMembers", group=team)
    request = submitted(requester, policy)
    stage = request.approval_stages.get()
    # Even a row naming them (an approver list edited by hand) does not let them decide.
    StageApprover.objects.create(stage=stage, user=requester, kind="primary")

    with pytest.raises(PermissionDenied, match="your own request"):
        decide(requester, request)
    assert not selectors.can_decide(user=requester, stage=stage)
    assert selectors.can_decide(user=colleague, stage=stage)


def test_a_stage_requiring_a_reason_refuses_a_decision_without_one(requester, approver):
    policy = approval_policy(approvers=[approver])
    policy.approval_stages.update(is_approver_justification_required=True)
    request = submitted(requester, policy)

    with pytest.raises(InvalidRequest) as error:
        decide(approver, request, justification=" ")
    assert error.value.field == "justification"


def test_a_canceled_request_can_no_longer_be_decided(requester, approver):
    request = submitted(requester, approval_policy(approvers=[approver]))
    request_cancel(actor=requester, request=request, channel=Channel.PORTAL)

    with pytest.raises(StateConflict, match="closed before anyone decided"):
        decide(approver, request)


def test_every_decision_is_audited_with_its_channel(requester, approver, received):
    request = submitted(requester, approval_policy(approvers=[approver]))

    decide(approver, request, channel=Channel.EMAIL, justification="ok")

    event = AuditEvent.objects.get(action="stage.approve")
    assert (event.actor, event.channel, event.reason) == (approver, Channel.EMAIL, "ok")
    assert (event.before, event.after, event.request) == ("inProgress", "completed", request)


def test_the_decision_is_announced_on_commit(
    requester, approver, received, django_capture_on_commit_callbacks
):
    request = submitted(requester, approval_policy(approvers=[approver]))
    decided = received(stage_decided)

    with django_capture_on_commit_callbacks(execute=True):
        stage = decide(approver, request)

    assert decided == [{"signal": stage_decided, "stage": stage}]


# --- deadlines and escalation -------------------------------------------------------------


def escalating_policy(approver, escalation_to=(), fallback_to=()):
    policy = approval_policy(approvers=[approver])
    ApprovalStage.objects.filter(policy=policy).update(
        duration_before_automatic_denial=timedelta(days=14),
        is_escalation_enabled=True,
        duration_before_escalation=timedelta(days=3),
    )
    for person in escalation_to:
        add_approver(stage_of(policy), purpose="escalationApprover", user=person)
    for person in fallback_to:
        add_approver(stage_of(policy), purpose="fallbackEscalationApprover", user=person)
    return policy


def test_a_stage_gets_its_deadline_and_escalation_time_when_it_opens(requester, approver):
    now = timezone.now()
    request = submitted(requester, escalating_policy(approver), now=now)

    stage = request.approval_stages.get()

    assert stage.opened_datetime == now
    assert stage.deadline == now + timedelta(days=14)
    assert stage.escalation_datetime == now + timedelta(days=3)


def test_escalation_adds_the_escalation_approvers_and_the_primary_can_still_decide(
    requester, approver, received, django_capture_on_commit_callbacks
):
    boss = UserFactory(display_name="Bea Boss")
    now = timezone.now()
    request = submitted(requester, escalating_policy(approver, escalation_to=[boss]), now=now)
    escalated = received(stage_escalated)

    assert stages_escalate_due(now=now + timedelta(days=3) - timedelta(seconds=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert stages_escalate_due(now=now + timedelta(days=3)) == 1
    assert stages_escalate_due(now=now + timedelta(days=4)) == 0

    stage = request.approval_stages.get()
    assert stage.status == StageStatus.ESCALATED
    assert refreshed(request).status == "PendingApprovalEscalated"
    kinds = dict(stage.approvers.values_list("user__display_name", "kind"))
    assert kinds == {"Arno Approver": "primary", "Bea Boss": "escalation"}
    assert escalated[0]["approvers"] == [boss]
    assert selectors.pending_stages_for(user=boss).get() == stage
    decide(approver, request)
    assert refreshed(request).state == RequestState.DELIVERING


def test_escalation_falls_back_when_no_escalation_approver_resolves(requester, approver):
    fallback = UserFactory()
    now = timezone.now()
    policy = escalating_policy(approver, fallback_to=[fallback])
    add_approver(
        stage_of(policy),
        purpose="escalationApprover",
        subject_type="requestorManager",
        manager_level=2,
    )
    request = submitted(requester, policy, now=now)

    stages_escalate_due(now=now + timedelta(days=3))

    stage = request.approval_stages.get()
    assert stage.approvers.get(kind="fallbackEscalation").user == fallback


def test_an_undecided_stage_expires_at_its_deadline_and_denies_the_request(
    requester, approver, received, django_capture_on_commit_callbacks
):
    now = timezone.now()
    request = submitted(requester, escalating_policy(approver), now=now)
    expired = received(request_expired)

    assert stages_expire_due(now=now + timedelta(days=14) - timedelta(seconds=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert stages_expire_due(now=now + timedelta(days=14)) == 1
    assert stages_expire_due(now=now + timedelta(days=15)) == 0

    request = refreshed(request)
    assert (request.state, request.status) == ("denied", "Expired")
    assert request.approval_stages.get().status == StageStatus.EXPIRED
    assert expired == [{"signal": request_expired, "request": request}]
    with pytest.raises(StateConflict, match="Nobody decided this stage in time"):
        decide(approver, request)


def test_the_periodic_tasks_run_the_due_work(requester, approver):
    start = timezone.now()
    request = submitted(requester, escalating_policy(approver), now=start)

    with time_machine.travel(start + timedelta(days=3, minutes=1), tick=False):
        tasks.escalate_due_stages()
    assert request.approval_stages.get().status == StageStatus.ESCALATED
    with time_machine.travel(start + timedelta(days=14, minutes=1), tick=False):
        tasks.expire_due_stages()
    assert refreshed(request).status == "Expired"
    assert tasks.start_due_requests() == 0


# --- lists ----------------------------------------------------------------------------


def test_pending_stages_lists_open_stages_where_the_user_is_an_approver(requester, approver):
    mine = submitted(requester, approval_policy(approvers=[approver]))
    someone = UserFactory()
    submitted(someone, approval_policy(approvers=[UserFactory()]))
    decided = submitted(UserFactory(), approval_policy(approvers=[approver]))
    decide(approver, decided)

    assert [s.request for s in selectors.pending_stages_for(user=approver)] == [mine]
    assert [s.request for s in selectors.decisions_by(user=approver)] == [decided]
    assert not selectors.pending_stages_for(user=requester).exists()


# --- query counts -----------------------------------------------------------------------


def last_approval_queries(approver, roles):
    policy = approval_policy(package_with_roles(roles=roles), approvers=[approver])
    request = submitted(UserFactory(), policy)
    stage = request.approval_stages.get()
    with CaptureQueriesContext(connection) as queries:
        stage_decide(actor=approver, stage=stage, decision=APPROVE, channel=Channel.PORTAL)
    return len(queries)


def test_decide_queries_grow_by_at_most_one_per_role_and_not_with_the_data(
    approver, django_assert_max_num_queries
):
    one_role = last_approval_queries(approver, 1)
    ten_roles = last_approval_queries(approver, 10)
    assert ten_roles - one_role <= 10

    people = [UserFactory() for _ in range(100)]
    for n in range(100):
        policy = PolicyFactory()
        give_assignment(people[n], policy.access_package, policy)
    for person in people[:20]:
        submitted(person, approval_policy(approvers=[approver]))

    request = submitted(UserFactory(), approval_policy(approvers=[approver]))
    stage = request.approval_stages.get()
    with django_assert_max_num_queries(one_role):
        stage_decide(actor=approver, stage=stage, decision=APPROVE, channel=Channel.PORTAL)


def test_a_decision_after_the_deadline_is_refused_before_the_expiry_job_runs(requester, approver):
    now = timezone.now()
    request = submitted(requester, escalating_policy(approver), now=now)

    with pytest.raises(StateConflict, match="The time to decide on this request ended"):
        decide(approver, request, now=now + timedelta(days=14, seconds=1))

    stage = request.approval_stages.get()
    assert stage.review_result == ReviewResult.NOT_REVIEWED
    assert not selectors.pending_stages_for(user=approver, now=now + timedelta(days=14, seconds=1))


def test_approval_after_the_requested_period_ended_denies_instead_of_delivering(
    requester, approver
):
    now = timezone.now()
    policy = approval_policy(approvers=[approver], allow_custom_assignment_schedule=True)
    request = submitted(
        requester,
        policy,
        justification="Weekend migration",
        schedule_start=now + timedelta(minutes=5),
        schedule_end=now + timedelta(hours=8),
        now=now,
    )

    decide(approver, request, now=now + timedelta(days=2))

    request = refreshed(request)
    assert (request.state, request.status) == ("denied", "Expired")
    assert request.assignment is None


def test_a_bulk_decision_decides_what_it_may_and_says_why_it_refused_the_rest(requester, approver):
    colleague = UserFactory()
    strict = approval_policy(approvers=[approver])
    strict.approval_stages.update(is_approver_justification_required=True)
    lenient = approval_policy(approvers=[approver])
    refused_request = submitted(requester, strict)
    decided_request = submitted(colleague, lenient)
    stages = [stage_of(strict), stage_of(lenient)]
    stages = [s.request_stages.get() for s in stages]

    result = stages_decide(actor=approver, stages=stages, decision=APPROVE, channel=Channel.PORTAL)

    assert [s.request_id for s in result.done] == [decided_request.pk]
    assert [(s.request_id, m) for s, m in result.refused] == [
        (refused_request.pk, "Give a reason for your decision.")
    ]
    assert refreshed(refused_request).state == RequestState.PENDING_APPROVAL
