"""The OAuth 2.0 token endpoint: client credentials, answered as Microsoft Entra answers.

``POST /oauth2/v2.0/token`` (or ``/<tenant>/oauth2/v2.0/token``, the tenant being ignored:
the product is one tenant) with a form body ``grant_type=client_credentials``,
``client_id``, ``client_secret`` (or HTTP Basic) and ``scope``, which must be
``https://graph.microsoft.com/.default`` or ``<SITE_URL>/.default``: the token carries all
the application's permissions, as Entra's ``.default`` scope does. Errors follow RFC 6749
§5.2 (``{"error": ..., "error_description": ...}``). Failed attempts are counted per client
id in the cache; past the limit the endpoint answers 429 until the window ends, even to a
right secret, so a secret cannot be guessed.
"""

import base64
import binascii
import hashlib
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Application
from .tokens import application_token_issue, same_digest

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
FAILURE_LIMIT = 10  # failed attempts per client id ...
FAILURE_WINDOW_SECONDS = 300  # ... within this many seconds


def _error(status, error, description, headers=None):
    response = JsonResponse(
        {"error": error, "error_description": description}, status=status, headers=headers
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _failure_key(client_id):
    return "api:oauth:failures:" + hashlib.sha256(client_id.encode()).hexdigest()[:32]


def _failures(client_id):
    return cache.get(_failure_key(client_id), 0)


def _count_failure(client_id):
    key = _failure_key(client_id)
    if cache.add(key, 1, FAILURE_WINDOW_SECONDS):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, FAILURE_WINDOW_SECONDS)


def _basic_credentials(request):
    """(client_id, client_secret) from HTTP Basic (RFC 6749 §2.3.1: form-encoded parts)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return ("", "")
    return unquote_plus(client_id), unquote_plus(secret)


def _accepted_scopes():
    return {GRAPH_DEFAULT_SCOPE, f"{settings.SITE_URL}/.default"}


def _invalid_client(client_id, description, basic):
    if client_id:
        _count_failure(client_id)
    headers = {"WWW-Authenticate": 'Basic realm="entitlement-management"'} if basic else None
    return _error(401, "invalid_client", description, headers)


@csrf_exempt
@never_cache
@require_POST
def token(request, tenant=None):
    """Client credentials grant: a bearer token for a registered application."""
    if request.content_type != "application/x-www-form-urlencoded":
        return _error(
            400, "invalid_request", "The request body must be application/x-www-form-urlencoded."
        )
    form = request.POST
    basic = _basic_credentials(request)
    client_id = form.get("client_id", "")
    secret = form.get("client_secret", "")
    if basic is not None:
        if secret or (client_id and client_id != basic[0]):
            return _error(
                400,
                "invalid_request",
                "Send the client credentials either in HTTP Basic or in the body, not both.",
            )
        client_id, secret = basic
    client_id = client_id.strip()[:64]

    grant_type = form.get("grant_type", "")
    if not grant_type:
        return _error(400, "invalid_request", "The request body must contain grant_type.")
    if grant_type != "client_credentials":
        return _error(
            400,
            "unsupported_grant_type",
            f"The grant type '{grant_type[:64]}' is not supported; use client_credentials.",
        )
    if not client_id:
        return _error(400, "invalid_request", "The request body must contain client_id.")
    if _failures(client_id) >= FAILURE_LIMIT:
        return _error(
            429,
            "temporarily_unavailable",
            "Too many failed attempts for this client; try again later.",
            {"Retry-After": str(FAILURE_WINDOW_SECONDS)},
        )
    if not secret:
        return _invalid_client(client_id, "The request must contain client_secret.", basic)

    application = (
        Application.objects.select_related("service_principal").filter(client_id=client_id).first()
    )
    now = timezone.now()
    match = None
    if application is not None:
        # Compare with every live secret, in constant time each: an application has a few.
        for candidate in application.secrets.filter(revoked_at__isnull=True):
            if same_digest(secret, candidate.secret_hash):
                match = candidate
    if application is None:
        return _invalid_client(
            client_id, f"Application with identifier '{client_id}' was not found.", basic
        )
    if match is None:
        return _invalid_client(client_id, "Invalid client secret provided.", basic)
    if match.expires <= now:
        return _invalid_client(
            client_id, "The provided client secret keys for the application are expired.", basic
        )
    if not application.enabled or not application.service_principal.is_active:
        return _error(400, "unauthorized_client", "The application is disabled.")

    scopes = form.get("scope", "").split()
    if not scopes:
        return _error(400, "invalid_request", "The request body must contain scope.")
    if len(scopes) != 1 or scopes[0] not in _accepted_scopes():
        return _error(
            400,
            "invalid_scope",
            f"The scope must be '{GRAPH_DEFAULT_SCOPE}' or '{settings.SITE_URL}/.default'.",
        )

    _, value = application_token_issue(application=application, secret=match, now=now)
    lifetime = int(settings.API_TOKEN_LIFETIME.total_seconds())
    response = JsonResponse(
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": value,
        }
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response
