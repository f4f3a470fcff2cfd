"""Helpers shared by the portal views."""

import uuid

from django.http import Http404
from django.utils import timezone
from django.utils.translation import get_language

from entitlements import pagination

PAGE_SIZE = 25


def paginate(request, queryset, per_page=PAGE_SIZE):
    """One page of ``queryset`` from ``?page=``; a bad or too large number gives a valid page.
    The count stops at ``pagination.PORTAL_CAP`` rows so a page costs the same at any size."""
    return pagination.paginate(
        queryset, request.GET.get("page"), per_page, cap=pagination.PORTAL_CAP
    )


def parse_uuid(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def get_from(queryset, pk):
    """The row of ``queryset`` with ``pk``, or 404: rows outside a selector do not exist for
    the person asking."""
    pk = parse_uuid(pk)
    obj = queryset.filter(pk=pk).first() if pk else None
    if obj is None:
        raise Http404
    return obj


def apply_domain_error(form, error):
    """Show a service's refusal on the field it names, or above the form."""
    field = form.field_for_error(getattr(error, "field", None))
    form.add_error(field, error.message)


def language(request):
    return getattr(request.user, "preferred_language", "") or get_language()


def now():
    return timezone.now()
