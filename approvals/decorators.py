"""Access rules shared by the approval pages of My Access and the emailed decision page."""

from functools import wraps

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _


def mfa_required_for_approvers(view):
    """When MFA_REQUIRED_FOR_APPROVERS is on, approvers set up two-factor sign-in first."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(settings, "MFA_REQUIRED_FOR_APPROVERS", False) and not is_mfa_enabled(
            request.user
        ):
            messages.warning(
                request,
                _(
                    "Your organization requires two-factor authentication for approvers. "
                    "Set up an authenticator app or a security key, then return to Approvals."
                ),
            )
            return redirect("mfa_index")
        return view(request, *args, **kwargs)

    return wrapper
