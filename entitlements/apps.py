from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlement management"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import permissions  # reads the models, so only once they are loaded
        from .querysets import register_restrict

        register_restrict(permissions.restrict)
