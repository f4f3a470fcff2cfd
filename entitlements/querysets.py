"""The queryset of every governed model: ``Model.objects.restrict(user, action)``.

NetBox's RestrictedQuerySet idea: a list asks the queryset for the rows a person may see or
act on instead of filtering by hand. The answer comes from ``entitlements.permissions``,
where each model's scope is declared; the models are imported before that module can be
(it reads them), so it registers its ``restrict`` here when Django starts
(``EntitlementsConfig.ready``).
"""

from django.core.exceptions import ImproperlyConfigured
from django.db import models

_restrict = None


def register_restrict(restrict):
    """Install the function that answers ``restrict()`` (permissions.restrict)."""
    global _restrict
    _restrict = restrict


class RestrictedQuerySet(models.QuerySet):
    """A queryset that can narrow itself to the rows a person may ``action``."""

    def restrict(self, user, action="view"):
        """Only the rows ``user`` may ``action``: view, change, add or delete by their admin
        roles, or one of the model's own actions for people without a role (``own``, ...)."""
        if _restrict is None:
            raise ImproperlyConfigured("No visibility rules registered: is 'entitlements' ready?")
        return _restrict(self, user, action)
