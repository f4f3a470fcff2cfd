"""Error handlers and the one admin view the product wraps; the pages themselves live in apps."""

from django.contrib.contenttypes import views as contenttype_views
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import Http404, HttpResponseServerError
from django.template import loader

from config.middleware import bad_request_response, error_for_client


def bad_request(request, exception=None):
    """``handler400``. Django's default is wrapped in ``requires_csrf_token``, which parses the
    POST body again and so turned a body it could not read into a server error. API clients
    get Graph's (or SCIM's) JSON error instead of the page."""
    if isinstance(exception, RequestDataTooBig):
        answer = error_for_client(
            request, 413, "RequestEntityTooLarge", "The request body is too large."
        )
    else:
        answer = error_for_client(request, 400, "BadRequest", "The request could not be read.")
    return answer or bad_request_response()


def server_error(request):
    """``handler500``, for the same reason: the server error page must not fail in its turn.
    API clients get Graph's JSON error, with the request id to quote; SCIM clients SCIM's."""
    answer = error_for_client(
        request,
        500,
        "InternalServerError",
        "The server failed to answer; the error was logged with this request id.",
    )
    return answer or HttpResponseServerError(loader.render_to_string("500.html"))


def view_on_site(request, content_type_id, object_id):
    """The admin's "View on site" redirect. Django's own answers 500 to an id that is not a
    valid UUID (a ``ValidationError`` it does not catch); not finding it is a 404."""
    try:
        return contenttype_views.shortcut(request, content_type_id, object_id)
    except ValidationError:
        raise Http404 from None
