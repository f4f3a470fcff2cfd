"""Response time of the admin's report pages at the tenant limits, over real HTTP (gunicorn)."""

import logging
import os
import re
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from demo.management.commands.bench_api import Command as ApiBench
from directory.models import User
from entitlements.models import AccessPackage, AdminRole, Assignment, RoleAssignment
from reports.views import MAX_PAGE, REPORTS

TARGET_MS = 500


def _stop(*_):
    raise SystemExit(1)


class Command(BaseCommand):
    help = (
        "Time every report page (median and p95 over --repeat requests after --warmup), as a "
        "superuser and as the catalog owner of the largest catalog, over HTTP against a "
        "gunicorn server started for the run (or --url). Queries per page are counted "
        "in-process. Reads the database only (sessions aside): seed_demo with sizes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=30)
        parser.add_argument("--warmup", type=int, default=3)
        parser.add_argument("--concurrency", type=int, default=1)
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--url", help="an already running server (default: start gunicorn)")
        parser.add_argument("--only", default="", help="measure only pages whose name has this")

    def handle(self, *args, repeat, warmup, concurrency, workers, url, only, **options):
        if repeat < 2 or warmup < 0 or concurrency < 1:
            raise CommandError("--repeat must be at least 2, --warmup 0 or more, --concurrency 1+.")
        for name in ("httpx", "httpcore", "config.requests"):  # one log line per request
            logging.getLogger(name).setLevel(logging.WARNING)
        people = self._people()
        pages = [p for p in self._pages() if only in p[0]]
        server = None
        if not url:
            url, server = ApiBench()._start_server(workers)
        signal.signal(signal.SIGTERM, _stop)  # stopped, the run still stops its server
        try:
            cookies = {who: self._session(person) for who, person in people.items()}
            load = os.getloadavg()
            self.stdout.write(
                f"Database: {connection.vendor} {connection.settings_dict['NAME']}; "
                f"{User.objects.count():,} users, {AccessPackage.objects.count():,} packages, "
                f"{Assignment.objects.count():,} assignments; server: {url} "
                f"({f'gunicorn, {workers} workers' if server else 'given'}); concurrency "
                f"{concurrency}; {repeat} requests per page after {warmup}; {os.cpu_count()} "
                f"cores; load average {load[0]:.2f} at start. Owner: {people['owner'].email}."
            )
            self.stdout.write(
                f"{'page':<40}{'who':<7}{'median ms':>10}{'p95 ms':>9}{'queries':>9}"
                f"{'rows':>9}{'status':>7}"
            )
            settings.DEBUG = False
            for name, path in pages:
                for who in ("admin", "owner"):
                    queries, count, status = self._queries(path, cookies[who])
                    if status != 200:
                        self.stdout.write(
                            f"{name:<40}{who:<7}{'-':>10}{'-':>9}{queries:>9}{'-':>9}{status:>7}"
                        )
                        continue
                    median, p95 = self._time(url + path, cookies[who], repeat, warmup, concurrency)
                    flag = "" if p95 < TARGET_MS else "  *"
                    self.stdout.write(
                        f"{name:<40}{who:<7}{median:>10.1f}{p95:>9.1f}{queries:>9}{count:>9}"
                        f"{status:>7}{flag}"
                    )
            load = os.getloadavg()
            self.stdout.write(
                f"* p95 at or over {TARGET_MS} ms. Load average {load[0]:.2f} at the end."
            )
        finally:
            if server is not None:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)

    def _people(self):
        admin = User.objects.filter(is_superuser=True, is_active=True).order_by("email").first()
        owners = RoleAssignment.objects.filter(
            role=AdminRole.CATALOG_OWNER, principal__is_active=True, catalog__isnull=False
        ).select_related("principal")
        owner = max(
            owners,
            key=lambda r: Assignment.objects.filter(access_package__catalog=r.catalog_id).count(),
            default=None,
        )
        if admin is None or owner is None:
            raise CommandError("Needs a superuser and a catalog owner: run seed_demo first.")
        return {"admin": admin, "owner": owner.principal}

    def _pages(self):
        """Each report as it opens, and the filters people use most, and the last page."""
        someone = User.objects.filter(assignments__isnull=False).order_by("email").first()
        package = AccessPackage.objects.order_by("display_name").first()
        variants = {
            "access": [
                {"user": someone.email if someone else "x"},
                {"package": package.display_name if package else "x"},
                {"page": MAX_PAGE},
            ],
            "ending": [{"days": 365}],
            "pending": [{"older_than_days": 1}],
            "conflicts": [{"kind": "groups"}],
            "inactive": [{"days": 90}, {"page": MAX_PAGE}],
        }
        # The admin home: the same layout and sidebar with no report, for comparison.
        pages = [("admin home (reference)", reverse("admin:index"))]
        for slug in REPORTS:
            path = reverse(f"reports:{slug}")
            pages.append((slug, path))
            for params in variants.get(slug, []):
                query = urlencode(params)
                pages.append((f"{slug}?{query}"[:39], f"{path}?{query}"))
        return pages

    def _session(self, person):
        """A session cookie for ``person``, in the session store the server shares."""
        client = Client()
        client.force_login(person)
        return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}

    def _queries(self, path, cookies):
        """Queries one request makes, counted in this process (same code, same database), and
        the count the page shows."""
        client = Client(HTTP_HOST="localhost")
        for name, value in cookies.items():
            client.cookies[name] = value
        client.get(path)  # warm caches as the server's would be
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        shown = re.search(r'class="paginator report-count">([^<]*)<', response.text)
        count = shown.group(1).split()[0] if shown else "-"
        return len(captured), count, response.status_code

    def _time(self, url, cookies, repeat, warmup, concurrency):
        def one(client):
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise CommandError(f"{url} answered {response.status_code}.")
            return elapsed

        clients = [httpx.Client(timeout=60, cookies=cookies) for _ in range(concurrency)]
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
