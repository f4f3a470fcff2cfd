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

        email = (sociallogin.user.email or "").lower()
        user = User.objects.filter(email__iexact=email, is_active=True).first() if email else None
        if user is not None:
            sociallogin.connect(request, user)
