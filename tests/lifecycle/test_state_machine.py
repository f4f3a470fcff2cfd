"""Random sequences of lifecycle actions keep the lifecycle's invariants.

Two users and two packages that both give the same group (one also gives a second group);
one user is also a member of the shared group outside the product. Hypothesis drives submit,
approve, deny, cancel, remove, extend, the passing of time, expiry and the worker (delivery and
revocation), and after every step checks:

- no request ever goes back to an earlier state (REQUEST_STATE_RANK);
- at most one open assignment per user and package;
- a user holds a group role exactly when a delivered open assignment grants it, or it was
  given outside the product (once the worker has caught up; in between, never a membership
  that no grant delivered, and never a delivered grant without its membership);
- every state a request or an assignment has been seen in has its audit event.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from approvals.models import OPEN_STAGE_STATUSES, ReviewResult
from approvals.services import stage_decide
from directory.models import GrantSource, GroupMembership
from entitlements.errors import DomainError
from entitlements.models import (
    OPEN_ASSIGNMENT_STATES,
    REQUEST_STATE_RANK,
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    AssignmentState,
    AuditEvent,
    Channel,
    GrantState,
)
from entitlements.services.delivery import assignment_deliver, assignments_revoke
from entitlements.services.ending import assignment_remove, assignments_expire_due
from entitlements.services.requests import request_cancel, request_extend, request_submit
from tests.factories import (
    ApprovalStageFactory,
    GroupResourceFactory,
    UserFactory,
    add_approver,
    add_member,
)
from tests.lifecycle.assignment_helpers import (
    package_giving,
)

pytestmark = pytest.mark.django_db
PICK = st.integers(min_value=0, max_value=7)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint rolled back at teardown.
        self.example = transaction.atomic()
        self.example.__enter__()
        self.now = timezone.now().replace(microsecond=0)
        self.approver = UserFactory()
        self.admin = UserFactory(is_superuser=True, is_staff=True)
        self.users = [UserFactory(), UserFactory()]
        shared = GroupResourceFactory()
        other = GroupResourceFactory(catalog=shared.catalog)
        policy_fields = {
            "expiration_duration": timedelta(days=10),
            "enable_targets_to_self_update_access": True,
            "enable_targets_to_self_remove_access": True,
        }
        approved, approved_policy = package_giving(
            shared, is_approval_required_for_add=True, **policy_fields
        )
        add_approver(ApprovalStageFactory(policy=approved_policy), user=self.approver)
        direct, _ = package_giving(shared, other, **policy_fields)
        self.packages = [approved, direct]
        self.roles = [r.roles.get(origin_id="Member") for r in (shared, other)]
        add_member(shared.group, self.users[1])
        self.direct = {(self.users[1].pk, shared.group_id)}
        self.rank_seen = {}
        self.request_states, self.assignment_states = {}, {}
        self.order = {}  # pk -> when first seen; ids are random, so steps pick by this order

    def _ordered(self, queryset):
        """Rows in a stable order from one run to the next, so failures replay the same."""
        rows = list(queryset.select_related("target", "access_package"))
        new = [r for r in rows if r.pk not in self.order]
        for row in sorted(new, key=self._stable_key):
            self.order[row.pk] = len(self.order)
        return sorted(rows, key=lambda r: self.order[r.pk])

    def _stable_key(self, row):
        return (
            self.users.index(row.target) if row.target in self.users else -1,
            self.packages.index(row.access_package),
            getattr(row, "request_type", ""),
            row.state,
        )

    def teardown(self):
        transaction.set_rollback(True)
        self.example.__exit__(None, None, None)

    def _pick(self, items, index):
        return items[index % len(items)] if items else None

    def _try(self, action, **kwargs):
        try:
            return action(now=self.now, **kwargs)
        except DomainError:
            return None  # refused with a message: a legitimate outcome of a random step

    # --- Actions ----------------------------------------------------------------------------

    @rule(user=PICK, package=PICK, worker=st.booleans())
    def submit(self, user, package, worker):
        target = self._pick(self.users, user)
        self._try(
            request_submit,
            actor=target,
            target=target,
            access_package=self._pick(self.packages, package),
            justification="Needed",
            channel=Channel.PORTAL,
        )
        self._worker_if(worker)

    def _open_stage(self, index):
        requests = self._ordered(
            AssignmentRequest.objects.filter(approval_stages__status__in=OPEN_STAGE_STATUSES)
        )
        request = self._pick(requests, index)
        if request is None:
            return None
        return request.approval_stages.filter(status__in=OPEN_STAGE_STATUSES).first()

    @rule(index=PICK, approve=st.booleans(), worker=st.booleans())
    def decide(self, index, approve, worker):
        stage = self._open_stage(index)
        if stage is not None:
            self._try(
                stage_decide,
                actor=self.approver,
                stage=stage,
                decision=ReviewResult.APPROVED if approve else ReviewResult.DENIED,
                channel=Channel.EMAIL,
            )
        self._worker_if(worker)

    @rule(index=PICK)
    def cancel(self, index):
        requests = self._ordered(AssignmentRequest.objects.all())
        request = self._pick(requests, index)
        if request is not None:
            self._try(request_cancel, actor=request.target, request=request, channel=Channel.PORTAL)

    def _open_assignment(self, index):
        open_ = self._ordered(Assignment.objects.filter(state__in=OPEN_ASSIGNMENT_STATES))
        return self._pick(open_, index)

    @rule(index=PICK, by_admin=st.booleans(), worker=st.booleans())
    def remove(self, index, by_admin, worker):
        assignment = self._open_assignment(index)
        if assignment is not None:
            actor = self.admin if by_admin else assignment.target
            self._try(assignment_remove, actor=actor, assignment=assignment, channel=Channel.ADMIN)
        self._worker_if(worker)

    @rule(index=PICK)
    def extend(self, index):
        assignment = self._open_assignment(index)
        if assignment is not None:
            self._try(
                request_extend,
                actor=assignment.target,
                assignment=assignment,
                justification="Still needed",
                channel=Channel.PORTAL,
            )

    @rule(days=st.integers(min_value=1, max_value=6))
    def time_passes(self, days):
        self.now += timedelta(days=days)

    @rule(worker=st.booleans())
    def due_access_expires(self, worker):
        assignments_expire_due(now=self.now)
        self._worker_if(worker)

    @rule()
    def worker_catches_up(self):
        for pk in Assignment.objects.filter(state=AssignmentState.DELIVERING).values_list(
            "pk", flat=True
        ):
            assignment_deliver(assignment_id=pk, now=self.now)
        waiting = AssignmentResourceRole.objects.filter(state=GrantState.PENDING_REMOVAL)
        assignments_revoke(
            assignment_ids=set(waiting.values_list("assignment_id", flat=True)), now=self.now
        )
        self._memberships_match_open_delivered_grants()

    def _worker_if(self, runs_now):
        # The worker usually runs seconds later; sometimes other steps come first.
        if runs_now:
            self.worker_catches_up()

    # --- Invariants -------------------------------------------------------------------------

    @invariant()
    def no_request_goes_back(self):
        for request in self._ordered(AssignmentRequest.objects.all()):
            pk, state = request.pk, request.state
            rank = REQUEST_STATE_RANK[state]
            assert rank >= self.rank_seen.get(pk, rank), f"request {pk} went back to {state}"
            self.rank_seen[pk] = rank
            self.request_states.setdefault(pk, set()).add(state)

    @invariant()
    def at_most_one_open_assignment_per_user_and_package(self):
        pairs = list(
            Assignment.objects.filter(state__in=OPEN_ASSIGNMENT_STATES).values_list(
                "target_id", "access_package_id"
            )
        )
        assert len(pairs) == len(set(pairs))

    @invariant()
    def no_membership_without_a_grant_and_no_delivered_grant_without_membership(self):
        held = self._memberships()
        delivered = self._granted({GrantState.DELIVERED}, open_only=True)
        not_yet_revoked = self._granted(
            {GrantState.DELIVERED, GrantState.PENDING_REMOVAL, GrantState.REMOVAL_FAILED}
        )
        assert delivered <= held
        assert held - self.direct <= not_yet_revoked
        assert self.direct <= held, "a membership given outside the product was removed"

    @invariant()
    def every_state_seen_has_its_audit_event(self):
        for assignment in self._ordered(Assignment.objects.all()):
            pk, state = assignment.pk, assignment.state
            self.assignment_states.setdefault(pk, set()).add(state)
        for model, seen in (
            (AssignmentRequest, self.request_states),
            (Assignment, self.assignment_states),
        ):
            audited = {}
            for object_id, after in AuditEvent.objects.filter(
                object_type=model._meta.label
            ).values_list("object_id", "after"):
                audited.setdefault(object_id, set()).add(after)
            for pk, states in seen.items():
                missing = states - audited.get(str(pk), set())
                assert not missing, f"{model.__name__} {pk}: no audit event for {missing}"

    # --- Helpers ------------------------------------------------------------------------------

    def _memberships(self):
        return set(
            GroupMembership.objects.filter(user__in=self.users).values_list("user_id", "group_id")
        )

    def _granted(self, states, open_only=False):
        grants = AssignmentResourceRole.objects.filter(state__in=states)
        if open_only:
            grants = grants.filter(assignment__state__in=OPEN_ASSIGNMENT_STATES)
        return set(grants.values_list("target_id", "resource_role__resource__group_id"))

    def _memberships_match_open_delivered_grants(self):
        entitled = self._granted({GrantState.DELIVERED}, open_only=True)
        assert self._memberships() == entitled | self.direct
        sources = set(
            GroupMembership.objects.filter(user__in=self.users).values_list(
                "user_id", "group_id", "source"
            )
        )
        assert {(u, g) for u, g, s in sources if s == GrantSource.DIRECT} == self.direct


def test_random_lifecycles_keep_every_invariant():
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            derandomize=True,
        ),
    )
