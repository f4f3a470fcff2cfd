"""The token endpoint and the pages for API credentials (see api.authentication)."""

from django.urls import path

from . import oauth, portal

urlpatterns = [
    path("oauth2/v2.0/token", oauth.token, name="oauth-token"),
    path("<str:tenant>/oauth2/v2.0/token", oauth.token, name="oauth-tenant-token"),
    path("my/api-tokens/", portal.token_list, name="api-tokens"),
    path("my/api-tokens/new/", portal.token_create, name="api-token-create"),
    path("my/api-tokens/<uuid:pk>/revoke/", portal.token_revoke_view, name="api-token-revoke"),
]
