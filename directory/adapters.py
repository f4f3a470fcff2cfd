"""django-allauth adapters: the directory is the source of accounts, nobody signs up."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter


class DirectoryAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return False


class DirectorySocialAccountAdapter(DefaultSocialAccountAdapter):
    """Single sign-on links to an existing directory user with the same email address."""

    def is_open_for_signup(self, request, sociallogin):
        return False

    def pre_social_login(self, request, sociallogin):
        if sociallogin.is_existing:
            return
        from directory.models import User

        # Only an address the identity provider vouches for links an account: some providers
        # let people set their own email claim, which would otherwise take over an account.
        verified = {
            address.email.lower() for address in sociallogin.email_addresses if address.verified
        }
        if sociallogin.account.extra_data.get("email_verified") is True and sociallogin.user.email:
            verified.add(sociallogin.user.email.lower())
        email = (sociallogin.user.email or "").lower()
        if not email or email not in verified:
            return
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is not None:
            sociallogin.connect(request, user)
