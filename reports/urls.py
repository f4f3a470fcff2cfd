"""The reports' URLs, mounted under the admin site (``/admin/reports/``) by config/urls.py."""

from django.urls import path  # noqa: F401  (the reports' paths follow)

app_name = "reports"

urlpatterns: list = []
