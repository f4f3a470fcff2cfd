from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlement management"
    default_auto_field = "django.db.models.BigAutoField"
