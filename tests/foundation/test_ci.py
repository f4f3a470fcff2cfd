"""CI runs the suite on PostgreSQL and on SQLite, and the SQLite run leaves out exactly the
tests that need PostgreSQL rather than failing them (CI=true turns a skip into a failure)."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.foundation.postgres_usage import PREFIX

ROOT = Path(settings.BASE_DIR)


def test_ci_runs_the_suite_on_postgresql_and_then_on_sqlite():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]

    assert "scripts/test -p no:cacheprovider || status=1" in commands
    assert "scripts/test --sqlite -p no:cacheprovider || status=1" in commands
    assert 'set -- -m "not postgres_only" "$@"' in (ROOT / "scripts" / "test").read_text()


def test_every_test_that_needs_postgresql_is_left_out_of_the_sqlite_run():
    env = {**os.environ, "CI": "true", "DATABASE_URL": "sqlite://:memory:"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-p", "tests.foundation.postgres_usage", "-m", "not postgres_only", "tests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    unmarked = [line[len(PREFIX) :] for line in result.stdout.splitlines() if PREFIX in line]
    assert unmarked == [], "these need PostgreSQL: mark them postgres_only"
    assert " deselected" in result.stdout
