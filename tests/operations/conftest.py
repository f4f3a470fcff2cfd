"""Workers started as the compose file starts them: one per set of queues."""

import os
import subprocess
import sys
import threading
import time

import pytest


class QueueWorker:
    """A real ``celery worker`` process consuming ``queues``, reading the test database."""

    def __init__(self, *, queues, concurrency, broker, email_url, extra_env=None):
        from django.conf import settings
        from django.db import connection

        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "REDIS_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_URL": email_url,
            "SITE_URL": settings.SITE_URL,
            **(extra_env or {}),
        }
        self.env = env
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                f"--queues={queues}",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{queues.replace(',', '-')}-{os.getpid()}@%h",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(settings.BASE_DIR),
        )
        self.output = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if " ready." in line:
                break
        if self.proc.poll() is not None or not any(" ready." in x for x in self.output):
            self.proc.kill()
            raise AssertionError("Celery worker did not start:\n" + "".join(self.output))
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def redis_broker(transactional_db):
    """An empty Redis database as this process's broker, restored afterwards."""
    import redis

    from tests.conftest import use_broker
    from tests.services import redis_url, require_postgres

    require_postgres()
    url = redis_url()
    redis.Redis.from_url(url).flushdb()
    old = use_broker(url)
    try:
        yield url
    finally:
        use_broker(*old)


@pytest.fixture
def start_worker(redis_broker):
    started = []

    def start(**kwargs):
        kwargs.setdefault("email_url", "consolemail://")
        worker = QueueWorker(broker=redis_broker, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


class SlowInbox:
    """An SMTP server that takes ``delay`` seconds to accept each message."""

    def __init__(self, delay):
        self.delay = delay
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        import asyncio

        await asyncio.sleep(self.delay)
        self.count += 1
        return "250 Message accepted for delivery"


@pytest.fixture
def slow_smtp():
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = SlowInbox(delay=1.0)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{port}"
    try:
        yield inbox
    finally:
        controller.stop()
