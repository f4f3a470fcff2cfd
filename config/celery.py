"""The Celery application: worker and beat load their settings from Django's (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("entitlements")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
