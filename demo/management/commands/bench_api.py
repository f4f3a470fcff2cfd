"""Response time of the API's main lists, over real HTTP (gunicorn), with bearer tokens."""

import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import quote

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import Application
from api.permissions import APPLICATION_PERMISSIONS, DELEGATED_PERMISSIONS
from api.tokens import application_register, personal_token_create, secret_create
from approvals.models import OPEN_STAGE_STATUSES
from demo.management.commands.bench_portal import _ensure_bench_requests
from directory.models import User
from entitlements.models import OPEN_ASSIGNMENT_STATES, AccessPackage, Assignment

EM = "/v1.0/identityGovernance/entitlementManagement"
BENCH_APP = "Bench API client"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Command(BaseCommand):
    help = (
        "Time the API's main lists (median and p95 over --repeat requests after --warmup) over "
        "HTTP against a gunicorn server started for the run (or --url), with an application's "
        "bearer token from /oauth2/v2.0/token and, for the approver's list, a personal token. "
        "Queries per request are counted in-process. Run seed_demo with sizes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=50)
        parser.add_argument("--warmup", type=int, default=5)
        parser.add_argument(
            "--concurrency", type=int, default=1, help="clients sending at once (default 1)"
        )
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--url", help="an already running server (default: start gunicorn)")
        parser.add_argument(
            "--requests",
            type=int,
            default=1000,
            help="pending approvals and past requests to make sure exist (as bench_portal)",
        )

    def handle(self, *args, repeat, warmup, concurrency, workers, url, requests, **options):
        if repeat < 2 or warmup < 0 or concurrency < 1:
            raise CommandError("--repeat must be at least 2, --warmup 0 or more, --concurrency 1+.")
        requester, approver = self._people(requests)
        secret, client_id = self._application()
        personal = self._personal_token(approver)
        package = (
            AccessPackage.objects.annotate(
                n=Count("assignments", filter=Q(assignments__state__in=OPEN_ASSIGNMENT_STATES))
            )
            .order_by("-n")
            .first()
        )
        lists = [
            ("catalogs", "app", f"{EM}/catalogs"),
            ("accessPackages", "app", f"{EM}/accessPackages"),
            (
                "accessPackages $expand",
                "app",
                f"{EM}/accessPackages?$expand=catalog,assignmentPolicies",
            ),
            (
                "assignments $expand",
                "app",
                f"{EM}/assignments?$expand=target,accessPackage,assignmentPolicy",
            ),
            (
                "assignments $filter",
                "app",
                f"{EM}/assignments?$filter="
                + quote(f"accessPackage/id eq '{package.pk}'")
                + "&$expand=target",
            ),
            ("assignmentRequests", "app", f"{EM}/assignmentRequests"),
            (
                "approvals (approver)",
                "person",
                f"{EM}/accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')",
            ),
            ("users", "app", "/v1.0/users"),
        ]
        for name in ("httpx", "config.requests"):  # one log line per request
            logging.getLogger(name).setLevel(logging.WARNING)
        server = None
        if not url:
            url, server = self._start_server(workers)
        try:
            token = self._client_credentials(url, client_id, secret)
            tokens = {"app": token, "person": personal}
            self.stdout.write(
                f"Database: {connection.vendor}; {User.objects.count():,} users, "
                f"{AccessPackage.objects.count():,} packages, "
                f"{Assignment.objects.count():,} assignments; server: {url} "
                f"({f'gunicorn, {workers} workers' if server else 'given'}); "
                f"concurrency {concurrency}; {repeat} requests per list after {warmup}; "
                f"{os.cpu_count()} cores."
            )
            self.stdout.write(
                f"{'list':<24}{'median ms':>10}{'p95 ms':>9}{'queries':>9}{'rows':>6}{'status':>8}"
            )
            settings.DEBUG = False
            for name, who, path in lists:
                queries, rows, status = self._queries(path, tokens[who])
                if status != 200:
                    self.stdout.write(f"{name:<24}{'-':>10}{'-':>9}{queries:>9}{'-':>6}{status:>8}")
                    continue
                median, p95 = self._time(url + path, tokens[who], repeat, warmup, concurrency)
                self.stdout.write(
                    f"{name:<24}{median:>10.1f}{p95:>9.1f}{queries:>9}{rows:>6}{status:>8}"
                )
        finally:
            if server is not None:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
        self.stdout.write(
            f"Requester {requester.email}; approver {approver.email}; "
            f"package filtered on: {package.display_name} ({package.n} open assignments)."
        )

    # ---- data and credentials -------------------------------------------------------------

    def _people(self, requests):
        users = User.objects.filter(is_active=True)
        requester = (
            users.annotate(
                n=Count("assignments", filter=Q(assignments__state__in=OPEN_ASSIGNMENT_STATES))
            )
            .order_by("-n")
            .first()
        )
        if requester is None or not requester.n:
            raise CommandError("No user holds an assignment: run seed_demo with sizes first.")
        approver = (
            users.annotate(
                n=Count(
                    "approval_assignments",
                    filter=Q(approval_assignments__stage__status__in=OPEN_STAGE_STATUSES),
                )
            )
            .order_by("-n")
            .first()
        )
        if requests:
            approver = _ensure_bench_requests(requester, approver or requester, requests)
        return requester, approver

    def _application(self):
        """A registered application with every application permission and a new secret."""
        application = Application.objects.filter(display_name=BENCH_APP).first()
        if application is None:
            application = application_register(
                actor=None, display_name=BENCH_APP, permissions=list(APPLICATION_PERMISSIONS)
            )
        _, secret = secret_create(actor=None, application=application, description="bench_api")
        return secret, application.client_id

    def _personal_token(self, person):
        _, value = personal_token_create(
            actor=person,
            name="bench_api",
            permissions=list(DELEGATED_PERMISSIONS),
            expires=timezone.now() + timedelta(days=1),
        )
        return value

    # ---- the server ------------------------------------------------------------------------

    def _start_server(self, workers):
        port = _free_port()
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": os.environ.get("DATABASE_URL")
            or f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
            f"{db['NAME']}",
        }
        server = subprocess.Popen(
            [
                gunicorn,
                "config.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                str(workers),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=str(settings.BASE_DIR),
            stdout=subprocess.DEVNULL,  # one log line per request; failures show as statuses
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("gunicorn exited at start-up.")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return url, server
            except OSError:
                time.sleep(0.3)
        server.kill()
        raise CommandError("gunicorn did not answer within 60 s.")

    def _client_credentials(self, url, client_id, secret):
        response = httpx.post(
            url + "/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                "scope": "https://graph.microsoft.com/.default",
            },
            timeout=30,
        )
        if response.status_code != 200:
            raise CommandError(
                f"The token endpoint answered {response.status_code}: {response.text}"
            )
        return response.json()["access_token"]

    # ---- measuring -------------------------------------------------------------------------

    def _queries(self, path, token):
        """Queries one request makes, counted in this process (same code, same database)."""
        client = Client(HTTP_HOST="localhost")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_CONSISTENCYLEVEL": "eventual"}
        client.get(path, **headers)  # warm caches as the server's would be
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, **headers)
        rows = len(response.json().get("value", [])) if response.status_code == 200 else 0
        return len(captured), rows, response.status_code

    def _time(self, url, token, repeat, warmup, concurrency):
        headers = {"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"}

        def one(client):
            start = time.perf_counter()
            response = client.get(url, headers=headers)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise CommandError(f"{url} answered {response.status_code}: {response.text[:300]}")
            return elapsed

        clients = [httpx.Client(timeout=60) for _ in range(concurrency)]
        try:
            for client in clients:
                for _ in range(warmup):
                    one(client)
            with ThreadPoolExecutor(concurrency) as pool:
                timings = list(pool.map(lambda i: one(clients[i % concurrency]), range(repeat)))
        finally:
            for client in clients:
                client.close()
        return statistics.median(timings), statistics.quantiles(timings, n=20)[-1]
