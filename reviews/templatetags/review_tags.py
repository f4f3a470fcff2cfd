"""Template helpers for review pages and emails."""

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def iso_datetime(value):
    """A datetime from the ISO text kept in a notification's context ("" if unreadable)."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return ""
