"""Microsoft's Graph SDK for Python as a client of the live test server.

``graph_as(live_server, token)`` is a ``GraphServiceClient`` whose base URL is the live
server's ``/v1.0`` and whose requests carry ``token``, as a script holding one would send it.
"""

from urllib.parse import urlparse

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient


class StaticToken(AccessTokenProvider):
    """Our bearer token, for the live server's host only (as kiota's providers check)."""

    def __init__(self, token, host):
        self.token = token
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        if not self.validator.is_url_host_valid(uri):
            return ""
        return self.token

    def get_allowed_hosts_validator(self):
        return self.validator


def graph_as(live_server, token):
    """A GraphServiceClient calling the live server with ``token``."""
    host = urlparse(live_server.url).hostname  # kiota compares host names, not ports
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token, host)))
    adapter.base_url = f"{live_server.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)
