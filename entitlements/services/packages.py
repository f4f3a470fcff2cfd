"""Changing what an access package grants: adding and removing its resource roles.

As in Entra, a role added to a package reaches everyone who already has the package, and a
role taken out of it is taken away from them (unless another of their open assignments still
gives it). Both are set-based: a fixed number of statements however many people hold the
package; delivery and revocation then run through the usual tasks.

Lock order: the package row, then its open assignments (in id order), then their grants. The
package row is locked FOR UPDATE, which also waits for a fulfilment inserting an assignment
of the package (its foreign key holds a share lock on the row), so an assignment created at
the same moment is either seen here or reads the new set of roles itself.
"""

from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import validation
from ..audit import audit_bulk, audit_event
from ..errors import InvalidRequest, PermissionDenied, StateConflict
from ..models import (
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    AccessPackage,
    Assignment,
    AssignmentResourceRole,
    AssignmentState,
    Channel,
    GrantState,
    ResourceRoleScope,
)
from ..permissions import can_manage_packages

# Assignment ids per delivery or revocation task message.
TASK_BATCH_SIZE = 200


def package_role_add(*, actor, access_package, role, channel=Channel.ADMIN, now=None):
    """Make ``access_package`` grant ``role`` and give it to everyone who holds the package.

    Each open assignment gets a pending grant (an earlier grant of the role on it, removed
    when the role left the package, is reopened), delivered on commit. Returns the new
    ResourceRoleScope.
    """
    now = now or timezone.now()
    _require_manager(actor, access_package)
    try:
        validation.check_package_roles(access_package.catalog, [role])
    except ValidationError as error:
        raise InvalidRequest(" ".join(error.messages), field="role") from None
    with transaction.atomic():
        package = _lock_package(access_package)
        if ResourceRoleScope.objects.filter(access_package=package, role=role).exists():
            raise StateConflict(
                _("%(package)s already grants %(role)s.")
                % {"package": package.display_name, "role": role}
            )
        scope = ResourceRoleScope.objects.create(access_package=package, role=role, created=now)
        holders = _lock_open_assignments(package)
        existing = AssignmentResourceRole.objects.filter(
            assignment_id__in=list(holders), resource_role=role
        )
        had_grant = set(existing.values_list("assignment_id", flat=True))
        existing.exclude(state__in=HOLDING_GRANT_STATES).update(
            state=GrantState.PENDING, attempts=0, error="", removed_datetime=None, modified=now
        )
        AssignmentResourceRole.objects.bulk_create(
            [
                AssignmentResourceRole(
                    assignment_id=pk,
                    resource_role=role,
                    target_id=target_id,
                    created=now,
                )
                for pk, (target_id, _state) in holders.items()
                if pk not in had_grant
            ],
            batch_size=1000,
        )
        audit_bulk(_events("accessPackage.roleAdded", package, role, holders, actor, channel, now))
        transaction.on_commit(partial(_enqueue_batches, "deliver_assignments", list(holders)))
    return scope


def package_role_remove(*, actor, access_package, role, channel=Channel.ADMIN, now=None):
    """Stop ``access_package`` granting ``role`` and take it from everyone who holds the package.

    Their grants of the role wait for removal; revocation (on commit) keeps the role for a
    user whom another open assignment still gives it. Assignments whose delivery had not
    finished are delivered again, so their state no longer counts the removed role.
    """
    now = now or timezone.now()
    _require_manager(actor, access_package)
    with transaction.atomic():
        package = _lock_package(access_package)
        scope = ResourceRoleScope.objects.filter(access_package=package, role=role).first()
        if scope is None:
            raise StateConflict(
                _("%(package)s does not grant %(role)s.")
                % {"package": package.display_name, "role": role}
            )
        holders = _lock_open_assignments(package)
        AssignmentResourceRole.objects.filter(
            assignment_id__in=list(holders), resource_role=role, state__in=HOLDING_GRANT_STATES
        ).update(state=GrantState.PENDING_REMOVAL, attempts=0, error="", modified=now)
        scope.delete()
        audit_bulk(
            _events("accessPackage.roleRemoved", package, role, holders, actor, channel, now)
        )
        unfinished = [
            pk for pk, (_target, state) in holders.items() if state != AssignmentState.DELIVERED
        ]

        def after_commit():
            _enqueue_batches("revoke_grants_batch", list(holders))
            _enqueue_batches("deliver_assignments", unfinished)

        transaction.on_commit(after_commit)


def _require_manager(actor, access_package):
    if actor is not None and not can_manage_packages(actor, access_package.catalog):
        raise PermissionDenied(
            _(
                "Only administrators, and owners and access package managers of the catalog "
                "%(catalog)s, can change what its access packages grant."
            )
            % {"catalog": access_package.catalog.display_name}
        )


def _lock_package(access_package):
    # FOR UPDATE, not FOR NO KEY UPDATE: it must conflict with the foreign-key share lock of
    # an assignment being inserted for this package (see the module docstring).
    return AccessPackage.objects.select_for_update().get(pk=access_package.pk)


def _lock_open_assignments(package):
    """{assignment id: (target id, state)} of the package's open assignments, locked."""
    rows = (
        Assignment.objects.select_for_update()
        .filter(access_package=package, state__in=OPEN_ASSIGNMENT_STATES)
        .order_by("pk")
        .values_list("pk", "target_id", "state")
    )
    return {pk: (target_id, state) for pk, target_id, state in rows}


def _events(action, package, role, holders, actor, channel, now):
    """One event for the package and one per assignment the change reaches."""
    common = {
        "action": action,
        "actor": actor,
        "channel": channel,
        "access_package": package,
        "now": now,
    }
    data = {"role": str(role), "role_id": str(role.pk)}
    events = [audit_event(obj=package, data={**data, "assignments": len(holders)}, **common)]
    events += [
        audit_event(obj=(Assignment, pk), target=target_id, data=data, **common)
        for pk, (target_id, _state) in holders.items()
    ]
    return events


def _enqueue_batches(task_name, assignment_ids):
    from entitlements import tasks  # tasks import the services
    from entitlements.queue import enqueue

    ids = [str(pk) for pk in assignment_ids]
    for start in range(0, len(ids), TASK_BATCH_SIZE):
        enqueue(getattr(tasks, task_name), ids[start : start + TASK_BATCH_SIZE])
