"""The reports' URLs, mounted under the admin site (``/admin/reports/``) by config/urls.py."""

from django.contrib import admin
from django.urls import path
from django.views.decorators.http import require_safe

from . import dashboard, views

app_name = "reports"

urlpatterns = [
    path(
        "dashboard/",
        admin.site.admin_view(require_safe(dashboard.dashboard_view)),
        name="dashboard",
    ),
    path("", admin.site.admin_view(require_safe(views.index)), name="index"),
]
# One page and one CSV per report, named after it: reports:access, reports:access-csv, ...
for slug in views.REPORTS:
    urlpatterns += [
        path(
            f"{slug}/",
            admin.site.admin_view(require_safe(views.report_view)),
            {"slug": slug},
            name=slug,
        ),
        path(
            f"{slug}/csv/",
            admin.site.admin_view(require_safe(views.report_csv)),
            {"slug": slug},
            name=f"{slug}-csv",
        ),
    ]
