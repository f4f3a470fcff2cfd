"""Errors in Graph's shape: ``{"error": {"code", "message", "innerError": {...}}}``.

Every failure of the API answers this way, whoever raised it: a ``GraphError`` from a view,
a domain error from a service (its message is the person-readable reason), a Django
``ValidationError`` from a model, or one of Django REST framework's own exceptions.
"""

import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from entitlements import errors as domain


class GraphError(Exception):
    """An API answer other than success: HTTP status, Graph error code and message."""

    def __init__(self, status_code, code, message, *, headers=None):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = str(message)
        self.headers = headers or {}


def bad_request(message, code="BadRequest"):
    return GraphError(status.HTTP_400_BAD_REQUEST, code, message)


def not_found(message="The resource was not found.", code="ResourceNotFound"):
    return GraphError(status.HTTP_404_NOT_FOUND, code, message)


def forbidden(message, code="Forbidden"):
    return GraphError(status.HTTP_403_FORBIDDEN, code, message)


def conflict(message, code="Conflict"):
    return GraphError(status.HTTP_409_CONFLICT, code, message)


def error_body(request, code, message):
    request_id = getattr(request, "request_id", None) or str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "request-id": request_id,
                "client-request-id": request.headers.get("client-request-id", request_id)
                if request is not None
                else request_id,
                "date": timezone.now().strftime("%Y-%m-%dT%H:%M:%S"),
            },
        }
    }


# Domain errors raised by services: (HTTP status, Graph code).
_DOMAIN = [
    (domain.PermissionDenied, status.HTTP_403_FORBIDDEN, "Forbidden"),
    (domain.StateConflict, status.HTTP_409_CONFLICT, "Conflict"),
    (domain.NotEligible, status.HTTP_403_FORBIDDEN, "NotEligible"),
    (domain.InvalidRequest, status.HTTP_400_BAD_REQUEST, "BadRequest"),
    (domain.DomainError, status.HTTP_400_BAD_REQUEST, "BadRequest"),
]

_DRF = {
    exceptions.NotAuthenticated: "InvalidAuthenticationToken",
    exceptions.AuthenticationFailed: "InvalidAuthenticationToken",
    exceptions.PermissionDenied: "Forbidden",
    exceptions.NotFound: "ResourceNotFound",
    exceptions.MethodNotAllowed: "MethodNotAllowed",
    exceptions.NotAcceptable: "NotAcceptable",
    exceptions.UnsupportedMediaType: "UnsupportedMediaType",
    exceptions.Throttled: "TooManyRequests",
    exceptions.ParseError: "BadRequest",
}


def _flatten(detail, prefix=""):
    """DRF's nested validation detail as one readable line: ``field: message; ...``."""
    if isinstance(detail, dict):
        parts = [
            _flatten(value, f"{prefix}{key}." if key != "non_field_errors" else prefix)
            for key, value in detail.items()
        ]
        return "; ".join(part for part in parts if part)
    if isinstance(detail, list):
        return "; ".join(_flatten(item, prefix) for item in detail)
    field = prefix.rstrip(".")
    return f"{field}: {detail}" if field else str(detail)


def describe(exc):
    """(status, code, message, headers) for any exception the API answers, else None."""
    if isinstance(exc, GraphError):
        return exc.status_code, exc.code, exc.message, exc.headers
    for kind, status_code, code in _DOMAIN:
        if isinstance(exc, kind):
            return status_code, code, exc.message, {}
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return status.HTTP_400_BAD_REQUEST, "BadRequest", _flatten(detail), {}
    if isinstance(exc, Http404):
        return status.HTTP_404_NOT_FOUND, "ResourceNotFound", "The resource was not found.", {}
    if isinstance(exc, exceptions.ValidationError):
        return status.HTTP_400_BAD_REQUEST, "BadRequest", _flatten(exc.detail), {}
    if isinstance(exc, exceptions.APIException):
        code = next((c for kind, c in _DRF.items() if isinstance(exc, kind)), "BadRequest")
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait))
        return exc.status_code, code, _flatten(exc.detail), headers
    return None


def graph_exception_handler(exc, context):
    """Django REST framework's EXCEPTION_HANDLER: every known failure in Graph's shape."""
    described = describe(exc)
    if described is None:
        return None  # a real bug: Django's 500 handling (logged, mailed to admins)
    status_code, code, message, headers = described
    request = context.get("request")
    response = Response(error_body(request, code, message), status=status_code, headers=headers)
    if status_code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Bearer realm="entitlement-management"'
    return response


def error_response(request, status_code, code, message):
    """A Graph error from plain Django code (URLs outside any API view)."""
    return JsonResponse(error_body(request, code, message), status=status_code)
