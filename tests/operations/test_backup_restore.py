"""A backup taken with pg_dump restores into a fresh database that the product runs on.

The commands are those of docs/backups.md: ``pg_dump -Fc``, then ``pg_restore --no-owner``
into a database made for it (or ``--clean --if-exists`` over an existing one), then
``migrate --check``, ``check`` and ``count_rows`` against it, each in its own process
pointed at the restored database by ``DATABASE_URL``, as an operator runs them. The product
itself then serves the restored rows: gunicorn on the restored database, a sign-in with a
password set before the dump, and an API list with a token issued before the dump. Two
quick tests check that the documented Compose commands name the compose file's services and
the postgres service's variables.
"""

import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
import yaml
from django.apps import apps as django_apps
from django.conf import global_settings, settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from api.permissions import EM_READ
from api.tokens import personal_token_create
from demo.organisation import DEMO_PASSWORD
from directory.models import User
from entitlements.models import OPEN_ASSIGNMENT_STATES, Assignment
from tests.factories import UserFactory
from tests.services import _missing, require_postgres


# A dump sees only committed rows, hence transactions. The rows the migrations wrote (the
# General catalog, the built-in connected system), which another transactional test's flush
# may have removed, are written again by the migrations' own functions. (serialized_rollback
# would collide with the content types a previous flush re-created.)
def restores(test):
    for mark in (
        pytest.mark.postgres_only,
        pytest.mark.slow,
        pytest.mark.django_db(transaction=True),
        pytest.mark.usefixtures("rows_the_migrations_wrote"),
    ):
        test = mark(test)
    return test


@pytest.fixture
def rows_the_migrations_wrote(transactional_db):
    for module, function in (
        ("entitlements.migrations.0002_general_catalog", "create_general_catalog"),
        ("entitlements.migrations.0004_connected_systems", "create_builtin_system"),
    ):
        getattr(importlib.import_module(module), function)(django_apps, None)


MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def binary(name):
    """A PostgreSQL client program: in CI a missing one fails the test, elsewhere it skips."""
    return shutil.which(name) or _missing(name)


def libpq_env():
    """Where the test database's server is, as pg_dump and pg_restore read it."""
    db = connection.settings_dict
    env = {**os.environ, "PGHOST": db["HOST"] or "127.0.0.1", "PGPORT": str(db["PORT"] or 5432)}
    env["PGUSER"] = db["USER"] or "postgres"
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def database_url(name):
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{quote(db['USER'] or 'postgres', safe='')}{password}@{host}:{port}/{name}"


def server_connection():
    """An autocommit connection to the server's maintenance database, for CREATE/DROP DATABASE."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


@pytest.fixture
def fresh_database():
    """The name of a new, empty database, dropped at the end."""
    require_postgres()
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with server_connection() as server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with server_connection() as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(*args, env=None, check=True):
    started = time.monotonic()
    done = subprocess.run(
        args,
        env=env or libpq_env(),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=240,
    )
    done.seconds = time.monotonic() - started
    if check:
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def dump(path):
    """``pg_dump -Fc`` of the test database, as the nightly backup takes it."""
    return run(binary("pg_dump"), "-Fc", "-f", str(path), connection.settings_dict["NAME"])


def restore(path, database, *, clean=False):
    extra = ["--clean", "--if-exists"] if clean else []
    return run(
        binary("pg_restore"), "--no-owner", "--exit-on-error", *extra, "-d", database, str(path)
    )


def manage(database, *args, check=True):
    """``manage.py <args>`` in its own process, on ``database`` (DATABASE_URL)."""
    env = {**os.environ, "DATABASE_URL": database_url(database)}
    return run(sys.executable, MANAGE, *args, env=env, check=check)


def counts_here():
    out = StringIO()
    call_command("count_rows", stdout=out)
    return out.getvalue()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn serving the product from ``database``, as the compose file's web runs it."""

    def __init__(self, database, log):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "DATABASE_URL": database_url(database)}
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [gunicorn, "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "1"],
                env=env,
                cwd=settings.BASE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{Path(self.log).read_text()}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.3)
        pytest.fail(f"gunicorn did not answer within 60 s:\n{Path(self.log).read_text()}")

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(database):
        server = Server(database, tmp_path / f"gunicorn-{len(started)}.log")
        started.append(server)
        return server.wait()

    yield start
    for server in started:
        server.close()


