"""Liveness and readiness: ``/healthz`` (the process answers) and ``/readyz`` (it can work).

``/readyz`` checks the database, that every migration is applied, the broker, a recent
heartbeat from a worker on each queue and a recent tick of beat. Workers and beat write
their heartbeats into the ``health`` cache (Redis in a deployment, files under VAR_DIR in the
local demo), so a check is one cache read, never a round trip to a worker. Answers carry
each check's result and never a URL, a host name or an error's text.
"""

import logging
import time
from pathlib import Path

from celery import bootsteps
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

WORKER_KEY = "health:worker:{queue}"
BEAT_KEY = "health:beat"
HEARTBEAT_EVERY = 10.0  # seconds between a worker's heartbeats
_migrations_applied = False  # once true it stays true for this process (code cannot go back)


def _cache():
    from django.core.cache import caches

    return caches["health"]


def _broker_url():
    from config.celery import app

    return app.conf.broker_url or ""


# --- Heartbeats (written by workers and beat) ---------------------------------------------


def record_worker_heartbeat(queues, now=None):
    now = time.time() if now is None else now
    try:
        _cache().set_many({WORKER_KEY.format(queue=q): now for q in queues}, timeout=86400)
    except Exception as exc:  # noqa: BLE001 - a heartbeat must never stop the worker
        logger.warning("Could not record the worker heartbeat: %s", type(exc).__name__)


def record_beat_tick(now=None):
    try:
        _cache().set(BEAT_KEY, time.time() if now is None else now, timeout=86400)
    except Exception as exc:  # noqa: BLE001 - nor beat
        logger.warning("Could not record beat's tick: %s", type(exc).__name__)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A consumer step: every HEARTBEAT_EVERY seconds, the queues this worker consumes.

    It runs on the consumer's timer, so it stops when the consumer stops taking messages.
    """

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        self.tref = None
        super().__init__(parent, **kwargs)

    def start(self, parent):
        queues = sorted(q.name for q in parent.task_consumer.queues)

        def beat():
            record_worker_heartbeat(queues)

        beat()
        self.tref = parent.timer.call_repeatedly(HEARTBEAT_EVERY, beat)

    def stop(self, parent):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


_in_beat = False


def on_beat_init(**kwargs):
    global _in_beat
    _in_beat = True
    record_beat_tick()


def on_publish(**kwargs):
    """Every task beat sends is one of its ticks (the shortest schedule is 30 s)."""
    if _in_beat:
        record_beat_tick()


# --- Checks -------------------------------------------------------------------------------


def _failed(exc):
    return {"ok": False, "error": type(exc).__name__}


def check_database():
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready"
        return _failed(exc)
    return {"ok": True}


def check_migrations():
    global _migrations_applied
    if _migrations_applied:
        return {"ok": True}
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    _migrations_applied = pending == 0
    return {"ok": _migrations_applied, "pending": pending}


def check_broker():
    url = _broker_url()
    try:
        if url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            try:
                client.ping()
            finally:
                client.close()
        elif url.startswith("filesystem://"):
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
            if not Path(folder).is_dir():
                raise FileNotFoundError("message folder")
        else:
            from config.celery import app

            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=1)
    except Exception as exc:  # noqa: BLE001
        return _failed(exc)
    return {"ok": True}


def _age(key, now):
    try:
        seen = _cache().get(key)
    except Exception:  # noqa: BLE001
        seen = None
    return None if seen is None else round(max(0.0, now - seen), 1)


def check_workers(now=None):
    """A heartbeat within HEALTH_WORKER_MAX_AGE seconds from a worker on every queue."""
    now = time.time() if now is None else now
    limit = settings.HEALTH_WORKER_MAX_AGE
    queues = {}
    for queue in settings.CELERY_TASK_QUEUES:
        age = _age(WORKER_KEY.format(queue=queue), now)
        queues[queue] = {"ok": age is not None and age <= limit, "seconds_ago": age}
    return {"ok": all(q["ok"] for q in queues.values()), "max_age": limit, "queues": queues}


def check_beat(now=None):
    """Beat sent a task within HEALTH_BEAT_MAX_AGE seconds."""
    now = time.time() if now is None else now
    limit = settings.HEALTH_BEAT_MAX_AGE
    age = _age(BEAT_KEY, now)
    return {"ok": age is not None and age <= limit, "seconds_ago": age, "max_age": limit}


def readiness():
    from config.celery import app

    checks = {"database": check_database()}
    checks["migrations"] = check_migrations() if checks["database"]["ok"] else {"ok": False}
    if app.conf.task_always_eager:
        # Tasks run inside the web process: there is no broker, worker or beat to wait for.
        skipped = {"ok": True, "skipped": "CELERY_TASK_ALWAYS_EAGER"}
        checks.update(broker=skipped, workers=skipped, beat=skipped)
    else:
        checks.update(broker=check_broker(), workers=check_workers(), beat=check_beat())
    return all(check["ok"] for check in checks.values()), checks


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    ready, checks = readiness()
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
