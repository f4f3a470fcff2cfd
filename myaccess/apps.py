from django.apps import AppConfig


class MyaccessConfig(AppConfig):
    name = "myaccess"
    verbose_name = "My Access"
    default_auto_field = "django.db.models.BigAutoField"
