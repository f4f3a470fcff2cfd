"""The sites framework's one row follows SITE_URL, so every email names this site (allauth's
password reset says "Hello from My Access!" and the address, never "example.com")."""

from urllib.parse import urlsplit

from django.conf import settings

SITE_NAME = "My Access"


def site_sync(*, using="default", **_signal):
    """Give the current Site row the host of SITE_URL; run after each ``migrate``."""
    from django.contrib.sites.models import Site

    domain = urlsplit(settings.SITE_URL).netloc
    site, created = Site.objects.using(using).get_or_create(
        pk=settings.SITE_ID, defaults={"domain": domain, "name": SITE_NAME}
    )
    if not created and (site.domain, site.name) != (domain, SITE_NAME):
        site.domain, site.name = domain, SITE_NAME
        site.save(using=using, update_fields=["domain", "name"])
    Site.objects.clear_cache()