def sign_in(url, email, password):
    """The real sign-in form over HTTP, CSRF check on, as a browser sends it."""
    browser = httpx.Client(base_url=url, timeout=30)
    browser.get("/accounts/login/")
    token = browser.cookies[settings.CSRF_COOKIE_NAME]
    response = browser.post(
        "/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
    )
    return browser, response


@pytest.fixture
def demo_organisation(settings):
    """The demo organisation, committed, and an API token of its administrator."""
    # Passwords hashed as a deployment hashes them (tests use a fast hasher that the server,
    # with the real settings, does not accept).
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    call_command("seed_demo", verbosity=0)
    admin = User.objects.get(email="admin@demo.example")
    _, token = personal_token_create(
        actor=admin,
        name="made before the backup",
        permissions=[EM_READ],
        expires=timezone.now() + timedelta(days=30),
    )
    return token


@restores
def test_a_dump_restores_into_a_fresh_database_that_the_product_serves(
    demo_organisation, fresh_database, serve, tmp_path
):
    backup = tmp_path / "entitlements.dump"
    rows_at_dump = counts_here()
    dumped = dump(backup)
    restored = restore(backup, fresh_database)

    assert manage(fresh_database, "migrate", "--check").returncode == 0
    assert manage(fresh_database, "check", "--deploy", "--database", "default").returncode == 0
    assert manage(fresh_database, "count_rows").stdout == rows_at_dump
    assert re.search(r"^entitlements\.Assignment [1-9]", rows_at_dump, re.MULTILINE)

    server = serve(fresh_database)
    ready = httpx.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["migrations"]["ok"] is True

    assignments = httpx.get(
        server.url + "/v1.0/identityGovernance/entitlementManagement/assignments",
        headers={"Authorization": f"Bearer {demo_organisation}"},
        timeout=30,
    )
    assert assignments.status_code == 200, assignments.text
    assert {row["id"] for row in assignments.json()["value"]} == {
        str(pk) for pk in Assignment.objects.values_list("pk", flat=True)
    }

    emma, signed_in = sign_in(server.url, "employee@demo.example", DEMO_PASSWORD)
    assert signed_in.status_code == 302 and signed_in.headers["location"] == "/"
    page = emma.get("/access-packages/active/")
    assert page.status_code == 200
    held = Assignment.objects.filter(
        target__email="employee@demo.example", state__in=OPEN_ASSIGNMENT_STATES
    ).values_list("access_package__display_name", flat=True)
    assert held
    for name in held:
        assert name in page.text

    # Figures for docs/backups.md, shown with -s.
    size = backup.stat().st_size / 1e6
    print(f"\ndump {dumped.seconds:.1f} s ({size:.1f} MB), restore {restored.seconds:.1f} s")


@restores
def test_a_wrong_password_or_token_is_still_refused_on_the_restored_database(
    fresh_database, serve, settings, tmp_path
):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    person = UserFactory(email="rita@example.com")
    person.set_password("the-right-password")
    person.save(update_fields=["password"])
    backup = tmp_path / "entitlements.dump"
    dump(backup)
    restore(backup, fresh_database)
    server = serve(fresh_database)

    _, refused = sign_in(server.url, person.email, "not-the-password")
    assert refused.status_code == 200
    assert "location" not in refused.headers
    outsider = httpx.get(
        server.url + "/v1.0/identityGovernance/entitlementManagement/assignments",
        headers={"Authorization": "Bearer not-a-token-issued-before-the-backup"},
        timeout=30,
    )
    assert outsider.status_code == 401


