from django.apps import AppConfig


class ScimConfig(AppConfig):
    """The inbound SCIM 2.0 service provider: identity providers provision people here."""

    name = "scim"
    verbose_name = "SCIM provisioning"
    default_auto_field = "django.db.models.BigAutoField"
