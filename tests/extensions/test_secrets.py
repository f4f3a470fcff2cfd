"""Where a custom extension's signing secret may come from: an environment variable named
CUSTOM_EXTENSION_..., or a file inside CUSTOM_EXTENSION_SECRETS_DIR; a weak key is refused,
and neither the admin nor the resume call tells whether a file elsewhere exists."""

import base64
import json
import secrets

import pytest
from django.core.exceptions import ValidationError

from entitlements.services.requests import request_submit
from extensions.models import Behavior, CustomExtensionCallout, Stage
from tests.extensions.helpers import SECRET_VARIABLE, attach_extension, post_raw
from tests.lifecycle.requests_setup import approval_policy, open_policy

pytestmark = pytest.mark.django_db


def a_secret(size=32):
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


@pytest.fixture
def extension(signing_secret, settings):
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = True
    settings.CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = True
    return attach_extension(open_policy(), Stage.REQUEST_GRANTED, url="https://hr.example.com/")


def secret_error(extension, reference):
    extension.secret_reference = reference
    with pytest.raises(ValidationError) as raised:
        extension.full_clean()
    return " ".join(raised.value.message_dict["secret_reference"])


def test_a_variable_not_named_custom_extension_is_refused(extension, monkeypatch):
    monkeypatch.setenv("DATABASE_SECRET", a_secret())

    assert "starting with CUSTOM_EXTENSION_" in secret_error(extension, "DATABASE_SECRET")


def test_a_file_reference_is_refused_when_no_secrets_directory_is_configured(
    extension, tmp_path, settings
):
    settings.CUSTOM_EXTENSION_SECRETS_DIR = ""
    secret_file = tmp_path / "hr"
    secret_file.write_text(a_secret())

    assert "Secret files are turned off" in secret_error(extension, str(secret_file))


def test_a_file_outside_the_directory_gets_the_same_answer_whether_it_exists_or_not(
    extension, tmp_path, settings
):
    settings.CUSTOM_EXTENSION_SECRETS_DIR = str(tmp_path / "secrets")
    existing = secret_error(extension, "/etc/passwd")
    missing = secret_error(extension, "/etc/no-such-file-here")

    assert existing.replace("/etc/passwd", "X") == missing.replace("/etc/no-such-file-here", "X")
    assert "must be inside" in existing


def test_a_link_inside_the_directory_to_a_file_outside_is_refused(extension, tmp_path, settings):
    (tmp_path / "secrets").mkdir()
    outside = tmp_path / "outside"
    outside.write_text(a_secret())
    link = tmp_path / "secrets" / "hr"
    link.symlink_to(outside)
    settings.CUSTOM_EXTENSION_SECRETS_DIR = str(tmp_path / "secrets")

    assert "must be inside" in secret_error(extension, str(link))


def test_a_file_inside_the_directory_is_accepted(extension, tmp_path, settings):
    settings.CUSTOM_EXTENSION_SECRETS_DIR = str(tmp_path)
    (tmp_path / "hr").write_text(a_secret() + "\n")
    extension.secret_reference = str(tmp_path / "hr")

    extension.full_clean()


@pytest.mark.parametrize("value", ["abc", a_secret(16), "whsec_not base64!", a_secret()[6:]])
def test_a_weak_or_malformed_key_is_refused(extension, monkeypatch, value):
    monkeypatch.setenv(SECRET_VARIABLE, value)

    assert "at least 24 random bytes" in secret_error(extension, SECRET_VARIABLE)


def test_the_resume_call_answers_a_generic_503_when_the_secret_cannot_be_read(
    requester, approver, receiver, client, monkeypatch, django_capture_on_commit_callbacks
):
    policy = approval_policy(approvers=[approver])
    attach_extension(
        policy, Stage.REQUEST_CREATED, url=receiver.url, behavior=Behavior.LAUNCH_AND_WAIT
    )
    with django_capture_on_commit_callbacks(execute=True):
        request = request_submit(
            actor=requester, target=requester, access_package=policy.access_package
        )
    callout = CustomExtensionCallout.objects.get()
    callout.custom_extension.secret_reference = "/etc/shadow"
    callout.custom_extension.save(update_fields=["secret_reference"])
    body = json.dumps(
        {
            "data": {
                "@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData",
                "stage": callout.stage,
                "customExtensionStageInstanceId": str(callout.pk),
            }
        }
    )

    response = post_raw(
        client,
        request,
        body,
        {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
    )

    assert response.status_code == 503
    assert response.json()["error"]["message"] == "This extension cannot check signatures now."
    assert "shadow" not in response.content.decode()
