"""Measure the guest lifecycle's sweep, a block and a removal over many people.

    python manage.py bench_guests --guests 10000 --missed 200 --remove 500

Builds throwaway people (``bench-`` addresses) on one throwaway package: ``--guests`` guests
with access, as many blocked guests whose last assignment ended two days ago (acted on), as
many members whose access ended, and ``--missed`` guests whose end nobody acted on. Then it
times

1. the sweep that finds and blocks the missed guests (each through the leaver path);
2. seven sweeps with nothing left to do (median and slowest);
3. removing ``--remove`` blocked guests whose time has come, one by one.

The settings are set to blockSignInAndDelete for the run and put back afterwards; tasks
enqueued on commit go to an in-memory broker. Prints the figures and deletes what it made
(unless --keep).
"""

import secrets
import statistics
import time
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from config.celery import app
from directory.models import ConnectedOrganization, EntitlementManagementSettings, User
from entitlements.models import (
    AccessPackage,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    AssignmentState,
    Catalog,
)
from identity.guests import guest_remove, guests_lifecycle_sweep
from identity.models import GuestLifecycle, GuestState

Action = EntitlementManagementSettings.ExternalUserLifecycleAction


class Command(BaseCommand):
    help = "Time the guest lifecycle's sweep, blocks and removals over many people."

    def add_arguments(self, parser):
        parser.add_argument("--guests", type=int, default=10_000, help="guests of each kind")
        parser.add_argument("--missed", type=int, default=200, help="ends nobody acted on")
        parser.add_argument("--remove", type=int, default=500, help="blocked guests removed")
        parser.add_argument("--keep", action="store_true", help="keep the people afterwards")

    def handle(self, *args, guests, missed, remove, keep, **options):
        if guests < 1 or missed < 0 or not 0 <= remove <= guests:
            raise CommandError("--guests must be positive, --remove at most --guests.")
        prefix = f"bench-{secrets.token_hex(3)}"
        settings = EntitlementManagementSettings.objects.get_or_create(key=1)[0]
        saved_settings = (
            settings.external_user_lifecycle_action,
            settings.duration_until_external_user_deleted_after_blocked,
            settings.modified,
        )
        saved_celery = (app.conf.task_always_eager, app.conf.broker_url)
        app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
        app._pool = None
        try:
            now = timezone.now()
            self._settings(settings, Action.BLOCK_SIGN_IN_AND_DELETE, timedelta(days=30), now)
            started = time.perf_counter()
            people = self._build(prefix, guests, missed, now)
            self.stdout.write(
                f"{prefix}: database {connection.vendor}, {people:,} people made "
                f"({guests:,} guests with access, {guests:,} blocked, {missed:,} missed, "
                f"{guests:,} members whose access ended) in {time.perf_counter() - started:.1f} s"
            )
            self._bench(prefix, missed, remove, now)
        finally:
            app.conf.task_always_eager, app.conf.broker_url = saved_celery
            app._pool = None
            self._restore(settings, *saved_settings)
            if not keep:
                self._clean(prefix)

    def _settings(self, settings, action, duration, modified):
        settings.external_user_lifecycle_action = action
        settings.duration_until_external_user_deleted_after_blocked = duration
        settings.save()
        # before the ends the run makes, so that the sweep's horizon is its seven days
        EntitlementManagementSettings.objects.filter(pk=settings.pk).update(
            modified=modified - timedelta(days=60)
        )

    def _restore(self, settings, action, duration, modified):
        settings.external_user_lifecycle_action = action
        settings.duration_until_external_user_deleted_after_blocked = duration
        settings.save()
        EntitlementManagementSettings.objects.filter(pk=settings.pk).update(modified=modified)

    def _build(self, prefix, guests, missed, now):
        organization = ConnectedOrganization.objects.create(
            display_name=f"{prefix} partner", domains=[f"{prefix}.example"]
        )
        catalog = Catalog.objects.create(display_name=f"{prefix} catalog")
        package = AccessPackage.objects.create(catalog=catalog, display_name=f"{prefix} package")
        policy = AssignmentPolicy.objects.create(
            access_package=package,
            display_name="Partners",
            allowed_target_scope=AllowedTargetScope.ALL_DIRECTORY_USERS,
        )
        password = make_password(None)

        def people(kind, count, user_type):
            return User.objects.bulk_create(
                [
                    User(
                        email=f"{prefix}-{kind}{n}@{prefix}.example",
                        display_name=f"{prefix} {kind} {n}",
                        password=password,
                        user_type=user_type,
                        connected_organization=organization
                        if user_type == User.UserType.GUEST
                        else None,
                    )
                    for n in range(count)
                ],
                batch_size=5000,
            )

        def assignments(targets, state, ended):
            Assignment.objects.bulk_create(
                [
                    Assignment(
                        access_package=package,
                        assignment_policy=policy,
                        target=user,
                        state=state,
                        expired_datetime=ended,
                        schedule_start=now - timedelta(days=40),
                    )
                    for user in targets
                ],
                batch_size=5000,
            )

        guest = User.UserType.GUEST
        assignments(people("open", guests, guest), AssignmentState.DELIVERED, None)
        acted = people("acted", guests, guest)
        two_days_ago = now - timedelta(days=2)
        assignments(acted, AssignmentState.EXPIRED, two_days_ago)
        GuestLifecycle.objects.bulk_create(
            [
                GuestLifecycle(user=u, last_assignment_ended=two_days_ago, blocked_at=two_days_ago)
                for u in acted
            ],
            batch_size=5000,
        )
        User.objects.filter(pk__in=[u.pk for u in acted]).update(is_active=False)
        an_hour_ago = now - timedelta(hours=1)
        assignments(people("missed", missed, guest), AssignmentState.EXPIRED, an_hour_ago)
        members = people("member", guests, User.UserType.MEMBER)
        assignments(members, AssignmentState.EXPIRED, an_hour_ago)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE")
        return 3 * guests + missed

    def _bench(self, prefix, missed, remove, now):
        started = time.perf_counter()
        done = guests_lifecycle_sweep(now=now)
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"  sweep blocking the missed: {done['blocked']:,} blocked in {seconds:.2f} s "
            f"({seconds / max(done['blocked'], 1) * 1000:.0f} ms a guest)"
        )
        runs = []
        for _run in range(7):
            started = time.perf_counter()
            idle = guests_lifecycle_sweep(now=now)
            runs.append(time.perf_counter() - started)
        self.stdout.write(
            f"  sweep with nothing to do: {idle['blocked'] + idle['removed']} changes; median "
            f"{statistics.median(runs) * 1000:.0f} ms, slowest {max(runs) * 1000:.0f} ms (7 runs)"
        )
        due = list(
            GuestLifecycle.objects.filter(
                state=GuestState.BLOCKED, user__email__startswith=f"{prefix}-acted"
            ).values_list("pk", flat=True)[:remove]
        )
        later = now + timedelta(days=30, hours=1)
        started = time.perf_counter()
        removed = sum(guest_remove(lifecycle_id=pk, now=later) for pk in due)
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"  removed {removed:,} due guests in {seconds:.2f} s "
            f"({seconds / max(removed, 1) * 1000:.0f} ms a guest, one after another)"
        )

    def _clean(self, prefix):
        started = time.perf_counter()
        organization = ConnectedOrganization.objects.filter(display_name=f"{prefix} partner")
        people = User.objects.filter(connected_organization__in=organization) | User.objects.filter(
            email__startswith=f"{prefix}-"
        )
        with transaction.atomic():
            # The benchmark's audit events stay: the trail is append-only and hash-chained
            # (docs/audit.md), for a benchmark's events too.
            packages = AccessPackage.objects.filter(display_name__startswith=prefix)
            AssignmentRequest.objects.filter(access_package__in=packages).delete()
            Assignment.objects.filter(access_package__in=packages).delete()
            GuestLifecycle.objects.filter(user__in=people).delete()
            User.objects.filter(pk__in=list(people.values_list("pk", flat=True))).delete()
            packages.delete()
            Catalog.objects.filter(display_name__startswith=prefix).delete()
            organization.delete()
        self.stdout.write(f"  cleaned up {prefix} in {time.perf_counter() - started:.1f} s")
