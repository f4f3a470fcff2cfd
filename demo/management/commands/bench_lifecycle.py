"""Measure the assignment lifecycle on the current database.

    python manage.py bench_lifecycle --requests 10000 --expire 10000

Builds its own throwaway data (a catalog, groups, packages and users whose names start with a
random ``bench-`` prefix), runs

1. submit + approve + deliver for N requests, through the real services (request_submit,
   stage_decide, assignment_deliver), one request after another;
2. expiry of M assignments that all end in the same minute (assignments_expire_due and the
   revocations it hands over),

prints the figures, and deletes what it built (unless --keep).

With ``--workers`` the expiry runs as in a deployment instead: the assignments end a few
seconds ahead, and real processes started by the command (a worker for the delivery queue, one
for notifications and periodic work, and beat, as docker-compose.yml runs them, on REDIS_URL)
find them, remove the memberships and send the "access ended" emails (EMAIL_URL, default a
dummy backend); it prints when the last membership was removed and the last email sent,
counted from the assignments' end. Delivery and revocation run
inline, as the worker would run them; the other tasks the services enqueue (notifications) go
to an in-memory broker and are dropped, and mail goes to a dummy backend. Run it on a
database of its own.
"""

import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from approvals.models import ReviewResult
from approvals.services import stage_decide
from config.celery import app
from demo.generator import delivered_assignments
from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.configuration import resource_add
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    Catalog,
    Channel,
    GrantState,
    OriginSystem,
    ResourceRoleScope,
    StageApproverSet,
    SubjectType,
)
from entitlements.services import ending
from entitlements.services.delivery import assignment_deliver, assignments_revoke
from entitlements.services.ending import assignments_expire_due
from entitlements.services.requests import request_submit


