"""The official msgraph-sdk as a real client: it gets a token from the token endpoint with
client credentials and calls the API with it, over HTTP against a live server."""

import asyncio

import httpx
import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient

from api.permissions import EM_READ
from tests.factories import CatalogFactory

pytestmark = pytest.mark.django_db(transaction=True)


class ClientCredentials(AccessTokenProvider):
    """Client credentials against the product's token endpoint (what docs/api-authentication.md
    shows); a real deployment behind https may use azure-identity instead."""

    def __init__(self, base_url, client_id, secret):
        self.base_url, self.client_id, self.secret = base_url, client_id, secret
        self.requests = 0

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.base_url}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.secret,
                    "scope": "https://graph.microsoft.com/.default",
                },
            )
        response.raise_for_status()
        self.requests += 1
        return response.json()["access_token"]

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([httpx.URL(self.base_url).host])


def test_the_graph_sdk_signs_in_with_client_credentials_and_lists_catalogs(live_server, api_app):
    CatalogFactory(display_name="Reached by the SDK")
    _, client_id, secret = api_app([EM_READ])
    credentials = ClientCredentials(live_server.url, client_id, secret)
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(credentials))
    adapter.base_url = f"{live_server.url}/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)

    page = asyncio.run(graph.identity_governance.entitlement_management.catalogs.get())

    assert "Reached by the SDK" in {catalog.display_name for catalog in page.value}
    assert credentials.requests == 1
