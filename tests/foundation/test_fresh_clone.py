"""A newcomer's first commands, in a copy of the checkout as a fresh clone has it: no var/.

manage.py runs in a subprocess from the copy, so the copy's own settings and BASE_DIR are the
ones used; the environment holds none of the variables the test suite sets.
"""

import os
import shutil
import subprocess
import sys

import pytest
from django.conf import settings

# What a clone does not have: the virtualenv, the demo's data, caches and build output.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "var", "artifacts", "__pycache__", ".hypothesis", "*.egg-info", "*.pyc"
)
SUITE_VARIABLES = (
    "DATABASE_URL",
    "VAR_DIR",
    "REDIS_URL",
    "TEST_REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "STATIC_ROOT",
    "ENV_FILE",
)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    path = tmp_path_factory.mktemp("clone") / "checkout"
    shutil.copytree(settings.BASE_DIR, path, ignore=NOT_IN_A_CLONE)
    assert not (path / "var").exists()
    return path


def manage(clone, *args, **variables):
    env = {key: value for key, value in os.environ.items() if key not in SUITE_VARIABLES}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_migrate_on_a_fresh_clone_creates_var_and_the_demo_database(clone):
    result = manage(clone, "migrate", "--noinput")

    assert result.returncode == 0, result.stderr[-3000:]
    assert (clone / "var" / "demo.sqlite3").is_file()


def test_an_empty_database_url_means_the_demo_database(clone):
    result = manage(clone, "check", "--database", "default", DATABASE_URL="")

    assert result.returncode == 0, result.stderr[-3000:]
    assert (clone / "var").is_dir()


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "postgres//user@host/name",
        "mongodb://user:s3cret@host/name",
        "postgres://user:s3cret@host:port/name",
    ],
)
def test_a_malformed_database_url_stops_start_up_with_one_line(clone, url):
    result = manage(clone, "check", DATABASE_URL=url)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
    assert "s3cret" not in lines[0], "the message must not show the password"


@pytest.mark.parametrize("name", ["EMAIL_URL", "SITE_URL", "LOG_LEVEL", "DATABASE_CONN_MAX_AGE"])
def test_an_empty_variable_counts_as_unset(clone, name):
    result = manage(clone, "check", **{name: ""})

    assert result.returncode == 0, result.stderr[-3000:]
