"""More than one of everything: two beats, two web processes and two workers at once.

Real processes on the test's PostgreSQL database and a Redis database of its own.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.beat import LOCK_RETRY_SECONDS

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCHEDULER = "config.beat:LockedDatabaseScheduler"


def wait_until(check, timeout=30.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(db=None):
    db = db or connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(*, broker, email_url="consolemail://", extra=None):
    """What a web, worker or beat process of a deployment gets, on the test's database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_URL": email_url,
        "SITE_URL": settings.SITE_URL,
        **(extra or {}),
    }


class Process:
    """A child process in a process group of its own, its output collected line by line."""

    def __init__(self, args, *, env, ready, timeout=60):
        self.args = args
        self.output = []
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(settings.BASE_DIR),
            start_new_session=True,  # its own process group: killpg reaches its children
        )
        threading.Thread(target=self._read, daemon=True).start()
        if ready:
            try:
                self.wait_for(ready, timeout=timeout)
            except AssertionError:
                self.kill()
                raise

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)

    def saw(self, text):
        return any(text in line for line in list(self.output))

    def wait_for(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.saw(text):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.args[3:5]} never said {text!r}:\n" + "".join(self.output))

    def kill(self):
        """SIGKILL the process and every child of it: no warm shutdown, no ack."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass


def start_beat(broker):
    return Process(
        [sys.executable, "-m", "celery", "-A", "config", "beat", f"--scheduler={SCHEDULER}",
         "--loglevel=INFO", "--pidfile="],
        env=process_env(broker=broker),
        ready="beat: Starting",
    )  # fmt: skip


def sent_ticks(broker, name):
    """How many messages of the periodic task ``name`` wait in the broker (no worker runs)."""
    import redis

    client = redis.Redis.from_url(broker)
    count = 0
    for queue in settings.CELERY_TASK_QUEUES:
        for raw in client.lrange(queue, 0, -1):
            if json.loads(raw)["headers"].get("periodic_task_name") == name:
                count += 1
    return count


def test_a_second_beat_sends_nothing_while_the_first_holds_the_lock_and_takes_over_when_it_dies(
    redis_broker,
):
    name = "test: a tick every second"
    PeriodicTask.objects.create(
        name=name,
        task="entitlements.tasks.reconcile_assignments",
        interval=IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS),
    )
    first = start_beat(redis_broker)
    second = None
    try:
        first.wait_for("Beat holds the schedule lock; scheduling.")
        second = start_beat(redis_broker)
        second.wait_for("Another beat holds the schedule lock; waiting.")
        wait_until(lambda: sent_ticks(redis_broker, name) >= 1)

        began, before = time.monotonic(), sent_ticks(redis_broker, name)
        time.sleep(8)  # the schedule runs: nothing to wait for but time
        sent = sent_ticks(redis_broker, name) - before
        seconds = time.monotonic() - began
        # One beat sends one a second; two would send two.
        assert seconds - 2 <= sent <= seconds + 1, (sent, seconds)
        assert not second.saw("Beat holds the schedule lock")

        first.kill()
        killed = time.monotonic()
        second.wait_for("Beat holds the schedule lock; scheduling.", timeout=3 * LOCK_RETRY_SECONDS)
        took_over = time.monotonic() - killed
        at_takeover = sent_ticks(redis_broker, name)
        wait_until(lambda: sent_ticks(redis_broker, name) >= at_takeover + 3, timeout=10)
    finally:
        first.close()
        if second:
            second.close()
    print(
        f"\none beat sent {sent} ticks in {seconds:.1f} s; the second took over {took_over:.1f} s"
    )
    assert took_over <= LOCK_RETRY_SECONDS + 2
