"""Delivery and revocation: claim the grants, call the connectors, record the outcome.

No database transaction or lock is held while a connector runs (it may be a network call
that takes seconds or hangs until its timeout):

1. **claim**, in a short transaction: lock the assignment, take the user's grant lock, check
   separation of duties, and mark the waiting grants with ``claimed_by`` and a lease
   (``lease_expires``), SELECT ... FOR UPDATE SKIP LOCKED; committed;
2. **call** the connector of each grant's connected system, with its timeout;
3. **record**, in a new short transaction under the assignment's row lock: each grant's
   outcome, the assignment's state recomputed from its grants, the request settled, the audit
   events; the lease is released.

A claimed grant is left alone by every other run until its lease runs out; a worker that died
mid-call leaves a lease that runs out, and the reconciler hands the grant out again. A removal
that comes while a grant is being delivered does not wait: it moves the grant to
pendingRemoval, revocation leaves it until its claim is recorded, and the record enqueues the
revocation again.

Failures: a retryable ConnectorError (a network error, a timeout, a 5xx) is recorded on the
grant and the task retries it with exponential backoff and jitter (or after the system's
``retry_after``); a ConnectorRefused is recorded as deliveryFailed with the system's message,
marks the grant ``refused`` and is not retried until an administrator reprocesses it.

Circuit breaker: a system that failed ``failure_threshold`` times in a row (5 unless its
settings say otherwise) is unhealthy. Its waiting grants are not called: they stay as they
are (pending, pendingRemoval), with no attempt counted, except one call per
``probe_interval`` (60 s) that probes it. When a call succeeds the system is healthy again
and its waiting work is enqueued at once (``reconciliation.connected_system_resume``); the
reconciler also finds it every run. A disabled system's work waits the same way.
"""

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..audit import audit_bulk
from ..connectors import ConnectorError, connector_for
from ..errors import StateConflict
from ..models import (
    ADD_REQUEST_TYPES,
    HOLDING_GRANT_STATES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    REMOVE_REQUEST_TYPES,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    ConnectedSystem,
    GrantState,
    RequestState,
)
from ..selectors import Gate, incompatible_packages, separation_of_duties_conflicts
from ..signals import assignment_delivered, assignment_delivery_failed, request_denied
from . import common
from .common import (
    delivery_state,
    grant_event,
    lifecycle_event,
    lock_assignment,
    lock_grants_of,
    role_key,
    roles_needed_elsewhere,
    status_of,
)
from .ending import assignments_end, require_admin

REVOKE_BATCH_SIZE = 500
WAITING_FOR_DELIVERY = [GrantState.PENDING, GrantState.DELIVERY_FAILED]
WAITING_FOR_REMOVAL = [GrantState.PENDING_REMOVAL, GrantState.REMOVAL_FAILED]
# A claim outlives the connector calls it covers by this much before another run may take it.
LEASE_MARGIN = timedelta(seconds=60)
_GRANT_FIELDS = [
    "state",
    "attempts",
    "error",
    "delivered_datetime",
    "claimed_by",
    "lease_expires",
    "refused",
    "modified",
]
RESUME = "entitlements.tasks.resume_connected_system"


@dataclass
class DeliveryOutcome:
    """What one delivery or revocation run did to an assignment's grants."""

    assignment_id: object
    state: str = ""
    done: int = 0
    failed: list = field(default_factory=list)  # error messages, one per failed grant
    refused: int = 0  # how many of ``failed`` the system definitely refused (not retried)
    waiting: list = field(default_factory=list)  # not called: the system is unhealthy
    retry_after: float | None = None  # seconds the system asked to wait before a retry

    @property
    def ok(self):
        """Everything it had to do is done: nothing failed, nothing waits."""
        return not self.failed and not self.waiting

    @property
    def retryable(self):
        """Some failure may succeed if tried again (a refusal will not)."""
        return len(self.failed) > self.refused

    def add(self, other):
        self.done += other.done
        self.failed += other.failed
        self.refused += other.refused
        self.waiting += other.waiting
        self.retry_after = _later(self.retry_after, other.retry_after)


def _later(a, b):
    return b if a is None else a if b is None else max(a, b)


