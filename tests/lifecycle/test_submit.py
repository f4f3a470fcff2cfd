"""Submitting, extending, cancelling and starting requests."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import StageApprover, StageStatus
from approvals.signals import stage_opened
from directory.models import User
from entitlements.errors import InvalidRequest, NotEligible, PermissionDenied, StateConflict
from entitlements.models import (
    AdminRole,
    Assignment,
    AssignmentRequest,
    AssignmentState,
    AuditEvent,
    Channel,
    QuestionChoice,
    RequestState,
    RequestType,
    RoleAssignment,
)
from entitlements.selectors import Gate
from entitlements.services.requests import (
    request_cancel,
    request_extend,
    request_submit,
    requests_admin_add,
    requests_start_due,
)
from entitlements.signals import request_canceled, request_submitted
from tests.factories import (
    ApprovalStageFactory,
    ConnectedOrganizationFactory,
    GroupFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
    add_member,
    add_subject,
)
from tests.lifecycle.requests_setup import (
    approval_policy,
    give_assignment,
    open_policy,
    package_with_roles,
    stage_of,
)

pytestmark = pytest.mark.django_db


def submit(actor, policy, **kw):
    kw.setdefault("target", actor)
    return request_submit(actor=actor, access_package=policy.access_package, **kw)


def approvers_of(request, sequence=1):
    stage = request.approval_stages.get(sequence=sequence)
    return sorted(a.user.display_name for a in stage.approvers.all())


def actions(request):
    """The audit events of a request, as a set: one service call writes them at one time."""
    return set(AuditEvent.objects.filter(request=request).values_list("action", "before", "after"))


class Received:
    """Collects what a signal sent."""

    def __init__(self, signal):
        self.calls = []
        signal.connect(self.receive, weak=False)
        self.signal = signal

    def receive(self, sender, **kwargs):
        self.calls.append(kwargs)

    def close(self):
        self.signal.disconnect(self.receive)


@pytest.fixture
def received():
    opened = []

    def listen(signal):
        r = Received(signal)
        opened.append(r)
        return r.calls

    yield listen
    for r in opened:
        r.close()


# --- outcomes ---------------------------------------------------------------------------


def test_a_request_without_approval_goes_straight_to_delivery(requester):
    policy = open_policy(package_with_roles(roles=2))

    request = submit(requester, policy)

    assert request.state == RequestState.DELIVERING
    assignment = Assignment.objects.get(target=requester)
    assert assignment.grants.count() == 2
    assert ("request.submit", "", "submitted") in actions(request)


def test_a_request_needing_approval_waits_with_stage_one_open(requester, approver, received):
    policy = approval_policy(approvers=[approver])
    submitted, opened = received(request_submitted), received(stage_opened)

    with mock.patch("entitlements.services.requests.request_fulfil") as fulfil:
        request = submit(requester, policy)

    fulfil.assert_not_called()
    request.refresh_from_db()
    assert (request.state, request.status) == ("pendingApproval", "PendingApproval")
    stage = request.approval_stages.get()
    assert stage.status == StageStatus.IN_PROGRESS
    assert approvers_of(request) == ["Arno Approver"]
    assert actions(request) == {
        ("request.submit", "", "submitted"),
        ("request.await_approval", "submitted", "pendingApproval"),
        ("stage.open", "notStarted", "inProgress"),
    }
    assert submitted == [] and opened == []  # only on commit


def test_signals_go_out_when_the_transaction_commits(
    requester, approver, received, django_capture_on_commit_callbacks
):
    policy = approval_policy(approvers=[approver])
    submitted, opened = received(request_submitted), received(stage_opened)

    with django_capture_on_commit_callbacks(execute=True):
        request = submit(requester, policy)

    assert submitted == [{"signal": request_submitted, "request": request}]
    assert opened[0]["approvers"] == [approver]


def test_a_request_starting_later_is_scheduled_and_started_when_due(requester):
    policy = open_policy(allow_custom_assignment_schedule=True)
    now = timezone.now()
    start = now + timedelta(days=3)

    request = submit(requester, policy, schedule_start=start, now=now)

    assert request.state == RequestState.SCHEDULED
    assert requests_start_due(now=start - timedelta(minutes=1)) == 0
    assert requests_start_due(now=start) == 1
    assert requests_start_due(now=start) == 0
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERING
    assert request.assignment.schedule_start == start


# --- refusals --------------------------------------------------------------------------


def test_it_refuses_a_second_request_for_the_same_package(requester, approver):
    policy = approval_policy(approvers=[approver])
    submit(requester, policy)

    with pytest.raises(StateConflict, match=r"open request for this access package \(yours"):
        submit(requester, policy)


def test_it_turns_the_database_constraint_into_a_state_conflict(requester, approver):
    policy = approval_policy(approvers=[approver])
    submit(requester, policy)

    # As if a concurrent submission had passed the checks before this one committed.
    with (
        mock.patch("entitlements.services.requests.package_gate", return_value=Gate()),
        mock.patch("entitlements.services.requests.self_eligibility") as checks,
    ):
        checks.return_value = (Gate(), mock.Mock(can_request=True, policies=[policy]))
        with pytest.raises(StateConflict, match="already an open request for this package"):
            submit(requester, policy)
    assert AssignmentRequest.objects.count() == 1


def test_it_refuses_someone_out_of_scope_with_the_reason(outsider):
    policy = open_policy(allowed_target_scope="specificDirectoryUsers")

    with pytest.raises(NotEligible, match="not in the scope"):
        submit(outsider, policy)


def test_it_refuses_a_request_for_someone_else_as_a_user_request(requester, outsider):
    policy = open_policy()

    with pytest.raises(PermissionDenied):
        submit(outsider, policy, target=requester)


def test_it_refuses_a_package_conflicting_with_access_held(requester):
    policy = open_policy()
    other = package_with_roles(display_name="Payments")
    policy.access_package.incompatible_access_packages.add(other)
    give_assignment(requester, other)

    with pytest.raises(NotEligible, match="incompatible with the access package Payments"):
        submit(requester, policy)


def test_it_asks_which_policy_when_several_apply(requester):
    package = package_with_roles()
    first = PolicyFactory(access_package=package, display_name="Short")
    PolicyFactory(access_package=package, display_name="Long")
    foreign = open_policy()

    with pytest.raises(InvalidRequest, match="Choose a policy: Long or Short") as error:
        request_submit(actor=requester, target=requester, access_package=package)
    assert error.value.field == "policy"
    with pytest.raises(InvalidRequest, match="belongs to another access package"):
        request_submit(actor=requester, target=requester, access_package=package, policy=foreign)
    chosen = request_submit(actor=requester, target=requester, access_package=package, policy=first)
    assert chosen.assignment_policy == first


def test_it_requires_a_justification_when_the_policy_does(requester):
    policy = open_policy(is_requestor_justification_required=True)

    with pytest.raises(InvalidRequest) as error:
        submit(requester, policy, justification="  ")
    assert error.value.field == "justification"
    assert submit(requester, policy, justification="Project X").justification == "Project X"


# --- answers ----------------------------------------------------------------------------


def test_it_requires_the_required_questions(requester):
    policy = open_policy()
    question = QuestionFactory(policy=policy, text="Which project?")

    with pytest.raises(InvalidRequest, match="Answer the question “Which project\\?”") as error:
        submit(requester, policy, answers={})
    assert error.value.field == f"answers.{question.pk}"


def test_a_text_answer_must_match_the_whole_pattern_and_fit_on_one_line(requester):
    policy = open_policy()
    question = QuestionFactory(policy=policy, regex_pattern=r"[A-Z]{3}-\d{4}")

    for wrong in ("ABC-12345", "xABC-1234", "ABC-1234\nmore"):
        with pytest.raises(InvalidRequest):
            submit(requester, policy, answers={question.pk: wrong})
    request = submit(requester, policy, answers={str(question.pk): "ABC-1234"})
    assert request.answers.get().value == "ABC-1234"


def test_a_long_text_answer_may_span_lines(requester):
    policy = open_policy()
    question = QuestionFactory(policy=policy, is_single_line_question=False)

    request = submit(requester, policy, answers={question.pk: "line one\nline two"})

    assert request.answers.get().display_value == "line one\nline two"


def choice_question(policy, multiple=False):
    question = QuestionFactory(
        policy=policy,
        question_type="multipleChoice",
        text="Which region?",
        is_multiple_selection_allowed=multiple,
    )
    for n, (value, text) in enumerate([("eu", "Europe"), ("us", "Americas")], start=1):
        QuestionChoice.objects.create(question=question, sequence=n, actual_value=value, text=text)
    return question


def test_a_choice_must_be_one_of_the_allowed_values_and_saves_its_text(requester):
    policy = open_policy()
    question = choice_question(policy)

    with pytest.raises(InvalidRequest, match="“asia” is not one of the answers"):
        submit(requester, policy, answers={question.pk: "asia"})
    with pytest.raises(InvalidRequest, match="Choose only one answer"):
        submit(requester, policy, answers={question.pk: ["eu", "us"]})
    answer = submit(requester, policy, answers={question.pk: "eu"}).answers.get()
    assert (answer.value, answer.display_value) == ("eu", "Europe")


def test_several_choices_are_accepted_when_the_question_allows_them(requester):
    policy = open_policy()
    question = choice_question(policy, multiple=True)

    answer = submit(requester, policy, answers={question.pk: ["us", "eu"]}).answers.get()

    assert answer.display_value == "Americas, Europe"


def test_an_answer_to_a_question_the_policy_does_not_ask_is_refused(requester):
    policy = open_policy()
    elsewhere = QuestionFactory()

    with pytest.raises(InvalidRequest, match="does not ask"):
        submit(requester, policy, answers={elsewhere.pk: "x"})


# --- schedule ---------------------------------------------------------------------------


def test_a_custom_period_needs_a_policy_that_allows_it(requester):
    policy = open_policy()

    with pytest.raises(InvalidRequest, match="does not let you choose") as error:
        submit(requester, policy, schedule_end=timezone.now() + timedelta(days=2))
    assert error.value.field == "schedule_end"


@pytest.mark.parametrize(
    "start, end, field",
    [
        (timedelta(minutes=-5), None, "schedule_start"),
        (timedelta(days=2), timedelta(days=1), "schedule_end"),
        (None, timedelta(days=31), "schedule_end"),
        (timedelta(days=2), timedelta(days=32, seconds=1), "schedule_end"),
    ],
)
def test_it_refuses_a_period_the_policy_does_not_allow(requester, start, end, field):
    policy = open_policy(allow_custom_assignment_schedule=True)  # 30 days at most
    now = timezone.now()

    with pytest.raises(InvalidRequest) as error:
        submit(
            requester,
            policy,
            schedule_start=start and now + start,
            schedule_end=end and now + end,
            now=now,
        )
    assert error.value.field == field


def test_a_start_a_few_seconds_ago_counts_as_now(requester):
    policy = open_policy(allow_custom_assignment_schedule=True)
    now = timezone.now()

    request = submit(requester, policy, schedule_start=now - timedelta(seconds=30), now=now)

    assert request.state == RequestState.DELIVERING


def test_an_end_after_the_policys_end_date_is_refused(requester):
    now = timezone.now()
    policy = open_policy(
        allow_custom_assignment_schedule=True,
        expiration_type="afterDateTime",
        expiration_end_datetime=now + timedelta(days=10),
    )

    with pytest.raises(InvalidRequest, match="choose an end no later than that"):
        submit(requester, policy, schedule_end=now + timedelta(days=11), now=now)
    assert submit(requester, policy, schedule_end=now + timedelta(days=10), now=now)


# --- on behalf and direct assignment ----------------------------------------------------


def on_behalf_policy(**kw):
    policy = approval_policy(enable_on_behalf_requestors_to_add_access=True, **kw)
    add_subject(policy, "onBehalfRequestor", "targetManager", manager_level=1)
    return policy


def test_a_manager_requests_for_a_direct_report(manager, requester):
    policy = on_behalf_policy()
    add_approver(stage_of(policy), subject_type="groupMembers", group=GroupFactory())
    add_approver(
        stage_of(policy),
        purpose="fallbackPrimaryApprover",
        user=UserFactory(display_name="Fred Fallback"),
    )

    request = request_submit(
        actor=manager,
        target=requester,
        access_package=policy.access_package,
        request_type=RequestType.ON_BEHALF_ADD,
    )

    assert (request.requestor, request.target) == (manager, requester)
    assert approvers_of(request) == ["Fred Fallback"]


def test_a_manager_cannot_request_for_someone_who_is_not_their_report(manager, outsider):
    policy = on_behalf_policy()

    with pytest.raises(PermissionDenied, match="on behalf of Otto Outsider"):
        request_submit(
            actor=manager,
            target=outsider,
            access_package=policy.access_package,
            request_type=RequestType.ON_BEHALF_ADD,
        )


def test_nobody_requests_on_behalf_when_the_policy_does_not_allow_it(manager, requester):
    policy = on_behalf_policy()
    policy.enable_on_behalf_requestors_to_add_access = False
    policy.save()

    with pytest.raises(PermissionDenied):
        request_submit(
            actor=manager,
            target=requester,
            access_package=policy.access_package,
            request_type=RequestType.ON_BEHALF_ADD,
        )


def test_an_admin_assigns_many_users_at_once_and_hears_why_some_were_refused(admin_user):
    policy = approval_policy(allowed_target_scope="notSpecified")
    package = policy.access_package
    holder, fresh, disabled = (
        UserFactory(display_name="Hal"),
        UserFactory(),
        UserFactory(is_active=False, display_name="Dora"),
    )
    give_assignment(holder, package, policy)

    result = requests_admin_add(
        actor=admin_user, targets=[holder, fresh, disabled], access_package=package, policy=policy
    )

    assert [r.target for r in result.done] == [fresh]
    assert result.done[0].request_type == RequestType.ADMIN_ADD
    assert result.done[0].state == RequestState.DELIVERING  # never through approval
    assert result.refused == [
        (holder, "Hal already has this access package."),
        (disabled, "Dora's account is disabled."),
    ]


def test_an_assignment_manager_of_the_catalog_may_assign_directly(catalog_owner):
    policy = open_policy()
    package = policy.access_package
    RoleAssignment.objects.create(
        principal=catalog_owner, catalog=package.catalog, role=AdminRole.CATALOG_OWNER
    )

    result = requests_admin_add(
        actor=catalog_owner, targets=[UserFactory()], access_package=package, policy=policy
    )

    assert result.ok


def test_someone_without_a_role_in_the_catalog_cannot_assign_directly(outsider):
    policy = open_policy()

    with pytest.raises(PermissionDenied):
        requests_admin_add(
            actor=outsider,
            targets=[UserFactory()],
            access_package=policy.access_package,
            policy=policy,
        )


def test_direct_assignment_still_enforces_separation_of_duties(admin_user, requester):
    policy = open_policy()
    auditors = GroupFactory(display_name="Auditors")
    policy.access_package.incompatible_groups.add(auditors)
    add_member(auditors, requester)

    result = requests_admin_add(
        actor=admin_user, targets=[requester], access_package=policy.access_package, policy=policy
    )

    assert result.refused == [
        (
            requester,
            "This access package is incompatible with the group Auditors, which "
            "Rita Requester already has (separation of duties).",
        )
    ]


# --- approvers --------------------------------------------------------------------------


def test_approvers_resolve_to_people_and_never_include_the_requestor(requester, manager):
    policy = approval_policy()
    stage = stage_of(policy)
    team = GroupFactory()
    for person in (requester, UserFactory(display_name="Gina Group"), UserFactory(is_active=False)):
        add_member(team, person)
    add_approver(stage, subject_type="groupMembers", group=team)
    add_approver(stage, subject_type="requestorManager", manager_level=1)

    request = submit(requester, policy)

    assert approvers_of(request) == ["Gina Group", "Mona Manager"]


def test_the_requestors_manager_is_the_manager_of_the_person_the_access_is_for(manager, requester):
    assistant = UserFactory(display_name="Asta Assistant", manager=UserFactory())
    boss = UserFactory(display_name="Bo Boss")
    manager.manager = boss
    manager.save()
    policy = approval_policy(enable_on_behalf_requestors_to_add_access=True)
    add_subject(policy, "onBehalfRequestor", "singleUser", user=assistant)
    add_approver(stage_of(policy), subject_type="requestorManager", manager_level=1)
    add_approver(stage_of(policy), subject_type="requestorManager", manager_level=2)

    request = request_submit(
        actor=assistant,
        target=requester,
        access_package=policy.access_package,
        request_type=RequestType.ON_BEHALF_ADD,
    )

    assert approvers_of(request) == ["Bo Boss", "Mona Manager"]


def test_sponsors_of_the_guest_and_of_their_organization_approve(requester):
    internal, external, own = (
        UserFactory(display_name="Ian Internal"),
        UserFactory(display_name="Ella External"),
        UserFactory(display_name="Stan Sponsor"),
    )
    org = ConnectedOrganizationFactory()
    org.internal_sponsors.add(internal)
    org.external_sponsors.add(external)
    visitor = UserFactory(user_type=User.UserType.GUEST, connected_organization=org)
    visitor.sponsors.add(own)
    package = package_with_roles()
    package.catalog.is_externally_visible = True
    package.catalog.save()
    policy = approval_policy(package, allowed_target_scope="allExternalUsers")
    for kind in ("internalSponsors", "externalSponsors", "targetUserSponsors"):
        add_approver(stage_of(policy), subject_type=kind)

    request = submit(visitor, policy)

    assert approvers_of(request) == ["Ella External", "Ian Internal", "Stan Sponsor"]


def test_a_request_nobody_can_approve_is_denied_with_a_clear_status(requester, received):
    policy = approval_policy()
    add_approver(stage_of(policy), subject_type="requestorManager", manager_level=2)

    request = submit(requester, policy)

    assert (request.state, request.status) == ("denied", "NoApprovers")
    assert request.approval_stages.get().status == StageStatus.CANCELED
    assert ("request.deny", "pendingApproval", "denied") in actions(request)


def test_a_policy_requiring_approval_without_stages_denies_rather_than_hangs(requester):
    policy = open_policy(is_approval_required_for_add=True)

    request = submit(requester, policy)

    assert (request.state, request.status) == ("denied", "NoApprovers")


# --- cancel -----------------------------------------------------------------------------


def test_the_requestor_cancels_a_pending_request_and_its_stage_closes(
    requester, approver, received, django_capture_on_commit_callbacks
):
    request = submit(requester, approval_policy(approvers=[approver]))
    canceled = received(request_canceled)

    with django_capture_on_commit_callbacks(execute=True):
        request_cancel(actor=requester, request=request, channel=Channel.PORTAL)

    request.refresh_from_db()
    assert (request.state, request.status) == ("canceled", "Canceled")
    assert request.approval_stages.get().status == StageStatus.CANCELED
    assert canceled == [{"signal": request_canceled, "request": request, "actor": requester}]


def test_an_outsider_cannot_cancel_someone_elses_request(requester, approver, outsider):
    request = submit(requester, approval_policy(approvers=[approver]))

    with pytest.raises(PermissionDenied):
        request_cancel(actor=outsider, request=request, channel=Channel.PORTAL)


def test_an_admin_may_cancel_any_pending_request(requester, approver, admin_user):
    request = submit(requester, approval_policy(approvers=[approver]))

    request_cancel(actor=admin_user, request=request, channel=Channel.ADMIN)

    request.refresh_from_db()
    assert request.state == RequestState.CANCELED


def test_a_request_already_being_delivered_cannot_be_canceled(requester):
    request = submit(requester, open_policy())

    with pytest.raises(StateConflict, match="can no longer be canceled"):
        request_cancel(actor=requester, request=request, channel=Channel.PORTAL)


def test_an_admin_cancels_a_request_still_being_delivered_and_its_assignment_ends(
    requester, admin_user
):
    request = submit(requester, open_policy())

    request_cancel(actor=admin_user, request=request, channel=Channel.ADMIN)

    request.refresh_from_db()
    assert request.state == RequestState.CANCELED
    assert request.assignment.state == AssignmentState.EXPIRED


def test_not_even_an_admin_cancels_a_delivered_request(requester, admin_user):
    request = submit(requester, open_policy())
    AssignmentRequest.objects.filter(pk=request.pk).update(state=RequestState.DELIVERED)

    with pytest.raises(StateConflict, match="delivered and can no longer be canceled"):
        request_cancel(actor=admin_user, request=request, channel=Channel.ADMIN)


# --- extension --------------------------------------------------------------------------


def extendable(**kw):
    kw.setdefault("enable_targets_to_self_update_access", True)
    return open_policy(**kw)


def test_a_user_extends_their_access_to_the_longest_the_policy_allows(requester):
    now = timezone.now()
    policy = extendable()
    assignment = give_assignment(
        requester, policy.access_package, policy, now=now - timedelta(days=25)
    )

    request = request_extend(
        actor=requester, assignment=assignment, channel=Channel.PORTAL, now=now
    )

    assert request.request_type == RequestType.USER_EXTEND
    assert request.state == RequestState.DELIVERED
    assignment.refresh_from_db()
    assert assignment.schedule_end == now + timedelta(days=30)


def test_an_extension_goes_through_approval_when_the_policy_says_so(requester, approver):
    now = timezone.now()
    policy = extendable(is_approval_required_for_update=True)
    stage = ApprovalStageFactory(policy=policy)
    add_approver(stage, user=approver)
    started = now - timedelta(days=20)
    assignment = give_assignment(requester, policy.access_package, policy, now=started)

    request = request_extend(
        actor=requester,
        assignment=assignment,
        schedule_end=now + timedelta(days=25),
        channel=Channel.PORTAL,
        now=now,
    )

    assert request.state == RequestState.PENDING_APPROVAL
    assert approvers_of(request) == ["Arno Approver"]
    with pytest.raises(StateConflict, match="already has an open extension request"):
        request_extend(actor=requester, assignment=assignment, channel=Channel.PORTAL, now=now)


def test_a_user_may_extend_access_an_admin_gave_them(requester, admin_user):
    policy = extendable(allowed_target_scope="allMemberUsers")
    result = requests_admin_add(
        actor=admin_user, targets=[requester], access_package=policy.access_package, policy=policy
    )
    assignment = result.done[0].assignment

    request = request_extend(actor=requester, assignment=assignment, channel=Channel.PORTAL)

    assert request.state == RequestState.DELIVERED


def test_an_extension_is_refused_when_the_policy_does_not_allow_it(requester):
    policy = open_policy()
    assignment = give_assignment(requester, policy.access_package, policy, now=timezone.now())

    with pytest.raises(NotEligible, match="does not let users extend"):
        request_extend(actor=requester, assignment=assignment, channel=Channel.PORTAL)


def test_an_extension_is_refused_to_someone_no_longer_in_scope(requester):
    policy = extendable(allowed_target_scope="specificDirectoryUsers")
    assignment = give_assignment(requester, policy.access_package, policy, now=timezone.now())

    with pytest.raises(NotEligible, match="no longer in the scope"):
        request_extend(actor=requester, assignment=assignment, channel=Channel.PORTAL)


def test_an_extension_cannot_go_past_the_policys_limit(requester):
    now = timezone.now()
    policy = extendable()
    assignment = give_assignment(requester, policy.access_package, policy, now=now)

    with pytest.raises(InvalidRequest, match="can be extended to") as error:
        request_extend(
            actor=requester,
            assignment=assignment,
            schedule_end=now + timedelta(days=31),
            channel=Channel.PORTAL,
            now=now,
        )
    assert error.value.field == "schedule_end"


def test_only_the_holder_asks_to_extend(requester, manager):
    policy = extendable()
    assignment = give_assignment(requester, policy.access_package, policy, now=timezone.now())

    with pytest.raises(PermissionDenied):
        request_extend(actor=manager, assignment=assignment, channel=Channel.PORTAL)


# --- query counts -----------------------------------------------------------------------


def queries_of(action):
    with CaptureQueriesContext(connection) as queries:
        action()
    return len(queries)


def unrelated_data(users=100, packages=100):
    people = [UserFactory() for _ in range(users)]
    for n in range(packages):
        policy = PolicyFactory()
        give_assignment(people[n % users], policy.access_package, policy)


def test_submit_queries_grow_by_at_most_one_per_role_and_not_with_the_data(
    django_assert_max_num_queries,
):
    small, large = open_policy(package_with_roles(roles=1)), open_policy(package_with_roles(10))
    first, second, third = UserFactory(), UserFactory(), UserFactory()
    one_role = queries_of(lambda: submit(first, small))
    ten_roles = queries_of(lambda: submit(second, large))
    assert ten_roles - one_role <= 10

    unrelated_data()

    with django_assert_max_num_queries(one_role):
        submit(third, small)


def test_approval_requests_cost_the_same_however_many_approvers_the_group_has(
    requester, django_assert_max_num_queries
):
    policy = approval_policy()
    team = GroupFactory()
    add_approver(stage_of(policy), subject_type="groupMembers", group=team)
    add_member(team, UserFactory())
    someone = UserFactory()
    few = queries_of(lambda: submit(someone, policy))
    for _ in range(30):
        add_member(team, UserFactory())

    with django_assert_max_num_queries(few):
        request = submit(requester, policy)
    assert StageApprover.objects.filter(stage__request=request).count() == 31
