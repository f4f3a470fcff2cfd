"""What the service provider publishes about itself: schemas, resource types, configuration.

The schemas are RFC 7643's, as scim2-server ships them, with one change: a group's members
are people only (the directory has no nested groups). ``service()`` is the scim2-server
``ScimService`` built on them, which validates every request, applies PUT and PATCH and
evaluates ETags; the directory is only its storage (``scim.storage``).
"""

import json
import re
from functools import cache

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Patch,
    Path,
    Reference,
    SCIMException,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# A page holds at most this many resources, whatever count asks for.
MAX_RESULTS = 200
# The largest request body read (RFC 7644 §3.12: 413 beyond it).
MAX_BODY_BYTES = 1024 * 1024

BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="Bearer token",
    description="The provisioning client's token, made in the admin under SCIM provisioning "
    "clients and sent as Authorization: Bearer <token>.",
    spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
    primary=True,
)


def _schemas():
    schemas = load_default_schemas()
    group = schemas[GROUP_SCHEMA].model_copy(deep=True)
    for attribute in group.attributes:
        if attribute.name == "members":
            for sub in attribute.sub_attributes:
                if sub.name == "$ref":
                    sub.reference_types = ["User"]
                if sub.name == "type":
                    sub.canonical_values = ["User"]
    return [schemas[USER_SCHEMA], group, schemas[ENTERPRISE_SCHEMA]]


def config():
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[BEARER],
    )


VALUE_PATH = re.compile(r'^(\w+)\[type eq "([^"]*)"\]\.(\w+)$', re.IGNORECASE)


def _entra_patch(body):
    """Entra ID's PATCH as RFC 7644 has it: the enterprise manager comes as the bare id of
    the manager (``"value": "<id>"``, ``""`` for none), and members are removed with
    ``{"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}`` where RFC 7644
    puts the member in the path (``members[value eq "<id>"]``)."""
    try:
        document = json.loads(body)
        operations = document["Operations"]
    except (ValueError, TypeError, KeyError):
        return body  # the service refuses it with the right error
    if not isinstance(operations, list):
        return body
    rewritten, changed = [], False
    for operation in operations:
        path = operation.get("path") if isinstance(operation, dict) else None
        value = operation.get("value") if isinstance(operation, dict) else None
        op = str(operation.get("op", "")).lower() if isinstance(operation, dict) else ""
        if isinstance(path, str) and path.lower().endswith(":manager") and isinstance(value, str):
            changed = True
            if value:
                operation["value"] = {"value": value}
            else:
                operation = {"op": "remove", "path": path}
        elif (
            op == "remove"
            and isinstance(path, str)
            and path.lower() == "members"
            and isinstance(value, list)
            and value
            and all(isinstance(m, dict) and isinstance(m.get("value"), str) for m in value)
        ):
            changed = True
            rewritten.extend(
                {"op": "remove", "path": f"members[value eq {json.dumps(m['value'])}]"}
                for m in value
            )
            continue
        rewritten.append(operation)
    if not changed:
        return body
    document["Operations"] = rewritten
    return json.dumps(document).encode()


class DirectoryScimService(ScimService):
    """scim2-server's protocol, tolerant of two things identity providers send: Entra ID's
    manager as a bare id, and ``replace`` of ``emails[type eq "work"].value`` when the person
    has no work address yet (Entra ID and Okta both send it; it then adds the address)."""

    def read_patch(self, resource_type, body, content_type):
        return super().read_patch(resource_type, _entra_patch(body), content_type)

    def apply_patch(self, current, patch_op, conditions):
        patch_op.operations = [
            _add_when_no_value_matches(current, operation) for operation in patch_op.operations
        ]
        return super().apply_patch(current, patch_op, conditions)


def _add_when_no_value_matches(resource, operation):
    match = operation.path is not None and VALUE_PATH.match(str(operation.path))
    if operation.op != operation.Op.replace_ or not match:
        return operation
    attribute, kind, sub = match.groups()
    try:
        entries = Path[type(resource)](attribute).get(resource) or []
    except (ValueError, TypeError, SCIMException):
        return operation
    if any((getattr(entry, "type", None) or "").lower() == kind.lower() for entry in entries):
        return operation
    return type(operation).model_validate(
        {"op": "add", "path": attribute, "value": [{"type": kind, sub: operation.value}]}
    )


@cache
def service():
    """The one ScimService of the process (its models are built once, at first use)."""
    resource_types = load_default_resource_types().values()
    provider = ScimProvider.from_discovery(_schemas(), resource_types, config=config())
    return DirectoryScimService(provider)