@dataclass
class CallResult:
    """What one connector call did: nothing wrong, a failure (retryable or refused), or no
    call at all (``waiting``: the system is unhealthy or disabled)."""

    error: str = ""
    refused: bool = False
    waiting: bool = False
    retry_after: float | None = None

    @property
    def failed(self):
        return bool(self.error) and not self.waiting

    def count_into(self, outcome, message):
        if self.waiting:
            outcome.waiting.append(message)
        elif self.error:
            outcome.failed.append(message)
            outcome.refused += 1 if self.refused else 0
            outcome.retry_after = _later(outcome.retry_after, self.retry_after)


class Breaker:
    """The circuit breaker of each connected system, as one run sees it.

    A healthy system is called. An unhealthy one is called once per probe interval after its
    last failure (across every worker: the probe is claimed with one conditional UPDATE,
    outside any transaction); within the run, a probe that succeeds lets the rest through, one that
    fails keeps the rest waiting.
    """

    def __init__(self, now):
        self.now = now
        self.state = {}  # system pk -> "closed", "probing" or "open"

    def allows(self, system):
        state = self.state.get(system.pk)
        if state is not None:
            return state == "closed"
        if not system.is_unhealthy:
            self.state[system.pk] = "closed"
            return True
        due = self.now - timedelta(seconds=system.probe_interval)
        claimed = (
            ConnectedSystem.objects.filter(pk=system.pk)
            .filter(Q(probe_datetime__isnull=True) | Q(probe_datetime__lte=due))
            .filter(Q(last_error_datetime__isnull=True) | Q(last_error_datetime__lte=due))
            .update(probe_datetime=self.now)
        )
        self.state[system.pk] = "probing" if claimed else "open"
        return bool(claimed)

    def settle(self, system, result):
        if result.waiting:
            return
        if result.failed and not result.refused:
            if self.state.get(system.pk) == "probing":
                self.state[system.pk] = "open"
        else:
            self.state[system.pk] = "closed"  # it answered


def _short_transaction():
    # Delivery runs outside any transaction, so each claim and each record is a transaction
    # of its own; called inside one (a test's), it needs no savepoint of its own either.
    return transaction.atomic(savepoint=False)


def _unclaimed(now):
    return Q(lease_expires__isnull=True) | Q(lease_expires__lte=now)


def _lease(grants, now):
    """Long enough for every connector call of the claim to time out, plus a margin."""
    seconds = sum(getattr(_connector_or_none(g), "timeout", 0) for g in grants)
    return now + timedelta(seconds=seconds) + LEASE_MARGIN


def _connector_or_none(grant):
    try:
        return connector_for(grant.resource_role.resource)
    except ConnectorError:
        return None


def _claim(grants, now):
    token = uuid.uuid4().hex
    expires = _lease(grants, now)
    AssignmentResourceRole.objects.filter(pk__in=[g.pk for g in grants]).update(
        claimed_by=token, lease_expires=expires, modified=now
    )
    for grant in grants:
        grant.claimed_by, grant.lease_expires = token, expires
    return token


def _call(grant, method, *args, breaker):
    """Run one connector call, outside any transaction, unless the system's circuit is open
    (or it is disabled): then the grant waits and nothing is called."""
    resource = grant.resource_role.resource
    system = resource.connected_system
    if not system.enabled:
        return CallResult(
            _("%(system)s is disabled; %(resource)s waits until it is enabled again.")
            % {"system": system.name, "resource": resource.display_name},
            waiting=True,
        )
    if not breaker.allows(system):
        return CallResult(
            _(
                "%(system)s is unhealthy (%(count)s failures in a row); waiting until it "
                "answers again."
            )
            % {"system": system.name, "count": system.consecutive_failures},
            waiting=True,
        )
    try:
        connector_for(resource).call(method, grant.resource_role, *args)
    # Anything else (a bug) propagates: the claim's lease runs out and the grant is retried.
    except ConnectorError as exc:
        result = CallResult(
            str(exc) or type(exc).__name__,
            refused=not exc.retryable,
            retry_after=getattr(exc, "retry_after", None),
        )
    else:
        result = CallResult()
    breaker.settle(system, result)
    return result


