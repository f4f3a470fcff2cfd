"""Real services for tests: use them when present; locally skip without them, in CI fail."""

import os
import shutil
import socket

import pytest
from django.db import connection

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _missing(what):
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true) and is missing.", pytrace=False)
    pytest.skip(f"{what} is not available here")


def require_postgres():
    if connection.vendor != "postgresql":
        _missing("PostgreSQL (set DATABASE_URL)")


def redis_url():
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        _missing("Redis (set REDIS_URL)")
    host, port = "127.0.0.1", 6379
    rest = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    if rest:
        host, _, p = rest.partition(":")
        port = int(p or 6379)
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        _missing(f"Redis at {host}:{port}")
    return url


def require_chromium():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _missing(f"Chromium at {CHROMIUM}")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
