"""Bearer tokens: ``Authorization: Bearer <token>``, an application's or a person's.

A presented token is looked up by its SHA-256 on every request (no cache), so a token
revoked, an application disabled or a person's account disabled stops working at the next
request. Who the caller then is:

- a **personal token** (delegated) acts as the person: ``request.user`` is their row, and
  ``Model.objects.restrict`` and ``permissions.can`` apply their own roles;
- an **application token** acts as the application's service principal (a directory user
  of its own). When the application holds a product-wide permission
  (``api.permissions.PRODUCT_WIDE``, e.g. ``EntitlementManagement.ReadWrite.All``), the
  principal is an in-memory copy of that user with ``is_superuser`` set, which
  ``restrict``/``can`` treat as product-wide. The copy refuses ``save()``, and the stored
  row stays an ordinary user with an unusable password, so the application can never sign
  in to the admin. What it may do is still bounded by its permissions
  (``GraphPermission``: a read-only application gets 403 on every write). Without a
  product-wide permission, the principal acts within the catalog roles given to it in the
  admin, like a person.
"""

import copy

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import AccessToken
from .permissions import PRODUCT_WIDE
from .tokens import token_lookup

# last_used is written at most once a minute per token, not on every request.
LAST_USED_PRECISION_SECONDS = 60


def _refuse_save(*args, **kwargs):
    raise RuntimeError("An application's product-wide principal is never saved.")


def product_wide_principal(user):
    """An unsaved copy of ``user`` that ``restrict`` and ``can`` treat as product-wide."""
    principal = copy.copy(user)
    principal.__dict__.pop("_entitlement_admin_roles", None)
    principal.is_superuser = True
    principal.is_staff = False
    principal.save = _refuse_save
    principal.acts_product_wide = True
    return principal


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Reads ``Authorization: Bearer``; answers 401 with ``WWW-Authenticate: Bearer``."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None  # not ours: the session (with its CSRF check) may answer
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>'."
            )
        try:
            value = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The access token is malformed.") from None
        return self.check(value)

    def check(self, value, now=None):
        now = now or timezone.now()
        token = token_lookup(value)
        if token is None:
            raise exceptions.AuthenticationFailed("The access token is invalid.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The access token has been revoked.")
        if token.expires <= now:
            raise exceptions.AuthenticationFailed("The access token has expired.")
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("The account this token acts as is disabled.")
        if token.kind == AccessToken.Kind.APPLICATION:
            if token.application is None or not token.application.enabled:
                raise exceptions.AuthenticationFailed("The application is disabled.")
            # A permission taken from the application stops working at once, not at expiry.
            token.permissions = sorted(set(token.permissions) & set(token.application.permissions))
            if PRODUCT_WIDE & set(token.permissions):
                user = product_wide_principal(user)
        self._touch(token, now)
        return user, token

    @staticmethod
    def _touch(token, now):
        last = token.last_used
        if last is None or (now - last).total_seconds() >= LAST_USED_PRECISION_SECONDS:
            AccessToken.objects.filter(pk=token.pk).update(last_used=now)
            token.last_used = now

    def authenticate_header(self, request):
        return 'Bearer realm="entitlement-management"'
