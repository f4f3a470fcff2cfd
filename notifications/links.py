"""Addresses in emails: the path from ``reverse()``, on the site's public address."""

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse


def absolute_url(viewname, *args, query=None):
    """The address a recipient opens: ``SITE_URL`` followed by the view's path."""
    path = reverse(viewname, args=args)
    if query:
        path = f"{path}?{urlencode(query)}"
    return settings.SITE_URL + path
