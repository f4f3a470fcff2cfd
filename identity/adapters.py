"""The single sign-on adapter: the directory is the source of accounts and nobody signs up,
except guests of connected organizations, whose accounts it creates just in time."""

from directory.adapters import DirectorySocialAccountAdapter

from .guests import guest_sign_up
from .services import Source


class GuestSocialAccountAdapter(DirectorySocialAccountAdapter):
    """Single sign-on as the directory's adapter does it (a verified address links the
    directory user; unverified and disabled sign-ins are refused), and an address nobody has
    yet, of a connected organization's domain, becomes a guest account."""

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        full = " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p)
        user.display_name = (data.get("name") or full or user.display_name or "").strip()
        return user

    def directory_user(self, request, sociallogin, email):
        user = super().directory_user(request, sociallogin, email)
        if user is not None:
            return user
        account = sociallogin.account
        return guest_sign_up(
            email=email,
            display_name=sociallogin.user.display_name,
            source=Source(kind=Source.SSO, name=account.provider, id=str(account.uid)),
        )
