"""Reconciliation: nothing lost with the broker or a worker.

Every piece of due work can be found again from rows: an open assignment still delivering,
grants waiting for delivery or removal, and claims whose worker died (their lease ran out).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import (
    OPEN_ASSIGNMENT_STATES,
    Assignment,
    AssignmentResourceRole,
    AssignmentState,
    ConnectedSystem,
    GrantState,
)
from . import common
from .delivery import WAITING_FOR_DELIVERY, WAITING_FOR_REMOVAL

REMOVAL_RETRY = timedelta(minutes=30)


def assignments_reconcile(*, now=None, stuck_after=None):
    """Enqueue again the deliveries and revocations still waiting after ``stuck_after``.

    Every piece of due work can be found from rows: an open assignment still delivering, or
    an ended one with grants waiting for removal. Returns (deliveries, revocations) enqueued.
    A claim whose lease has run out is enqueued again whatever ``stuck_after`` says.
    """
    now = now or timezone.now()
    cutoff = now - (stuck_after or settings.DELIVERY_STUCK_AFTER)
    delivering = list(
        Assignment.objects.filter(
            state=AssignmentState.DELIVERING, modified__lt=cutoff
        ).values_list("id", flat=True)
    )
    # Failed removals are retried too, less often: access must not outlive its assignment.
    retry_failed_before = now - max(stuck_after or settings.DELIVERY_STUCK_AFTER, REMOVAL_RETRY)
    revoking = list(
        AssignmentResourceRole.objects.filter(
            Q(state=GrantState.PENDING_REMOVAL, modified__lt=cutoff)
            | Q(state=GrantState.REMOVAL_FAILED, modified__lt=retry_failed_before)
        )
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    # Grants waiting on an assignment already delivered: a role added to its package.
    delivering += list(
        AssignmentResourceRole.objects.filter(
            state=GrantState.PENDING,
            modified__lt=cutoff,
            assignment__state__in=OPEN_ASSIGNMENT_STATES,
        )
        .exclude(assignment_id__in=delivering)
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    # Grants whose delivery failed but may still succeed (not refused): retried as slowly
    # as removals once the task's own retries are used up ("retried until confirmed").
    delivering += list(
        AssignmentResourceRole.objects.filter(
            state=GrantState.DELIVERY_FAILED,
            refused=False,
            modified__lt=retry_failed_before,
            assignment__state__in=OPEN_ASSIGNMENT_STATES,
        )
        .exclude(assignment_id__in=delivering)
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    # Claims whose worker died: the lease ran out with the grant still waiting.
    expired = AssignmentResourceRole.objects.filter(lease_expires__lte=now)
    delivering += list(
        expired.filter(state__in=WAITING_FOR_DELIVERY, assignment__state__in=OPEN_ASSIGNMENT_STATES)
        .exclude(assignment_id__in=delivering)
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    revoking += list(
        expired.filter(state__in=WAITING_FOR_REMOVAL)
        .exclude(assignment_id__in=revoking)
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    for pk in delivering:
        common.enqueue_task(common.DELIVER, pk)
    for pk in revoking:
        common.enqueue_task(common.REVOKE, pk)
    # An unhealthy system's work waits without retries; once a probe is due, hand it out
    # again: one call probes the system, the rest wait again unless it answers.
    deliveries, revocations = len(delivering), len(revoking)
    for system in ConnectedSystem.objects.filter(enabled=True, consecutive_failures__gt=0):
        if system.is_unhealthy and _probe_due(system, now):
            resumed = connected_system_resume(system_id=system.pk)
            deliveries, revocations = deliveries + resumed[0], revocations + resumed[1]
    return deliveries, revocations


def _probe_due(system, now):
    due = now - timedelta(seconds=system.probe_interval)
    return all(
        moment is None or moment <= due
        for moment in (system.probe_datetime, system.last_error_datetime)
    )


def connected_system_resume(*, system_id):
    """Enqueue the work that waited while ``system_id`` was unhealthy: the deliveries and
    removals of its resources' grants still to do (none the system refused). Returns
    (deliveries, revocations) enqueued."""
    grants = AssignmentResourceRole.objects.filter(
        resource_role__resource__connected_system_id=system_id, lease_expires__isnull=True
    )
    delivering = list(
        grants.filter(
            state__in=WAITING_FOR_DELIVERY,
            refused=False,
            assignment__state__in=OPEN_ASSIGNMENT_STATES,
        )
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    revoking = list(
        grants.filter(state__in=WAITING_FOR_REMOVAL)
        .values_list("assignment_id", flat=True)
        .distinct()
    )
    for pk in delivering:
        common.enqueue_task(common.DELIVER, pk)
    if revoking:
        for start in range(0, len(revoking), 500):
            common.enqueue_task(
                common.REVOKE_BATCH, [str(pk) for pk in revoking[start : start + 500]]
            )
    return len(delivering), len(revoking)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
