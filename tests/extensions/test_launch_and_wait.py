"""Launch and wait: the request pauses until the extension answers through the signed resume
call, is denied when it says so or when the wait runs out; forged and replayed answers are
refused and change nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from approvals.models import RequestApprovalStage, StageStatus
from entitlements.models import Assignment, AuditEvent, Channel, RequestState
from entitlements.services.requests import format_when, request_cancel, request_submit
from extensions import services
from extensions.models import Behavior, CalloutState, CustomExtensionCallout, Stage
from tests.extensions.helpers import attach_extension, post_raw, signed_resume
from tests.lifecycle.requests_setup import approval_policy, open_policy

pytestmark = pytest.mark.django_db
WAIT = Behavior.LAUNCH_AND_WAIT


def submit(person, policy, capture):
    with capture(execute=True):
        return request_submit(actor=person, target=person, access_package=policy.access_package)


@pytest.fixture
def waiting_for_approval(requester, approver, receiver, django_capture_on_commit_callbacks):
    """A request held at assignmentRequestCreated before its approval stage opens."""
    policy = approval_policy(approvers=[approver])
    attach_extension(
        policy, Stage.REQUEST_CREATED, url=receiver.url, behavior=WAIT, display_name="HR check"
    )
    request = submit(requester, policy, django_capture_on_commit_callbacks)
    return request, CustomExtensionCallout.objects.get()


def test_a_request_waits_for_the_extension_before_its_first_approval_stage_opens(
    waiting_for_approval, receiver
):
    request, callout = waiting_for_approval

    assert request.state == RequestState.PENDING_APPROVAL
    assert not RequestApprovalStage.objects.filter(request=request).exists()
    assert callout.state == CalloutState.WAITING_FOR_CALLBACK
    data = receiver.delivered[0]["payload"]["data"]
    assert data["callbackUriPath"] == (
        f"/identityGovernance/entitlementManagement/assignmentRequests/{request.pk}/resume"
    )
    assert data["callbackConfiguration"]["timeoutDuration"] == "P1D"


def test_a_signed_continue_opens_the_approval_stage(
    waiting_for_approval, client, signing_secret, django_capture_on_commit_callbacks
):
    request, callout = waiting_for_approval

    with django_capture_on_commit_callbacks(execute=True):
        response, _sent = signed_resume(
            client, request, callout, secret=signing_secret, detail="Contract signed"
        )

    assert response.status_code == 204, response.content
    stage = RequestApprovalStage.objects.get(request=request)
    assert stage.status == StageStatus.IN_PROGRESS
    callout.refresh_from_db()
    assert callout.state == CalloutState.CALLBACK_RECEIVED
    assert callout.callback_detail == "Contract signed"


def test_a_signed_continue_after_approval_delivers_the_access(
    requester, receiver, client, signing_secret, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_APPROVED, url=receiver.url, behavior=WAIT)
    request = submit(requester, policy, django_capture_on_commit_callbacks)
    request.refresh_from_db()
    assert request.state == RequestState.SUBMITTED
    assert not Assignment.objects.filter(target=requester).exists()

    with django_capture_on_commit_callbacks(execute=True):
        response, _sent = signed_resume(
            client, request, CustomExtensionCallout.objects.get(), secret=signing_secret
        )

    assert response.status_code == 204, response.content
    request.refresh_from_db()
    assert request.state == RequestState.DELIVERED
    assert Assignment.objects.get(target=requester).state == "delivered"


def test_a_signed_deny_ends_the_request_denied_with_the_reason(
    waiting_for_approval, client, signing_secret
):
    request, callout = waiting_for_approval

    response, _sent = signed_resume(
        client,
        request,
        callout,
        secret=signing_secret,
        state="Denied",
        detail="The contract is not signed.",
    )

    assert response.status_code == 204, response.content
    request.refresh_from_db()
    assert (request.state, request.status) == (RequestState.DENIED, "Denied")
    denial = AuditEvent.objects.get(request=request, action="request.deny")
    assert denial.reason == "The contract is not signed."
    assert not RequestApprovalStage.objects.filter(request=request).exists()


def test_when_the_wait_runs_out_the_request_is_denied_as_timed_out(waiting_for_approval):
    request, callout = waiting_for_approval

    assert services.callouts_time_out(now=callout.wait_until - timedelta(seconds=1)) == 0
    assert services.callouts_time_out(now=callout.wait_until) == 1

    request.refresh_from_db()
    callout.refresh_from_db()
    assert (request.state, request.status) == (RequestState.DENIED, "CallbackTimedOut")
    assert callout.state == CalloutState.CALLBACK_TIMED_OUT
    denial = AuditEvent.objects.get(request=request, action="request.deny")
    assert "HR check did not answer by" in denial.reason


def _nothing_changed(request, callout):
    request.refresh_from_db()
    callout.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL
    assert callout.state == CalloutState.WAITING_FOR_CALLBACK
    assert not RequestApprovalStage.objects.filter(request=request).exists()


def test_a_resume_signed_with_another_secret_is_refused_and_changes_nothing(
    waiting_for_approval, client
):
    request, callout = waiting_for_approval
    forged_secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="

    response, _sent = signed_resume(client, request, callout, secret=forged_secret)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidSignature"
    _nothing_changed(request, callout)


def test_an_unsigned_resume_is_refused_and_changes_nothing(waiting_for_approval, client):
    request, callout = waiting_for_approval
    body = (
        '{"data": {"stage": "assignmentRequestCreated", '
        f'"customExtensionStageInstanceId": "{callout.pk}"}}}}'
    )

    response = post_raw(client, request, body, {})

    assert response.status_code == 401
    _nothing_changed(request, callout)


def test_a_tampered_body_with_a_real_signature_is_refused(
    waiting_for_approval, client, signing_secret
):
    request, callout = waiting_for_approval
    response, (body, headers) = signed_resume(
        client, request, callout, secret=signing_secret, stage="assignmentRequestApproved"
    )
    assert response.status_code == 400  # signed, but for the wrong stage: nothing changed

    response = post_raw(client, request, body.replace("Approved", "Created"), headers)

    assert response.status_code == 401
    _nothing_changed(request, callout)


def test_a_replayed_resume_is_refused_with_409_and_changes_nothing_more(
    waiting_for_approval, client, signing_secret, django_capture_on_commit_callbacks
):
    request, callout = waiting_for_approval
    with django_capture_on_commit_callbacks(execute=True):
        first, (body, headers) = signed_resume(client, request, callout, secret=signing_secret)
    assert first.status_code == 204
    events = AuditEvent.objects.filter(request=request).count()

    again = post_raw(client, request, body, headers)

    assert again.status_code == 409
    assert "already answered" in again.json()["error"]["message"]
    assert RequestApprovalStage.objects.filter(request=request).count() == 1
    assert AuditEvent.objects.filter(request=request).count() == events


def test_a_resume_for_a_callout_of_another_request_is_not_found(
    waiting_for_approval, client, signing_secret, outsider, django_capture_on_commit_callbacks
):
    request, callout = waiting_for_approval
    other_policy = open_policy()
    other = submit(outsider, other_policy, django_capture_on_commit_callbacks)

    response, _sent = signed_resume(client, other, callout, secret=signing_secret)

    assert response.status_code == 404
    _nothing_changed(request, callout)


def test_a_callback_that_arrives_before_the_send_is_recorded_stands(
    requester, approver, receiver, django_capture_on_commit_callbacks
):
    policy = approval_policy(approvers=[approver])
    attach_extension(policy, Stage.REQUEST_CREATED, url=receiver.url, behavior=WAIT)
    receiver.status = 503
    request = submit(requester, policy, django_capture_on_commit_callbacks)
    callout = CustomExtensionCallout.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.request_resume(
            request_id=request.pk, callout_id=callout.pk, stage=Stage.REQUEST_CREATED
        )
    receiver.status = 200

    assert services.callouts_reconcile(now=timezone.now() + timedelta(hours=1)) == 0
    callout.refresh_from_db()
    assert callout.state == CalloutState.CALLBACK_RECEIVED
    assert RequestApprovalStage.objects.filter(request=request).count() == 1


def test_the_api_lists_the_requests_callouts(
    waiting_for_approval, client, requester, django_assert_max_num_queries
):
    request, callout = waiting_for_approval
    client.force_login(requester)

    response = client.get(
        f"/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{request.pk}"
    )

    assert response.status_code == 200, response.content
    assert response.json()["customExtensionCalloutInstances"] == [
        {
            "id": str(callout.pk),
            "customExtensionId": str(callout.custom_extension_id),
            "status": "waitingForCallback",
            "detail": "",
            "externalCorrelationId": str(callout.pk),
        }
    ]


def test_the_requestor_sees_the_wait_on_the_timeline(waiting_for_approval, client, requester):
    request, callout = waiting_for_approval
    client.force_login(requester)

    response = client.get(reverse("myaccess:request_detail", args=[request.pk]))

    assert response.status_code == 200
    text = response.content.decode()
    assert "Waiting for HR check since" in text
    assert f"until {escape(format_when(callout.wait_until))}" in text


def test_a_request_canceled_while_it_waits_shows_no_wait_and_refuses_the_answer(
    waiting_for_approval, client, requester, signing_secret
):
    request, callout = waiting_for_approval
    request_cancel(actor=requester, request=request, channel=Channel.PORTAL)
    client.force_login(requester)

    page = client.get(reverse("myaccess:request_detail", args=[request.pk]))
    response, _sent = signed_resume(client, request, callout, secret=signing_secret)

    assert "Waiting for HR check" not in page.content.decode()
    assert response.status_code == 409
    assert "canceled" in response.json()["error"]["message"]


def test_after_the_timeout_a_late_answer_is_refused(waiting_for_approval, client, signing_secret):
    request, callout = waiting_for_approval
    later = callout.wait_until + timedelta(minutes=1)
    services.callouts_time_out(now=later)

    with time_machine.travel(timezone.now(), tick=False):
        response, _sent = signed_resume(client, request, callout, secret=signing_secret)

    assert response.status_code == 409
    request.refresh_from_db()
    assert request.status == "CallbackTimedOut"


def test_my_access_says_the_request_waits_for_the_extension_not_for_approval(
    waiting_for_approval, client, requester
):
    request, callout = waiting_for_approval
    client.force_login(requester)

    text = client.get(reverse("myaccess:request_detail", args=[request.pk])).content.decode()

    assert "Your request is waiting for approval." not in text
    assert "Waiting for HR check (until" in text


def test_my_access_says_the_request_waits_for_the_extension_not_that_access_comes_in_a_moment(
    requester, receiver, client, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(
        policy, Stage.REQUEST_APPROVED, url=receiver.url, behavior=WAIT, display_name="HR check"
    )
    request = submit(requester, policy, django_capture_on_commit_callbacks)
    client.force_login(requester)

    text = client.get(reverse("myaccess:request_submitted", args=[request.pk])).content.decode()

    assert "You will get access in a moment." not in text
    assert "Waiting for HR check (until" in text
