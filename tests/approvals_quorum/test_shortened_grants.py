"""Approvers who shorten the grant: only earlier, recorded, applied and shown in words."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from approvals.links import decision_url
from approvals.models import ReviewResult, StageApprover
from entitlements.errors import InvalidRequest
from entitlements.models import Assignment, AuditEvent, Channel, ExpirationType, RequestState
from entitlements.services.requests import request_extend
from notifications.models import Notification, NotificationKind
from notifications.services import render_notification
from tests.approvals_quorum.setup import decide, quorum_policy, submitted
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
ASKED_END = datetime(2027, 6, 30, 17, 0, tzinfo=UTC)
SHORTER = datetime(2027, 3, 15, 17, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ann(db):
    return UserFactory(display_name="Ann Example", email="ann@example.com")


def shortening_policy(ann, *, may_shorten=True, days=365):
    policy = quorum_policy(users=[ann], mode="anyOne", approvers_may_shorten=may_shorten)
    policy.expiration_duration = timedelta(days=days)
    policy.allow_custom_assignment_schedule = True
    policy.save()
    return policy


def asked_until(requester, policy, end=ASKED_END):
    return submitted(requester, policy, schedule_end=end)


def test_an_approver_shortens_the_access_and_the_assignment_gets_the_earlier_end(requester, ann):
    request = asked_until(requester, shortening_policy(ann))

    decide(ann, request, approved_end=SHORTER)

    request.refresh_from_db()
    assert request.schedule_end == SHORTER
    assert request.assignment.schedule_end == SHORTER
    row = StageApprover.objects.get(user=ann)
    assert (row.requested_end, row.approved_end) == (ASKED_END, SHORTER)
    event = AuditEvent.objects.get(action="request.shortened")
    assert (event.before, event.after) == (ASKED_END.isoformat(), SHORTER.isoformat())


def test_it_refuses_an_end_later_than_the_request_asks_for(requester, ann):
    request = asked_until(requester, shortening_policy(ann))

    with pytest.raises(InvalidRequest, match="You can only shorten") as refused:
        decide(ann, request, approved_end=ASKED_END + timedelta(days=1))

    assert refused.value.field == "approved_end"
    request.refresh_from_db()
    assert request.schedule_end == ASKED_END
    assert request.approval_stages.get().is_open


def test_it_refuses_an_end_beyond_the_policy_limit_when_the_request_gives_none(requester, ann):
    request = submitted(requester, shortening_policy(ann, days=30))

    with pytest.raises(
        InvalidRequest,
        match="The policy gives this access until 2027-02-09 09:00 UTC at the latest",
    ) as refused:
        decide(ann, request, approved_end=NOW + timedelta(days=31))

    assert "which the request asks for" not in str(refused.value)

    assert request.approval_stages.get().is_open


def extensible_policy(ann):
    policy = shortening_policy(ann, days=30)
    policy.enable_targets_to_self_update_access = True
    policy.is_approval_required_for_update = True
    policy.save()
    return policy


@pytest.fixture
def assignment_20_days_later(requester, ann):
    """The requester's 30-day access, granted on NOW, with the clock 20 days later."""
    decide(ann, submitted(requester, extensible_policy(ann)))
    with time_machine.travel(NOW + timedelta(days=20), tick=False):
        yield Assignment.objects.get(target=requester)


def test_approving_an_extension_cannot_end_the_access_before_it_ends_now(
    requester, ann, assignment_20_days_later
):
    assignment = assignment_20_days_later
    current_end = assignment.schedule_end
    extension = request_extend(actor=requester, assignment=assignment, channel=Channel.PORTAL)

    with pytest.raises(InvalidRequest, match="can't end the access earlier") as refused:
        decide(ann, extension, approved_end=NOW + timedelta(days=21))

    assert refused.value.field == "approved_end"
    assignment.refresh_from_db()
    assert assignment.schedule_end == current_end
    extension.refresh_from_db()
    assert extension.approval_stages.get().is_open
    assert StageApprover.objects.get(stage__request=extension).decision == (
        ReviewResult.NOT_REVIEWED
    )


def test_an_extension_may_be_approved_until_an_end_between_the_current_and_the_asked_one(
    requester, ann, assignment_20_days_later
):
    assignment = assignment_20_days_later
    extension = request_extend(actor=requester, assignment=assignment, channel=Channel.PORTAL)
    between = assignment.schedule_end + timedelta(days=5)

    decide(ann, extension, approved_end=between)

    extension.refresh_from_db()
    assert extension.schedule_end == between


