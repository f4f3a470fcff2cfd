"""Emails and the reasons given to people, in German and French."""

import pytest
from django.utils import translation

from entitlements.errors import InvalidRequest
from entitlements.models import Channel
from entitlements.services.requests import request_submit

pytestmark = pytest.mark.django_db


@pytest.mark.smtp
@pytest.mark.parametrize(
    ("language", "subject_start"),
    [("de", "Aktion erforderlich: "), ("fr", "Action requise : approuvez ou refusez la demande")],
)
def test_an_approval_email_is_written_in_the_approvers_language(
    language,
    subject_start,
    approval_policy,
    requester,
    approver,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    approver.preferred_language = language
    approver.save()
    with django_capture_on_commit_callbacks(execute=True):
        request_submit(
            actor=requester,
            target=requester,
            access_package=approval_policy.access_package,
            justification="Quarter-end close",
            channel=Channel.PORTAL,
        )
    smtp_server.wait_for(2)
    (message,) = smtp_server.to(approver.email)
    with translation.override(language):
        approve = translation.gettext("Approve")

    assert approve != "Approve"
    assert str(message["Subject"]).strip().startswith(subject_start)
    assert f">{approve}</a>" in smtp_server.html(message)


@pytest.mark.parametrize(
    ("language", "reason"),
    [
        ("de", "Geben Sie eine geschäftliche Begründung an."),
        ("fr", "Indiquez une justification métier."),
    ],
)
def test_a_refusal_is_given_in_the_requestors_language(
    language, reason, approval_policy, requester
):
    with translation.override(language), pytest.raises(InvalidRequest) as refused:
        request_submit(
            actor=requester,
            target=requester,
            access_package=approval_policy.access_package,
            justification="",
            channel=Channel.PORTAL,
        )

    assert str(refused.value.message) == reason
