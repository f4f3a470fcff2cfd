import os
import subprocess
import sys

from django.conf import settings


def run_check(**env):
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_boolean_stops_start_up_with_the_variable_named():
    result = run_check(DEBUG="perhaps")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_production_without_a_secret_key_refuses_to_start():
    env = {"DEBUG": "false", "SECRET_KEY": ""}
    result = run_check(**env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_secret_key_is_read_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-" + "x" * 40)
    result = run_check(DEBUG="false", SECRET_KEY="", SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr


def test_the_general_catalog_exists(db):
    from entitlements.models import Catalog

    general = Catalog.objects.get(display_name="General")
    assert general.catalog_type == "serviceDefault"


def test_debug_or_the_demo_key_refuse_a_public_host():
    result = run_check(DEBUG="true", ALLOWED_HOSTS="access.example.com")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr
