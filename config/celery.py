"""The Celery application: worker and beat load their settings from Django's (CELERY_*).

Also connects the operations hooks: each worker's heartbeat and beat's tick for ``/readyz``
(config/health.py), the request id that follows a request into its tasks (config/logs.py),
and, with ``LOG_FORMAT=json``, Django's LOGGING in place of Celery's own log setup.
"""

import os

from celery import Celery, signals

from config import health, logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("entitlements")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(health.WorkerHeartbeat)

signals.beat_init.connect(health.on_beat_init, weak=False)
signals.beat_embedded_init.connect(health.on_beat_init, weak=False)
signals.before_task_publish.connect(health.on_publish, weak=False)
signals.before_task_publish.connect(logs.on_before_task_publish, weak=False)
signals.task_prerun.connect(logs.on_task_prerun, weak=False)
signals.task_postrun.connect(logs.on_task_postrun, weak=False)


def _django_logging(loglevel=None, **kwargs):
    """Workers and beat log through Django's LOGGING (JSON lines), as web does."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    if loglevel:
        logging.getLogger().setLevel(loglevel)


# A receiver of setup_logging replaces Celery's own log setup; in the plain format Celery's
# is kept, because its lines name the task. (settings.LOG_FORMAT parses the same variable.)
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    signals.setup_logging.connect(_django_logging, weak=False)
