"""The JSON body of a callout, shaped like Entra's (accessPackageCustomExtensionCalloutData),
and its Standard Webhooks signature."""

import json
from datetime import UTC

from django.conf import settings

EVENT_TYPE = "microsoft.graph.accessPackageCustomExtensionStage.{stage}"
CALLOUT_DATA = "microsoft.graph.accessPackageCustomExtensionCalloutData"
CALLBACK_DATA = "microsoft.graph.accessPackageAssignmentRequestCallbackData"
RESUME_PATH = "/identityGovernance/entitlementManagement/assignmentRequests/{id}/resume"
SOURCE = "EntitlementManagement"


def graph_time(value):
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _subject(user):
    if user is None:
        return None
    return {
        "id": str(user.pk),
        "objectId": str(user.pk),
        "displayName": user.display_name,
        "email": user.email,
        "principalName": user.email,
    }


def callout_payload(*, callout, extension, stage, request, assignment, policy, package, now):
    """The body of ``callout``, written once when the callout is, and sent as it is on every
    attempt (so a receiver can compare retries byte for byte)."""
    catalog = extension.catalog
    data = {
        "@odata.type": CALLOUT_DATA,
        "stage": stage,
        "customExtensionStageInstanceId": str(callout.pk),
        "customExtensionStageInstanceDetail": "",
        "accessPackage": {
            "id": str(package.pk),
            "displayName": package.display_name,
            "description": package.description,
        },
        "catalog": {
            "id": str(catalog.pk),
            "displayName": catalog.display_name,
            "description": catalog.description,
        },
        "accessPackageAssignmentPolicy": {"id": str(policy.pk), "displayName": policy.display_name},
        "customExtension": {"id": str(extension.pk), "displayName": extension.display_name},
    }
    if request is not None:
        data["assignmentRequest"] = {
            "id": str(request.pk),
            "requestType": request.request_type,
            "state": request.state,
            "status": request.status,
            "createdDateTime": graph_time(request.created),
            "justification": request.justification,
            "schedule": {
                "startDateTime": graph_time(request.schedule_start),
                "expiration": {"endDateTime": graph_time(request.schedule_end)},
            },
        }
        data["requestor"] = _subject(request.requestor)
        data["target"] = _subject(request.target)
    if assignment is not None:
        data["assignment"] = {
            "id": str(assignment.pk),
            "state": assignment.state,
            "status": assignment.status,
            "schedule": {
                "startDateTime": graph_time(assignment.schedule_start),
                "expiration": {"endDateTime": graph_time(assignment.schedule_end)},
            },
        }
        data.setdefault("target", _subject(assignment.target))
    if callout.waits and request is not None:
        data["callbackUriPath"] = RESUME_PATH.format(id=request.pk)
        data["callbackUri"] = f"{settings.SITE_URL}/v1.0{data['callbackUriPath']}"
        data["callbackConfiguration"] = {
            "@odata.type": "microsoft.graph.customExtensionCallbackConfiguration",
            "timeoutDuration": _iso_duration(extension.max_wait),
            "waitUntilDateTime": graph_time(callout.wait_until),
        }
    return {
        "source": SOURCE,
        "type": EVENT_TYPE.format(stage=stage),
        "time": graph_time(now),
        "data": data,
    }


def _iso_duration(value):
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return f"P{days}D" + (f"T{time}" if time else "") if days else f"PT{time or '0S'}"


def body_bytes(payload):
    """The exact bytes sent and signed."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature_headers(*, secret, callout_id, body, now):
    """The Standard Webhooks headers for ``body``: webhook-id (the callout id),
    webhook-timestamp, webhook-signature."""
    from standardwebhooks import Webhook

    now = now.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id=str(callout_id), timestamp=now, data=body.decode())
    return {
        "webhook-id": str(callout_id),
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
