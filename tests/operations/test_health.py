"""/healthz answers while the process runs; /readyz says whether it can do its work."""

import time

import pytest
from django.core.cache import caches

from config import health
from config.celery import app
from tests.conftest import use_broker


@pytest.fixture
def health_cache(settings, tmp_path):
    settings.CACHES = {
        **settings.CACHES,
        "health": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "health"),
        },
    }
    caches["health"].clear()
    return caches["health"]


@pytest.fixture
def with_broker(health_cache, settings, tmp_path):
    """Tasks go to a broker (not run in this process), here the demo's filesystem one."""
    folder = tmp_path / "celery"
    folder.mkdir()
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(folder)}
    old = use_broker("filesystem://", eager=False)
    try:
        yield
    finally:
        use_broker(*old)


def all_alive(now=None):
    health.record_worker_heartbeat(["delivery", "notifications", "periodic"], now=now)
    health.record_beat_tick(now=now)


def test_healthz_answers_without_the_database(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_is_ready_when_every_check_passes(client, with_broker):
    all_alive()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "broker", "workers", "beat"}
    assert body["checks"]["workers"]["queues"]["delivery"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_naming_the_queue_whose_worker_went_quiet(client, with_broker, settings):
    all_alive()
    stale = time.time() - settings.HEALTH_WORKER_MAX_AGE - 5
    health.record_worker_heartbeat(["delivery"], now=stale)
    response = client.get("/readyz")
    assert response.status_code == 503
    workers = response.json()["checks"]["workers"]
    assert workers["ok"] is False
    assert workers["queues"]["delivery"]["ok"] is False
    assert workers["queues"]["delivery"]["seconds_ago"] > settings.HEALTH_WORKER_MAX_AGE
    assert workers["queues"]["notifications"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_when_beat_has_not_ticked(client, with_broker, settings):
    health.record_worker_heartbeat(["delivery", "notifications", "periodic"])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"] == {
        "ok": False,
        "seconds_ago": None,
        "max_age": settings.HEALTH_BEAT_MAX_AGE,
    }


@pytest.mark.django_db
def test_readyz_says_the_broker_is_unreachable_without_its_address(client, health_cache):
    all_alive()
    old = use_broker("redis://:s3cret-password@127.0.0.1:1/0", eager=False)
    try:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        use_broker(*old)
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError"}
    assert b"s3cret" not in response.content and b"127.0.0.1" not in response.content
    assert elapsed < 3


@pytest.mark.django_db
def test_readyz_counts_pending_migrations(client, with_broker, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    all_alive()
    monkeypatch.setattr(health, "_migrations_applied", False)
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [object()] * 2)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == {"ok": False, "pending": 2}


@pytest.mark.django_db
def test_readyz_skips_broker_worker_and_beat_when_tasks_run_in_the_web_process(client):
    assert app.conf.task_always_eager
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["workers"] == {
        "ok": True,
        "skipped": "CELERY_TASK_ALWAYS_EAGER",
    }


@pytest.mark.django_db
def test_readyz_makes_a_bounded_number_of_queries(
    client, with_broker, django_assert_max_num_queries
):
    all_alive()
    client.get("/readyz")  # the first answer reads the migration plan once
    with django_assert_max_num_queries(1):
        assert client.get("/readyz").status_code == 200


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_and_beat_write_the_heartbeats_readyz_reads(
    start_worker, redis_broker, settings
):
    import subprocess
    import sys

    # What every process reads with REDIS_URL set: the health cache on the same Redis.
    settings.CACHES = {
        **settings.CACHES,
        "health": {
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": redis_broker,
            "KEY_PREFIX": "health",
        },
    }
    assert health.check_workers()["ok"] is False
    worker = start_worker(queues="delivery,notifications,periodic", concurrency=1)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"],
        env={**worker.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(settings.BASE_DIR),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if health.check_workers()["ok"] and health.check_beat()["ok"]:
                break
            time.sleep(0.2)
    finally:
        beat.terminate()
        output = beat.communicate(timeout=20)[0]
    assert health.check_workers()["ok"], health.check_workers()
    assert health.check_beat()["ok"], output
