"""Log lines carry the request (id, actor, path) into the tasks it enqueues, and no secret."""

import io
import json
import logging
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import RequestFactory

from approvals.links import decision_token
from approvals.models import RequestApprovalStage
from config import logs
from directory.models import GroupMembership
from entitlements.models import Channel
from entitlements.services.requests import request_submit
from tests.api.conftest import make_app
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    GroupResourceFactory,
    PolicyFactory,
    UserFactory,
    add_approver,
    grant_role,
)

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
def json_lines():
    """Every record any logger emits, at DEBUG, as the JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def request_lines(lines):
    return [line for line in lines if line["logger"] == "config.requests"]


@pytest.mark.django_db
def test_a_request_is_one_json_line_with_its_id_actor_path_status_and_duration(
    client, json_lines, requester
):
    client.force_login(requester)
    response = client.get("/requests/?secret-query=hidden")
    (line,) = request_lines(json_lines())
    assert line["request_id"] == response["request-id"]
    assert line["actor"] == str(requester.pk)
    assert line["path"] == "/requests/"
    assert line["status"] == response.status_code == 200
    assert line["duration"] > 0
    assert line["level"] == "INFO"
    assert line["timestamp"].endswith("Z")
    assert "hidden" not in json.dumps(line)


@pytest.mark.django_db
def test_a_line_logged_outside_a_request_has_no_request_fields(json_lines):
    logging.getLogger("tests").warning("alone")
    (line,) = [x for x in json_lines() if x["message"] == "alone"]
    assert set(line) == {"timestamp", "level", "logger", "message"}


def test_the_request_id_goes_into_the_headers_of_the_tasks_a_request_enqueues():
    published = {}

    def view(request):
        headers = {}
        logs.on_before_task_publish(headers=headers)
        published.update(headers)
        from django.http import HttpResponse

        return HttpResponse()

    request = RequestFactory().get("/")
    request.request_id = "0f0e0d0c-request"
    logs.RequestLogMiddleware(view)(request)
    assert published == {"request_id": "0f0e0d0c-request"}
    headers = {}
    logs.on_before_task_publish(headers=headers)  # outside the request: nothing to carry
    assert headers == {}


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_by_a_request_logs_that_requests_id_on_a_real_worker(start_worker):
    from entitlements.tasks import expire_due_assignments

    worker = start_worker(
        queues="delivery", concurrency=1, extra_env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    )

    def view(request):
        from django.http import HttpResponse

        expire_due_assignments.delay()
        return HttpResponse()

    request = RequestFactory().get("/")
    request.request_id = "5ca1ab1e-request-id"
    logs.RequestLogMiddleware(view)(request)
    deadline = time.monotonic() + 20
    found = []
    while time.monotonic() < deadline and not found:
        for text in list(worker.output):
            if text.startswith("{") and "5ca1ab1e-request-id" in text:
                found.append(json.loads(text))
        time.sleep(0.1)
    assert found, "".join(worker.output[-30:])
    assert found[0]["task_name"] == "entitlements.tasks.expire_due_assignments"
    assert found[0]["task_id"]


@pytest.mark.django_db
def test_a_whole_journey_logs_no_password_token_client_secret_or_decision_link(
    client, json_lines, django_capture_on_commit_callbacks, settings
):
    requester = UserFactory(email="rita@example.com")
    requester.set_password(PASSWORD)
    requester.save()
    approver = UserFactory(email="arno@example.com")
    resource = GroupResourceFactory()
    package = AccessPackageFactory(catalog=resource.catalog)
    grant_role(package, resource.roles.get(origin_id="Member"))
    policy = PolicyFactory(access_package=package, is_approval_required_for_add=True)
    stage = ApprovalStageFactory(
        policy=policy,
        is_approver_justification_required=False,
        duration_before_automatic_denial=timedelta(days=3),
    )
    add_approver(stage, user=approver)
    _, client_id, client_secret = make_app(["EntitlementManagement.ReadWrite.All"])

    # Sign-in with a password, once wrong and once right.
    assert client.post("/accounts/login/", {"login": requester.email, "password": "x"})
    response = client.post("/accounts/login/", {"login": requester.email, "password": PASSWORD})
    assert response.status_code == 302
    # An application's client credentials, then an API call with its bearer token.
    response = client.post(
        "/oauth2/v2.0/token",
        urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": "https://graph.microsoft.com/.default",
            }
        ),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    access_token = response.json()["access_token"]
    response = client.get(
        "/v1.0/identityGovernance/entitlementManagement/accessPackages",
        HTTP_AUTHORIZATION=f"Bearer {access_token}",
    )
    assert response.status_code == 200, response.content
    client.get("/v1.0/me", HTTP_AUTHORIZATION=f"Bearer {access_token}x")  # a wrong one
    # A request, approved from the emailed link, then delivered.
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=requester,
            target=requester,
            access_package=package,
            justification="Month-end close",
            channel=Channel.PORTAL,
        )
    link_token = decision_token(
        stage=RequestApprovalStage.objects.get(request=request), approver=approver
    )
    client.force_login(approver)
    assert client.get(f"/approvals/email/decide/{link_token}/").status_code == 200
    client.force_login(requester)
    assert client.get(f"/approvals/email/decide/{link_token}/").status_code == 403
    client.force_login(approver)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/approvals/email/decide/{link_token}/", {"decision": "approve"})
    assert response.status_code == 302, response.content
    assert GroupMembership.objects.filter(group=resource.group, user=requester).exists()

    lines = json_lines()
    text = "\n".join(json.dumps(line) for line in lines)
    assert len(request_lines(lines)) >= 8
    assert any("[redacted]" in line.get("path", "") for line in request_lines(lines))
    for secret in (PASSWORD, client_secret, access_token, link_token):
        assert secret not in text
