"""Opening the admin site to the people who hold the product's admin roles."""

from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from entitlements import permissions


def open_admin_to_role_holders(site):
    """Let staff and anyone holding an admin role (direct or delivered) enter ``site``.

    What each person then sees is decided per model by ``entitlements.permissions``.
    """
    site.has_permission = lambda request: permissions.may_enter_admin(request.user)
    site.login = _through_product_sign_in(site.login)


def _through_product_sign_in(admin_login):
    """Send admin sign-in through the product's own, so that two-factor authentication and
    sign-in rate limits apply there too; a signed-in person without a role gets a 403."""

    @wraps(admin_login)
    def login(request, extra_context=None):
        if request.user.is_authenticated:
            if not permissions.may_enter_admin(request.user):
                raise PermissionDenied
            return admin_login(request, extra_context)
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("admin:index")
        return redirect(f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: target})}")

    return login
