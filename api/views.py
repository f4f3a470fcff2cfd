"""Plain Django views of the API: what answers a path no resource serves."""

from django.views.decorators.csrf import csrf_exempt

from .graph.errors import error_response


@csrf_exempt
def unknown_segment(request):
    """Graph answers a path it does not know with 400 ``BadRequest``, in its error shape."""
    segment = request.path.rstrip("/").rsplit("/", 1)[-1] or "v1.0"
    return error_response(
        request, 400, "BadRequest", f"Resource not found for the segment '{segment[:100]}'."
    )
