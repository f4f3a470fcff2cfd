from django.contrib import admin
from django.urls import include, path

from config import health, metrics
from config.views import view_on_site
from entitlements.admin.site import arrange_admin_site, open_admin_to_role_holders

admin.site.site_header = "Entitlement management"
admin.site.site_title = "Entitlement management"
admin.site.index_title = "Configuration"
# Catalog owners, readers and managers enter the admin without being staff.
open_admin_to_role_holders(admin.site)
arrange_admin_site(admin.site)

# Django's defaults read the POST body again, so a body it could not read became a 500.
handler400 = "config.views.bad_request"
handler500 = "config.views.server_error"


def admin_urls():
    """The admin site's URLs, its "View on site" redirect replaced by one that answers 404."""
    urls = [url for url in admin.site.get_urls() if getattr(url, "name", "") != "view_on_site"]
    wrapped = path(
        "r/<path:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
        name="view_on_site",
    )
    return [wrapped, *urls], "admin", admin.site.name


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/reports/", include("reports.urls")),
    path("admin/", admin_urls()),
    path("accounts/", include("allauth.urls")),
    path("approvals/email/", include("approvals.urls")),
    path("access-reviews/", include("reviews.urls")),
    path("scim/v2/", include("scim.urls")),
    path("", include("api.urls")),
    path("", include("myaccess.urls")),
]
