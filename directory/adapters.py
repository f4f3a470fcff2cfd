"""django-allauth adapters: the directory is the source of accounts, nobody signs up."""

import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.shortcuts import render

logger = logging.getLogger(__name__)


class DirectoryAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False


def _claims(sociallogin):
    """The provider's claims; allauth 65.11+ keeps them under "userinfo" and "id_token"."""
    extra = sociallogin.account.extra_data or {}
    nested = [extra.get("userinfo"), extra.get("id_token")]
    return [claims for claims in nested if isinstance(claims, dict)] or [extra]


def _refuse(request, sociallogin, reason, email=""):
    logger.info(
        "Single sign-on refused (%s) for %s subject %s",
        reason,
        sociallogin.account.provider,
        sociallogin.account.uid,
    )
    response = render(
        request,
        "socialaccount/sso_refused.html",
        {"reason": reason, "email": email},
        status=403,
    )
    raise ImmediateHttpResponse(response)


def _vouches(sociallogin):
    """Whether the provider's claims vouch for the email: email_verified true, or, from Entra
    ID, which never sends email_verified for work accounts, its optional claim xms_edov
    ("email domain owner verified") true when no email_verified was sent at all."""
    claims = _claims(sociallogin)
    stated = [each["email_verified"] for each in claims if "email_verified" in each]
    if stated:
        return any(value is True for value in stated)
    return any(each.get("xms_edov") is True for each in claims)


def verified_email(request, sociallogin):
    """The sign-in's email address, lower case, when the identity provider vouches for it;
    otherwise the sign-in is refused. Some providers let people set their own email claim,
    which would otherwise take over an account."""
    email = (sociallogin.user.email or "").strip().lower()
    if not email:
        _refuse(request, sociallogin, "no_email")
    verified = {
        address.email.lower() for address in sociallogin.email_addresses if address.verified
    }
    if _vouches(sociallogin):
        verified.add(email)
    if email not in verified:
        _refuse(request, sociallogin, "unverified", email)
    return email


class DirectorySocialAccountAdapter(DefaultSocialAccountAdapter):
    """Single sign-on links to an existing directory user with the same email address."""

    def is_open_for_signup(self, request, sociallogin):
        return False

    def pre_social_login(self, request, sociallogin):
        if sociallogin.is_existing:
            # A person disabled in the directory (by SCIM, an import or an admin) stays out,
            # however valid their session at the provider still is.
            if not sociallogin.user.is_active:
                _refuse(request, sociallogin, "disabled")
            return
        email = verified_email(request, sociallogin)
        user = self.directory_user(request, sociallogin, email)
        if user is None:
            return
        if not user.is_active:
            _refuse(request, sociallogin, "disabled")
        sociallogin.connect(request, user)

    def directory_user(self, request, sociallogin, email):
        """The directory user a sign-in with this verified address is for; None leaves it to
        allauth's sign-up, which is closed."""
        from directory.models import User

        return User.objects.filter(email__iexact=email).first()
