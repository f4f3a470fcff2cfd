from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Read-only reports over access, requests, reviews and sign-ins, shown in the admin."""

    name = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"
