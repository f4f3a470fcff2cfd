"""The one view of /scim/v2/: reads the request, authenticates the client, lets
scim2-server's handler serve it over the directory, and answers application/scim+json.

Every answer is SCIM's: a failure is an Error body (schemas, status as a string,
scimType, detail), never a page, and an unexpected exception is a 500 Error body, logged.
"""

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    InvalidValueException,
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.errors import UnsupportedMediaTypeException
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.routing import Operation

from .provider import MAX_BODY_BYTES, service
from .storage import DirectoryStorage
from .tokens import client_for_token

logger = logging.getLogger("scim")
FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _base_url(request):
    return request.build_absolute_uri("/scim/v2").rstrip("/")


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _read_body(request):
    if request.content_type in FORM_CONTENT_TYPES:
        # A form is no SCIM body; the middleware may have read it already.
        raise UnsupportedMediaTypeException(
            detail="The request body must be application/scim+json."
        )
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLargeException(
            detail=f"The request body is larger than {MAX_BODY_BYTES} bytes."
        )
    try:
        body = request.body
    except RawPostDataException:
        raise UnsupportedMediaTypeException(detail="The request body must be JSON.") from None
    except RequestDataTooBig:
        raise PayloadTooLargeException(
            detail=f"The request body is larger than {MAX_BODY_BYTES} bytes."
        ) from None
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeException(
            detail=f"The request body is larger than {MAX_BODY_BYTES} bytes."
        )
    if b"\\u0000" in body or b"\x00" in body:
        # PostgreSQL keeps no NUL in text: refused here rather than by the database.
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if decoded is None or _has_nul(decoded):
            raise InvalidValueException(detail="A value holds a NUL character.")
    return body


def _authenticate(scim_request):
    scheme, _, token = (scim_request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedException(detail="Send the client's token as Authorization: Bearer.")
    client = client_for_token(token.strip())
    if client is None:
        raise UnauthorizedException(detail="The token is unknown, revoked or not a SCIM token.")
    return client


def _http(scim_response):
    body = b"" if scim_response.body is None else json.dumps(scim_response.body).encode()
    response = HttpResponse(body, status=scim_response.status.value)
    for name, value in scim_response.headers.items():
        response[name] = value
    if scim_response.body is None:
        del response["Content-Type"]
    response.setdefault("Cache-Control", "no-cache")
    return response


@csrf_exempt
def endpoint(request, path=""):
    """Serve one SCIM request at /scim/v2/<path>."""
    scim = service()
    scim_request = ScimRequest(
        method=request.method,
        base_url=_base_url(request),
        path="/" + path.removesuffix(".scim"),
        query={key: request.GET.get(key) for key in request.GET},
        headers=list(request.headers.items()),
    )
    try:
        scim_request.body = _read_body(request)
        operation = scim.match(scim_request).operation
        client = None
        if operation is not Operation.service_provider_config:
            client = _authenticate(scim_request)
        scim_request.subject = client
        handler = ScimHandler(scim, DirectoryStorage(service=scim, client=client))
        with transaction.atomic():
            scim_response = handler.handle(scim_request)
    except SCIMException as exc:
        logger.info("SCIM %s %s: %s %s", request.method, request.path, exc.status, exc)
        scim_response = scim.error_response(exc)
    except Exception as exc:  # noqa: BLE001 - a bug is answered as SCIM's 500, and logged
        logger.exception("SCIM %s %s failed", request.method, request.path)
        scim_response = scim.error_response(exc)
    return _http(scim_response)
