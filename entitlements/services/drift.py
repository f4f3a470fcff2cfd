"""Drift reconciliation: does a connected system hold what the product's assignments say?

For each governed resource role of a system (a role some access package grants), the
connector's ``holders`` (external keys: mail, uid, userName...) are compared with the keys
(``user_key``) of the users whose open assignment has the role delivered:

- *missing in the target*: delivered by the product, absent from the system;
- *extra in the target*: in the system, but no delivered grant explains it, nor a direct
  membership the product knows (an extra an administrator chose to keep, see
  ``drift_item_keep``).

Grants on their way (pending, failed but not refused, being removed, claimed by a worker)
are neither: delivery is still working on them. Every difference is a DriftItem of the run's
DriftReport. A resource in "enforce" mode is corrected through the connector: the missing
are granted, the extra removed, each correction audited. No connector call runs inside a
database transaction.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import User

from ..audit import audit_bulk, audit_event, audit_record
from ..connectors import ConnectorError, connector_for_system
from ..errors import InvalidRequest
from ..models import (
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    AssignmentResourceRole,
    Channel,
    ConnectedSystem,
    DriftItem,
    DriftKind,
    DriftMode,
    DriftReport,
    GrantState,
    ResourceRole,
)
from . import common

DRIFT_INTERVAL = 3600  # seconds between two reports of a system, unless its settings say
SYSTEM_DRIFT = "entitlements.tasks.reconcile_system_drift"


def governed_roles(system):
    """One role row per distinct (group, role) of the system that a package grants."""
    roles = (
        ResourceRole.objects.filter(resource__connected_system=system, role_scopes__isnull=False)
        .select_related("resource")
        .distinct()
        .order_by("resource__origin_id", "origin_id", "pk")
    )
    seen, unique = set(), []
    for role in roles:
        key = (role.resource.origin_id, role.origin_id)
        if key not in seen:
            seen.add(key)
            unique.append(role)
    return unique


def _same_role(role, prefix="resource_role__"):
    """Filters for every row of the role, in any catalog (two resources may name one group)."""
    return {
        f"{prefix}resource__connected_system_id": role.resource.connected_system_id,
        f"{prefix}resource__origin_id": role.resource.origin_id,
        f"{prefix}origin_id": role.origin_id,
    }


def _expected(role, connector):
    """({key: user} delivered by open assignments, keys on their way either way)."""
    grants = AssignmentResourceRole.objects.filter(**_same_role(role))
    delivered_ids, moving_ids = set(), set()
    for target_id, state, assignment_state, leased, refused in grants.values_list(
        "target_id", "state", "assignment__state", "lease_expires", "refused"
    ):
        open_ = assignment_state in OPEN_ASSIGNMENT_STATES
        delivered = state == GrantState.DELIVERED and open_
        on_the_way = (
            leased is not None
            or state in (GrantState.PENDING_REMOVAL, GrantState.REMOVAL_FAILED)
            or (state in HOLDING_GRANT_STATES and open_ and not refused and not delivered)
        )
        if on_the_way:
            moving_ids.add(target_id)
        elif delivered:
            delivered_ids.add(target_id)
    users = User.objects.filter(pk__in=delivered_ids | moving_ids).only("id", "email")
    expected, moving = {}, set()
    for user in users:
        key = connector.user_key(user)
        if not key:
            continue
        if user.pk in moving_ids:
            moving.add(key)
        else:
            expected[key] = user
    # Someone delivered by one assignment and being removed by another is on the move.
    return {k: u for k, u in expected.items() if k not in moving}, moving


def _kept(role):
    return set(
        DriftItem.objects.filter(
            kind=DriftKind.EXTRA_IN_TARGET, kept=True, **_same_role(role)
        ).values_list("key", flat=True)
    )


def system_drift_reconcile(*, system_id, now=None):
    """Compare every governed role of the system with its holders; returns the DriftReport.

    An unreachable system gives a report with its error and no items (nothing is concluded
    from silence); one role that cannot be read is noted and the others compared."""
    now = now or timezone.now()
    system = ConnectedSystem.objects.get(pk=system_id)
    report = DriftReport.objects.create(system=system, started=now)
    try:
        connector = connector_for_system(system)
    except ConnectorError as exc:
        report.error, report.finished = str(exc), timezone.now()
        report.save(update_fields=["error", "finished", "modified"])
        return report
    errors = []
    roles = governed_roles(system)
    for role in roles:
        try:
            _reconcile_role(report, connector, role, now)
        except ConnectorError as exc:
            errors.append(f"{role}: {exc}")
    report.roles_checked = len(roles)
    report.error = "\n".join(errors)
    report.finished = timezone.now()
    report.save()
    return report


def _reconcile_role(report, connector, role, now):
    holders = set(connector.call("holders", role))
    expected, moving = _expected(role, connector)
    missing = {key: user for key, user in expected.items() if key not in holders}
    extra = holders - expected.keys() - moving - _kept(role)
    items = [
        DriftItem(
            report=report,
            resource_role=role,
            key=key,
            kind=DriftKind.MISSING_IN_TARGET,
            detected=now,
        )
        for key in sorted(missing)
    ] + [
        DriftItem(
            report=report, resource_role=role, key=key, kind=DriftKind.EXTRA_IN_TARGET, detected=now
        )
        for key in sorted(extra)
    ]
    report.missing_count += len(missing)
    report.extra_count += len(extra)
    if not items:
        return
    events = []
    if role.resource.drift_mode == DriftMode.ENFORCE:
        events = _enforce(report, connector, role, items, missing, now)
    with transaction.atomic():
        DriftItem.objects.bulk_create(items, batch_size=2000)
        audit_bulk(events)


def _enforce(report, connector, role, items, missing, now):
    """Grant the missing and remove the extra through the connector (outside a transaction);
    mark the items resolved and return their audit events."""
    gaps = [i for i in items if i.kind == DriftKind.MISSING_IN_TARGET]
    extra = [i for i in items if i.kind == DriftKind.EXTRA_IN_TARGET]
    users = [missing[i.key] for i in gaps]
    events = _correct(report, connector, role, gaps, "grant_many", users, "added", missing, now)
    keys = [i.key for i in extra]
    events += _correct(report, connector, role, extra, "revoke_keys", keys, "removed", {}, now)
    return events


def _correct(report, connector, role, items, method, args, verb, users, now):
    if not items:
        return []
    try:
        connector.call(method, role, args)
    except ConnectorError as exc:
        for item in items:
            item.resolution = _("Not corrected: %(error)s") % {"error": exc}
        return []
    when = timezone.now()
    events = []
    for item in items:
        item.resolved = when
        item.resolution = (
            _("Added to the system (enforced).")
            if verb == "added"
            else _("Removed from the system (enforced).")
        )
        user = users.get(item.key)
        events.append(
            audit_event(
                action=f"drift.member{verb.title()}",
                obj=role,
                target=user,
                reason=item.resolution,
                after=item.key,
                data={
                    "system": str(report.system_id),
                    "report": str(report.pk),
                    "origin_id": role.resource.origin_id,
                    "role": role.origin_id,
                    "member": item.key,
                },
                now=now,
            )
        )
    report.corrected_count += len(items)
    return events


def drift_item_keep(*, actor, item, channel=Channel.ADMIN, now=None):
    """Keep an extra member as a direct membership: later reports do not count it, and
    "enforce" leaves it in the group. Audited."""
    now = now or timezone.now()
    if item.kind != DriftKind.EXTRA_IN_TARGET:
        raise InvalidRequest(_("Only a member extra in the system can be kept."))
    with transaction.atomic():
        item.kept = True
        item.resolved = item.resolved or now
        item.resolution = _("Kept as a direct membership by %(actor)s.") % {"actor": actor}
        item.save(update_fields=["kept", "resolved", "resolution", "modified"])
        audit_record(
            action="drift.memberKept",
            obj=item.resource_role,
            actor=actor,
            channel=channel,
            after=item.key,
            data={"report": str(item.report_id), "member": item.key},
            now=now,
        )
    return item


def drift_reconcile_due(*, now=None):
    """Enqueue a drift reconciliation of each enabled, non-built-in system whose last report
    is older than its interval (``drift_interval`` seconds in its settings, default an hour).
    Returns how many were enqueued."""
    now = now or timezone.now()
    systems = ConnectedSystem.objects.filter(enabled=True).exclude(
        kind=ConnectedSystem.Kind.BUILTIN
    )
    enqueued = 0
    for system in systems:
        interval = float((system.settings or {}).get("drift_interval", DRIFT_INTERVAL))
        last = system.drift_reports.order_by("-started").values_list("started", flat=True).first()
        if last is None or last <= now - timedelta(seconds=interval):
            common.enqueue_task(SYSTEM_DRIFT, system.pk)
            enqueued += 1
    return enqueued
