"""Server time of the portal's list pages, measured in-process with Django's test client."""

import statistics
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, reset_queries
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import selectors as approval_selectors
from approvals.models import OPEN_STAGE_STATUSES, RequestApprovalStage, StageApprover, StageStatus
from directory.models import User
from entitlements import selectors
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    AssignmentRequest,
    Catalog,
    RequestState,
    RequestType,
)


def _busiest(queryset, field):
    return queryset.annotate(n=field).filter(n__gt=0).order_by("-n").first()


class Command(BaseCommand):
    help = (
        "Time the package list, request history and approvals pages (median and p95 over "
        "--repeat requests after --warmup) for the user with the most assignments and the "
        "approver with the most pending approvals. Run seed_demo with sizes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=30)
        parser.add_argument("--warmup", type=int, default=3)
        parser.add_argument("--user", help="email of the user to measure (default: busiest)")
        parser.add_argument(
            "--requests",
            type=int,
            default=1000,
            help="make sure the measured user has this many past requests and the approver "
            "this many pending approvals (on a 'Bench approvals' package; 0 to add none)",
        )

    def handle(self, *args, repeat, warmup, user, requests, **options):
        if repeat < 1 or warmup < 0:
            raise CommandError("--repeat must be at least 1 and --warmup at least 0.")
        users = User.objects.filter(is_active=True)
        if user:
            requester = approver = users.filter(email__iexact=user).first()
            if requester is None:
                raise CommandError(f"No active user {user}.")
        else:
            requester = _busiest(
                users, Count("assignments", filter=Q(assignments__state__in=OPEN_ASSIGNMENT_STATES))
            )
            approver = _busiest(
                users,
                Count(
                    "approval_assignments",
                    filter=Q(approval_assignments__stage__status__in=OPEN_STAGE_STATUSES),
                ),
            )
            if requester is None:
                raise CommandError("No user holds an assignment: run seed_demo with sizes first.")
        approver = approver or requester
        if requests:
            approver = _ensure_bench_requests(requester, approver, requests)

        self.stdout.write(
            f"Database: {connection.vendor}; {User.objects.count()} users. "
            f"Requester: {requester.email} ({getattr(requester, 'n', '?')} active assignments); "
            f"approver: {approver.email} ({getattr(approver, 'n', 0)} pending approvals)."
        )
        self.stdout.write(f"{'page':<18}{'median ms':>10}{'p95 ms':>10}{'queries':>9}{'rows':>8}")
        pages = [
            (
                "package list",
                requester,
                reverse("myaccess:packages"),
                selectors.requestable_packages(user=requester),
            ),
            (
                "request history",
                requester,
                reverse("myaccess:requests"),
                selectors.user_requests(user=requester),
            ),
            (
                "approvals",
                approver,
                reverse("myaccess:approvals"),
                approval_selectors.pending_stages_for(user=approver),
            ),
        ]
        # Timed as in production: without DEBUG's query log.
        settings.DEBUG = False
        for name, person, url, rows in pages:
            median, p95, queries = self._measure(person, url, repeat, warmup)
            self.stdout.write(f"{name:<18}{median:>10.1f}{p95:>10.1f}{queries:>9}{rows.count():>8}")

    def _measure(self, user, url, repeat, warmup):
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        for _ in range(warmup):
            client.get(url)
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        queries = len(captured)  # read now: later requests reset the query log
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code} for {user.email}.")
        timings = []
        for _ in range(repeat):
            start = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
        p95 = statistics.quantiles(timings, n=20)[-1] if len(timings) > 1 else timings[0]
        return statistics.median(timings), p95, queries


def _ensure_bench_requests(requester, approver, count):
    """Rows for the history and approvals pages, made once on a dedicated package.

    seed_demo generates assignments only; these rows stand for the requests and approvals a
    busy person accumulates. They are written in bulk (no emails, no deliveries).
    """

    if approver.pk == requester.pk:
        approver = User.objects.filter(is_active=True).exclude(pk=requester.pk).first()
    catalog, _ = Catalog.objects.get_or_create(display_name="Bench")
    package, _ = AccessPackage.objects.get_or_create(
        catalog=catalog, display_name="Bench approvals", defaults={"is_hidden": True}
    )
    policy, _ = AssignmentPolicy.objects.get_or_create(
        access_package=package,
        display_name="Bench",
        defaults={"allowed_target_scope": "notSpecified"},
    )
    stage, _ = ApprovalStage.objects.get_or_create(policy=policy, sequence=1)
    now = timezone.now()

    def request_row(target, state):
        return AssignmentRequest(
            access_package=package,
            assignment_policy=policy,
            requestor=target,
            target=target,
            request_type=RequestType.USER_ADD,
            state=state,
            justification="Benchmark",
        )

    missing = (
        count - AssignmentRequest.objects.filter(target=requester, access_package=package).count()
    )
    AssignmentRequest.objects.bulk_create(
        [request_row(requester, RequestState.DENIED) for _ in range(max(missing, 0))]
    )
    pending = RequestApprovalStage.objects.filter(
        request__access_package=package, approvers__user=approver, status=StageStatus.IN_PROGRESS
    ).count()
    if pending < count:
        busy = AssignmentRequest.objects.filter(
            access_package=package, state=RequestState.PENDING_APPROVAL
        ).values("target_id")
        targets = (
            User.objects.filter(is_active=True)
            .exclude(pk__in=[requester.pk, approver.pk])
            .exclude(pk__in=busy)[: count - pending]
        )
        opened = AssignmentRequest.objects.bulk_create(
            [request_row(t, RequestState.PENDING_APPROVAL) for t in targets]
        )
        stages = RequestApprovalStage.objects.bulk_create(
            [
                RequestApprovalStage(
                    request=r,
                    policy_stage=stage,
                    sequence=1,
                    status=StageStatus.IN_PROGRESS,
                    opened_datetime=now,
                    deadline=now + timedelta(days=14),
                )
                for r in opened
            ]
        )
        StageApprover.objects.bulk_create(
            [StageApprover(stage=s, user=approver, kind=StageApprover.Kind.PRIMARY) for s in stages]
        )
    if connection.vendor == "postgresql":
        # Fresh bulk rows have no planner statistics yet; autovacuum would add them soon.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return approver
