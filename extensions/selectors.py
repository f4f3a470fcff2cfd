"""Reads of custom extension callouts shared by My Access and the API."""

from .models import WAITING_STATES, CustomExtensionCallout


def waiting_callouts(*, request):
    """The callouts ``request`` waits for now (launch and wait), oldest first; none once the
    request has ended (canceled while it waited)."""
    if not request.is_open:
        return []
    # Read once per request object: the page's sentence and its timeline both ask.
    cached = getattr(request, "_waiting_callouts", None)
    if cached is None:
        cached = request._waiting_callouts = list(
            CustomExtensionCallout.objects.filter(
                request=request, waits=True, state__in=WAITING_STATES
            )
            .select_related("custom_extension")
            .order_by("created")
        )
    return cached