class Command(BaseCommand):
    help = "Time submit/approve/deliver and same-minute expiry on throwaway data."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=1000, help="requests to submit")
        parser.add_argument("--expire", type=int, default=1000, help="assignments to expire")
        parser.add_argument("--batch-size", type=int, default=1000, help="expiry batch size")
        parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
        parser.add_argument(
            "--workers",
            action="store_true",
            help="expire through real workers and beat on REDIS_URL (needs PostgreSQL)",
        )

    def handle(self, *args, requests, expire, batch_size, keep, workers, **options):
        if requests < 0 or expire < 0:
            raise CommandError("--requests and --expire cannot be negative.")
        if workers:
            return self._bench_with_workers(expire, keep)

        prefix = f"bench-{secrets.token_hex(3)}"
        saved = (app.conf.task_always_eager, app.conf.broker_url, settings.EMAIL_BACKEND)
        app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
        app._pool = None
        settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
        self.stdout.write(f"{prefix}: database {connection.settings_dict['NAME']}")
        try:
            world = self._build(prefix, requests, expire)
            if requests:
                self._bench_requests(world)
            if expire:
                self._bench_expiry(world, batch_size)
        finally:
            app.conf.task_always_eager, app.conf.broker_url, settings.EMAIL_BACKEND = saved
            app._pool = None
            if not keep:
                self._clean(prefix)

    # --- Data ---------------------------------------------------------------------------------

    def _build(self, prefix, requests, expire):
        started = time.perf_counter()
        password = make_password(None)
        catalog = Catalog.objects.create(display_name=f"{prefix} catalog")
        approver = User.objects.create(
            email=f"{prefix}-approver@bench.invalid",
            display_name=f"{prefix} approver",
            password=password,
        )
        requested = self._package(prefix, catalog, "requested")
        policy = requested.assignment_policies.get()
        stage = ApprovalStage.objects.create(
            policy=policy, sequence=1, is_approver_justification_required=False
        )
        StageApproverSet.objects.create(
            stage=stage, subject_type=SubjectType.SINGLE_USER, user=approver
        )
        expiring = self._package(prefix, catalog, "expiring")
        users = User.objects.bulk_create(
            [
                User(
                    email=f"{prefix}-{i}@bench.invalid",
                    display_name=f"{prefix} user {i}",
                    password=password,
                )
                for i in range(max(requests, expire))
            ],
            batch_size=2000,
        )
        self.stdout.write(f"  built {len(users)} users in {time.perf_counter() - started:.1f} s")
        return {
            "prefix": prefix,
            "approver": approver,
            "requested": requested,
            "expiring": expiring,
            "requesters": users[:requests],
            "holders": users[:expire],
        }

    def _package(self, prefix, catalog, name):
        group = Group.objects.create(display_name=f"{prefix} {name}")
        resource = resource_add(
            actor=None, catalog=catalog, origin_system=OriginSystem.GROUP, group=group
        )
        package = AccessPackage.objects.create(catalog=catalog, display_name=f"{prefix} {name}")
        ResourceRoleScope.objects.create(
            access_package=package, role=resource.roles.get(origin_id="Member")
        )
        AssignmentPolicy.objects.create(
            access_package=package,
            display_name="Everyone",
            allowed_target_scope="allMemberUsers",
            is_approval_required_for_add=name == "requested",
            is_requestor_justification_required=False,
            expiration_duration=timedelta(days=30),
        )
        package.group = group
        return package

    # --- Measurements -------------------------------------------------------------------------

    def _bench_requests(self, world):

        package, approver = world["requested"], world["approver"]
        count = len(world["requesters"])
        started = time.perf_counter()
        for user in world["requesters"]:
            request = request_submit(
                actor=user,
                target=user,
                access_package=package,
                justification="Benchmark",
                channel=Channel.PORTAL,
            )
            stage = request.approval_stages.get(sequence=1)
            stage_decide(
                actor=approver,
                stage=stage,
                decision=ReviewResult.APPROVED,
                channel=Channel.PORTAL,
            )
            # What the worker runs once the approval commits.
            request.refresh_from_db(fields=["assignment"])
            assignment_deliver(assignment_id=request.assignment_id)
        elapsed = time.perf_counter() - started
        delivered = Assignment.objects.filter(
            access_package=package, state=AssignmentState.DELIVERED
        ).count()
        members = GroupMembership.objects.filter(group=package.group).count()
        self.stdout.write(
            f"submit + approve + deliver: {count} requests in {elapsed:.2f} s "
            f"({1000 * elapsed / max(count, 1):.1f} ms per request); "
            f"{delivered} delivered, {members} group members"
        )
        if delivered != count or members != count:
            raise CommandError("Not every request was delivered.")

    def _bench_expiry(self, world, batch_size):
        package = world["expiring"]
        holders = world["holders"]
        policy = package.assignment_policies.get()
        role_id = package.resource_role_scopes.get().role_id
        now = timezone.now().replace(second=0, microsecond=0)
        end = now - timedelta(seconds=30)
        with transaction.atomic():
            assignments = Assignment.objects.bulk_create(
                [
                    Assignment(
                        access_package=package,
                        assignment_policy=policy,
                        target=user,
                        state=AssignmentState.DELIVERED,
                        schedule_start=end - timedelta(days=30),
                        # all within the same minute
                        schedule_end=end + timedelta(milliseconds=i % 1000),
                    )
                    for i, user in enumerate(holders)
                ],
                batch_size=2000,
            )
            AssignmentResourceRole.objects.bulk_create(
                [
                    AssignmentResourceRole(
                        assignment=a,
                        resource_role_id=role_id,
                        target_id=a.target_id,
                        state=GrantState.DELIVERED,
                    )
                    for a in assignments
                ],
                batch_size=2000,
            )
            GroupMembership.objects.bulk_create(
                [
                    GroupMembership(group=package.group, user=u, source=GrantSource.ENTITLEMENT)
                    for u in holders
                ],
                batch_size=2000,
            )
        after_commit = [0.0]
        follow_up = ending._after_end

        def timed_follow_up(*args):
            # On commit: the assignment_ended receivers (notifications) and the enqueueing.
            began = time.perf_counter()
            follow_up(*args)
            after_commit[0] += time.perf_counter() - began

        started = time.perf_counter()
        with mock.patch.object(ending, "_after_end", timed_follow_up):
            ended = assignments_expire_due(now=now, batch_size=batch_size)
        expired_at = time.perf_counter()
        # What the worker runs for the batches expiry enqueued.
        assignments_revoke(assignment_ids=[a.pk for a in assignments], now=now)
        elapsed = time.perf_counter() - started
        members = GroupMembership.objects.filter(group=package.group).count()
        self.stdout.write(
            f"expire: {ended} assignments ending in the same minute in {elapsed:.2f} s "
            f"(assignments_expire_due {expired_at - started:.2f} s, of which on-commit "
            f"signal receivers {after_commit[0]:.2f} s; "
            f"revocations {elapsed - (expired_at - started):.2f} s); "
            f"{members} group members left"
        )
        if ended != len(holders) or members:
            raise CommandError("Not every assignment expired and lost its membership.")

    # --- With real workers and beat ---------------------------------------------------------

    def _bench_with_workers(self, expire, keep):
        from notifications.models import Notification, NotificationKind

        if not settings.CELERY_BROKER_URL.startswith("redis"):
            raise CommandError("--workers needs REDIS_URL (or CELERY_BROKER_URL) on Redis.")
        if connection.vendor != "postgresql":
            raise CommandError("--workers needs PostgreSQL: the workers share its database.")
        prefix = f"bench-{secrets.token_hex(3)}"
        self.stdout.write(f"{prefix}: database {connection.settings_dict['NAME']}")
        world = self._build(prefix, 0, expire)
        package = world["expiring"]
        end = timezone.now() + timedelta(seconds=20)
        assignments = self._expiring(world, end)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("EMAIL_URL", "dummymail://")
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        commands = {
            "delivery worker": [*celery, "worker", "--queues=delivery", "--concurrency=2"],
            "worker": [*celery, "worker", "--queues=notifications,periodic", "--concurrency=2"],
            "beat": [*celery, "beat", "--scheduler", settings.CELERY_BEAT_SCHEDULER],
        }
        processes = [
            subprocess.Popen(
                [*command, "--loglevel=WARNING"],
                env=env,
                cwd=settings.BASE_DIR,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for command in commands.values()
        ]
        ids = [a.pk for a in assignments]
        emails = Notification.objects.filter(kind=NotificationKind.ACCESS_ENDED, assignment__in=ids)
        removed_at = sent_at = None
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and sent_at is None:
                time.sleep(0.5)
                now = timezone.now()
                if removed_at is None:
                    if not GroupMembership.objects.filter(group=package.group).exists():
                        removed_at = now
                elif emails.exists() and not emails.exclude(state=Notification.State.SENT).exists():
                    sent_at = now
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
            if not keep:
                self._clean(prefix)
        if removed_at is None:
            raise CommandError("The memberships were not all removed within 10 minutes.")
        emails_line = (
            f"the last 'access ended' email sent {(sent_at - end).total_seconds():.1f} s after"
            if sent_at
            else "not every 'access ended' email was sent within 10 minutes of"
        )
        self.stdout.write(
            f"workers: {len(ids)} assignments ending within the same second; the last "
            f"membership removed {(removed_at - end).total_seconds():.1f} s after their end; "
            f"{emails_line} their end"
        )

    def _expiring(self, world, end):
        package, holders = world["expiring"], world["holders"]
        with transaction.atomic():
            assignments = delivered_assignments(package, holders, end)
            GroupMembership.objects.bulk_create(
                [
                    GroupMembership(group=package.group, user=u, source=GrantSource.ENTITLEMENT)
                    for u in holders
                ],
                batch_size=2000,
            )
        return assignments

    # --- Clean-up -----------------------------------------------------------------------------

    def _clean(self, prefix):
        started = time.perf_counter()
        catalogs = Catalog.objects.filter(display_name__startswith=prefix)
        packages = AccessPackage.objects.filter(catalog__in=catalogs)
        package_ids = list(packages.values_list("pk", flat=True))
        with transaction.atomic():
            # The benchmark's audit events stay: the trail is append-only and hash-chained
            # (docs/audit.md), for a benchmark's events too.
            AssignmentRequest.objects.filter(access_package__in=package_ids).delete()
            Assignment.objects.filter(access_package__in=package_ids).delete()
            packages.delete()
            catalogs.delete()
            Group.objects.filter(display_name__startswith=prefix).delete()
            User.objects.filter(email__startswith=f"{prefix}-").delete()
        self.stdout.write(f"  cleaned up {prefix} in {time.perf_counter() - started:.1f} s")
