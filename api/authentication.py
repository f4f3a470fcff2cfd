"""Bearer tokens: ``Authorization: Bearer <token>`` (filled in by the token issue's work)."""

from rest_framework import authentication


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Reads ``Authorization: Bearer``; answers 401 with ``WWW-Authenticate: Bearer``."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return 'Bearer realm="entitlement-management"'
