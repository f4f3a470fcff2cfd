"""What the assignment services share: locking, the grant lock, audit rows, enqueueing.

Lock order, everywhere: the request row (held by the caller of ``request_fulfil``), then the
assignment row, then the per-user grant lock (``lock_grants_of``), then the add or removal
request of the assignment. Grant rows change only under their assignment's lock.
"""

from django.db import connection

from ..audit import audit_event
from ..models import (
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    Channel,
)
from ..queue import enqueue_named


def lock_assignment(pk):
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("target", "access_package", "assignment_policy")
        .filter(pk=pk)
        .first()
    )


def lock_request(pk, *, skip_locked=False):
    """The request row, locked (``None`` if it is gone or, with ``skip_locked``, busy)."""
    return (
        AssignmentRequest.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("target", "access_package", "assignment_policy")
        .filter(pk=pk)
        .first()
    )


def lock_grants_of(*user_ids):
    """Serialise the claims of grant and revoke runs for these users until the transaction ends.

    Revoking checks "does another open assignment still need this role?" and then claims the
    grant; a delivery claimed for the same user between the check and the claim would lose its
    role. A per-user transaction lock around both closes that gap without locking the user's
    row. The locks are taken in sorted order, so two batches cannot deadlock on them.
    """
    if connection.vendor != "postgresql" or not user_ids:
        return  # SQLite (the demo) runs one write transaction at a time anyway
    keys = sorted(f"grants:{pk}" for pk in set(user_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
            "FROM (SELECT k FROM unnest(%s::text[]) AS k ORDER BY k) AS sorted",
            [keys],
        )


def delivery_state(grant_states, done_state):
    """delivered when every grant is done, deliveryFailed when none is, else partial."""
    done = sum(1 for s in grant_states if s == done_state)
    if done == len(grant_states):
        return AssignmentState.DELIVERED
    if done == 0:
        return AssignmentState.DELIVERY_FAILED
    return AssignmentState.PARTIALLY_DELIVERED


def role_key(role):
    # By origin, not by row: two catalogs may each hold a resource for the same group.
    return (role.resource.origin_system, role.resource.origin_id, role.origin_id)


def roles_needed_elsewhere(target_ids):
    """(user id, role origin) of the roles these users' open assignments give or are giving."""
    rows = AssignmentResourceRole.objects.filter(
        target_id__in=list(target_ids),
        state__in=HOLDING_GRANT_STATES,
        assignment__state__in=OPEN_ASSIGNMENT_STATES,
    ).values_list(
        "target_id",
        "resource_role__resource__origin_system",
        "resource_role__resource__origin_id",
        "resource_role__origin_id",
    )
    return {(target_id, tuple(key)) for target_id, *key in rows}


def status_of(state):
    """The Graph status that goes with a state: ``delivered`` -> ``Delivered``."""
    return state[:1].upper() + state[1:]


def iso(value):
    return value.isoformat() if value else None


def lifecycle_event(
    action,
    obj,
    *,
    actor=None,
    channel=Channel.SYSTEM,
    before="",
    after="",
    reason="",
    req=None,
    data=None,
    now,
):
    """An unsaved audit event for a request or an assignment, for audit_bulk."""
    return audit_event(
        action=action,
        obj=obj,
        actor=actor,
        channel=channel,
        before=before,
        after=after,
        reason=reason,
        target=obj.target_id,
        access_package=obj.access_package_id,
        request=obj if isinstance(obj, AssignmentRequest) else req,
        data=data,
        now=now,
    )


def grant_event(grant, assignment, before, now, data=None):
    """An unsaved audit event for one grant's outcome, for audit_bulk."""
    return audit_event(
        action=f"grant.{grant.state}",
        obj=grant,
        before=before,
        after=grant.state,
        reason=grant.error,
        target=assignment.target_id,
        access_package=assignment.access_package_id,
        now=now,
        data={
            "assignment": str(assignment.pk),
            "role": str(grant.resource_role),
            "attempts": grant.attempts,
            **(data or {}),
        },
    )


# The tasks the services enqueue, by name: the tasks call the services.
DELIVER = "entitlements.tasks.deliver_assignment"
REVOKE = "entitlements.tasks.revoke_assignment_grants"
REVOKE_BATCH = "entitlements.tasks.revoke_grants_batch"


def enqueue_task(name, *args):
    """Enqueue by name; a broker outage must not fail the committed change (the reconciler
    re-enqueues)."""
    enqueue_named(name, *(str(a) if not isinstance(a, list) else a for a in args))