def _note_health(outcomes, now):
    """Record each connected system's last success or failure, after the outcome is
    committed: ``outcomes`` are (system row as loaded with the grants, CallResult) pairs.
    A refusal is an answer, so it counts as a success of the system; a grant that waited
    counts as nothing. A success writes only when it changes something (a streak of
    failures ends, or the last success is over a minute old), so deliveries do not all
    queue on one row. A system that was unhealthy and answers has its waiting work
    enqueued."""
    errors = {}
    for system, result in outcomes:
        if result.waiting:
            continue
        error = result.error if result.failed and not result.refused else ""
        errors[system] = errors.get(system) or error
    for system, error in errors.items():
        rows = ConnectedSystem.objects.filter(pk=system.pk)
        if error:
            rows.update(
                last_error=error,
                last_error_datetime=now,
                consecutive_failures=F("consecutive_failures") + 1,
            )
        elif (
            system.consecutive_failures
            or system.last_success_datetime is None
            or system.last_success_datetime < now - timedelta(minutes=1)
        ):
            rows.update(last_success_datetime=now, consecutive_failures=0, probe_datetime=None)
            if system.is_unhealthy:
                common.enqueue_task(RESUME, system.pk)


def retry_countdown(retries, retry_after=None):
    """Seconds before retry number ``retries + 1``: what the system asked for, else
    exponential backoff (CONNECTOR_RETRY_BACKOFF doubled per retry, at most
    CONNECTOR_RETRY_BACKOFF_MAX) with jitter: a random point in its upper half, so workers
    that failed together do not retry together."""
    if retry_after:
        return float(retry_after)
    base = float(getattr(settings, "CONNECTOR_RETRY_BACKOFF", 30))
    cap = float(getattr(settings, "CONNECTOR_RETRY_BACKOFF_MAX", 3600))
    ceiling = min(cap, base * 2 ** min(retries, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


# --------------------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------------------


def assignment_deliver(*, assignment_id, now=None):
    """Grant every waiting or failed grant of an assignment; safe to run twice, or at once.

    Before anything is granted, separation of duties is checked once more (under the user's
    grant lock, so of two incompatible assignments only the first delivered goes through); a
    conflict ends the assignment undelivered and denies its request with the reason.
    """
    now = now or timezone.now()
    assignment, grants, claimed = _claim_delivery(assignment_id, now)
    if grants is None:
        return claimed  # ended, refused, or waiting for an incompatible delivery
    # With nothing to grant the record still runs: the state follows the grants (a role
    # whose delivery failed may have been taken out of the package).
    breaker = Breaker(now)
    results = {
        grant.pk: _call(grant, "grant", assignment.target, breaker=breaker) for grant in grants
    }
    outcome = _record_delivery(assignment_id, grants, results, now)
    outcome.add(claimed)
    if grants:
        _note_health(
            [(g.resource_role.resource.connected_system, results[g.pk]) for g in grants], now
        )
    return outcome


def _claim_delivery(assignment_id, now):
    with _short_transaction():
        assignment = lock_assignment(assignment_id)
        if assignment is None or not assignment.is_open:
            state = getattr(assignment, "state", "")
            return assignment, None, DeliveryOutcome(assignment_id, state=state)
        outcome = DeliveryOutcome(assignment.pk, state=assignment.state)
        lock_grants_of(assignment.target_id)
        grants = list(
            assignment.grants.filter(state__in=HOLDING_GRANT_STATES)
            .select_related("resource_role__resource__connected_system")
            .select_for_update(of=("self",), skip_locked=True)
        )
        others = _other_claims_of(assignment, now)
        if not any(g.state == GrantState.DELIVERED for g in grants):
            conflict = _delivery_conflict(assignment)
            if conflict:
                _refuse_delivery(assignment, grants, conflict, now)
                outcome.state = AssignmentState.EXPIRED
                return assignment, None, outcome
            if any(incompatible for _key, _state, incompatible in others):
                outcome.failed.append(_("An incompatible delivery is in progress; retrying."))
                return assignment, None, outcome
        # Granting a role whose revocation (of another assignment) is running could be undone
        # by that revocation: wait for it.
        busy = {key for key, state, _i in others if state in WAITING_FOR_REMOVAL}
        waiting, deferred = [], []
        for grant in grants:
            # A grant the system refused waits for an administrator's "Reprocess".
            if (
                grant.state in WAITING_FOR_DELIVERY
                and not _leased(grant, now)
                and not grant.refused
            ):
                (deferred if role_key(grant.resource_role) in busy else waiting).append(grant)
        outcome.failed += [
            _("%(role)s: a removal of it is in progress; retrying.") % {"role": g.resource_role}
            for g in deferred
        ]
        if waiting:
            _claim(waiting, now)
    return assignment, waiting, outcome


def _leased(grant, now):
    return grant.lease_expires is not None and grant.lease_expires > now


def _other_claims_of(assignment, now):
    """The user's grants of other assignments that a worker is delivering or revoking now, as
    (role key, state, of an incompatible package). Read without locking: a claim is committed
    before its connector runs, so a running one is always seen. Both are checks the delivered
    grants alone cannot answer: an incompatible package being delivered right now, and a
    revocation that could undo a grant made now."""
    incompatible = ExpressionWrapper(
        Q(
            assignment__state__in=OPEN_ASSIGNMENT_STATES,
            assignment__access_package__in=incompatible_packages(assignment.access_package).values(
                "pk"
            ),
        ),
        output_field=BooleanField(),
    )
    rows = (
        AssignmentResourceRole.objects.filter(target_id=assignment.target_id, lease_expires__gt=now)
        .exclude(assignment_id=assignment.pk)
        .annotate(incompatible=incompatible)
        .values_list(
            "resource_role__resource__origin_system",
            "resource_role__resource__origin_id",
            "resource_role__origin_id",
            "state",
            "incompatible",
        )
    )
    return [((system, origin, role), state, bool(inc)) for system, origin, role, state, inc in rows]


def _record_delivery(assignment_id, claimed, results, now):
    with _short_transaction():
        assignment = lock_assignment(assignment_id)
        outcome = DeliveryOutcome(assignment_id)
        grants = {g.pk: g for g in assignment.grants.all()}
        events, changed, revoke_again, waited = [], [], False, False
        for claim in claimed:
            grant = grants[claim.pk]
            if grant.claimed_by != claim.claimed_by:
                continue  # the lease ran out and another run took the grant over
            grant.resource_role = claim.resource_role
            grant.claimed_by, grant.lease_expires, grant.modified = "", None, now
            changed.append(grant)
            result = results[grant.pk]
            if result.waiting:
                # Not called: the grant stays as it was, its claim released.
                if grant.state in WAITING_FOR_DELIVERY:
                    waited = True
                    grant.error = result.error
                    result.count_into(outcome, f"{grant.resource_role}: {result.error}")
                else:
                    revoke_again = True
                continue
            if grant.state not in WAITING_FOR_DELIVERY:
                revoke_again = True  # ended while the connector ran: revoke what it granted
                continue
            before = grant.state
            grant.attempts += 1
            if result.error:
                grant.state, grant.error = GrantState.DELIVERY_FAILED, result.error
                grant.refused = result.refused
                result.count_into(outcome, f"{grant.resource_role}: {result.error}")
            else:
                grant.state, grant.error, grant.delivered_datetime = GrantState.DELIVERED, "", now
                grant.refused = False
                outcome.done += 1
            events.append(grant_event(grant, assignment, before, now))
        if changed:
            AssignmentResourceRole.objects.bulk_update(changed, _GRANT_FIELDS)
        if revoke_again:
            transaction.on_commit(partial(common.enqueue_task, common.REVOKE, assignment.pk))
        if not assignment.is_open:
            outcome.state = assignment.state
            audit_bulk(events)
            return outcome
        holding = [g for g in grants.values() if g.state in HOLDING_GRANT_STATES]
        if waited or any(g.state in WAITING_FOR_DELIVERY and _leased(g, now) for g in holding):
            # Another run is delivering some of them, or some wait for their system: the
            # state settles when they are done.
            outcome.state = assignment.state
            audit_bulk(events)
            return outcome
        state = delivery_state([g.state for g in holding], GrantState.DELIVERED)
        outcome.state = state
        before = assignment.state
        if state != before:
            assignment.state, assignment.status = state, status_of(state)
            assignment.save(update_fields=["state", "status", "modified"])
            events.append(
                lifecycle_event(
                    f"assignment.{state}", assignment, before=before, after=state, now=now
                )
            )
        request = _settle_request(assignment, ADD_REQUEST_TYPES, state, events, now)
        audit_bulk(events)
        if state != before and state == AssignmentState.DELIVERED:
            # Inside the transaction, unlike the other signals: the "access delivered" email's
            # outbox row commits with the delivery, so a worker killed between the two cannot
            # lose it (its receiver only writes the row; sending waits for the commit).
            assignment_delivered.send(sender=Assignment, assignment=assignment, request=request)
        elif state != before:
            transaction.on_commit(
                partial(assignment_delivery_failed.send, sender=Assignment, assignment=assignment)
            )
    return outcome


def assignments_deliver(*, assignment_ids, now=None):
    """Deliver many assignments, each on its own (a role added to a package)."""
    outcome = DeliveryOutcome(None)
    for assignment_id in assignment_ids:
        outcome.add(assignment_deliver(assignment_id=assignment_id, now=now))
    return outcome


def _delivery_conflict(assignment):
    """Why delivering ``assignment`` would break separation of duties, or ""."""
    conflicts = separation_of_duties_conflicts(
        user=assignment.target,
        access_package=assignment.access_package,
        request_states=[],
        delivered_only=True,
    )
    return Gate(name=assignment.target.display_name, conflicts=conflicts.held).conflict_message


def _refuse_delivery(assignment, grants, reason, now):
    """End a locked assignment that delivered nothing, and deny its add request.

    The request is locked with SKIP LOCKED (the lock order is request before assignment): one
    being canceled right now is left to the cancellation.
    """
    events = []
    request = (
        AssignmentRequest.objects.select_for_update(skip_locked=True)
        .filter(
            assignment=assignment,
            request_type__in=ADD_REQUEST_TYPES,
            state__in=OPEN_REQUEST_STATES,
        )
        .first()
    )
    if request is not None:
        before = request.state
        request.state, request.status = RequestState.DENIED, status_of(RequestState.DENIED)
        request.completed_datetime = now
        request.save(update_fields=["state", "status", "completed_datetime", "modified"])
        events.append(
            lifecycle_event(
                "request.deny", request, before=before, after=request.state, reason=reason, now=now
            )
        )
        transaction.on_commit(
            partial(
                request_denied.send,
                sender=AssignmentRequest,
                request=request,
                stage=None,
                reason=reason,
            )
        )
    # Nothing was granted, so nothing needs revoking.
    AssignmentResourceRole.objects.filter(pk__in=[g.pk for g in grants]).update(
        state=GrantState.REMOVED, error="", removed_datetime=now, modified=now
    )
    audit_bulk(events)
    assignments_end(assignment_ids=[assignment.pk], reason=reason, notify=False, now=now)


def _settle_request(assignment, request_types, state, events, now):
    """Move the assignment's add (or removal) request to the outcome of delivery."""
    request = (
        AssignmentRequest.objects.select_for_update()
        .filter(assignment=assignment, request_type__in=request_types)
        .exclude(state__in=[RequestState.DENIED, RequestState.CANCELED])
        .order_by("-created")
        .first()
    )
    if request is None or request.state == state:
        return request
    if request.state not in (
        RequestState.DELIVERING,
        RequestState.DELIVERY_FAILED,
        RequestState.PARTIALLY_DELIVERED,
    ):
        return request
    before = request.state
    request.state, request.status = state, status_of(state)
    if state == RequestState.DELIVERED:
        request.completed_datetime = now
    request.save(update_fields=["state", "status", "completed_datetime", "modified"])
    events.append(lifecycle_event(f"request.{state}", request, before=before, after=state, now=now))
    return request


# --------------------------------------------------------------------------------------
# Revocation
# --------------------------------------------------------------------------------------


def assignment_revoke(*, assignment_id, now=None):
    """Take away the grants of an ended assignment that no other open assignment still needs.

    A role another open assignment of the same user also gives (two packages giving one
    group) is marked removed without calling the connector, so the user keeps it.
    """
    outcome = assignments_revoke(assignment_ids=[assignment_id], now=now)
    outcome.assignment_id = assignment_id
    return outcome


def assignments_revoke(*, assignment_ids, now=None, batch_size=REVOKE_BATCH_SIZE):
    """Revoke the grants of many ended assignments: set-based, claim and record per batch."""
    now = now or timezone.now()
    outcome = DeliveryOutcome(None)
    ids = sorted({str(pk) for pk in assignment_ids})
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        by_role, targets = _claim_revocation(batch, now, outcome)
        if not by_role:
            continue
        results, breaker = {}, Breaker(now)
        for role_grants in by_role.values():
            users = [targets[g.assignment_id] for g in role_grants]
            results[role_grants[0].resource_role_id] = _call(
                role_grants[0], "revoke_many", users, breaker=breaker
            )
        _record_revocation(batch, by_role, results, now, outcome)
        _note_health(
            [
                (grants[0].resource_role.resource.connected_system, results[role_id])
                for role_id, grants in by_role.items()
            ],
            now,
        )
    return outcome


def _claim_revocation(ids, now, outcome):
    """Lock the batch's assignments, settle the shared grants, claim the others by role."""
    with _short_transaction():
        # Assignment rows first, in id order, then the users' grant locks (sorted).
        assignments = {
            a.pk: a
            for a in Assignment.objects.select_for_update(of=("self",))
            .select_related("target")
            .filter(pk__in=ids)
            .order_by("pk")
        }
        grants = list(
            AssignmentResourceRole.objects.filter(
                assignment_id__in=list(assignments), state__in=WAITING_FOR_REMOVAL
            )
            .filter(_unclaimed(now))
            .select_related("resource_role__resource__connected_system")
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("pk")
        )
        by_role = defaultdict(list)
        events = []
        if grants:
            lock_grants_of(*{g.target_id for g in grants})
            needed = roles_needed_elsewhere({g.target_id for g in grants})
            shared = []
            for grant in grants:
                if (grant.target_id, role_key(grant.resource_role)) in needed:
                    before = grant.state
                    grant.state, grant.error, grant.removed_datetime = GrantState.REMOVED, "", now
                    shared.append(grant)
                    events.append(
                        grant_event(
                            grant, assignments[grant.assignment_id], before, now, {"shared": True}
                        )
                    )
                else:
                    by_role[grant.resource_role_id].append(grant)
            if shared:
                AssignmentResourceRole.objects.filter(pk__in=[g.pk for g in shared]).update(
                    state=GrantState.REMOVED, error="", removed_datetime=now, modified=now
                )
                outcome.done += len(shared)
            claimed = [g for role_grants in by_role.values() for g in role_grants]
            if claimed:
                _claim(claimed, now)
        if not by_role:
            _settle_removal_requests(assignments, events, now)
            if len(assignments) == 1:
                outcome.state = next(iter(assignments.values())).state
        audit_bulk(events)
    targets = {pk: a.target for pk, a in assignments.items()}
    return by_role, targets


def _record_revocation(ids, by_role, results, now, outcome):
    with _short_transaction():
        assignments = {
            a.pk: a
            for a in Assignment.objects.select_for_update(of=("self",))
            .filter(pk__in=ids)
            .order_by("pk")
        }
        claimed = {g.pk: g for role_grants in by_role.values() for g in role_grants}
        current = dict(
            AssignmentResourceRole.objects.filter(pk__in=list(claimed)).values_list(
                "pk", "claimed_by"
            )
        )
        groups, events, waited = defaultdict(list), [], []
        for pk, grant in claimed.items():
            if current.get(pk) != grant.claimed_by:
                continue  # the lease ran out and another run took the grant over
            result = results[grant.resource_role_id]
            if result.waiting:
                waited.append(pk)  # not called: it stays waiting for removal
                continue
            before = grant.state
            error = result.error
            grant.attempts += 1
            if error:
                grant.state, grant.error = GrantState.REMOVAL_FAILED, error
            else:
                grant.state, grant.error, grant.removed_datetime = GrantState.REMOVED, "", now
                outcome.done += 1
            groups[(grant.state, error, result.refused)].append(pk)
            events.append(
                grant_event(grant, assignments[grant.assignment_id], before, now, {"shared": False})
            )
        # One UPDATE per outcome (a bulk_update's CASE over thousands of rows is far slower).
        for (state, error, refused), pks in groups.items():
            fields = {"state": state, "error": error, "claimed_by": "", "lease_expires": None}
            if state == GrantState.REMOVED:
                fields["removed_datetime"] = now
            AssignmentResourceRole.objects.filter(pk__in=pks).update(
                attempts=F("attempts") + 1, modified=now, refused=refused, **fields
            )
        if waited:
            # Left as they were (modified too, so the reconciler's next run finds them).
            AssignmentResourceRole.objects.filter(pk__in=waited).update(
                claimed_by="", lease_expires=None
            )
        for role_id, result in results.items():
            count = len(by_role[role_id])
            role = by_role[role_id][0].resource_role
            result.count_into(outcome, f"{role} for {count} user(s): {result.error}")
        _settle_removal_requests(assignments, events, now)
        audit_bulk(events)
        if len(assignments) == 1:
            outcome.state = next(iter(assignments.values())).state


def _settle_removal_requests(assignments, events, now):
    """Move the removal requests of these ended assignments to the outcome of revocation."""
    ended = [pk for pk, a in assignments.items() if a.state == AssignmentState.EXPIRED]
    requests = list(
        AssignmentRequest.objects.select_for_update()
        .filter(
            assignment_id__in=ended,
            request_type__in=REMOVE_REQUEST_TYPES,
            state__in=[
                RequestState.DELIVERING,
                RequestState.DELIVERY_FAILED,
                RequestState.PARTIALLY_DELIVERED,
            ],
        )
        .order_by("pk")
    )
    if not requests:
        return
    states = defaultdict(list)
    for assignment_id, state in AssignmentResourceRole.objects.filter(
        assignment_id__in=[r.assignment_id for r in requests]
    ).values_list("assignment_id", "state"):
        states[assignment_id].append(state)
    changed = []
    for request in requests:
        state = delivery_state(states[request.assignment_id], GrantState.REMOVED)
        if state == request.state:
            continue
        events.append(
            lifecycle_event(f"request.{state}", request, before=request.state, after=state, now=now)
        )
        request.state, request.status, request.modified = state, status_of(state), now
        if state == RequestState.DELIVERED:
            request.completed_datetime = now
        changed.append(request)
    AssignmentRequest.objects.bulk_update(
        changed, ["state", "status", "completed_datetime", "modified"]
    )


def assignment_reprocess(*, actor, assignment, channel, now=None):
    """Deliver again the grants that failed (the admin's "Reprocess")."""
    now = now or timezone.now()
    require_admin(actor, assignment.access_package, _("reprocess this assignment"))
    retryable = [AssignmentState.DELIVERY_FAILED, AssignmentState.PARTIALLY_DELIVERED]
    if assignment.state not in retryable:
        raise StateConflict(
            _(
                "Only an assignment whose delivery failed, fully or partly, can be "
                "reprocessed; this one is %(state)s."
            )
            % {"state": assignment.get_state_display().lower()}
        )
    with transaction.atomic():
        locked = lock_assignment(assignment.pk)
        if locked.state not in retryable:
            raise StateConflict(_("This assignment changed meanwhile; reload the page."))
        # An administrator asks again, so what the system refused is tried again too.
        locked.grants.filter(refused=True).update(refused=False, modified=now)
        before = locked.state
        locked.state, locked.status = (
            AssignmentState.DELIVERING,
            status_of(AssignmentState.DELIVERING),
        )
        locked.save(update_fields=["state", "status", "modified"])
        audit_bulk(
            [
                lifecycle_event(
                    "assignment.reprocessed",
                    locked,
                    actor=actor,
                    channel=channel,
                    before=before,
                    after=locked.state,
                    now=now,
                )
            ]
        )
        transaction.on_commit(partial(common.enqueue_task, common.DELIVER, locked.pk))
    assignment.refresh_from_db()
    return assignment


# --------------------------------------------------------------------------------------
# Ending assignments
# --------------------------------------------------------------------------------------
