from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """The lifecycle of people: joiners, movers and leavers, directory import, guests."""

    name = "identity"
    verbose_name = "Identity lifecycle"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import guests  # noqa: F401 - connects the guest lifecycle's receivers
