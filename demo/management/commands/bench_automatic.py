"""Measure an automatic policy's rule change over a large directory.

    python manage.py bench_automatic --users 100000

Makes sure ``--users`` generated people exist (``demo.generator``: the ``gen-`` users, kept
for the next run), builds a throwaway package with an automatic policy whose rule matches
nobody, then

1. changes the rule to one matching most people (everyone but HR and Finance) and times
   ``automatic_policies_evaluate``: the query finding who matches and lacks the package, and
   the creation of their systemAdd requests, assignments, grants and audit events;
2. narrows the rule (Sales only) and times the evaluation that marks everyone else as no
   longer eligible (their grace period starts);
3. with ``--deliver N``, delivers N of the new assignments through the delivery service, as
   the delivery worker would, and times it.

Delivery tasks enqueued on commit go to an in-memory broker and are counted, not run. Prints
the figures and deletes the throwaway package with its assignments (unless --keep).
"""

import secrets
import time
from datetime import timedelta
from unittest import mock

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from config.celery import app
from demo.generator import Generator
from directory.models import Group, User
from entitlements.configuration import resource_add
from entitlements.models import (
    AccessPackage,
    AllowedTargetScope,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Catalog,
    OriginSystem,
    PolicySubjectSet,
    ResourceRoleScope,
    SubjectType,
)
from entitlements.services import common
from entitlements.services.automatic import automatic_policies_evaluate
from entitlements.services.delivery import assignment_deliver

NOBODY = 'user.department -eq "No such department"'
MOST = '-not (user.department -in ["HR", "Finance"]) -and user.accountEnabled -eq true'
SALES = 'user.department -eq "Sales"'


class Command(BaseCommand):
    help = "Time an automatic policy's rule change over many users (evaluation and creation)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=100_000, help="generated users")
        parser.add_argument(
            "--deliver", type=int, default=0, help="also deliver this many new assignments"
        )
        parser.add_argument("--keep", action="store_true", help="keep the package afterwards")

    def handle(self, *args, users, deliver, keep, **options):
        if users < 1 or deliver < 0:
            raise CommandError("--users must be positive and --deliver not negative.")
        prefix = f"bench-{secrets.token_hex(3)}"
        started = time.perf_counter()
        Generator(quiet=True).users(users)
        total = User.objects.filter(is_active=True).count()
        self.stdout.write(
            f"{prefix}: database {connection.vendor} {connection.settings_dict['NAME']}, "
            f"{total:,} active users ({users:,} generated; {time.perf_counter() - started:.1f} s "
            "to make sure they exist)"
        )
        saved = (app.conf.task_always_eager, app.conf.broker_url)
        app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
        app._pool = None
        enqueued = []
        try:
            with mock.patch.object(common, "enqueue_task", lambda name, *a: enqueued.append(a)):
                policy, rule_set = self._build(prefix)
                self._bench(policy, rule_set, enqueued, deliver)
        finally:
            app.conf.task_always_eager, app.conf.broker_url = saved
            app._pool = None
            if not keep:
                self._clean(prefix)

    def _build(self, prefix):
        catalog = Catalog.objects.create(display_name=f"{prefix} catalog")
        group = Group.objects.create(display_name=f"{prefix} onboarding")
        resource = resource_add(
            actor=None, catalog=catalog, origin_system=OriginSystem.GROUP, group=group
        )
        package = AccessPackage.objects.create(catalog=catalog, display_name=f"{prefix} onboarding")
        ResourceRoleScope.objects.create(
            access_package=package, role=resource.roles.get(origin_id="Member")
        )
        policy = AssignmentPolicy.objects.create(
            access_package=package,
            display_name="Automatic",
            allowed_target_scope=AllowedTargetScope.SPECIFIC_DIRECTORY_USERS,
            request_access_for_allowed_targets=True,
            enable_targets_to_self_add_access=False,
            is_approval_required_for_add=False,
            is_requestor_justification_required=False,
            grace_period_before_access_removal=timedelta(days=7),
            expiration_type="noExpiration",
        )
        rule_set = PolicySubjectSet.objects.create(
            policy=policy,
            purpose=PolicySubjectSet.Purpose.ALLOWED_TARGET,
            subject_type=SubjectType.ATTRIBUTE_RULE_MEMBERS,
            membership_rule=NOBODY,
        )
        automatic_policies_evaluate(policies=[policy])
        return policy, rule_set

    def _change_rule(self, rule_set, rule):
        rule_set.membership_rule = rule
        rule_set.full_clean()
        rule_set.save(update_fields=["membership_rule", "modified"])

    def _bench(self, policy, rule_set, enqueued, deliver):
        matching = User.objects.filter(is_active=True)
        self._change_rule(rule_set, MOST)
        matched = matching.filter(rule_set.parsed_rule.to_q()).count()
        started = time.perf_counter()
        result = automatic_policies_evaluate(policies=[policy])
        seconds = time.perf_counter() - started
        created = Assignment.objects.filter(assignment_policy=policy).count()
        self.stdout.write(
            f"  rule {MOST}\n"
            f"    matched {matched:,}; assignments created {result.added:,} (in the database: "
            f"{created:,}) in {seconds:.1f} s ({result.added / seconds:,.0f} per second); "
            f"{len(enqueued):,} delivery tasks enqueued"
        )

        self._change_rule(rule_set, SALES)
        narrower = matching.filter(rule_set.parsed_rule.to_q()).count()
        started = time.perf_counter()
        automatic_policies_evaluate(policies=[policy])
        seconds = time.perf_counter() - started
        lost = Assignment.objects.filter(
            assignment_policy=policy, eligibility_lost_datetime__isnull=False
        ).count()
        self.stdout.write(
            f"  rule {SALES}\n"
            f"    matched {narrower:,}; grace period started for {lost:,} in {seconds:.1f} s"
        )

        if deliver:
            ids = list(
                Assignment.objects.filter(assignment_policy=policy)
                .order_by("pk")
                .values_list("pk", flat=True)[:deliver]
            )
            started = time.perf_counter()
            for pk in ids:
                assignment_deliver(assignment_id=pk)
            seconds = time.perf_counter() - started
            self.stdout.write(
                f"  delivered {len(ids):,} assignments in {seconds:.1f} s "
                f"({len(ids) / seconds:,.0f} per second, one after another)"
            )

    def _clean(self, prefix):
        started = time.perf_counter()
        packages = AccessPackage.objects.filter(display_name__startswith=prefix)
        with transaction.atomic():
            # The benchmark's audit events stay: the trail is append-only and hash-chained
            # (docs/audit.md), for a benchmark's events too.
            AssignmentRequest.objects.filter(access_package__in=packages).delete()
            Assignment.objects.filter(access_package__in=packages).delete()
            packages.delete()
            Catalog.objects.filter(display_name__startswith=prefix).delete()
            Group.objects.filter(display_name__startswith=prefix).delete()
        self.stdout.write(f"  cleaned up {prefix} in {time.perf_counter() - started:.1f} s")
