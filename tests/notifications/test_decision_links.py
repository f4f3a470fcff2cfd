"""The Approve and Deny links in approvers' emails: each refusal changes nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.utils import timezone

from approvals.links import SALT, decision_token, decision_url
from approvals.models import RequestApprovalStage, ReviewResult, StageStatus
from entitlements.models import AuditEvent, RequestState
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def link(stage, user, decision="approve"):
    return decision_url(stage=stage, approver=user, decision=decision, absolute=False)


def assert_unchanged(stage):
    stage.refresh_from_db()
    assert stage.status == StageStatus.IN_PROGRESS
    assert stage.review_result == ReviewResult.NOT_REVIEWED
    assert stage.request.state == RequestState.PENDING_APPROVAL
    assert not AuditEvent.objects.filter(action__startswith="stage.").exists()


def test_an_anonymous_visitor_is_sent_to_sign_in_and_returns_to_the_link(
    client, pending_stage, approver
):
    url = link(pending_stage, approver)
    response = client.get(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert "next=" in response["Location"]
    client.post(response["Location"], {"login": approver.email, "password": PASSWORD})
    page = client.get(url)
    assert page.status_code == 200
    assert b"Finance reports" in page.content


def test_opening_the_link_shows_the_request_and_decides_nothing(client, pending_stage, approver):
    client.force_login(approver)
    response = client.get(link(pending_stage, approver))
    assert response.status_code == 200
    assert b"Quarter-end close" in response.content
    assert b'value="approve" checked' in response.content
    assert_unchanged(pending_stage)


def test_a_mail_scanner_head_request_decides_nothing(client, pending_stage, approver):
    client.force_login(approver)
    assert client.head(link(pending_stage, approver)).status_code == 200
    assert_unchanged(pending_stage)


def test_a_forged_signature_is_refused(client, pending_stage, approver):
    client.force_login(approver)
    token = decision_token(stage=pending_stage, approver=approver)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = client.post(
        f"/approvals/email/decide/{forged}/", {"decision": "approve", "justification": "ok"}
    )
    assert response.status_code == 404
    assert b"not valid" in response.content
    assert_unchanged(pending_stage)


def test_a_token_signed_with_another_key_is_refused(client, pending_stage, approver):
    client.force_login(approver)
    data = {"s": str(pending_stage.pk), "u": str(approver.pk), "p": "primary"}
    token = signing.dumps(data, key="not-the-secret-key", salt=SALT, compress=True)
    response = client.post(f"/approvals/email/decide/{token}/", {"decision": "approve"})
    assert response.status_code == 404
    assert_unchanged(pending_stage)


def test_another_approvers_link_is_refused_even_to_an_approver(
    client, pending_stage, approver, second_approver
):
    client.force_login(second_approver)
    response = client.post(link(pending_stage, approver), {"decision": "approve"})
    assert response.status_code == 403
    assert b"sent to another approver" in response.content
    assert_unchanged(pending_stage)


def test_a_link_used_while_signed_in_as_someone_else_is_refused(
    client, pending_stage, approver, outsider
):
    client.force_login(outsider)
    response = client.post(link(pending_stage, approver), {"decision": "deny"})
    assert response.status_code == 403
    assert_unchanged(pending_stage)


def test_a_link_after_the_deadline_is_refused(client, pending_stage, approver):
    RequestApprovalStage.objects.filter(pk=pending_stage.pk).update(
        deadline=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(approver)
    response = client.post(link(pending_stage, approver), {"decision": "approve"})
    assert response.status_code == 410
    assert b"time to decide" in response.content
    assert_unchanged(pending_stage)


def test_a_link_whose_stage_was_escalated_away_is_refused(client, pending_stage, approver):
    url = link(pending_stage, approver)
    RequestApprovalStage.objects.filter(pk=pending_stage.pk).update(
        status=StageStatus.ESCALATED, escalated_datetime=timezone.now()
    )
    client.force_login(approver)
    response = client.post(url, {"decision": "approve"})
    assert response.status_code == 410
    assert b"forwarded to other approvers" in response.content
    pending_stage.refresh_from_db()
    assert pending_stage.review_result == ReviewResult.NOT_REVIEWED


def test_a_person_no_longer_an_approver_is_refused(client, pending_stage, approver):
    url = link(pending_stage, approver)
    pending_stage.approvers.filter(user=approver).delete()
    client.force_login(approver)
    response = client.post(url, {"decision": "approve"})
    assert response.status_code == 410
    assert b"no longer an approver" in response.content
    assert_unchanged(pending_stage)


def test_a_post_without_the_csrf_token_is_refused(pending_stage, approver):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(approver)
    response = csrf_client.post(link(pending_stage, approver), {"decision": "approve"})
    assert response.status_code == 403
    assert_unchanged(pending_stage)


def test_the_approver_decides_on_post_and_the_link_then_dies(
    client, pending_stage, approver, second_approver, django_capture_on_commit_callbacks
):
    client.force_login(approver)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            link(pending_stage, approver), {"decision": "approve", "justification": "Fine"}
        )
    assert response.status_code == 302
    pending_stage.refresh_from_db()
    assert pending_stage.review_result == ReviewResult.APPROVED
    assert pending_stage.reviewed_by == approver
    assert pending_stage.channel == "email"
    # Reuse: the same link, or the other approver's, now says who decided.
    again = client.post(link(pending_stage, approver), {"decision": "deny"})
    assert again.status_code == 410
    assert b"already approved by Arno Approver" in again.content
    client.force_login(second_approver)
    other = client.post(link(pending_stage, second_approver), {"decision": "deny"})
    assert b"already approved by Arno Approver" in other.content
    pending_stage.refresh_from_db()
    assert pending_stage.review_result == ReviewResult.APPROVED


def test_a_decision_without_choice_shows_a_field_error(client, pending_stage, approver):
    client.force_login(approver)
    response = client.post(link(pending_stage, approver, decision=None), {"justification": "x"})
    assert response.status_code == 400
    assert b"Choose Approve or Deny" in response.content
    assert_unchanged(pending_stage)


def test_an_approver_without_two_factor_is_sent_to_set_it_up_when_required(
    client, pending_stage, approver, settings
):
    settings.MFA_REQUIRED_FOR_APPROVERS = True
    client.force_login(approver)
    response = client.post(link(pending_stage, approver), {"decision": "approve"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/"
    assert_unchanged(pending_stage)


def test_a_link_to_a_stage_decided_in_the_morning_says_when_with_one_full_stop(
    client, pending_stage, approver, settings
):
    settings.TIME_ZONE = "UTC"
    settings.LANGUAGE_CODE = "en"
    morning = datetime(2025, 3, 10, 7, 47, tzinfo=UTC)
    RequestApprovalStage.objects.filter(pk=pending_stage.pk).update(
        status=StageStatus.COMPLETED,
        review_result=ReviewResult.APPROVED,
        reviewed_by=approver,
        reviewed_datetime=morning,
    )
    client.force_login(approver)

    page = client.get(link(pending_stage, approver)).content.decode()

    assert "already approved by Arno Approver at March 10, 2025, 7:47 a.m." in page
    assert "a.m.." not in page
