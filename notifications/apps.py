from django.apps import AppConfig
from django.db.models.signals import post_migrate


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Models are loaded now: connect the receivers, register the access emails, and load
        # the sending tasks the services find by name.
        from . import emails, tasks  # noqa: F401

        emails.register_kinds()
        from .site import site_sync

        # After the sites framework creates its default row ("example.com").
        post_migrate.connect(site_sync, dispatch_uid="notifications.site_sync")
