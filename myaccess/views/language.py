"""The language switcher: the portal's pages, and a signed-in person's emails, in their language."""

from django.conf import settings
from django.http import HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST


@require_POST
def language_set(request):
    """Remember the chosen language in a cookie and, for a signed-in person, as their preferred
    language (the one their emails are written in); then go back to the page they were on."""
    code = request.POST.get("language", "")
    destination = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        destination, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        destination = "/"
    response = HttpResponseRedirect(destination)
    if code not in dict(settings.LANGUAGES):
        return response
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        code,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    user = request.user
    if user.is_authenticated and user.preferred_language != code:
        user.preferred_language = code
        user.save(update_fields=["preferred_language", "modified"])
    return response
