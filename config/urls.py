from django.contrib import admin
from django.urls import include, path

from entitlements.admin.site import open_admin_to_role_holders

admin.site.site_header = "Entitlement management"
admin.site.site_title = "Entitlement management"
admin.site.index_title = "Configuration"
# Catalog owners, readers and managers enter the admin without being staff.
open_admin_to_role_holders(admin.site)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("approvals/email/", include("approvals.urls")),
    path("access-reviews/", include("reviews.urls")),
    path("", include("myaccess.urls")),
]
