"""The deployment files agree with the code: docker-compose.yml, Dockerfile, .env.example, README.

No container engine runs here, so these tests check what can be checked without one: the
compose file's shape against the Compose Specification, that every variable is documented
and set, that the production example configuration loads, and that the commands the
containers run name modules that exist and actually serve a page.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
SETTINGS = ROOT / "config" / "settings.py"

EXPECTED_SERVICES = {"postgres", "redis", "web", "worker-delivery", "worker", "beat", "mailpit"}
LONG_RUNNING_RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}
# Read by docker compose (interpolation) or gunicorn, not by config/settings.py.
CONTAINER_VARIABLES = {
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "WEB_PORT",
    "MAILPIT_UI_PORT",
    "WEB_CONCURRENCY",
}
# ENV_FILE names the file to read; it has no place inside that file.
NOT_IN_ENV_EXAMPLE = {"ENV_FILE"}

# Service attributes defined by the Compose Specification (services section).
COMPOSE_SERVICE_ATTRIBUTES = {
    "annotations", "attach", "build", "blkio_config", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus",
    "cpuset", "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules",
    "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add",
    "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels", "links",
    "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness",
    "memswap_limit", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
    "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged", "profiles",
    "pull_policy", "read_only", "restart", "runtime", "scale", "secrets", "security_opt",
    "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls",
    "tmpfs", "tty", "ulimits", "user", "userns_mode", "uts", "volumes", "volumes_from",
    "working_dir",
}  # fmt: skip
COMPOSE_TOP_LEVEL = {"name", "services", "networks", "volumes", "configs", "secrets", "include"}
HEALTHCHECK_ATTRIBUTES = {
    "test", "interval", "timeout", "retries", "start_period", "start_interval", "disable",
}  # fmt: skip
DURATION = re.compile(r"^(\d+(us|ms|s|m|h))+$")


# --- helpers ---------------------------------------------------------------------------------


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def services():
    return compose()["services"]


def read_env_example():
    """(values set, every name mentioned including commented-out ``# NAME=...`` lines)."""
    values, mentioned = {}, set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if not match:
            continue
        commented, name, value = match.groups()
        mentioned.add(name)
        if not commented:
            values[name] = value
    return values, mentioned


def settings_variables():
    """Every environment variable name config/settings.py reads, found in its source."""
    source = SETTINGS.read_text()
    names = set()
    patterns = [
        r"_strict\(\s*\"\w+\",\s*\"([A-Z][A-Z0-9_]*)\"",
        r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"",
        r"os\.environ(?:\.get)?[\(\[]\s*\"([A-Z][A-Z0-9_]*)\"",
        r"os\.getenv\(\s*\"([A-Z][A-Z0-9_]*)\"",
    ]
    for pattern in patterns:
        names.update(re.findall(pattern, source))
    for name in re.findall(r"_secret\(\s*\"([A-Z][A-Z0-9_]*)\"", source):
        names.update({name, f"{name}_FILE"})
    return names


def readme_table_variables():
    """Backquoted NAMES in the rows of README tables."""
    names = set()
    for line in README.read_text().splitlines():
        if line.lstrip().startswith("|"):
            first_cell = line.strip().strip("|").split("|")[0]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return names


def compose_interpolated_variables():
    """${NAME} and $NAME the compose file takes from .env ($$ is for the container's shell)."""
    text = "\n".join(
        line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    braced = re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text)
    bare = re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text)
    return set(braced) | set(bare)


