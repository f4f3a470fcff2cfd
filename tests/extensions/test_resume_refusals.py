"""The resume call accepts only a real answer: our own callout played back, an unknown state,
a late answer or an answer to a closed request are refused and change nothing."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from approvals.models import RequestApprovalStage
from entitlements.models import AuditEvent, Channel, RequestState
from entitlements.services.requests import request_cancel, request_submit
from extensions import services
from extensions.models import Behavior, CalloutState, CustomExtensionCallout, Stage
from tests.extensions.helpers import attach_extension, post_raw, signed_resume
from tests.lifecycle.requests_setup import approval_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(requester, approver, receiver, django_capture_on_commit_callbacks):
    """A request held at assignmentRequestCreated, its callout delivered to the receiver."""
    policy = approval_policy(approvers=[approver])
    attach_extension(
        policy,
        Stage.REQUEST_CREATED,
        url=receiver.url,
        behavior=Behavior.LAUNCH_AND_WAIT,
        display_name="HR check",
    )
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=requester, target=requester, access_package=policy.access_package
        )
    return request, CustomExtensionCallout.objects.get()


def assert_nothing_changed(request, callout, events_before):
    request.refresh_from_db()
    callout.refresh_from_db()
    assert request.state == RequestState.PENDING_APPROVAL
    assert not RequestApprovalStage.objects.filter(request=request).exists()
    assert callout.state == CalloutState.WAITING_FOR_CALLBACK
    assert AuditEvent.objects.count() == events_before


def test_our_own_callout_played_back_to_resume_is_refused_and_changes_nothing(
    waiting, receiver, client, django_capture_on_commit_callbacks
):
    request, callout = waiting
    sent = receiver.delivered[0]
    headers = {k.lower(): v for k, v in sent["headers"].items() if k.lower().startswith("webhook-")}
    events = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_raw(client, request, sent["body"].decode(), headers)

    assert response.status_code in (400, 401), response.content
    assert set(response.json()["error"]) >= {"code", "message"}
    assert_nothing_changed(request, callout, events)


def test_an_answer_signed_under_a_callouts_id_is_refused_and_changes_nothing(
    waiting, client, signing_secret
):
    request, callout = waiting
    body = json.dumps(
        {
            "source": "HR",
            "data": {
                "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData",
                "stage": callout.stage,
                "customExtensionStageInstanceId": str(callout.pk),
            },
        }
    )
    now = timezone.now()
    headers = {
        "webhook-id": str(callout.pk),
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(signing_secret).sign(str(callout.pk), now, body),
    }
    events = AuditEvent.objects.count()

    response = post_raw(client, request, body, headers)

    assert response.status_code == 400
    assert "webhook-id" in response.json()["error"]["message"]
    assert_nothing_changed(request, callout, events)


@pytest.mark.parametrize("state", ["Rejected", "approved", "continue", "Deny"])
def test_an_unknown_state_is_refused_in_graphs_error_shape_and_changes_nothing(
    waiting, client, signing_secret, django_capture_on_commit_callbacks, state
):
    request, callout = waiting
    events = AuditEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response, _sent = signed_resume(
            client, request, callout, secret=signing_secret, state=state
        )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] and state in error["message"]
    assert_nothing_changed(request, callout, events)


@pytest.mark.parametrize("state", ["denied", "CANCELED"])
def test_denied_and_canceled_are_understood_in_any_case(
    waiting, client, signing_secret, django_capture_on_commit_callbacks, state
):
    request, callout = waiting

    with django_capture_on_commit_callbacks(execute=True):
        response, _sent = signed_resume(
            client, request, callout, secret=signing_secret, state=state
        )

    assert response.status_code == 204, response.content
    request.refresh_from_db()
    assert request.state == RequestState.DENIED


def test_a_body_that_is_not_callback_data_is_refused(
    waiting, client, signing_secret, django_capture_on_commit_callbacks
):
    request, callout = waiting
    body = json.dumps(
        {
            "data": {
                "@odata.type": "microsoft.graph.accessPackageCustomExtensionCalloutData",
                "stage": callout.stage,
                "customExtensionStageInstanceId": str(callout.pk),
            }
        }
    )
    events = AuditEvent.objects.count()

    response = post_raw(
        client,
        request,
        body,
        {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )

    assert response.status_code == 400
    assert "CallbackData" in response.json()["error"]["message"]
    assert_nothing_changed(request, callout, events)


def test_canceling_a_waiting_request_stops_the_wait_and_the_timeout_leaves_it_alone(
    waiting, requester, django_capture_on_commit_callbacks
):
    request, callout = waiting

    with django_capture_on_commit_callbacks(execute=True):
        request_cancel(actor=requester, request=request, channel=Channel.PORTAL)

    callout.refresh_from_db()
    assert (callout.waits, callout.wait_until) == (False, None)
    assert AuditEvent.objects.filter(action="customExtensionCallout.closed").count() == 1
    later = timezone.now() + timedelta(days=2)
    assert services.callouts_time_out(now=later) == 0
    request.refresh_from_db()
    assert request.state == RequestState.CANCELED


def test_a_callout_of_a_request_canceled_before_it_was_sent_is_never_sent(
    requester, approver, receiver, django_capture_on_commit_callbacks
):
    policy = approval_policy(approvers=[approver])
    attach_extension(
        policy, Stage.REQUEST_CREATED, url=receiver.url, behavior=Behavior.LAUNCH_AND_WAIT
    )
    receiver.status = 503
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=requester, target=requester, access_package=policy.access_package
        )
        request_cancel(actor=requester, request=request, channel=Channel.PORTAL)
    receiver.status = 200

    assert (
        services.callout_send(
            callout_id=CustomExtensionCallout.objects.get().pk,
            now=timezone.now() + timedelta(hours=1),
        )
        is None
    )

    callout = CustomExtensionCallout.objects.get()
    assert receiver.delivered == []
    assert callout.state == CalloutState.CALLOUT_FAILED
    assert callout.attempts[-1]["error"] == "Not sent: the request ended before the call was made."


def test_an_answer_after_the_wait_ended_is_refused_and_times_the_callout_out(
    waiting, client, signing_secret, django_capture_on_commit_callbacks
):
    request, callout = waiting
    CustomExtensionCallout.objects.filter(pk=callout.pk).update(
        wait_until=timezone.now() - timedelta(minutes=1)
    )  # the timeout job has not run yet

    with django_capture_on_commit_callbacks(execute=True):
        response, _sent = signed_resume(client, request, callout, secret=signing_secret)

    assert response.status_code == 409, response.content
    assert "after the wait ended" in response.json()["error"]["message"]
    callout.refresh_from_db()
    request.refresh_from_db()
    assert callout.state == CalloutState.CALLBACK_TIMED_OUT
    assert request.state == RequestState.DENIED
    assert request.status == services.TIMED_OUT
    assert not RequestApprovalStage.objects.filter(request=request).exists()
