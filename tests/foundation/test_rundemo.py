"""rundemo: one command prepares SQLite, seeds the demo, runs web + worker + beat, stops them all.

These start the real processes, on SQLite and kombu's filesystem transport, exactly as
scripts/demo does on a fresh checkout.
"""

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings

from demo.organisation import DEMO_PASSWORD, SIGN_INS

pytestmark = pytest.mark.slow

START_TIMEOUT = 120  # the first run migrates a new SQLite database
STOP_TIMEOUT = 20


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_env(var_dir):
    env = {**os.environ, "VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "TEST_REDIS_URL",
        "CELERY_BROKER_URL",
        "CELERY_TASK_ALWAYS_EAGER",
        "SITE_URL",
    ):
        env.pop(name, None)
    return env


def manage(var_dir, *args):
    """Run one management command the way scripts/demo would, in ``var_dir``."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=demo_env(var_dir),
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT * 3,
    )


class DemoRun:
    """``manage.py rundemo`` in a subprocess, its output collected line by line."""

    def __init__(self, var_dir, port):
        self.port = port
        self.lines = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "rundemo", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env=demo_env(var_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self):
        return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            match = re.search(pattern, self.output)
            if match:
                return match
            time.sleep(0.1)
        self._reader.join(timeout=1)
        match = re.search(pattern, self.output)
        if match:
            return match
        raise AssertionError(f"{pattern!r} did not appear. Output:\n{self.output[-4000:]}")

    def child_pids(self):
        return {
            name: int(pid)
            for name, pid in re.findall(
                r"Started the (web server|Celery worker) \(pid (\d+)\)", self.output
            )
        }

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def stop(self, signum=signal.SIGINT):
        self.process.send_signal(signum)
        return self.wait()

    def wait(self):
        returncode = self.process.wait(timeout=STOP_TIMEOUT)
        self._reader.join(timeout=5)
        return returncode

    def cleanup(self):
        """After a failed test: stop whatever is still running."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in self.child_pids().values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def run_demo():
    runs = []

    def start(var_dir):
        run = DemoRun(var_dir, free_port())
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.cleanup()


def is_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_it_serves_stops_on_ctrl_c_restarts_with_the_data_and_stops_when_a_child_dies(
    tmp_path, run_demo
):
    demo = run_demo(tmp_path)

    demo.wait_for(r"Press Ctrl-C to stop")
    demo.wait_for(r"demo@\S+ ready\.")

    assert "first run only" in demo.output
    assert demo.get("/") in (200, 302)
    assert f"http://127.0.0.1:{demo.port}/admin/" in demo.output
    assert DEMO_PASSWORD in demo.output
    for email, _name, _who in SIGN_INS:
        assert email in demo.output
    assert (tmp_path / "celery" / "out").is_dir()
    children = demo.child_pids()
    assert set(children) == {"web server", "Celery worker"}

    assert demo.stop(signal.SIGINT) == 0
    assert not any(is_running(pid) for pid in children.values())
    assert not port_answers(demo.port)

    # The second run keeps the data; then its worker dies and takes the demo down.
    again = run_demo(tmp_path)
    again.wait_for(r"Press Ctrl-C to stop")
    assert "first run only" not in again.output
    assert "nothing changed" in again.output
    children = again.child_pids()

    os.killpg(children["Celery worker"], signal.SIGKILL)

    assert again.wait() != 0
    assert "Celery worker stopped unexpectedly" in again.lines[-1]
    assert not is_running(children["web server"])


def test_it_refuses_a_port_that_is_already_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = manage(tmp_path, "rundemo", "--port", str(port))

    assert result.returncode != 0
    assert f"Port {port} is already in use" in result.stderr
    assert not (tmp_path / "demo.sqlite3").exists()
