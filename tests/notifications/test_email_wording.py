"""What every email the product sends says, word for word: subject, text and HTML body.

Each email is produced the way the product produces it (a request, a decision, a job), at a
fixed time, and read as its recipient reads it.
"""

import ast
import html
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils.html import strip_tags

from approvals.emails import stages_send_reminders
from approvals.models import ReviewResult, StageApprover
from approvals.services import (
    approval_revoke,
    stage_decide,
    stages_escalate_due,
    stages_expire_due,
)
from entitlements.models import Channel, PolicySubjectSet, StageApproverSet, SubjectType
from entitlements.services.ending import assignments_expire_due
from entitlements.services.requests import request_submit
from notifications.models import Notification, NotificationKind
from notifications.services import assignments_notify_expiring, render_notification
from reviews.services import reviews_schedule_due, reviews_send_reminders
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    GroupResourceFactory,
    PolicyFactory,
    add_approver,
    add_subject,
    grant_role,
)

pytestmark = pytest.mark.django_db

# A Monday morning: English times read "7:47 a.m.", the dates that trip a doubled full stop.
T0 = datetime(2025, 3, 10, 7, 47, tzinfo=UTC)
SITE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _fixed_clock_and_site(settings):
    settings.SITE_URL = SITE
    settings.TIME_ZONE = "UTC"
    settings.LANGUAGE_CODE = "en"
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def clock(_fixed_clock_and_site):
    return _fixed_clock_and_site


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a service and what it enqueues on commit (signals, delivery, emails)."""

    def call(function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(**kwargs)

    return call


def package_with_stages(name, *stages, **policy_fields):
    """A package giving a group's Member role; each stage is (days to decide, approvers)."""
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog, display_name=name)
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(
        access_package=package, is_approval_required_for_add=bool(stages), **policy_fields
    )
    for sequence, (days, approvers) in enumerate(stages, start=1):
        stage = ApprovalStageFactory(
            policy=policy,
            sequence=sequence,
            duration_before_automatic_denial=timedelta(days=days),
        )
        for person in approvers:
            add_approver(stage, user=person)
    return package


def submit(run, requester, package, justification="Quarter-end close"):
    return run(
        request_submit,
        actor=requester,
        target=requester,
        access_package=package,
        justification=justification,
        channel=Channel.PORTAL,
    )


def decide(run, stage, approver, decision, justification=""):
    return run(
        stage_decide,
        actor=approver,
        stage=stage,
        decision=decision,
        justification=justification,
        channel=Channel.PORTAL,
    )


def words(text):
    return " ".join(html.unescape(text).split())


def read_html(markup):
    """The HTML body as a reader sees it: blocks and table cells apart, inline tags gone."""
    markup = re.sub(r"</?(p|br|div|table|tr|th|td|h\d|li|ul|title)\b[^>]*>", " ", markup)
    return words(strip_tags(markup))


def email(kind, recipient):
    """(subject, text body, HTML body as read) of the one ``kind`` email to ``recipient``."""
    notification = Notification.objects.get(kind=kind, recipient=recipient)
    subject, text, body = render_notification(notification)
    return subject, words(text), read_html(body)


def assert_says(kind, recipient, subject, *sentences, facts=(), decide_by=None):
    """The email has this subject, these sentences and facts (label, value) in both bodies,
    a "Decide by" line only when ``decide_by`` is given, and no doubled full stop."""
    got_subject, text, body = email(kind, recipient)
    assert got_subject == subject
    for sentence in sentences:
        assert sentence in text, (sentence, text)
        assert sentence in body, (sentence, body)
    if decide_by:
        facts = [*facts, ("Decide by", decide_by)]
    for label, value in facts:
        assert f"{label}: {value}" in text, (label, text)
        assert f"{label} {value}" in body, (label, body)  # a table row: heading, cell
    if not decide_by:
        assert "Decide by" not in text and "Decide by" not in body
    for rendered in (got_subject, text, body):
        assert not re.search(r"(?<!\.)\.\.(?!\.)", rendered), rendered
    return text, body


# --- Approvers -------------------------------------------------------------------------------


def test_an_approver_is_asked_to_decide_and_reminded_half_way(
    run, clock, requester, approver, second_approver
):
    package = package_with_stages("Finance reports", (4, [approver, second_approver]))
    submit(run, requester, package)

    text, body = assert_says(
        NotificationKind.APPROVAL_REQUIRED,
        approver,
        "Action required: Approve or deny request by March 14, 2025",
        "Hello Arno,",
        "Rita Requester requests access to Finance reports. Please approve or deny the request.",
        facts=[("Business justification", "Quarter-end close")],
        decide_by="March 14, 2025, 7:47 a.m.",
    )
    assert "Approve: http://127.0.0.1:8000/approvals/email/decide/" in text
    assert (
        "Each link opens a page where you confirm your decision. These links are for you only."
        in text
    )
    assert (
        "Each button opens a page where you confirm your decision. These links are for you "
        "only and stop working once the request is decided." in body
    )

    run(stages_send_reminders, now=T0 + timedelta(days=2))
    assert_says(
        NotificationKind.APPROVAL_REMINDER,
        approver,
        "Action required reminder: Approve or deny the request by March 14, 2025",
        "The request of Rita Requester for Finance reports is still waiting for a decision.",
        decide_by="March 14, 2025, 7:47 a.m.",
    )


