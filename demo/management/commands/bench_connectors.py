"""Measure delivery to a real OpenLDAP server.

    python manage.py bench_connectors --latency 50 --expire 10000 --members 50000

Starts its own slapd (demo.ldapserver: a free port, a throw-away database, the people and
groups loaded with slapadd) and builds throwaway data in the current database (a catalog, an
LDAP connected system, packages and users whose names start with a random ``bench-``
prefix), then measures

1. last approval -> member in the LDAP group: N requests, each submitted, approved
   (stage_decide) and delivered (assignment_deliver, as the worker runs it once the
   approval commits), timed from the approval until slapd lists the member; median and p95;
2. M assignments ending in the same minute -> all removed from the LDAP group
   (assignments_expire_due, then the batched revocations it hands to the worker);
3. drift reconciliation of a group with K members, all explained by delivered grants
   (the connector's holders read alone, and the whole system_drift_reconcile).

The worker's calls run inline, in this process, one after another (no broker); the figures
are those of one worker thread. It prints the figures and deletes what it built (unless
--keep). Run it on a database of its own.
"""

import os
import secrets
import statistics
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from approvals.models import ReviewResult
from approvals.services import stage_decide
from config.celery import app
from demo.generator import delivered_assignments
from demo.ldapserver import LdapServer, slapd_path
from directory.models import User
from entitlements.configuration import resource_add
from entitlements.connectors import DiscoveredGroup, connector_for
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Catalog,
    Channel,
    ConnectedSystem,
    OriginSystem,
    ResourceRoleScope,
    StageApproverSet,
    SubjectType,
)
from entitlements.services.delivery import assignment_deliver, assignments_revoke
from entitlements.services.drift import system_drift_reconcile
from entitlements.services.ending import assignments_expire_due
from entitlements.services.requests import request_submit

PASSWORD_VARIABLE = "BENCH_CONNECTORS_LDAP_PASSWORD"


