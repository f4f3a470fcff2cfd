"""Shared fixtures: one set of personas used by every test."""

import pytest

from tests.factories import UserFactory

# browser, open_page and page for the browser tests
pytest_plugins = ["tests.browser"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs a second per user on a small machine; tests need no strength."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        # still verifies passwords hashed the normal way (demo data made by seed_demo)
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture
def manager(db):
    return UserFactory(email="manager@example.com", display_name="Mona Manager")


@pytest.fixture
def requester(db, manager):
    return UserFactory(
        email="requester@example.com", display_name="Rita Requester", manager=manager
    )


@pytest.fixture
def approver(db):
    return UserFactory(email="approver@example.com", display_name="Arno Approver")


@pytest.fixture
def catalog_owner(db):
    return UserFactory(email="owner@example.com", display_name="Olga Owner", is_staff=True)


@pytest.fixture
def admin_user(db):
    return UserFactory(
        email="admin@example.com", display_name="Ada Admin", is_staff=True, is_superuser=True
    )


@pytest.fixture
def outsider(db):
    return UserFactory(email="outsider@example.com", display_name="Otto Outsider")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A test that starts a Celery worker needs PostgreSQL: the worker process reads the test
    database, which SQLite keeps in this process's memory. Marking it here means the SQLite
    run (``scripts/test --sqlite``, ``-m "not postgres_only"``) leaves it out by itself."""
    for item in items:
        if "celery_worker" in item.fixturenames or item.get_closest_marker("celery_worker"):
            item.add_marker(pytest.mark.postgres_only)


# --- Real services ------------------------------------------------------------------------


class _Inbox:
    """Messages received by the test SMTP server, parsed with the email package."""

    def __init__(self):
        import threading

        self.messages = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address):
        return [m for m in self.messages if address in m["To"]]

    def wait_for(self, count, timeout=15.0):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")

    @staticmethod
    def text(message):
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message):
        return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) in this process; Django sends to it over TCP."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    inbox.port = settings.EMAIL_PORT
    try:
        yield inbox
    finally:
        controller.stop()


def use_broker(url, eager=False):
    """Point this process's Celery app at ``url``; returns what to pass back to restore it.

    Celery reads CELERY_BROKER_URL from the environment before its configuration, so both
    change together.
    """
    import os

    from config.celery import app

    old = (os.environ.get("CELERY_BROKER_URL", ""), app.conf.task_always_eager)
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app.conf.task_always_eager = eager
    app._pool = None
    app.amqp._producer_pool = None
    return old


class WorkerProcess:
    """A real ``celery worker`` process on Redis, reading the test database.

    By default it gets an emptied Redis database as the broker of this process too (restored
    by ``close``) and consumes every queue; ``broker`` names one already in use, ``queues``
    the queues it consumes, as the compose file's workers do."""

    def __init__(
        self,
        *,
        email_url="consolemail://",
        broker=None,
        queues=None,
        concurrency=4,
        extra_env=None,
    ):
        import os
        import subprocess
        import sys
        import threading
        import time

        import redis
        from django.conf import settings
        from django.db import connection

        from tests.services import redis_url, require_postgres

        require_postgres()
        url = broker or redis_url()
        if broker is None:
            redis.Redis.from_url(url).flushdb()
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": url,
            "REDIS_URL": url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_URL": email_url,
            "SITE_URL": settings.SITE_URL,
            **(extra_env or {}),
        }
        self.env = env
        name = f"{queues.replace(',', '-')}-{os.getpid()}" if queues else f"test-{os.getpid()}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                *([f"--queues={queues}"] if queues else []),
                "--pool=threads",
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{name}@%h",
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
        self._old = use_broker(url) if broker is None else None

    def close(self):
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self._old is not None:
            use_broker(*self._old)


def start_celery_worker(*, smtp_port=None):
    email_url = f"smtp://127.0.0.1:{smtp_port}" if smtp_port else "consolemail://"
    return WorkerProcess(email_url=email_url)


@pytest.fixture
def celery_worker(transactional_db, settings, request):
    """A real Celery worker process on the real Redis, reading the test database.

    Tasks published by the test go through Redis to the worker; use with
    ``@pytest.mark.django_db(transaction=True)``. Request ``smtp_server`` before this
    fixture for the worker to send its mail there.
    """
    smtp = request.getfixturevalue("smtp_server") if "smtp_server" in request.fixturenames else None
    worker = start_celery_worker(smtp_port=smtp.port if smtp else None)
    try:
        yield worker
    finally:
        worker.close()
