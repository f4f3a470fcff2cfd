"""A provisioning client with its token, and a small SCIM caller over Django's test client."""

import json

import httpx
import pytest
from scim2_client import BaseSyncSCIMClient
from scim2_client.errors import RequestNetworkException

from scim.tokens import client_create

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Scim:
    """Calls /scim/v2/ as one provisioning client; answers (status, body or None, response)."""

    def __init__(self, django_client, token):
        self.http = django_client
        self.token = token

    def call(self, method, path, body=None, token=None, **headers):
        token = self.token if token is None else token
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        data = json.dumps(body) if body is not None and not isinstance(body, str | bytes) else body
        response = getattr(self.http, method.lower())(
            "/scim/v2/" + path.lstrip("/"),
            data=data if data is not None else "",
            content_type=SCIM,
            **headers,
        )
        content = response.content
        return response.status_code, (json.loads(content) if content else None), response

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, operations, **kw):
        return self.call("PATCH", path, {"schemas": [PATCH], "Operations": operations}, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def create_user(self, user_name, **attributes):
        body = {"schemas": [USER], "userName": user_name, **attributes}
        status, created, _ = self.post("Users", body)
        assert status == 201, created
        return created


@pytest.fixture
def provisioning(db, admin_user):
    """(ProvisioningClient, its token)."""
    return client_create(name="Entra ID", actor=admin_user)


@pytest.fixture
def scim(client, provisioning):
    return Scim(client, provisioning[1])


class HttpxScimClient(BaseSyncSCIMClient):
    """scim2-client's synchronous client over an ``httpx.Client`` (its own engine needs the
    httpx2 package; these are the same few lines over httpx, as the SCIM connector has)."""

    def __init__(self, http, **kwargs):
        super().__init__(**kwargs)
        self.http = http

    def _parse_json(self, response):
        return response.json()

    def request(self, method, url, **kwargs):
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            error = RequestNetworkException()
            error.add_note(str(exc))
            raise error from exc


@pytest.fixture
def live_scim(live_server, provisioning):
    """An httpx client of the live server's /scim/v2, sending the provisioning token."""
    with httpx.Client(
        base_url=f"{live_server.url}/scim/v2",
        headers={"Authorization": f"Bearer {provisioning[1]}"},
        timeout=30,
    ) as http:
        yield http


@pytest.fixture
def matching(db, admin_user):
    """(ProvisioningClient, its token) of a client allowed to match existing people and groups."""
    return client_create(name="Okta", match_existing=True, actor=admin_user)


@pytest.fixture
def matching_scim(client, matching):
    return Scim(client, matching[1])
