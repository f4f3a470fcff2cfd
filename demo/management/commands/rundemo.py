"""Run the product locally: database, demo data, web server, a Celery worker per queue, beat."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from demo.organisation import seed_organisation

from .seed_demo import sign_in_lines

WEB_START_TIMEOUT = 90  # seconds; the first run also migrates, which happens before this
STOP_TIMEOUT = 10  # seconds each process gets to finish after SIGTERM before SIGKILL


class Command(BaseCommand):
    help = (
        "Run the product locally with no external service: migrate the database, load the "
        "demo organisation, then run the web server, a Celery worker for each queue "
        "(delivery, notifications, periodic with beat) until Ctrl-C. Data stays in VAR_DIR "
        "(default var/) between runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port (8000)")
        parser.add_argument(
            "--reload", action="store_true", help="restart the web server when code changes"
        )

    def handle(self, *args, port, reload, **options):
        if not 1 <= port <= 65535:
            raise CommandError(f"--port must be between 1 and 65535, got {port}.")
        if not _port_is_free(port):
            raise CommandError(f"Port {port} is already in use; choose another with --port.")

        _prepare_var_dir()
        try:
            pending = _pending_migrations()
            if pending:
                self._say(f"Applying {pending} database migrations (first run only)...")
            call_command("migrate", interactive=False, verbosity=0)
            self._say(seed_organisation().summary())
        except KeyboardInterrupt:
            raise CommandError("Interrupted while preparing the database.") from None

        self._stop_signal = None
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.children = {}
        try:
            self._start_children(port, reload)
            failed = self._supervise(port)
        finally:
            self._stop_children()
        if failed:
            raise CommandError(failed)
        self._say("Stopped.")

    # --- Processes ------------------------------------------------------------------------
    def _start_children(self, port, reload):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Links in emails must point at this server.
        env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
        web = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
        if not reload:
            web.append("--noreload")

        def worker(queue, *extra, hostname=None):
            return [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                *extra,
                f"--queues={queue}",
                "--loglevel=INFO",
                "--pool=solo",
                f"--hostname={hostname or f'demo-{queue}'}@%h",
            ]

        # One worker per queue, so that a batch of emails or a long review never delays a
        # removal (docs/operations.md); beat runs inside the periodic one.
        commands = (
            ("web server", web),
            ("delivery worker", worker("delivery")),
            ("notifications worker", worker("notifications")),
            ("Celery worker", worker("periodic", "-B", hostname="demo")),
        )
        for name, command in commands:
            # Own process group each: Ctrl-C reaches only us, and stopping a group also stops
            # the processes it spawned (the runserver reloader, the embedded beat).
            process = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=env, start_new_session=True
            )
            self.children[name] = process
            self._say(f"Started the {name} (pid {process.pid}).")

    def _supervise(self, port):
        """Wait for a stop signal (returns None) or a failure (returns what failed)."""
        started = time.monotonic()
        announced = False
        while self._stop_signal is None:
            for name, process in self.children.items():
                if process.poll() is not None:
                    return (
                        f"The {name} stopped unexpectedly (exit code {process.returncode}); "
                        "stopped the other processes."
                    )
            if not announced:
                if _web_answers(port):
                    announced = True
                    self._announce(port)
                elif time.monotonic() - started > WEB_START_TIMEOUT:
                    return f"The web server did not answer within {WEB_START_TIMEOUT} s; stopped."
            time.sleep(0.25)
        return None

    def _stop_children(self):
        for process in self.children.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Also catches what the child left behind, e.g. beat after a worker crash.
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    # --- Output ---------------------------------------------------------------------------
    def _announce(self, port):
        url = f"http://127.0.0.1:{port}/"
        lines = [
            "",
            "=" * 78,
            f"  My Access is running:  {url}",
            f"  Admin site:            {url}admin/",
            f"  Database:              {_database_label()}",
            "",
            *(f"  {line}" for line in sign_in_lines()),
            "",
            "  Press Ctrl-C to stop. Data is kept for the next run.",
            "=" * 78,
            "",
        ]
        self._say("\n".join(lines))

    def _say(self, message):
        self.stdout.write(message)
        self.stdout.flush()


def _prepare_var_dir():
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):
        if key in options:
            os.makedirs(options[key], exist_ok=True)


def _pending_migrations():
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As runserver does: a port left in TIME_WAIT by the previous run is free to use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _web_answers(port):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except (OSError, ValueError):
        return False
    return True


def _signal_group(process, signum):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _database_label():
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite at {db['NAME']}"
    return f"{db['ENGINE'].rsplit('.', 1)[-1]} database {db['NAME']}"
