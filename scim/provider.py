"""What the service provider publishes about itself: schemas, resource types, configuration.

The schemas are RFC 7643's, as scim2-server ships them, with one change: a group's members
are people only (the directory has no nested groups). ``service()`` is the scim2-server
``ScimService`` built on them, which validates every request, applies PUT and PATCH and
evaluates ETags; the directory is only its storage (``scim.storage``).
"""

from functools import cache

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Patch,
    Reference,
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


@cache
def service():
    """The one ScimService of the process (its models are built once, at first use)."""
    resource_types = load_default_resource_types().values()
    provider = ScimProvider.from_discovery(_schemas(), resource_types, config=config())
    return ScimService(provider)
