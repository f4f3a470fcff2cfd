"""Builders for the custom extension tests: an extension attached to a policy, and the
extension's signed resume call."""

import json
import secrets
from datetime import timedelta

from django.utils import timezone
from standardwebhooks import Webhook

from extensions.models import Behavior, CustomExtension, CustomExtensionStageSetting

SECRET_VARIABLE = "CUSTOM_EXTENSION_TEST_SIGNING_SECRET"
RESUME_URL = "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/resume"


def attach_extension(policy, stage, *, url, behavior=Behavior.LAUNCH_AND_CONTINUE, **kw):
    """An extension in the policy's catalog, called by the policy at ``stage``."""
    extension = CustomExtension.objects.create(
        catalog=policy.access_package.catalog,
        display_name=kw.pop("display_name", f"HR check {CustomExtension.objects.count() + 1}"),
        endpoint_url=url,
        secret_reference=SECRET_VARIABLE,
        behavior=behavior,
        max_wait=kw.pop("max_wait", timedelta(days=1)),
        **kw,
    )
    CustomExtensionStageSetting.objects.create(
        policy=policy, stage=stage, custom_extension=extension
    )
    return extension


def signed_resume(client, request, callout, *, secret, state=None, detail="", stage=None):
    """POST the resume call as the extension does, signed with ``secret``."""
    stage = stage or callout.stage
    data = {
        "@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData",
        "stage": stage,
        "customExtensionStageInstanceId": str(callout.pk),
        "customExtensionStageInstanceDetail": detail,
    }
    if state:
        data["state"] = state
    body = json.dumps(
        {
            "source": "HR",
            "type": f"microsoft.graph.accessPackageCustomExtensionStage.{stage}",
            "data": data,
        }
    )
    message_id = f"msg_{secrets.token_hex(8)}"
    now = timezone.now()
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }
    return client.post(
        RESUME_URL.format(id=request.pk),
        data=body,
        content_type="application/json",
        headers=headers,
    ), (body, headers)


def post_raw(client, request, body, headers):
    return client.post(
        RESUME_URL.format(id=request.pk),
        data=body,
        content_type="application/json",
        headers=headers,
    )
