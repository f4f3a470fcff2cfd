from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Access reviews"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import emails  # models are loaded now
        from .selectors import declare_scopes

        emails.register_kinds()
        declare_scopes()
