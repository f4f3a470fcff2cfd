"""Measure access reviews at scale: starting a review of N assignments and applying it.

Builds its own data in the current database (users, one package giving one group, one
reviewed policy, N delivered assignments with their grants and group memberships), times
``review_instance_create`` and the apply (half of the decisions deny), prints the figures and
rolls everything back. The timed parts run as savepoints of that one transaction, so nothing
they enqueue on commit (emails, revocations) is ever sent.
"""

import time
import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from directory.models import GrantSource, Group, GroupMembership, User
from entitlements.models import (
    AccessPackage,
    Assignment,
    AssignmentPolicy,
    AssignmentResourceRole,
    AssignmentState,
    Catalog,
    GrantState,
    OriginSystem,
    PolicySubjectSet,
    Resource,
    ResourceRole,
    ResourceRoleScope,
    SubjectType,
)
from reviews.models import ApplyResult, Decision, ReviewItem, ReviewStatus
from reviews.services import (
    BATCH_SIZE,
    INACTIVE_AFTER,
    review_instance_apply_results,
    review_instance_create,
)


class _RollBack(Exception):
    """Leaves the benchmark's transaction without keeping anything."""


class Command(BaseCommand):
    help = "Time starting an access review of N assignments and applying its decisions."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000, help="assignments to review")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument(
            "--reviewers",
            choices=["specific", "self"],
            default="specific",
            help="one specific reviewer (one reviewer row) or self-review (one row per item)",
        )

    def handle(self, *args, items, batch_size, reviewers, **options):
        if items < 2:
            raise CommandError("--items must be at least 2.")
        try:
            with transaction.atomic():
                self._run(items, batch_size, reviewers)
                raise _RollBack
        except _RollBack:
            pass
        self.stdout.write("Everything the benchmark created was rolled back.")

    def _run(self, count, batch_size, reviewers):
        now = timezone.now()
        tag = uuid.uuid4().hex[:8]
        began = time.perf_counter()
        policy, reviewer = self._build(count, tag, now, reviewers, batch_size)
        self._say(f"Built {count} delivered assignments with grants", began)

        began = time.perf_counter()
        instance = review_instance_create(
            policy=policy,
            start=now - timedelta(minutes=1),
            end=now + timedelta(days=14),
            now=now,
            batch_size=batch_size,
        )
        self._say(f"Created a review instance with {instance.items.count()} items", began)

        # Half the users have not signed in for two months: the reviewer denies them.
        cutoff = instance.start - INACTIVE_AFTER
        items = ReviewItem.objects.filter(instance=instance)
        items.filter(last_sign_in__lt=cutoff).update(
            decision=Decision.DENY, decided_by=reviewer, decided_datetime=now
        )
        items.filter(last_sign_in__gte=cutoff).update(
            decision=Decision.APPROVE, decided_by=reviewer, decided_datetime=now
        )

        began = time.perf_counter()
        instance.status = ReviewStatus.APPLYING
        instance.save(update_fields=["status", "modified"])
        counts = review_instance_apply_results(
            instance_id=instance.pk, now=now, batch_size=batch_size
        )
        self._say(
            f"Applied {count} decisions ({counts.get(ApplyResult.REMOVED, 0)} removed, "
            f"{counts.get(ApplyResult.KEPT, 0)} kept)",
            began,
        )
        removed = Assignment.objects.filter(
            assignment_policy=policy, state=AssignmentState.EXPIRED
        ).count()
        if removed != counts.get(ApplyResult.REMOVED):
            raise CommandError(f"{removed} assignments ended, expected {counts}.")

    def _say(self, what, began):
        seconds = time.perf_counter() - began
        self.stdout.write(f"{what}: {seconds:.2f} s")
        return seconds

    def _build(self, count, tag, now, reviewers, batch_size):
        catalog = Catalog.objects.create(display_name=f"Benchmark {tag}")
        group = Group.objects.create(display_name=f"Benchmark {tag}")
        resource = Resource.objects.create(
            catalog=catalog,
            display_name=group.display_name,
            origin_system=OriginSystem.GROUP,
            origin_id=str(group.pk),
            group=group,
        )
        role = ResourceRole.objects.create(
            resource=resource, display_name="Member", origin_id="Member"
        )
        package = AccessPackage.objects.create(catalog=catalog, display_name=f"Benchmark {tag}")
        ResourceRoleScope.objects.create(access_package=package, role=role)
        policy = AssignmentPolicy.objects.create(
            access_package=package,
            display_name="Benchmark",
            expiration_type="noExpiration",
            expiration_duration=None,
            review_is_enabled=True,
            review_start_date=timezone.localdate(now),
            review_is_self_review=reviewers == "self",
            review_is_reviewer_justification_required=False,
        )
        reviewer = User.objects.create(email=f"reviewer-{tag}@bench.invalid", display_name="Bench")
        PolicySubjectSet.objects.create(
            policy=policy,
            purpose=PolicySubjectSet.Purpose.PRIMARY_REVIEWER,
            subject_type=SubjectType.SINGLE_USER,
            user=reviewer,
        )
        recent, stale = now - timedelta(days=1), now - timedelta(days=60)
        users = User.objects.bulk_create(
            [
                User(
                    email=f"user{n}-{tag}@bench.invalid",
                    display_name=f"Bench user {n}",
                    password="!",
                    last_login=stale if n % 2 else recent,
                )
                for n in range(count)
            ],
            batch_size=batch_size,
        )
        assignments = Assignment.objects.bulk_create(
            [
                Assignment(
                    access_package=package,
                    assignment_policy=policy,
                    target=user,
                    state=AssignmentState.DELIVERED,
                    status="Delivered",
                    schedule_start=now - timedelta(days=90),
                )
                for user in users
            ],
            batch_size=batch_size,
        )
        AssignmentResourceRole.objects.bulk_create(
            [
                AssignmentResourceRole(
                    assignment=assignment,
                    resource_role=role,
                    target_id=assignment.target_id,
                    state=GrantState.DELIVERED,
                    delivered_datetime=now,
                )
                for assignment in assignments
            ],
            batch_size=batch_size,
        )
        GroupMembership.objects.bulk_create(
            [
                GroupMembership(group=group, user=user, source=GrantSource.ENTITLEMENT)
                for user in users
            ],
            batch_size=batch_size,
        )
        # Production tables have statistics (autovacuum); give the fresh rows theirs.
        with connection.cursor() as cursor:
            for model in (User, Assignment, AssignmentResourceRole, GroupMembership):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        return policy, reviewer
