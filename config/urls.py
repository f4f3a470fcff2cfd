from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Entitlement management"
admin.site.site_title = "Entitlement management"
admin.site.index_title = "Configuration"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("approvals/email/", include("approvals.urls")),
    path("", include("myaccess.urls")),
]