def test_an_escalation_approver_is_told_the_request_was_forwarded(
    run, clock, requester, approver, admin_user
):
    package = package_with_stages("Finance reports", (4, [approver]))
    policy_stage = package.assignment_policies.get().approval_stages.get()
    policy_stage.is_escalation_enabled = True
    policy_stage.duration_before_escalation = timedelta(days=1)
    policy_stage.save()
    add_approver(policy_stage, user=admin_user, purpose=StageApproverSet.Purpose.ESCALATION)
    submit(run, requester, package)

    run(stages_escalate_due, now=T0 + timedelta(days=1))

    assert_says(
        NotificationKind.APPROVAL_FORWARDED,
        admin_user,
        "Action required: Approve or deny forwarded request by March 14, 2025",
        "Hello Ada,",
        "The request of Rita Requester for Finance reports was not decided in time by its "
        "approvers and has been forwarded to you.",
        decide_by="March 14, 2025, 7:47 a.m.",
    )


def test_the_other_approvers_hear_who_decided(run, clock, requester, approver, second_approver):
    approved = package_with_stages("Finance reports", (4, [approver, second_approver]))
    stage = submit(run, requester, approved).approval_stages.get()
    decide(run, stage, approver, ReviewResult.APPROVED)

    assert_says(
        NotificationKind.APPROVAL_DECIDED_BY_OTHER,
        second_approver,
        "Request has been approved: Finance reports",
        "Hello Sam,",
        "Arno Approver approved this request for Finance reports. You do not need to do anything.",
    )

    Notification.objects.all().delete()
    denied = package_with_stages("Payroll", (4, [approver, second_approver]))
    stage = submit(run, requester, denied).approval_stages.get()
    decide(run, stage, approver, ReviewResult.DENIED, "Not in the team")

    assert_says(
        NotificationKind.APPROVAL_DECIDED_BY_OTHER,
        second_approver,
        "Request has been denied: Payroll",
        "Arno Approver denied this request for Payroll. You do not need to do anything.",
    )


def test_approvers_and_requestor_hear_that_a_request_ran_out_of_time(
    run, clock, requester, approver
):
    package = package_with_stages("Finance reports", (4, [approver]))
    submit(run, requester, package)

    run(stages_expire_due, now=T0 + timedelta(days=4))

    assert_says(
        NotificationKind.APPROVAL_EXPIRED,
        approver,
        "Request has expired: Finance reports",
        "The request of Rita Requester for Finance reports was not decided before its "
        "deadline and has been denied automatically.",
    )
    assert_says(
        NotificationKind.REQUEST_EXPIRED,
        requester,
        "Your request for Finance reports has expired",
        "Hello Rita,",
        "Your request for Finance reports was not decided in time and has expired. "
        "You can submit it again from My Access.",
    )


# --- Requestors ------------------------------------------------------------------------------


def test_after_stage_one_of_two_the_requestor_hears_it_waits_for_stage_two(
    run, clock, requester, approver, second_approver
):
    package = package_with_stages("Finance reports", (4, [approver]), (2, [second_approver]))
    request = submit(run, requester, package)

    decide(run, request.approval_stages.get(sequence=1), approver, ReviewResult.APPROVED, "Fine")

    text, body = assert_says(
        NotificationKind.STAGE_APPROVED,
        requester,
        "Stage 1 of 2 of your request for Finance reports has been approved",
        "Arno Approver approved stage 1 of 2 of your request for Finance reports. "
        "It now waits for approval at stage 2. Their justification: “Fine”",
    )
    assert "has been approved." not in text

    Notification.objects.filter(kind=NotificationKind.STAGE_APPROVED).delete()
    decide(run, request.approval_stages.get(sequence=2), second_approver, ReviewResult.APPROVED)

    assert_says(
        NotificationKind.STAGE_APPROVED,
        requester,
        "Your request for Finance reports has been approved",
        "Sam Second approved stage 2 of 2, the last one, of your request for Finance reports. "
        "You will get another email when your access is ready.",
    )


def test_a_single_stage_approval_tells_the_requestor_the_request_is_approved(
    run, clock, requester, approver
):
    package = package_with_stages("Finance reports", (4, [approver]))
    decide(run, submit(run, requester, package).approval_stages.get(), approver, "Approved")

    assert_says(
        NotificationKind.STAGE_APPROVED,
        requester,
        "Your request for Finance reports has been approved",
        "Arno Approver approved your request for Finance reports. "
        "You will get another email when your access is ready.",
    )