def test_it_refuses_an_end_in_the_past(requester, ann):
    request = asked_until(requester, shortening_policy(ann))

    with pytest.raises(InvalidRequest, match="must end after it starts"):
        decide(ann, request, approved_end=NOW - timedelta(hours=1))


def test_it_refuses_to_shorten_where_the_stage_does_not_allow_it(requester, ann):
    request = asked_until(requester, shortening_policy(ann, may_shorten=False))

    with pytest.raises(InvalidRequest, match="does not let approvers change"):
        decide(ann, request, approved_end=SHORTER)

    request.refresh_from_db()
    assert request.schedule_end == ASKED_END


def test_the_requestor_reads_the_shortening_in_words_on_the_timeline(client, requester, ann):
    request = asked_until(requester, shortening_policy(ann))
    decide(ann, request, approved_end=SHORTER)
    client.force_login(requester)

    page = client.get(reverse("myaccess:request_detail", args=[request.pk])).content.decode()

    assert "Approved until 15 March 2027 instead of 30 June 2027 by Ann Example." in page


def test_the_approval_email_says_until_when_and_instead_of_what(
    requester, ann, django_capture_on_commit_callbacks
):
    request = asked_until(requester, shortening_policy(ann))
    with django_capture_on_commit_callbacks(execute=True):
        decide(ann, request, approved_end=SHORTER)

    email = Notification.objects.get(kind=NotificationKind.STAGE_APPROVED, recipient=requester)
    rendered = render_notification(email)

    text = " ".join(str(part) for part in rendered)
    assert "Approved until 15 March 2027 instead of 30 June 2027 by Ann Example." in text


def test_the_my_access_approve_form_shortens_and_shows_a_refusal_on_the_field(
    client, requester, ann
):
    request = asked_until(requester, shortening_policy(ann))
    stage = request.approval_stages.get()
    client.force_login(ann)
    url = reverse("myaccess:approval_detail", args=[stage.pk])

    refused = client.post(
        url, {"decision": ReviewResult.APPROVED, "approved_end": "2027-07-01T10:00"}
    )
    assert refused.status_code == 200
    assert "You can only shorten" in str(refused.context["form"].errors["approved_end"])
    assert StageApprover.objects.get(user=ann).decision == ReviewResult.NOT_REVIEWED

    done = client.post(url, {"decision": ReviewResult.APPROVED, "approved_end": "2027-03-15T17:00"})
    assert done.status_code == 302
    request.refresh_from_db()
    assert request.schedule_end == SHORTER


def test_the_approve_form_offers_no_end_where_the_stage_does_not_allow_it(client, requester, ann):
    request = asked_until(requester, shortening_policy(ann, may_shorten=False))
    client.force_login(ann)

    page = client.get(reverse("myaccess:approval_detail", args=[request.approval_stages.get().pk]))

    assert "approved_end" not in page.content.decode()


def test_the_email_decision_page_shortens_and_refuses_a_later_end_on_the_field(
    client, requester, ann
):
    request = asked_until(requester, shortening_policy(ann))
    stage = request.approval_stages.get()
    client.force_login(ann)
    url = decision_url(stage=stage, approver=ann, absolute=False)

    refused = client.post(url, {"decision": "approve", "approved_end": "2027-07-01T10:00"})
    assert refused.status_code == 400
    assert "You can only shorten" in refused.context["errors"]["approved_end"]

    done = client.post(url, {"decision": "approve", "approved_end": "2027-03-15T17:00"})
    assert done.status_code == 302
    request.refresh_from_db()
    assert request.schedule_end == SHORTER


def test_another_person_cannot_shorten_through_the_email_link_or_the_portal(
    client, requester, ann, outsider
):
    request = asked_until(requester, shortening_policy(ann))
    stage = request.approval_stages.get()
    client.force_login(outsider)

    by_link = client.post(
        decision_url(stage=stage, approver=ann, absolute=False),
        {"decision": "approve", "approved_end": "2027-03-15T17:00"},
    )
    by_portal = client.post(
        reverse("myaccess:approval_detail", args=[stage.pk]),
        {"decision": ReviewResult.APPROVED, "approved_end": "2027-03-15T17:00"},
    )

    assert by_link.status_code == 403
    assert by_portal.status_code == 404
    request.refresh_from_db()
    assert request.schedule_end == ASKED_END


