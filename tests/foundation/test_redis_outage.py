"""Signing in keeps working when Redis is lost, and its rate limits keep holding.

Each test starts its own throw-away ``redis-server`` on a free port, points the cache at it
exactly as config/settings.py does for ``REDIS_URL``, and stops it.
"""

import runpy
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from tests.factories import PASSWORD, UserFactory
from tests.services import IN_CI

pytestmark = pytest.mark.django_db


class ThrowAwayRedis:
    """A ``redis-server`` process of this test's own, without persistence."""

    def __init__(self, tmp_path):
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed"
            pytest.fail(message, pytrace=False) if IN_CI else pytest.skip(message)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [
            binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(tmp_path)),
        ]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def stored_keys(self):
        return redis.Redis.from_url(self.url).keys()


@pytest.fixture
def throw_away_redis(tmp_path, settings, monkeypatch):
    server = ThrowAwayRedis(tmp_path)
    # The cache exactly as the settings module builds it when REDIS_URL names this server.
    monkeypatch.setenv("REDIS_URL", server.url)
    settings.CACHES = runpy.run_path(str(Path(settings.BASE_DIR) / "config" / "settings.py"))[
        "CACHES"
    ]
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def sign_in(email, password=PASSWORD):
    """The real sign-in form, CSRF check on, as a browser sends it."""
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/accounts/login/",
        {"login": email, "password": password, "csrfmiddlewaretoken": token},
    )
    return client, response


def test_signing_in_works_while_redis_is_down(throw_away_redis):
    person = UserFactory(email="rita@example.com")
    client, response = sign_in(person.email)
    assert response.status_code == 302 and response["Location"] == "/"
    assert throw_away_redis.stored_keys(), "the sign-in used Redis while it was up"

    throw_away_redis.stop()
    client, response = sign_in(person.email)

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(person.pk)
    assert client.get("/").status_code == 200


def test_failed_sign_ins_are_still_limited_while_redis_is_down(throw_away_redis):
    person = UserFactory(email="rita@example.com")
    throw_away_redis.stop()
    for _ in range(5):
        _, response = sign_in(person.email, password="wrong")
        assert response.status_code == 200

    _, response = sign_in(person.email)

    assert response.status_code != 302
    assert "Too many failed login attempts" in response.content.decode()


def test_the_cache_goes_back_to_redis_when_it_answers_again(throw_away_redis, caplog):
    cache.retry_after = 0  # try Redis on every call rather than every few seconds
    throw_away_redis.stop()
    cache.set("during_the_outage", 1)
    assert cache.get("during_the_outage") == 1
    assert "Redis cache unreachable" in caplog.text

    throw_away_redis.start()
    cache.set("after_the_outage", 2)

    assert [key for key in throw_away_redis.stored_keys() if b"after_the_outage" in key]
    assert "Redis cache answers again" in caplog.text
