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
from collections import Counter

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


# --- Two web processes and two workers running the lifecycle at once ----------------------


def start_web(broker, smtp_port):
    """A gunicorn process as deployments run it, on a free port of this machine."""
    port = free_port()
    web = Process(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
         "--workers=1", "--threads=4", "--access-logfile=-"],
        env=process_env(broker=broker, email_url=f"smtp://127.0.0.1:{smtp_port}"),
        ready="Booting worker",
    )  # fmt: skip
    web.url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _get(web.url + "/healthz") == 200, timeout=60, every=0.2)
    return web


def start_worker(broker, smtp_port, name):
    return Process(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads",
         "--concurrency=4", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
         "--without-mingle", "-n", f"{name}-{os.getpid()}@%h"],
        env=process_env(broker=broker, email_url=f"smtp://127.0.0.1:{smtp_port}"),
        ready=" ready.",
    )  # fmt: skip


def _get(url):
    import httpx

    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


class Browser:
    """One signed-in person's cookies, used against any of the web processes."""

    def __init__(self, user):
        from django.test import Client

        client = Client()
        client.force_login(user)  # a session row: every web process reads it
        self.session = client.cookies[settings.SESSION_COOKIE_NAME].value

    def post(self, url, data):
        """GET the form (for its CSRF cookie and token), then POST it, as a browser tab does."""
        import re

        import httpx

        with httpx.Client(timeout=60, follow_redirects=False) as tab:
            tab.cookies.set(settings.SESSION_COOKIE_NAME, self.session, domain="127.0.0.1")
            page = tab.get(url)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            return tab.post(
                url, data={"csrfmiddlewaretoken": token, **data}, headers={"Referer": url}
            )


def at_once(*calls):
    """Run the calls in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_two_web_processes_and_two_workers_give_one_grant_one_decision_and_one_email_each(
    redis_broker, smtp_server, approver
):
    from datetime import timedelta
    from urllib.parse import urljoin

    from django.urls import reverse
    from django.utils import timezone

    from approvals.models import RequestApprovalStage, ReviewResult
    from directory.models import GroupMembership
    from entitlements.models import (
        Assignment,
        AssignmentRequest,
        AssignmentResourceRole,
        AssignmentState,
        AuditEvent,
        GrantState,
    )
    from notifications.models import Notification, NotificationKind
    from tests.factories import GroupResourceFactory, UserFactory
    from tests.lifecycle.assignment_helpers import package_giving
    from tests.lifecycle.requests_setup import approval_policy

    second_approver = UserFactory(email="second.approver@example.com")
    resource = GroupResourceFactory()
    package, _ = package_giving(resource)
    policy = approval_policy(package=package, approvers=[approver, second_approver])
    people = [UserFactory(email=f"person{i:02d}@example.com") for i in range(10)]

    webs = [start_web(redis_broker, smtp_server.port) for _ in range(2)]
    workers = [start_worker(redis_broker, smtp_server.port, f"w{i}") for i in range(2)]
    try:
        a, b = (web.url for web in webs)
        request_url = reverse("myaccess:request_create", args=[package.pk])
        form = {"policy": str(policy.pk), "justification": "Quarter close"}
        # Each person submits from both web processes at once (a double click, two tabs).
        for person in people:
            browser = Browser(person)
            answers = at_once(
                lambda br=browser: br.post(urljoin(a, request_url), form),
                lambda br=browser: br.post(urljoin(b, request_url), form),
            )
            # one is submitted (a redirect to its page); the other is told it is already open
            assert sorted(r.status_code for r in answers) in ([200, 302], [302, 403]), answers
            refused = next(r for r in answers if r.status_code != 302)
            assert "already an open request" in refused.text, refused.text
        requests = AssignmentRequest.objects.filter(access_package=package)
        assert requests.count() == len(people)

        # Both approvers approve each request at the same moment, one on each web process.
        first, second = Browser(approver), Browser(second_approver)
        decision = {"decision": ReviewResult.APPROVED, "justification": "Fine"}
        for stage in RequestApprovalStage.objects.filter(request__in=requests):
            url = reverse("myaccess:approval_detail", args=[stage.pk])
            at_once(
                lambda u=url: first.post(urljoin(a, u), decision),
                lambda u=url: second.post(urljoin(b, u), decision),
            )
        grants = AssignmentResourceRole.objects.filter(resource_role__resource=resource)
        wait_until(
            lambda: grants.filter(state=GrantState.DELIVERED).count() == len(people), timeout=90
        )

        # Expiry: both workers take a run of the expiry job at once.
        Assignment.objects.filter(access_package=package).update(
            schedule_end=timezone.now() - timedelta(seconds=1)
        )
        from entitlements.tasks import expire_due_assignments

        expire_due_assignments.delay()
        expire_due_assignments.delay()
        wait_until(lambda: not GroupMembership.objects.filter(group=resource.group).exists(), 90)
        ended = Notification.objects.filter(kind=NotificationKind.ACCESS_ENDED)
        wait_until(lambda: ended.filter(state=Notification.State.SENT).count() == len(people), 90)
        wait_until(lambda: not Notification.objects.exclude(state=Notification.State.SENT), 60)
    finally:
        for process in webs + workers:
            process.close()

    assert Assignment.objects.filter(access_package=package).count() == len(people)
    assert (
        not Assignment.objects.filter(access_package=package)
        .exclude(state=AssignmentState.EXPIRED)
        .exists()
    )
    # One decision per stage, whoever clicked first.
    stages = RequestApprovalStage.objects.filter(request__in=requests)
    assert stages.count() == len(people)
    assert not stages.exclude(review_result=ReviewResult.APPROVED).exists()
    decided = AuditEvent.objects.filter(
        action__in=["stage.approve", "stage.deny"], object_id__in=[str(s.pk) for s in stages]
    )
    assert sorted(Counter(decided.values_list("object_id", flat=True)).values()) == [1] * len(
        people
    )
    # One grant per person, delivered once and removed once.
    assert grants.count() == len(people)
    for action in (f"grant.{GrantState.DELIVERED}", f"grant.{GrantState.REMOVED}"):
        events = AuditEvent.objects.filter(action=action, object_id__in=[str(g.pk) for g in grants])
        assert sorted(Counter(events.values_list("object_id", flat=True)).values()) == [1] * len(
            people
        ), action
    # One email per (kind, recipient, object), and each arrived once.
    rows = Notification.objects.all()
    assert rows.filter(kind=NotificationKind.ACCESS_DELIVERED).count() == len(people)
    assert rows.filter(kind=NotificationKind.ACCESS_ENDED).count() == len(people)
    sent = Counter(m["Message-ID"] for m in smtp_server.messages)
    assert len(sent) == rows.count()
    assert set(sent.values()) == {1}
