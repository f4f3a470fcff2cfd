"""An extension that cannot be reached: the requestor (My Access, the API) reads a generic
sentence, the catalog's admins read the attempts; the admin's list hides the endpoint's query
string, and the HTTP client logs no URL."""

import logging

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from entitlements.models import AdminRole, RequestState, RoleAssignment
from entitlements.services.requests import request_submit
from extensions import services
from extensions.models import Behavior, CalloutState, CustomExtensionCallout, Stage
from tests.extensions.helpers import attach_extension
from tests.factories import UserFactory
from tests.lifecycle.requests_setup import approval_policy, open_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(requester, approver, receiver, django_capture_on_commit_callbacks):
    """A request denied because its waiting extension answered 500 on every attempt."""
    policy = approval_policy(approvers=[approver])
    attach_extension(
        policy,
        Stage.REQUEST_CREATED,
        url=receiver.url + "?code=s3cr3t-key",
        behavior=Behavior.LAUNCH_AND_WAIT,
        display_name="HR check",
    )
    receiver.status = 500
    moment = timezone.now()
    with (
        time_machine.travel(moment, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        request = request_submit(
            actor=requester, target=requester, access_package=policy.access_package
        )
    for _ in range(services.MAX_ATTEMPTS - 1):
        moment = CustomExtensionCallout.objects.get().next_attempt_datetime
        with (
            time_machine.travel(moment, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            services.callouts_reconcile()
    request.refresh_from_db()
    return request, CustomExtensionCallout.objects.get()


def test_the_requestor_reads_a_generic_reason_and_the_admin_the_attempts(failed, client, requester):
    request, callout = failed

    assert callout.state == CalloutState.CALLOUT_FAILED
    assert request.state == RequestState.DENIED
    client.force_login(requester)
    api = client.get(
        f"/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{request.pk}"
    ).json()
    page = client.get(reverse("myaccess:request_detail", args=[request.pk])).content.decode()

    assert api["customExtensionCalloutInstances"][0]["detail"] == (
        "The extension HR check could not be reached."
    )
    assert "HTTP 500" not in str(api) and "HTTP 500" not in page
    assert "The extension HR check could not be reached." in page
    assert callout.attempts[-1]["error"] == "The endpoint answered HTTP 500."


def test_the_admin_list_hides_the_endpoints_query_string(client, signing_secret, settings):
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = True
    extension = attach_extension(
        open_policy(), Stage.REQUEST_GRANTED, url="https://hr.example.com/hook?code=s3cr3t-key"
    )
    owner = UserFactory(is_staff=True)
    RoleAssignment.objects.create(
        principal=owner, catalog=extension.catalog, role=AdminRole.CATALOG_OWNER
    )
    client.force_login(owner)

    page = client.get(reverse("admin:extensions_customextension_changelist")).content.decode()

    assert "https://hr.example.com/hook?…" in page
    assert "s3cr3t-key" not in page


def test_the_http_client_logs_no_urls():
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() >= logging.WARNING
