"""Callouts: written with the lifecycle change, sent signed to a real endpoint, retried until
it is up, and delivered exactly once."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from entitlements.models import Channel
from entitlements.services.ending import assignment_remove
from entitlements.services.requests import request_submit
from extensions import services
from extensions.models import CalloutState, CustomExtensionCallout, Stage
from tests.extensions.helpers import SECRET_VARIABLE, attach_extension
from tests.lifecycle.requests_setup import give_assignment, open_policy, package_with_roles

pytestmark = pytest.mark.django_db


def submit(person, policy, capture):
    with capture(execute=True):
        return request_submit(actor=person, target=person, access_package=policy.access_package)


def test_granted_access_calls_the_endpoint_with_a_signed_body_shaped_like_entras(
    requester, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy(package_with_roles(display_name="CRM"))
    extension = attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)

    request = submit(requester, policy, django_capture_on_commit_callbacks)

    assert len(receiver.delivered) == 1
    call = receiver.delivered[0]
    callout = CustomExtensionCallout.objects.get()
    assert call["headers"]["webhook-id"] == str(callout.pk)
    data = call["payload"]["data"]
    assert call["payload"]["type"] == (
        "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestGranted"
    )
    assert data["@odata.type"] == "microsoft.graph.accessPackageCustomExtensionCalloutData"
    assert data["stage"] == "assignmentRequestGranted"
    assert data["customExtensionStageInstanceId"] == str(callout.pk)
    assert data["assignmentRequest"]["id"] == str(request.pk)
    assert data["assignmentRequest"]["requestType"] == "userAdd"
    assert data["accessPackage"]["displayName"] == "CRM"
    assert data["catalog"]["id"] == str(policy.access_package.catalog_id)
    assert data["customExtension"]["displayName"] == extension.display_name
    assert data["target"]["email"] == requester.email
    assert "callbackUriPath" not in data  # launch and continue: no answer expected
    assert callout.state == CalloutState.CALLOUT_SENT
    assert [a["status"] for a in callout.attempts] == [200]


def test_an_endpoint_that_is_down_then_up_gets_the_callout_exactly_once(
    requester, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)
    receiver.status = 503
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        submit(requester, policy, django_capture_on_commit_callbacks)
    callout = CustomExtensionCallout.objects.get()
    assert callout.state == CalloutState.PENDING
    assert callout.next_attempt_datetime == start + timedelta(seconds=30)
    assert receiver.delivered == []

    receiver.status = 200
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        assert services.callouts_reconcile() == 0  # not due yet: the backoff holds
    with time_machine.travel(start + timedelta(seconds=31), tick=False):
        assert services.callouts_reconcile() == 1
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        assert services.callouts_reconcile() == 0

    assert len(receiver.delivered) == 1
    assert len(receiver.calls) == 2
    callout.refresh_from_db()
    assert callout.state == CalloutState.CALLOUT_SENT
    assert [a["status"] for a in callout.attempts] == [503, 200]


def test_the_backoff_doubles_and_after_the_last_attempt_the_callout_has_failed(
    requester, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)
    receiver.status = 500
    moment = timezone.now()
    with time_machine.travel(moment, tick=False):
        submit(requester, policy, django_capture_on_commit_callbacks)
    waits = []
    for _ in range(services.MAX_ATTEMPTS - 1):
        callout = CustomExtensionCallout.objects.get()
        waits.append(callout.next_attempt_datetime - moment)
        moment = callout.next_attempt_datetime
        with time_machine.travel(moment, tick=False):
            services.callouts_reconcile()

    callout = CustomExtensionCallout.objects.get()
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert callout.state == CalloutState.CALLOUT_FAILED
    assert callout.attempt_count == services.MAX_ATTEMPTS
    assert all(a["status"] == 500 for a in callout.attempts)
    assert receiver.delivered == []


def test_a_claimed_callout_is_not_sent_again_until_its_lease_runs_out(
    requester, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)
    receiver.status = 503
    submit(requester, policy, django_capture_on_commit_callbacks)
    callout = CustomExtensionCallout.objects.get()
    receiver.status = 200
    later = callout.next_attempt_datetime + timedelta(seconds=1)
    # A worker claimed it and died before recording: another finds it only after the lease.
    CustomExtensionCallout.objects.filter(pk=callout.pk).update(
        claimed_by="dead-worker", lease_expires=later + timedelta(minutes=1)
    )

    assert services.callout_send(callout_id=callout.pk, now=later) is None
    assert services.callouts_reconcile(now=later) == 0
    assert services.callout_send(callout_id=callout.pk, now=later + timedelta(minutes=2)) == (
        CalloutState.CALLOUT_SENT
    )
    assert len(receiver.delivered) == 1


def test_a_missing_secret_is_recorded_on_the_attempt_and_nothing_is_sent(
    requester, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)
    monkeypatch.delenv(SECRET_VARIABLE)

    submit(requester, policy, django_capture_on_commit_callbacks)

    callout = CustomExtensionCallout.objects.get()
    assert callout.state == CalloutState.PENDING
    assert "CUSTOM_EXTENSION_TEST_SIGNING_SECRET is not set" in callout.attempts[0]["error"]
    assert receiver.calls == []


def test_a_secret_in_a_file_signs_the_callout(
    requester, receiver, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.CUSTOM_EXTENSION_SECRETS_DIR = str(tmp_path)
    secret_file = tmp_path / "hr-extension"
    secret_file.write_text(receiver.secret + "\n")
    policy = open_policy()
    extension = attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)
    extension.secret_reference = str(secret_file)
    extension.save(update_fields=["secret_reference"])

    submit(requester, policy, django_capture_on_commit_callbacks)

    assert len(receiver.delivered) == 1


def test_removal_calls_the_extension_once_with_the_assignment(
    requester, admin_user, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_REMOVED, url=receiver.url)
    assignment = give_assignment(requester, policy.access_package, policy)

    with django_capture_on_commit_callbacks(execute=True):
        assignment_remove(actor=admin_user, assignment=assignment, channel=Channel.ADMIN)

    assert len(receiver.delivered) == 1
    data = receiver.delivered[0]["payload"]["data"]
    assert data["stage"] == "assignmentRequestRemoved"
    assert data["assignment"]["id"] == str(assignment.pk)
    assert data["assignmentRequest"]["requestType"] == "adminRemove"


def test_the_expiry_stages_call_once_per_assignment_and_stage(
    requester, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.FOURTEEN_DAYS_BEFORE_EXPIRATION, url=receiver.url)
    attach_extension(policy, Stage.ONE_DAY_BEFORE_EXPIRATION, url=receiver.url)
    now = timezone.now()
    assignment = give_assignment(requester, policy.access_package, policy, now=now)
    assignment.schedule_end = now + timedelta(days=10)
    assignment.save(update_fields=["schedule_end"])

    with django_capture_on_commit_callbacks(execute=True):
        assert services.callouts_before_expiration(now=now) == 1
        assert services.callouts_before_expiration(now=now) == 0
        later = now + timedelta(days=9, hours=12)
        assert services.callouts_before_expiration(now=later) == 1
        assert services.callouts_before_expiration(now=later) == 0

    stages = [c["payload"]["data"]["stage"] for c in receiver.delivered]
    assert stages == ["assignmentFourteenDaysBeforeExpiration", "assignmentOneDayBeforeExpiration"]


def test_an_extended_assignment_is_called_again_before_its_new_end(
    requester, receiver, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.FOURTEEN_DAYS_BEFORE_EXPIRATION, url=receiver.url)
    now = timezone.now()
    assignment = give_assignment(requester, policy.access_package, policy, now=now)
    assignment.schedule_end = now + timedelta(days=10)
    assignment.save(update_fields=["schedule_end"])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.callouts_before_expiration(now=now) == 1

    assignment.schedule_end = now + timedelta(days=40)  # extended
    assignment.save(update_fields=["schedule_end"])
    later = now + timedelta(days=30)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.callouts_before_expiration(now=later) == 1
        assert services.callouts_before_expiration(now=later) == 0

    ends = [
        c["payload"]["data"]["assignment"]["schedule"]["expiration"]["endDateTime"]
        for c in receiver.delivered
    ]
    assert len(ends) == 2 and ends[0] != ends[1]


def test_a_policy_without_extensions_writes_no_callout(
    requester, django_capture_on_commit_callbacks
):
    submit(requester, open_policy(), django_capture_on_commit_callbacks)

    assert not CustomExtensionCallout.objects.exists()
