"""Every My Access page, admin changelist and API list under load, over real HTTP (gunicorn).

Starts gunicorn (``--workers``) with ``demo.bench_settings`` (the product plus a minimal view
doing one primary-key query), signs in a requester, an approver, a reviewer, an admin and an
API application, then sends ``--repeat`` requests per page from ``--concurrency`` clients at
once (keep-alive connections, one per client). Prints median and p95 latency, throughput, its
ratio to the minimal view's throughput measured in the same run, and the queries one request
makes (counted in-process, same code, same database). ``--results`` keeps the figures per data
size in a JSON file and ``--svg`` draws p95 per page for every size recorded there.
"""

import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from html import escape
from pathlib import Path
from urllib.parse import quote

import httpx
from django.conf import settings
from django.contrib import admin
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import clear_url_caches, reverse
from django.utils import timezone

from demo.management.commands.bench_api import EM, _free_port
from demo.management.commands.bench_api import Command as ApiBench
from directory.models import User
from entitlements import selectors
from entitlements.models import OPEN_ASSIGNMENT_STATES, AccessPackage, Assignment, AssignmentPolicy
from reviews.models import Decision, ReviewInstance, ReviewItem, ReviewItemReviewer, ReviewStatus

BENCH_ADMIN = "bench-admin@example.com"
BENCH_REVIEWER = "bench-reviewer@example.com"
BENCH_REVIEW_POLICY = "Bench review"
ADMIN_APPS = ("entitlements", "approvals", "reviews", "directory")
TARGET_MS = 100
TARGET_RATIO = 0.5


