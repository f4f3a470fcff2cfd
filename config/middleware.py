"""Middleware of the project: unreadable requests answered with a 400 page before any view runs,
no-store for personal answers, and the signed-in person's language."""

import logging

from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import BadRequest, SuspiciousOperation, ValidationError
from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template import loader
from django.utils import translation
from django.utils.cache import add_never_cache_headers

from api.graph.errors import error_response

logger = logging.getLogger("django.security.MalformedRequest")

FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
NUL = "\x00"
API_PATHS = ("/v1.0/", "/oauth2/")


def is_api_path(path):
    """Whether ``path`` is the Graph API's or the token endpoint's (``/{tenant}/oauth2/...``),
    whose clients read JSON errors, not pages."""
    return path.startswith(API_PATHS) or path == "/v1.0" or "/oauth2/v2.0/" in path


def is_scim_path(path):
    """Whether ``path`` is the SCIM service provider's, whose clients read SCIM Error bodies."""
    return path.startswith("/scim/")


def scim_error_response(status, detail):
    """An RFC 7644 section 3.12 Error body, for answers given before the SCIM views run."""
    return JsonResponse(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(status),
            "detail": detail,
        },
        status=status,
        content_type="application/scim+json",
    )


def error_for_client(request, status, code, detail):
    """The error as the caller's door writes errors: Graph's JSON, SCIM's JSON, or ``None`` for
    a page."""
    if is_api_path(request.path_info):
        return error_response(request, status, code, detail)
    if is_scim_path(request.path_info):
        return scim_error_response(status, detail)
    return None


def bad_request_response():
    """The 400 page. It reads neither the body, the session nor the user: any of them may be
    what could not be read."""
    return HttpResponseBadRequest(loader.render_to_string("400.html"))


def _has_nul(data):
    return any(NUL in key or any(NUL in value for value in data.getlist(key)) for key in data)


def why_unreadable(request):
    """What makes ``request`` unreadable, or ``None``.

    PostgreSQL refuses NUL bytes in text, so one in the path, the query, a cookie or a form
    field would reach the database as an error; a form body that is not UTF-8, or one beyond
    Django's size and field limits, cannot be decoded.
    """
    if NUL in request.path_info:
        return "a NUL byte in the path"
    if any(NUL in name or NUL in value for name, value in request.COOKIES.items()):
        return "a NUL byte in a cookie"
    try:
        if _has_nul(request.GET):
            return "a NUL byte in the query string"
        if (
            request.method == "POST"
            and request.content_type in FORM_CONTENT_TYPES
            and _has_nul(request.POST)
        ):
            return "a NUL byte in a form field"
    except (BadRequest, SuspiciousOperation, MultiPartParserError) as exc:
        # Django does not remember a failed parse for every kind of failure: mark it, so
        # nothing later (logging, error pages) tries to read the body again.
        request._mark_post_parse_error()
        return str(exc)
    return None


def why_not_ids(request, model_admin):
    """What makes the rows an admin action was posted for not ids of its model, or ``None``.

    Django's admin filters by ``_selected_action`` as posted, so a value that is not an id
    of the model (not a UUID, not a number) raised in the database layer: a server error.
    """
    if request.method != "POST" or request.content_type not in FORM_CONTENT_TYPES:
        return None
    to_python = model_admin.model._meta.pk.to_python
    for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
        try:
            to_python(value)
        except ValidationError:
            return f"{value[:40]!r} is not an id of {model_admin.model._meta.label}"
    return None


class RejectUnreadableRequestsMiddleware:
    """Answers 400 to a request whose path, query, cookies or form body cannot be read safely,
    or whose admin action names rows by something other than their ids."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self._refuse(request, why_unreadable(request)) or self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        model_admin = getattr(view_func, "model_admin", None)
        if model_admin is not None:
            return self._refuse(request, why_not_ids(request, model_admin))
        return None

    @staticmethod
    def _refuse(request, reason):
        if reason is None:
            return None
        logger.warning("Bad request %s %r: %s", request.method, request.path, reason)
        # API and SCIM clients read JSON errors.
        answer = error_for_client(request, 400, "BadRequest", "The request could not be read.")
        return answer or bad_request_response()


class NoStoreForPeopleMiddleware:
    """``Cache-Control: no-store`` on every answer to a signed-in person or a bearer token:
    such pages and API answers show personal data, which no browser history, back button or
    shared proxy may keep."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if "HTTP_AUTHORIZATION" in request.META or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response


class PreferredLanguageMiddleware:
    """A signed-in person's pages are in their preferred language (set by the language switcher,
    SCIM's preferredLanguage or the admin) unless this browser chose another one; LocaleMiddleware
    has already applied the cookie and Accept-Language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            code = getattr(getattr(request, "user", None), "preferred_language", "")
            if code and code in dict(settings.LANGUAGES) and code != request.LANGUAGE_CODE:
                translation.activate(code)
                request.LANGUAGE_CODE = code
        return self.get_response(request)
