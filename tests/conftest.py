"""Shared fixtures: one set of personas used by every test."""

import pytest

from tests.factories import UserFactory


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
    from aiosmtpd.controller import Controller

    import socket

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


@pytest.fixture
def celery_worker(transactional_db, settings):
    """A real Celery worker process on the real Redis, reading the test database.

    Tasks published by the test go through Redis to the worker; use with
    ``@pytest.mark.django_db(transaction=True)`` so the worker sees committed rows.
    """
    import os
    import subprocess
    import sys
    import time

    from django.db import connection

    from config.celery import app
    from tests.services import redis_url

    url = redis_url()
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        if connection.vendor == "postgresql"
        else None
    )
    if database_url is None:
        from tests.services import require_postgres

        require_postgres()
    import redis

    redis.Redis.from_url(url).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": url,
        "REDIS_URL": url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_URL": f"smtp://{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend")
        else "consolemail://",
        "SITE_URL": os.environ.get("SITE_URL", "http://testserver"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(settings.BASE_DIR),
    )
    old = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    app.conf.broker_url = url
    app._pool = None
    output = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if " ready." in line:
            break
    else:
        proc.kill()
        raise AssertionError("Celery worker did not start:\n" + "".join(output))
    if proc.poll() is not None:
        raise AssertionError("Celery worker exited:\n" + "".join(output))
    import threading

    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    proc.output = output
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        app.conf.task_always_eager, app.conf.broker_url = old
        app._pool = None
