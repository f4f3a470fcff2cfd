"""What the portal says to the person reading it, word for word: who approves, how long the
access lasts, what happens next, the timeline of a request and the result of bulk decisions."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils.html import strip_tags

from approvals.models import ReviewResult
from approvals.services import stage_decide
from entitlements.models import AssignmentRequest, Channel, RequestState, SubjectType
from entitlements.services.requests import request_cancel
from myaccess import describe
from myaccess.views.requests import _timeline
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    GroupFactory,
    PolicyFactory,
    UserFactory,
    add_approver,
)

from .conftest import local_input, submit

pytestmark = pytest.mark.django_db

# A Monday morning: English times read "7:47 a.m.", the dates that trip a doubled full stop.
T0 = datetime(2025, 3, 10, 7, 47, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(settings):
    settings.TIME_ZONE = "UTC"
    settings.LANGUAGE_CODE = "en"
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def page_text(response):
    return " ".join(html.unescape(strip_tags(response.content.decode())).split())


def has_no_doubled_full_stop(text):
    return not re.search(r"(?<!\.)\.\.(?!\.)", text)


def policy_with_stages(*stages):
    """A policy whose stages are (days to decide, [(subject type, fields), ...])."""
    policy = PolicyFactory(
        access_package=AccessPackageFactory(display_name="Finance reports"),
        is_approval_required_for_add=True,
    )
    for sequence, (days, approvers) in enumerate(stages, start=1):
        stage = ApprovalStageFactory(
            policy=policy, sequence=sequence, duration_before_automatic_denial=timedelta(days=days)
        )
        for subject_type, fields in approvers:
            add_approver(stage, subject_type=subject_type, **fields)
    return policy


def approval_sentence(policy):
    policy = type(policy).objects.prefetch_related(describe.STAGE_PREFETCH).get(pk=policy.pk)
    return describe.approval_sentence(policy)


# --- Who approves ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject_type", "sentence"),
    [
        (SubjectType.TARGET_USER_SPONSORS, "Approved by one of your sponsors, who has 7 days"),
        (SubjectType.REQUESTOR_MANAGER, "Approved by your manager, who has 7 days"),
        (
            SubjectType.INTERNAL_SPONSORS,
            "Approved by an internal sponsor of your organization, who has 7 days",
        ),
        (
            SubjectType.EXTERNAL_SPONSORS,
            "Approved by an external sponsor of your organization, who has 7 days",
        ),
    ],
)
def test_a_single_stage_names_its_approver_as_one_person_in_lower_case(subject_type, sentence):
    policy = policy_with_stages((7, [(subject_type, {})]))

    assert approval_sentence(policy) == f"{sentence} to decide."


def test_a_single_stage_with_a_person_or_a_group_names_both_with_or():
    group = GroupFactory(display_name="Access Approvers")
    arno = UserFactory(display_name="Arno Approver")
    policy = policy_with_stages(
        (
            3,
            [
                (SubjectType.SINGLE_USER, {"user": arno}),
                (SubjectType.GROUP_MEMBERS, {"group": group}),
            ],
        )
    )

    assert approval_sentence(policy) == (
        "Approved by Arno Approver or a member of Access Approvers, who has 3 days to decide."
    )


def test_two_stages_name_a_member_of_the_group_not_members_of_it():
    group = GroupFactory(display_name="Access Approvers")
    policy = policy_with_stages(
        (7, [(SubjectType.REQUESTOR_MANAGER, {})]),
        (3, [(SubjectType.GROUP_MEMBERS, {"group": group})]),
    )

    assert approval_sentence(policy) == (
        "Approval in 2 stages: stage 1 by your manager; stage 2 by a member of Access Approvers."
    )


# --- The confirmation page -------------------------------------------------------------------


def test_the_confirmation_shows_the_period_asked_for_not_the_policys_longest(
    client, requester, approved_package
):
    client.force_login(requester)
    start, end = T0 + timedelta(days=1), T0 + timedelta(days=15)

    response = client.post(
        reverse("myaccess:request_create", args=[approved_package.pk]),
        {
            "justification": "Pipeline review",
            "schedule_start": local_input(start),
            "schedule_end": local_input(end),
        },
        follow=True,
    )

    text = page_text(response)
    assert (
        "You asked for access from March 11, 2025, 7:47 a.m. until March 25, 2025, 7:47 a.m."
        in (text)
    )
    assert "Access lasts 30 days" not in text
    assert "Arno Approver will decide by March 24, 2025, 7:47 a.m. You will get an email" in text
    assert has_no_doubled_full_stop(text)


def test_the_confirmation_of_a_request_without_a_period_says_how_long_the_policy_gives(
    client, requester, approved_package
):
    client.force_login(requester)
    request_obj = submit(requester, approved_package)

    text = page_text(client.get(reverse("myaccess:request_submitted", args=[request_obj.pk])))

    assert "Access lasts 30 days." in text


def test_a_period_with_only_an_end_says_until_when():
    request_obj = AssignmentRequest(schedule_end=T0 + timedelta(days=14, hours=5))

    assert describe.period_sentence(request_obj) == (
        "You asked for access until March 24, 2025, 12:47 p.m."
    )


# --- The timeline ----------------------------------------------------------------------------


def entries(request_obj):
    request_obj = AssignmentRequest.objects.prefetch_related(
        "approval_stages__approvers__user", "approval_stages__reviewed_by"
    ).get(pk=request_obj.pk)
    return [(e["label"], e.get("who", ""), e.get("text", "")) for e in _timeline(request_obj)]


def test_the_timeline_credits_the_requestor_with_submitting_and_nobody_with_waiting(
    _fixed_clock, requester, approver, approved_package, django_capture_on_commit_callbacks
):
    request_obj = submit(requester, approved_package)

    assert entries(request_obj) == [
        ("Request submitted", "Rita Requester", ""),
        ("Waiting for approval", "", ""),
        ("Stage 1 waiting for Arno Approver", "", ""),
    ]

    _fixed_clock.shift(timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        stage_decide(
            actor=approver,
            stage=request_obj.approval_stages.get(),
            decision=ReviewResult.APPROVED,
            justification="Welcome to the team",
            channel=Channel.PORTAL,
        )

    assert entries(request_obj) == [
        ("Request submitted", "Rita Requester", ""),
        ("Waiting for approval", "", ""),
        ("Stage 1 approved", "Arno Approver", "Welcome to the team"),
        ("Approved; delivering access", "", ""),
        ("Access delivered", "", ""),
    ]


def test_the_timeline_of_a_denied_and_of_a_cancelled_request(
    _fixed_clock, requester, approver, approved_package
):
    denied = submit(requester, approved_package)
    _fixed_clock.shift(timedelta(hours=2))
    stage_decide(
        actor=approver,
        stage=denied.approval_stages.get(),
        decision=ReviewResult.DENIED,
        justification="Not this quarter",
        channel=Channel.PORTAL,
    )
    assert entries(denied) == [
        ("Request submitted", "Rita Requester", ""),
        ("Waiting for approval", "", ""),
        ("Stage 1 denied", "Arno Approver", "Not this quarter"),
    ]

    cancelled = submit(requester, approved_package)
    _fixed_clock.shift(timedelta(hours=2))
    request_cancel(actor=requester, request=cancelled, channel=Channel.PORTAL)
    assert entries(cancelled) == [
        ("Request submitted", "Rita Requester", ""),
        ("Waiting for approval", "", ""),
        ("Request canceled", "Rita Requester", ""),
    ]


def test_the_request_page_shows_the_deadline_with_one_full_stop(
    client, requester, approved_package
):
    request_obj = submit(requester, approved_package)
    client.force_login(requester)

    text = page_text(client.get(reverse("myaccess:request_detail", args=[request_obj.pk])))

    assert "Approval stage 1: Arno Approver will decide by March 24, 2025, 7:47 a.m. You" in text
    assert "Waiting for approval March 10, 2025, 7:47 a.m." in text
    assert "Waiting for approval · Rita Requester" not in text
    assert has_no_doubled_full_stop(text)


# --- Many decisions at once ------------------------------------------------------------------


def bulk(client, stages, decision=ReviewResult.APPROVED, justification="Team onboarding"):
    response = client.post(
        reverse("myaccess:approval_bulk"),
        {
            "stages": [str(s.pk) for s in stages],
            "decision": decision,
            "justification": justification,
        },
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]


def test_a_bulk_approval_says_in_words_how_many_were_approved(client, approver, approved_package):
    stages = [
        submit(UserFactory(display_name=f"Person {n}"), approved_package).approval_stages.get()
        for n in range(2)
    ]
    client.force_login(approver)

    assert bulk(client, stages) == ["You approved 2 requests."]


def test_a_bulk_approval_of_nothing_that_could_be_approved_says_why_in_words(
    client, approver, approved_package
):
    stage = submit(UserFactory(display_name="Pat Person"), approved_package).approval_stages.get()
    AssignmentRequest.objects.filter(pk=stage.request_id).update(state=RequestState.CANCELED)
    client.force_login(approver)

    assert bulk(client, [stage]) == [
        "The request could not be approved: it no longer waits for your decision."
    ]


def test_a_bulk_denial_says_what_was_denied_and_why_the_others_were_not(
    client, approver, approved_package
):
    stages = [
        submit(UserFactory(display_name=f"Person {n}"), approved_package).approval_stages.get()
        for n in range(3)
    ]
    AssignmentRequest.objects.filter(pk=stages[2].request_id).update(state=RequestState.CANCELED)
    client.force_login(approver)

    assert bulk(client, stages, decision=ReviewResult.DENIED) == [
        "You denied 2 requests. 1 other request could not be denied: "
        "it no longer waits for your decision."
    ]