def test_a_denial_says_who_denied_and_why_and_shows_no_deadline(run, clock, requester, approver):
    package = package_with_stages("Finance reports", (4, [approver]))
    stage = submit(run, requester, package).approval_stages.get()

    decide(run, stage, approver, ReviewResult.DENIED, "Not in the finance team")

    assert_says(
        NotificationKind.REQUEST_DENIED,
        requester,
        "Your request for Finance reports has been denied",
        "Your request for Finance reports has been denied. Denied by Arno Approver. "
        "Reason: “Not in the finance team”",
        facts=[("Access package", "Finance reports"), ("For", "Rita Requester")],
    )


def test_a_revoked_approval_says_who_took_it_back_why_and_what_it_did(
    run, clock, requester, approver
):
    package = package_with_stages("Finance reports", (4, [approver]))
    stage = submit(run, requester, package).approval_stages.get()
    decide(run, stage, approver, ReviewResult.APPROVED, "Fine")

    run(
        approval_revoke,
        actor=approver,
        approval=StageApprover.objects.get(stage=stage, user=approver),
        reason="Approved the wrong person",
        channel=Channel.PORTAL,
    )

    assert_says(
        NotificationKind.APPROVAL_REVOKED,
        requester,
        "Approval revoked: your request for Finance reports",
        "Arno Approver revoked the approval of your request for Finance reports. "
        "The access it gave is being removed. Reason: “Approved the wrong person”",
    )


def test_access_delivered_ends_and_is_announced_before_its_end(run, clock, requester):
    package = package_with_stages("Sales reports")  # no approval; 30 days
    submit(run, requester, package)

    text, body = assert_says(
        NotificationKind.ACCESS_DELIVERED,
        requester,
        "You now have access to Sales reports",
        "You now have access to Sales reports. Your access ends on April 9, 2025, 7:47 a.m.",
    )
    assert "Open My Access: http://127.0.0.1:8000/access-packages/" in text

    run(assignments_notify_expiring, now=T0 + timedelta(days=20))
    text, body = assert_says(
        NotificationKind.ACCESS_EXPIRING,
        requester,
        "Action required: Extend your access to Sales reports by April 9, 2025",
        "Your access to Sales reports ends on April 9, 2025, 7:47 a.m. "
        "If you still need it, request an extension.",
    )
    assert "Extend access: http://127.0.0.1:8000/assignments/" in text

    clock.move_to(T0 + timedelta(days=30, minutes=1))
    run(assignments_expire_due)
    assert_says(
        NotificationKind.ACCESS_ENDED,
        requester,
        "Your access to Sales reports has ended",
        "Your access to Sales reports has ended.",
    )


# --- Reviewers -------------------------------------------------------------------------------


def test_a_reviewer_is_told_when_a_review_starts_at_its_midpoint_and_before_its_end(
    run, clock, requester, approver, admin_user
):
    start = datetime(2025, 4, 1, tzinfo=UTC)
    package = package_with_stages(
        "Finance reports",
        expiration_type="noExpiration",
        expiration_duration=None,
        review_is_enabled=True,
        review_start_date=date(2025, 4, 1),
        review_recurrence="quarterly",
        review_duration_in_days=14,
    )
    policy = package.assignment_policies.get()
    add_subject(
        policy,
        PolicySubjectSet.Purpose.PRIMARY_REVIEWER,
        SubjectType.SINGLE_USER,
        user=approver,
    )
    submit(run, requester, package)

    clock.move_to(start)
    run(reviews_schedule_due)
    assert_says(
        NotificationKind.REVIEW_STARTED,
        approver,
        "Action required: Review access to Finance reports by April 15, 2025",
        "An access review of Finance reports has started. You are asked to review the access "
        "of 1 person by April 15, 2025, midnight.",
        "Access that is denied is removed when the review ends.",
    )

    clock.move_to(start + timedelta(days=7))
    run(reviews_send_reminders)
    assert_says(
        NotificationKind.REVIEW_REMINDER,
        approver,
        "Action required reminder: Review access to Finance reports by April 15, 2025",
        "The access review of Finance reports is half-way through and 1 decision is still "
        "waiting for you. The review ends on April 15, 2025, midnight.",
    )

    clock.move_to(start + timedelta(days=13, hours=7, minutes=47))
    run(reviews_send_reminders)
    assert_says(
        NotificationKind.REVIEW_ENDING,
        approver,
        "Last reminder: the review of access to Finance reports ends on April 15, 2025",
        "The access review of Finance reports ends on April 15, 2025, midnight. "
        "1 decision is still waiting for you.",
        "Access nobody reviews is handled as the policy says when the review ends.",
    )


def test_every_kind_of_email_is_read_above():
    """A new kind of email needs its wording tested in this module: every kind is named by
    one of the tests above (read from this file's source, so the order of tests is free)."""
    tree = ast.parse(Path(__file__).read_text())
    named = {
        node.attr
        for test in tree.body
        if isinstance(test, ast.FunctionDef) and test.name.startswith("test_")
        for node in ast.walk(test)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "NotificationKind"
        and node.attr in NotificationKind.names
    }
    assert {NotificationKind[name].value for name in named} == set(NotificationKind.values)