class Command(BaseCommand):
    help = "Time delivery, same-minute removal and drift against a real slapd it starts."

    def add_arguments(self, parser):
        parser.add_argument("--latency", type=int, default=50, help="requests to time")
        parser.add_argument("--expire", type=int, default=10000, help="assignments to expire")
        parser.add_argument("--members", type=int, default=50000, help="members to reconcile")
        parser.add_argument("--keep", action="store_true", help="keep the data afterwards")

    def handle(self, *args, latency, expire, members, keep, **options):
        if min(latency, expire, members) < 0:
            raise CommandError("--latency, --expire and --members cannot be negative.")
        if slapd_path() is None:
            raise CommandError("OpenLDAP's slapd is not installed (apt-get install slapd).")
        prefix = f"bench-{secrets.token_hex(3)}"
        saved = (app.conf.task_always_eager, app.conf.broker_url, settings.EMAIL_BACKEND)
        app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
        app._pool = None
        settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
        self.stdout.write(f"{prefix}: database {connection.settings_dict['NAME']}")
        server = LdapServer(base_dn="dc=bench,dc=invalid", password=secrets.token_hex(12))
        os.environ[PASSWORD_VARIABLE] = server.password
        sizes = {"latency": latency, "expire": expire, "members": members}
        try:
            started = time.perf_counter()
            server.start(preload=self._ldif(server, prefix, sizes))
            self.stdout.write(
                f"  slapd on {server.url} with {latency + expire + members} people "
                f"in {time.perf_counter() - started:.1f} s"
            )
            world = self._build(server, prefix, sizes)
            if latency:
                self._bench_latency(server, world)
            if expire:
                self._bench_expiry(server, world)
            if members:
                self._bench_drift(world)
        finally:
            server.stop()
            os.environ.pop(PASSWORD_VARIABLE, None)
            app.conf.task_always_eager, app.conf.broker_url, settings.EMAIL_BACKEND = saved
            app._pool = None
            if not keep:
                self._clean(prefix)

    # --- Data ---------------------------------------------------------------------------------

    @staticmethod
    def _uids(prefix, part, count):
        return [f"{prefix}-{part}{i}" for i in range(count)]

    def _ldif(self, server, prefix, sizes):
        latency = self._uids(prefix, "l", sizes["latency"])
        expire = self._uids(prefix, "e", sizes["expire"])
        members = self._uids(prefix, "m", sizes["members"])
        return (
            server.people_ldif(latency + expire + members)
            + server.group_ldif("latency")
            + server.group_ldif("expire", expire)  # they hold it already: delivered earlier
            + server.group_ldif("members", members)
        )

    def _build(self, server, prefix, sizes):
        started = time.perf_counter()
        system = ConnectedSystem.objects.create(
            kind=ConnectedSystem.Kind.LDAP,
            name=f"{prefix} OpenLDAP",
            settings={
                "url": server.url,
                "bind_dn": server.admin_dn,
                "user_base": server.people_dn,
                "group_base": server.groups_dn,
                "page_size": 1000,
                "timeout": 60,
            },
            secret_reference=PASSWORD_VARIABLE,
        )
        password = make_password(None)
        catalog = Catalog.objects.create(display_name=f"{prefix} catalog")
        approver = User.objects.create(
            email=f"{prefix}-approver@bench.invalid",
            display_name=f"{prefix} approver",
            password=password,
        )
        packages = {
            name: self._package(prefix, catalog, system, server, name)
            for name in ("latency", "expire", "members")
        }
        policy = packages["latency"].assignment_policies.get()
        stage = ApprovalStage.objects.create(
            policy=policy, sequence=1, is_approver_justification_required=False
        )
        StageApproverSet.objects.create(
            stage=stage, subject_type=SubjectType.SINGLE_USER, user=approver
        )
        users = {}
        for name, part in (("latency", "l"), ("expire", "e"), ("members", "m")):
            users[name] = User.objects.bulk_create(
                [
                    User(email=server.mail(uid), display_name=uid, password=password)
                    for uid in self._uids(prefix, part, sizes[name])
                ],
                batch_size=2000,
            )
        self.stdout.write(
            f"  built {sum(len(u) for u in users.values())} users "
            f"in {time.perf_counter() - started:.1f} s"
        )
        return {"system": system, "approver": approver, "packages": packages, "users": users}

    def _package(self, prefix, catalog, system, server, name):
        resource = resource_add(
            actor=None,
            catalog=catalog,
            origin_system=OriginSystem.GROUP,
            connected_system=system,
            discovered=DiscoveredGroup(origin_id=server.group_dn(name), display_name=name),
        )
        package = AccessPackage.objects.create(catalog=catalog, display_name=f"{prefix} {name}")
        ResourceRoleScope.objects.create(
            access_package=package, role=resource.roles.get(origin_id="Member")
        )
        AssignmentPolicy.objects.create(
            access_package=package,
            display_name="Everyone",
            allowed_target_scope="allMemberUsers",
            is_approval_required_for_add=name == "latency",
            is_requestor_justification_required=False,
            expiration_duration=timedelta(days=30),
        )
        package.ldap_group = name
        package.resource = resource
        return package

    def _delivered(self, package, users, end):
        """Assignments of ``users`` to ``package``, delivered, ending at ``end``."""
        with transaction.atomic():
            assignments = delivered_assignments(package, users, end)
        return assignments

    # --- Measurements -------------------------------------------------------------------------

    def _bench_latency(self, server, world):
        package, approver = world["packages"]["latency"], world["approver"]
        seconds = []
        for user in world["users"]["latency"]:
            request = request_submit(
                actor=user,
                target=user,
                access_package=package,
                justification="Benchmark",
                channel=Channel.PORTAL,
            )
            stage = request.approval_stages.get(sequence=1)
            began = time.perf_counter()
            stage_decide(
                actor=approver, stage=stage, decision=ReviewResult.APPROVED, channel=Channel.PORTAL
            )
            # What the worker runs once the approval commits.
            request.refresh_from_db(fields=["assignment"])
            assignment_deliver(assignment_id=request.assignment_id)
            uid = user.display_name
            if uid not in server.members("latency"):
                raise CommandError(f"{uid} is not in the LDAP group after delivery.")
            seconds.append(time.perf_counter() - began)
        self.stdout.write(
            f"last approval -> member in the LDAP group: {len(seconds)} requests, "
            f"median {1000 * statistics.median(seconds):.0f} ms, "
            f"p95 {1000 * _p95(seconds):.0f} ms, max {1000 * max(seconds):.0f} ms"
        )

    def _bench_expiry(self, server, world):
        package = world["packages"]["expire"]
        now = timezone.now().replace(second=0, microsecond=0)
        assignments = self._delivered(
            package, world["users"]["expire"], now - timedelta(seconds=30)
        )
        before = len(server.members("expire"))
        started = time.perf_counter()
        ended = assignments_expire_due(now=now)
        expired_at = time.perf_counter()
        # What the worker runs for the batches expiry enqueued.
        outcome = assignments_revoke(assignment_ids=[a.pk for a in assignments], now=now)
        elapsed = time.perf_counter() - started
        left = len(server.members("expire"))
        self.stdout.write(
            f"{ended} assignments ending in the same minute -> removed from the LDAP group "
            f"({before} members before, {left} after) in {elapsed:.1f} s "
            f"(expiry {expired_at - started:.1f} s, batched revocations "
            f"{elapsed - (expired_at - started):.1f} s)"
        )
        if ended != len(assignments) or left or not outcome.ok:
            raise CommandError(f"Not every member was removed: {outcome.failed[:3]}")

    def _bench_drift(self, world):
        package = world["packages"]["members"]
        users = world["users"]["members"]
        self._delivered(package, users, timezone.now() + timedelta(days=30))
        role = package.resource_role_scopes.get().role
        started = time.perf_counter()
        holders = connector_for(role.resource).call("holders", role)
        read = time.perf_counter() - started
        started = time.perf_counter()
        report = system_drift_reconcile(system_id=world["system"].pk)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"drift of a group with {len(holders)} members: holders read in {read:.1f} s, "
            f"reconciliation of the system in {elapsed:.1f} s "
            f"({report.missing_count} missing, {report.extra_count} extra)"
        )
        if len(holders) != len(users) or report.missing_count or report.extra_count:
            raise CommandError(f"Unexpected drift: {report.error or 'differences found'}")

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
            ConnectedSystem.objects.filter(name__startswith=prefix).delete()
            User.objects.filter(email__startswith=f"{prefix}-").delete()
        self.stdout.write(f"  cleaned up {prefix} in {time.perf_counter() - started:.1f} s")


def _p95(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
