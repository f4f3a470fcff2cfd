from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlement management"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # permissions reads the models, so only once they are loaded; tasks registers the
        # tasks that the services enqueue by name (they call the services, so no import back).
        from . import permissions, tasks  # noqa: F401
        from .connectors import register_connector_kind
        from .connectors.scim import ScimConnector
        from .models import ConnectedSystem
        from .querysets import register_restrict

        register_restrict(permissions.restrict)
        register_connector_kind(ConnectedSystem.Kind.SCIM, ScimConnector)