class Command(BaseCommand):
    help = (
        "Median, p95, throughput and queries of every My Access page, admin changelist of the "
        "entitlement objects and API list, under --concurrency clients against gunicorn, beside "
        "a minimal one-query view in the same run. Run seed_demo with sizes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=100, help="requests per page")
        parser.add_argument("--warmup", type=int, default=5, help="untimed requests per client")
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument(
            "--review-items",
            type=int,
            default=100_000,
            help="items in the reviewer's review instance (made once; at most the assignments)",
        )
        parser.add_argument("--only", default="", help="measure only pages whose name has this")
        parser.add_argument("--results", help="JSON file keeping the figures per data size")
        parser.add_argument(
            "--svg", help="write a plot of p95 per page for every size in --results"
        )

    def handle(self, *args, **options):
        if options["repeat"] < 2 or options["warmup"] < 0 or options["concurrency"] < 1:
            raise CommandError("--repeat must be at least 2, --warmup 0 or more, --concurrency 1+.")
        if options["svg"] and not options["results"]:
            raise CommandError("--svg draws what --results holds: give both.")
        for name in ("httpx", "httpcore", "config.requests"):  # one log line per request
            logging.getLogger(name).setLevel(logging.WARNING)
        people = self._people(options["review_items"])
        pages = self._pages(people)
        if options["only"]:
            pages = [p for p in pages if options["only"] in p[0] or p[0] == "minimal view"]
        api = ApiBench()
        url, server = self._start_server(options["workers"])
        # Stopped with SIGTERM, the run still stops its server (the finally below).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        settings.DEBUG = False
        settings.ROOT_URLCONF = "demo.bench_urls"  # the server's URLs, for counting queries
        clear_url_caches()
        try:
            auth = self._credentials(url, api, people)
            size = self._size()
            load = os.getloadavg()
            self.stdout.write(
                f"Database: {connection.vendor} {connection.settings_dict['NAME']}; {size}; "
                f"gunicorn {options['workers']} workers; {options['concurrency']} concurrent "
                f"clients; {options['repeat']} requests per page after {options['warmup']} per "
                f"client; {os.cpu_count()} cores; load average {load[0]:.2f} {load[1]:.2f} "
                f"{load[2]:.2f} at start."
            )
            header = (
                f"{'page':<34}{'median ms':>10}{'p95 ms':>9}{'req/s':>8}{'ratio':>7}"
                f"{'queries':>9}{'status':>7}"
            )
            self.stdout.write(header)
            rows = []
            minimal = None
            for name, who, path in pages:
                queries, status = self._queries(path, who, auth)
                if status != 200:
                    self.stdout.write(
                        f"{name:<34}{'-':>10}{'-':>9}{'-':>8}{'-':>7}{queries:>9}{status:>7}"
                    )
                    rows.append({"page": name, "path": path, "status": status, "queries": queries})
                    continue
                median, p95, rps = self._time(url + path, who, auth, options)
                if minimal is None:
                    minimal = rps
                ratio = rps / minimal
                flag = "" if p95 < TARGET_MS and ratio >= TARGET_RATIO else "  *"
                self.stdout.write(
                    f"{name:<34}{median:>10.1f}{p95:>9.1f}{rps:>8.1f}{ratio:>7.2f}{queries:>9}"
                    f"{status:>7}{flag}"
                )
                rows.append(
                    {
                        "page": name,
                        "path": path,
                        "status": status,
                        "queries": queries,
                        "median_ms": round(median, 1),
                        "p95_ms": round(p95, 1),
                        "rps": round(rps, 1),
                        "ratio": round(ratio, 2),
                    }
                )
            load = os.getloadavg()
            self.stdout.write(
                f"* misses p95 < {TARGET_MS} ms or {TARGET_RATIO}x the minimal view's throughput. "
                f"Load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end."
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        if options["results"]:
            self._record(options, size, rows, load)

    # ---- data and people -------------------------------------------------------------------

    def _size(self):
        return (
            f"{User.objects.count():,} users, {AccessPackage.objects.count():,} packages, "
            f"{Assignment.objects.count():,} assignments"
        )

    def _people(self, review_items):
        requester, approver = ApiBench()._people(1000)
        admin_user = User.objects.filter(email=BENCH_ADMIN).first()
        if admin_user is None:
            admin_user = User.objects.create_user(
                email=BENCH_ADMIN,
                display_name="Bench admin",
                is_staff=True,
                is_superuser=True,
            )
        reviewer, instance = self._review_instance(review_items)
        searched = selectors.requestable_packages(user=requester).first()
        if searched is None:
            raise CommandError(f"{requester.email} may request no package: seed_demo first.")
        return {
            "requester": requester,
            "approver": approver,
            "reviewer": reviewer,
            "admin": admin_user,
            "searched": searched,
            "instance": instance,
        }

    def _review_instance(self, wanted):
        """A running review whose specific reviewer decides ``wanted`` items (made once)."""
        reviewer = User.objects.filter(email=BENCH_REVIEWER).first()
        if reviewer is None:
            reviewer = User.objects.create_user(email=BENCH_REVIEWER, display_name="Bench reviewer")
        instance = ReviewInstance.objects.filter(
            policy__display_name=BENCH_REVIEW_POLICY, status=ReviewStatus.IN_PROGRESS
        ).first()
        if instance is not None:
            return reviewer, instance
        package = AccessPackage.objects.filter(display_name="Bench approvals").first()
        if package is None:
            raise CommandError("bench_api's data is missing: it is made by _people first.")
        policy, _ = AssignmentPolicy.objects.get_or_create(
            access_package=package,
            display_name=BENCH_REVIEW_POLICY,
            defaults={"allowed_target_scope": "notSpecified"},
        )
        now = timezone.now()
        instance = ReviewInstance.objects.create(
            policy=policy, access_package=package, start=now, end=now + timedelta(days=30)
        )
        ReviewItemReviewer.objects.create(
            instance=instance, user=reviewer, kind=ReviewItemReviewer.Kind.PRIMARY
        )
        # Items stand for one package's assignments; any open assignments serve the page.
        assignments = (
            Assignment.objects.filter(state__in=OPEN_ASSIGNMENT_STATES)
            .order_by("pk")
            .values_list("pk", "target_id")[:wanted]
        )
        batch = []
        for number, (assignment_id, target_id) in enumerate(assignments.iterator(5000)):
            batch.append(
                ReviewItem(
                    instance=instance,
                    assignment_id=assignment_id,
                    target_id=target_id,
                    decision=Decision.NOT_REVIEWED if number % 3 else Decision.APPROVE,
                    decided_by=None if number % 3 else reviewer,
                    decided_datetime=None if number % 3 else now,
                )
            )
            if len(batch) == 5000:
                ReviewItem.objects.bulk_create(batch)
                batch = []
        ReviewItem.objects.bulk_create(batch)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE reviews_reviewitem")
        return reviewer, instance

    def _pages(self, people):
        searched = people["searched"]
        request_row = selectors.user_requests(user=people["requester"]).first()
        portal = [
            ("minimal view", "anonymous", f"/bench/minimal?id={people['requester'].pk}"),
            ("My Access home", "requester", reverse("myaccess:home")),
            ("packages", "requester", reverse("myaccess:packages")),
            (
                "package search, one hit",
                "requester",
                reverse("myaccess:packages") + "?q=" + quote(searched.display_name),
            ),
            ("package search, none", "requester", reverse("myaccess:packages") + "?q=zzqxw"),
            ("package page", "requester", reverse("myaccess:package", args=[searched.pk])),
            ("active assignments", "requester", reverse("myaccess:active_assignments")),
            ("expired assignments", "requester", reverse("myaccess:expired_assignments")),
            ("request history", "requester", reverse("myaccess:requests")),
            ("approvals", "approver", reverse("myaccess:approvals")),
            ("approval history", "approver", reverse("myaccess:approval_history")),
            ("access reviews tab", "reviewer", reverse("reviews:list")),
        ]
        if request_row is not None:
            portal.append(
                (
                    "request page",
                    "requester",
                    reverse("myaccess:request_detail", args=[request_row.pk]),
                )
            )
        changelists = sorted(
            (
                f"admin {model._meta.app_label}.{model._meta.model_name}",
                "admin",
                reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
            )
            for model in admin.site._registry
            if model._meta.app_label in ADMIN_APPS
        )
        package = (
            AccessPackage.objects.annotate(
                n=Count("assignments", filter=Q(assignments__state__in=OPEN_ASSIGNMENT_STATES))
            )
            .order_by("-n")
            .first()
        )
        api = [
            ("api catalogs", "app", f"{EM}/catalogs"),
            ("api accessPackages", "app", f"{EM}/accessPackages"),
            (
                "api accessPackages $expand",
                "app",
                f"{EM}/accessPackages?$expand=catalog,assignmentPolicies",
            ),
            ("api assignments $expand", "app", f"{EM}/assignments?$expand=target,accessPackage"),
            (
                "api assignments $filter",
                "app",
                f"{EM}/assignments?$filter=" + quote(f"accessPackage/id eq '{package.pk}'"),
            ),
            ("api assignmentRequests", "app", f"{EM}/assignmentRequests"),
            ("api assignmentPolicies", "app", f"{EM}/assignmentPolicies"),
            (
                "api approvals (approver)",
                "person",
                f"{EM}/accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')",
            ),
            ("api users", "app", "/v1.0/users"),
            ("api groups", "app", "/v1.0/groups"),
        ]
        return portal + changelists + api

    # ---- the server and signing in ---------------------------------------------------------

    def _start_server(self, workers):
        port = _free_port()
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "demo.bench_settings",
            "DATABASE_URL": os.environ.get("DATABASE_URL")
            or f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
            f"{db['NAME']}",
        }
        server = subprocess.Popen(
            [gunicorn, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
            + ["--log-level", "warning"],
            env=env,
            cwd=str(settings.BASE_DIR),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("gunicorn exited at start-up.")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url, server
            except httpx.HTTPError:
                time.sleep(0.3)
        server.kill()
        raise CommandError("gunicorn did not answer within 60 s.")

    def _credentials(self, url, api, people):
        """Session cookies for the people (signed in through the session store the server
        shares) and bearer tokens for the API."""
        auth = {"anonymous": ({}, {})}
        for role in ("requester", "approver", "reviewer", "admin"):
            client = Client()
            client.force_login(people[role])
            cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
            auth[role] = ({settings.SESSION_COOKIE_NAME: cookie}, {})
        secret, client_id = api._application()
        token = api._client_credentials(url, client_id, secret)
        eventual = {"ConsistencyLevel": "eventual"}
        auth["app"] = ({}, {"Authorization": f"Bearer {token}", **eventual})
        personal = api._personal_token(people["approver"])
        auth["person"] = ({}, {"Authorization": f"Bearer {personal}", **eventual})
        return auth

    # ---- measuring -------------------------------------------------------------------------

    def _queries(self, path, who, auth):
        """Queries one request makes, counted in this process (same code, same database)."""
        cookies, headers = auth[who]
        client = Client(HTTP_HOST="localhost")
        for name, value in cookies.items():
            client.cookies[name] = value
        meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        client.get(path, **meta)  # warm caches as the server's would be
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path, **meta)
        return len(captured), response.status_code

    def _time(self, url, who, auth, options):
        cookies, headers = auth[who]
        concurrency, repeat = options["concurrency"], options["repeat"]

        def one(client):
            start = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise CommandError(f"{url} answered {response.status_code}.")
            return elapsed

        clients = [
            httpx.Client(timeout=60, cookies=cookies, headers=headers) for _ in range(concurrency)
        ]
        try:
            for client in clients:
                for _ in range(options["warmup"]):
                    one(client)
            began = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                timings = list(pool.map(lambda i: one(clients[i % concurrency]), range(repeat)))
            wall = time.perf_counter() - began
        finally:
            for client in clients:
                client.close()
        return statistics.median(timings), statistics.quantiles(timings, n=20)[-1], repeat / wall

    # ---- results and plot ------------------------------------------------------------------

    def _record(self, options, size, rows, load):
        path = Path(options["results"])
        kept = json.loads(path.read_text()) if path.exists() else {}
        kept[size] = {
            "measured": timezone.now().isoformat(timespec="seconds"),
            "load_average_at_end": [round(x, 2) for x in load],
            "concurrency": options["concurrency"],
            "workers": options["workers"],
            "repeat": options["repeat"],
            "pages": rows,
        }
        path.write_text(json.dumps(kept, indent=1) + "\n")
        self.stdout.write(f"Figures kept in {path}.")
        if options["svg"]:
            Path(options["svg"]).write_text(plot(kept))
            self.stdout.write(f"Plot written to {options['svg']}.")


def plot(results):
    """Horizontal bars of p95 per page, one colour per data size, with the 100 ms goal."""
    sizes = sorted(results, key=lambda s: int(s.split()[0].replace(",", "")))
    colours = ["#7aa6c2", "#1f4e79", "#c07a2c", "#6a9a3a"]
    pages = []
    for size in sizes:
        for row in results[size]["pages"]:
            if row["page"] not in pages:
                pages.append(row["page"])
    p95 = {
        (size, row["page"]): row.get("p95_ms") for size in sizes for row in results[size]["pages"]
    }
    top = max([v for v in p95.values() if v] + [TARGET_MS * 1.2])
    label_w, bar_w, bar_h = 230, 520, 7
    row_h = bar_h * len(sizes) + 6
    height = 50 + row_h * len(pages) + 20 * len(sizes) + 20
    scale = bar_w / top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" height="{height}"'
        ' font-family="sans-serif" font-size="10">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="8" y="18" font-size="13">p95 latency per page (ms), gunicorn 2 workers, '
        "2 concurrent clients</text>",
    ]
    y = 34
    for page in pages:
        out.append(f'<text x="{label_w - 6}" y="{y + row_h / 2 + 3}" text-anchor="end">')
        out.append(f"{escape(page)}</text>")
        for number, size in enumerate(sizes):
            value = p95.get((size, page))
            top_y = y + number * bar_h
            if value:
                out.append(
                    f'<rect x="{label_w}" y="{top_y}" width="{value * scale:.1f}" '
                    f'height="{bar_h - 1}" fill="{colours[number % len(colours)]}"/>'
                )
                out.append(f'<text x="{label_w + value * scale + 3:.1f}" y="{top_y + 6}"')
                out.append(f' font-size="7">{value:.0f}</text>')
        y += row_h
    goal = label_w + TARGET_MS * scale
    out.append(f'<line x1="{goal:.1f}" y1="30" x2="{goal:.1f}" y2="{y}" stroke="#b00" />')
    out.append(f'<text x="{goal + 3:.1f}" y="{y + 10}" fill="#b00">{TARGET_MS} ms goal</text>')
    y += 24
    for number, size in enumerate(sizes):
        out.append(
            f'<rect x="{label_w}" y="{y}" width="10" height="8" '
            f'fill="{colours[number % len(colours)]}"/>'
        )
        out.append(f'<text x="{label_w + 14}" y="{y + 8}">{escape(size)}</text>')
        y += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"