def clean_environment(**overrides):
    """This process's environment without any setting, plus ``overrides``."""
    # DJANGO_ALLOW_ASYNC_UNSAFE: set by the browser tests while they run; never in deployment.
    known = (
        settings_variables() | CONTAINER_VARIABLES | {"TEST_REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    )
    env = {k: v for k, v in os.environ.items() if k not in known}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command_list(service):
    command = services()[service].get("command") or []
    return command.split() if isinstance(command, str) else list(command)


# --- the compose file --------------------------------------------------------------------------


def test_the_compose_file_uses_only_attributes_of_the_compose_specification():
    document = compose()
    assert "version" not in document, "the version attribute is obsolete in the Compose Spec"
    assert set(document) <= COMPOSE_TOP_LEVEL | {k for k in document if k.startswith("x-")}
    for name, service in document["services"].items():
        assert re.fullmatch(r"[a-zA-Z0-9._-]+", name)
        unknown = set(service) - COMPOSE_SERVICE_ATTRIBUTES
        assert not unknown, f"{name}: not Compose Specification attributes: {unknown}"
        assert "image" in service or "build" in service, f"{name} has neither image nor build"
        healthcheck = service.get("healthcheck", {})
        assert set(healthcheck) <= HEALTHCHECK_ATTRIBUTES, name
        for key in ("interval", "timeout", "start_period"):
            if key in healthcheck:
                assert DURATION.match(healthcheck[key]), f"{name}: {key}={healthcheck[key]}"
        if healthcheck:
            assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_it_has_the_services_of_a_deployment():
    assert set(services()) == EXPECTED_SERVICES


def test_postgres_is_version_16_and_redis_version_7():
    assert services()["postgres"]["image"] == "postgres:16"
    assert services()["redis"]["image"] == "redis:7"


def test_every_dependency_waits_for_a_healthy_service_that_has_a_healthcheck():
    all_services = services()
    for name, service in all_services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: use the long depends_on syntax"
        for dependency, spec in depends_on.items():
            assert spec["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in all_services[dependency], f"{dependency} has no healthcheck"
    for name in ("web", "worker", "beat"):
        assert {"postgres", "redis"} <= set(all_services[name]["depends_on"]), name


def test_the_stateful_and_serving_services_check_their_health():
    all_services = services()
    assert "pg_isready" in " ".join(all_services["postgres"]["healthcheck"]["test"])
    assert all_services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    for name in ("web", "worker"):
        assert "healthcheck" in all_services[name], name


def test_every_service_restarts_after_a_crash_or_a_reboot():
    for name, service in services().items():
        assert service.get("restart") in LONG_RUNNING_RESTART_POLICIES, name


def test_exactly_one_beat_runs_and_no_worker_embeds_another():
    all_services = services()
    beats = [name for name in all_services if "beat" in command_list(name)[3:4]]
    assert beats == ["beat"]
    assert all_services["beat"]["deploy"]["replicas"] == 1
    assert "scale" not in all_services["beat"]
    for name in all_services:
        command = command_list(name)
        assert "-B" not in command and "--beat" not in command, name
    beat = command_list("beat")
    assert beat[beat.index("--scheduler") + 1] == settings.CELERY_BEAT_SCHEDULER


def test_named_volumes_are_declared_and_hold_the_database():
    document = compose()
    declared = set(document.get("volumes") or {})
    used = set()
    for service in document["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~", "$")):
                used.add(source)
    assert used <= declared, f"undeclared named volumes: {used - declared}"
    assert declared <= used, f"declared but unused volumes: {declared - used}"
    assert any(
        v.endswith(":/var/lib/postgresql/data") for v in document["services"]["postgres"]["volumes"]
    )


def test_the_application_services_read_their_settings_from_the_env_file():
    for name in ("web", "worker", "beat"):
        assert services()[name]["env_file"] == ".env", name
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_the_mail_catchers_ui_is_published_on_localhost_only():
    (port,) = services()["mailpit"]["ports"]
    assert port.startswith("127.0.0.1:") and port.endswith(":8025")


def test_every_variable_the_compose_file_interpolates_is_in_the_example_env_file():
    _, mentioned = read_env_example()
    missing = compose_interpolated_variables() - mentioned
    assert not missing, f"used in docker-compose.yml, missing from .env.example: {missing}"


# --- variables: settings, README, .env.example ---------------------------------------------------


def test_the_settings_variables_are_found_in_the_settings_source():
    found = settings_variables()
    assert {"DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "REDIS_URL"} <= found
    assert {"OIDC_CLIENT_SECRET", "OIDC_CLIENT_SECRET_FILE", "ENV_FILE"} <= found


def test_every_setting_variable_is_in_the_readme_configuration_table():
    missing = settings_variables() - readme_table_variables()
    assert not missing, f"read by config/settings.py, missing from README's table: {missing}"


def test_every_setting_variable_is_in_the_example_env_file():
    _, mentioned = read_env_example()
    missing = settings_variables() - NOT_IN_ENV_EXAMPLE - mentioned
    assert not missing, f"read by config/settings.py, missing from .env.example: {missing}"


def test_the_example_env_file_sets_nothing_that_nobody_reads():
    values, mentioned = read_env_example()
    unknown = mentioned - settings_variables() - CONTAINER_VARIABLES
    assert not unknown, f"in .env.example but read by nothing: {unknown}"
    for name, value in values.items():
        assert " #" not in value and not value.startswith(("'", '"')), (
            f"{name}: keep values unquoted and without trailing comments (env_file and "
            "django-environ read them differently)"
        )


def test_the_example_is_a_production_configuration_for_the_compose_services():
    values, _ = read_env_example()
    assert values["DEBUG"] == "false"
    assert "@postgres:5432/" in values["DATABASE_URL"]
    assert values["POSTGRES_PASSWORD"] in values["DATABASE_URL"]
    assert values["REDIS_URL"].startswith("redis://redis:6379")
    assert values["EMAIL_URL"] == "smtp://mailpit:1025"
    assert not any(name.startswith("OIDC_") for name in values), "single sign-on stays optional"


def test_the_example_env_file_passes_the_deployment_checks():
    values, _ = read_env_example()
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=clean_environment(**values),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # Not one warning: HTTPS redirect, HSTS with subdomains and preload, secure cookies.
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stderr


def test_a_misspelt_value_in_the_example_stops_start_up_naming_the_variable():
    values, _ = read_env_example()
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean_environment(**{**values, "DATABASE_CONN_MAX_AGE": "sixty"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DATABASE_CONN_MAX_AGE" in result.stderr


# --- the image and the commands it runs -----------------------------------------------------------


def dockerfile_instructions():
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_image_is_python_311_slim_and_runs_as_an_unprivileged_user():
    instructions = dockerfile_instructions()
    assert instructions[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert any(re.search(r"pip install (--no-deps )?\.$", line) for line in instructions)


def test_the_image_collects_static_files_with_a_throwaway_key():
    (collect,) = [line for line in dockerfile_instructions() if "collectstatic" in line]
    assert "SECRET_KEY=" in collect and "DEBUG=false" in collect


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var", ".git"} <= set(ignored)
    assert "README.md" not in ignored, "pyproject.toml names README.md: pip install . needs it"


@pytest.mark.filterwarnings("ignore:No directory at")  # static files are not collected here
def test_the_wsgi_module_the_image_and_compose_serve_exists():
    import importlib

    cmd = [line for line in dockerfile_instructions() if line.startswith("CMD ")][-1]
    assert "config.wsgi" in cmd
    assert "gunicorn config.wsgi --bind 0.0.0.0:8000" in " ".join(command_list("web"))
    assert callable(importlib.import_module("config.wsgi").application)


def test_the_celery_app_and_scheduler_the_containers_name_exist():
    from celery import Celery
    from celery.app.utils import find_app
    from kombu.utils.imports import symbol_by_name

    for name in ("worker", "beat"):
        command = command_list(name)
        assert command[:3] == ["celery", "-A", "config"], name
        assert isinstance(find_app(command[2]), Celery)
    assert command_list("worker")[3] == "worker"
    beat = command_list("beat")
    assert symbol_by_name(beat[beat.index("--scheduler") + 1])


@pytest.mark.slow
def test_the_web_command_migrates_collects_and_serves_a_page_its_healthcheck_accepts(tmp_path):
    """Runs the web service's own command and healthcheck, the .env.example values pointing
    at local stand-ins for the compose services (SQLite, console mail, no Redis)."""
    values, _ = read_env_example()
    port = str(free_port())
    env = clean_environment(
        **{
            **values,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "",
            "EMAIL_URL": "consolemail://",
            "VAR_DIR": str(tmp_path),
            "STATIC_ROOT": str(tmp_path / "static"),
            "WEB_CONCURRENCY": "1",
        }
    )
    command = [part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in command_list("web")]
    healthcheck = [
        part.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        for part in services()["web"]["healthcheck"]["test"][1:]
    ]
    log = tmp_path / "web.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        healthy, check = False, None
        while time.monotonic() < deadline and server.poll() is None:
            check = subprocess.run(healthcheck, cwd=ROOT, env=env, capture_output=True, timeout=30)
            if check.returncode == 0:
                healthy = True
                break
            time.sleep(0.5)
        why = check.stderr.decode()[-2000:] if check else "the server exited"
        assert healthy, log.read_text()[-4000:] + "\n" + why
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
