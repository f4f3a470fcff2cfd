"""Small presentation helpers for the portal templates."""

from django import template
from django.conf import settings
from django.utils.html import format_html
from django.utils.translation import gettext as _

from entitlements.models import AssignmentState, RequestState, RoleAssignment

register = template.Library()

_REQUEST_TONE = {
    RequestState.SUBMITTED: "info",
    RequestState.PENDING_APPROVAL: "warn",
    RequestState.SCHEDULED: "info",
    RequestState.DELIVERING: "info",
    RequestState.DELIVERED: "ok",
    RequestState.PARTIALLY_DELIVERED: "warn",
    RequestState.DELIVERY_FAILED: "bad",
    RequestState.DENIED: "bad",
    RequestState.CANCELED: "muted",
}
_ASSIGNMENT_TONE = {
    AssignmentState.DELIVERING: "info",
    AssignmentState.DELIVERED: "ok",
    AssignmentState.PARTIALLY_DELIVERED: "warn",
    AssignmentState.DELIVERY_FAILED: "bad",
    AssignmentState.EXPIRED: "muted",
}


@register.filter
def can_open_admin(user):
    """Staff and anyone holding one of the product's admin roles get a link to the admin."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff:
        return True
    return RoleAssignment.objects.filter(principal=user).exists()


@register.simple_tag
def sso_configured():
    return bool(getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}).get("openid_connect"))


@register.simple_tag
def request_badge(request_obj):
    """The state of a request as a coloured badge; an expired denial says so."""
    state = request_obj.state
    label = request_obj.get_state_display()
    if state == RequestState.DENIED and (request_obj.status or "").lower() == "expired":
        label = _("Expired")
    return format_html(
        '<span class="badge badge-{}">{}</span>', _REQUEST_TONE.get(state, "muted"), label
    )


@register.simple_tag
def assignment_badge(assignment):
    return format_html(
        '<span class="badge badge-{}">{}</span>',
        _ASSIGNMENT_TONE.get(assignment.state, "muted"),
        assignment.get_state_display(),
    )


@register.simple_tag(takes_context=True)
def page_url(context, number):
    """The current URL with ``page`` replaced, keeping the search and other parameters."""
    query = context["request"].GET.copy()
    query["page"] = number
    return "?" + query.urlencode()