@restores
def test_restoring_over_an_existing_database_puts_back_the_rows_of_the_dump(
    fresh_database, tmp_path
):
    person = UserFactory(email="rita@example.com", display_name="Rita Restored")
    backup = tmp_path / "entitlements.dump"
    dump(backup)
    restore(backup, fresh_database)
    with psycopg.connect(database_url(fresh_database)) as restored:
        restored.execute(
            "UPDATE directory_user SET display_name = 'Changed after the backup' WHERE id = %s",
            [person.pk],
        )

    again = restore(backup, fresh_database, clean=True)

    assert again.returncode == 0
    with psycopg.connect(database_url(fresh_database)) as restored:
        (name,) = restored.execute(
            "SELECT display_name FROM directory_user WHERE id = %s", [person.pk]
        ).fetchone()
    assert name == "Rita Restored"


@restores
def test_restoring_over_an_existing_database_without_clean_fails_loudly(fresh_database, tmp_path):
    UserFactory(email="rita@example.com")
    backup = tmp_path / "entitlements.dump"
    dump(backup)
    restore(backup, fresh_database)

    refused = run(
        binary("pg_restore"),
        "--no-owner",
        "--exit-on-error",
        "-d",
        fresh_database,
        str(backup),
        check=False,
    )

    assert refused.returncode != 0
    assert "already exists" in refused.stderr


@restores
def test_a_dump_from_before_an_upgrade_is_brought_up_to_date_by_migrate(
    fresh_database, serve, tmp_path
):
    UserFactory(email="rita@example.com")
    backup = tmp_path / "entitlements.dump"
    dump(backup)
    restore(backup, fresh_database)
    # The state of a release that did not have the sessions app's migration yet.
    manage(fresh_database, "migrate", "sessions", "zero")

    behind = manage(fresh_database, "migrate", "--check", check=False)
    assert behind.returncode == 1
    plan = manage(fresh_database, "migrate", "--plan").stdout
    assert "sessions.0001_initial" in plan
    server = serve(fresh_database)
    not_ready = httpx.get(server.url + "/readyz", timeout=30)
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["migrations"]["ok"] is False

    manage(fresh_database, "migrate", "--noinput")

    assert manage(fresh_database, "migrate", "--check").returncode == 0
    assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
    assert manage(fresh_database, "count_rows").stdout == counts_here()


# --- count_rows ----------------------------------------------------------------------------


def test_count_rows_prints_each_table_of_the_product_once_with_its_rows(db):
    def counts():
        lines = counts_here().splitlines()
        assert lines == sorted(lines)
        return dict(line.rsplit(" ", 1) for line in lines)

    before = counts()
    UserFactory(email="rita@example.com")
    after = counts()

    assert int(after["directory.User"]) == int(before["directory.User"]) + 1
    assert after["directory.User"] == str(User.objects.count())
    # Many-to-many tables and the other apps' tables are rows of the backup too.
    assert {
        "entitlements.AuditEvent",
        "entitlements.AccessPackage_incompatible_access_packages",
        "django_celery_beat.PeriodicTask",
        "sessions.Session",
    } <= set(after)


# --- The commands of docs/backups.md name what the compose file has -----------------------

DOCS = Path(settings.BASE_DIR) / "docs" / "backups.md"
COMPOSE = Path(settings.BASE_DIR) / "docker-compose.yml"


def documented_commands():
    """The shell blocks of docs/backups.md, continuation lines joined, comments left out."""
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), re.DOTALL)
    text = "\n".join(block.replace("\\\n", " ") for block in blocks)
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_every_documented_compose_command_names_a_service_of_the_compose_file():
    services = set(yaml.safe_load(COMPOSE.read_text())["services"])
    named = []
    for line in documented_commands():
        for match in re.finditer(
            r"docker compose (exec|run|stop|cp)((?: -\S+(?: \S+=\S+)?)*) (\S+)", line
        ):
            named.append(match.group(3))
        for match in re.finditer(r"docker compose stop ((?:[\w-]+ ?)+)", line):
            named.extend(match.group(1).split())
    assert {"postgres", "redis", "web", "worker", "worker-delivery", "beat"} <= set(named)
    assert set(named) <= services, set(named) - services


def test_the_documented_dump_reads_the_database_variables_the_postgres_service_gets():
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["postgres"]["environment"]
    used = set(re.findall(r"\$(POSTGRES_\w+)", "\n".join(documented_commands())))
    assert used == {"POSTGRES_USER", "POSTGRES_DB"}
    assert used <= set(environment)