def test_the_requestor_cannot_shorten_their_own_request(client, requester, ann):
    request = asked_until(requester, shortening_policy(ann))
    client.force_login(requester)

    response = client.post(
        reverse("myaccess:approval_detail", args=[request.approval_stages.get().pk]),
        {"decision": ReviewResult.APPROVED, "approved_end": "2027-03-15T17:00"},
    )

    assert response.status_code == 404
    request.refresh_from_db()
    assert request.schedule_end == ASKED_END


def test_the_timeline_says_the_request_asked_for_no_end_in_a_sentence_of_its_own(
    client, requester, ann
):
    policy = quorum_policy(users=[ann], mode="anyOne", approvers_may_shorten=True)
    policy.expiration_type, policy.expiration_duration = ExpirationType.NO_EXPIRATION, None
    policy.save()
    request = submitted(requester, policy)
    assert request.schedule_end is None
    decide(ann, request, approved_end=SHORTER)
    client.force_login(requester)

    page = client.get(reverse("myaccess:request_detail", args=[request.pk])).content.decode()

    assert "Approved until 15 March 2027 by Ann Example (the request asked for no end)." in page
    assert "instead of without an end date" not in page


def test_the_timeline_has_an_access_shortened_entry_when_the_deciding_approver_shortens(
    client, requester, ann
):
    request = asked_until(requester, shortening_policy(ann))
    decide(ann, request, approved_end=SHORTER)
    client.force_login(requester)

    response = client.get(reverse("myaccess:request_detail", args=[request.pk]))

    entries = [e for e in response.context["timeline"] if e["label"] == "Access shortened"]
    assert len(entries) == 1
    assert entries[0]["text"] == (
        "Approved until 15 March 2027 instead of 30 June 2027 by Ann Example."
    )


def test_the_timeline_names_a_quorum_approver_who_shortened_before_the_stage_completed(
    client, requester, ann
):
    ben = UserFactory(display_name="Ben Example")
    policy = quorum_policy(users=[ann, ben], mode="someOf", count=2, approvers_may_shorten=True)
    policy.expiration_duration = timedelta(days=365)
    policy.allow_custom_assignment_schedule = True
    policy.save()
    request = asked_until(requester, policy)
    decide(ann, request, approved_end=SHORTER, justification="Until the project ends")
    decide(ben, request)
    client.force_login(requester)

    response = client.get(reverse("myaccess:request_detail", args=[request.pk]))

    labels = [e["label"] for e in response.context["timeline"]]
    assert "Access shortened" not in labels
    [ann_entry] = [e for e in response.context["timeline"] if e.get("who") == "Ann Example"]
    assert ann_entry["label"] == "Stage 1: one approval"
    assert ann_entry["text"] == (
        "Until the project ends "
        "Approved until 15 March 2027 instead of 30 June 2027 by Ann Example."
    )


def test_a_bad_approve_until_on_the_emailed_decision_page_does_not_block_a_denial(
    client, requester, ann
):
    request = asked_until(requester, shortening_policy(ann))
    stage = request.approval_stages.get()
    client.force_login(ann)

    response = client.post(
        decision_url(stage=stage, approver=ann, absolute=False),
        {"decision": "deny", "approved_end": "next tuesday"},
    )

    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == RequestState.DENIED
    assert request.schedule_end == ASKED_END


def test_a_bad_approve_until_in_my_access_does_not_block_a_denial(client, requester, ann):
    request = asked_until(requester, shortening_policy(ann))
    client.force_login(ann)

    response = client.post(
        reverse("myaccess:approval_detail", args=[request.approval_stages.get().pk]),
        {"decision": ReviewResult.DENIED, "approved_end": "next tuesday"},
    )

    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == RequestState.DENIED


def test_a_bad_approve_until_still_blocks_an_approval_on_the_emailed_page(client, requester, ann):
    request = asked_until(requester, shortening_policy(ann))
    stage = request.approval_stages.get()
    client.force_login(ann)

    response = client.post(
        decision_url(stage=stage, approver=ann, absolute=False),
        {"decision": "approve", "approved_end": "next tuesday"},
    )

    assert response.status_code == 400
    assert "Enter the date and time" in response.context["errors"]["approved_end"]
    assert stage.__class__.objects.get(pk=stage.pk).is_open
