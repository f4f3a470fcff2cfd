from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Models are loaded now: connect the receivers, register the access emails, and load
        # the sending tasks the services find by name.
        from . import emails, tasks  # noqa: F401

        emails.register_kinds()
