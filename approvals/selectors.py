"""Reads shared by My Access, the email decision page, the admin and the API."""

from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from entitlements import permissions
from entitlements.models import RequestState

from .models import (
    OPEN_STAGE_STATUSES,
    ApprovalDelegation,
    RequestApprovalStage,
    ReviewResult,
    StageApprover,
)

_RELATED = (
    "request",
    "request__target",
    "request__requestor",
    "request__access_package",
    "request__assignment_policy",
    "policy_stage",
)


def _approvable(user):
    """The stages ``user`` was resolved to approve, except those of their own requests."""
    is_approver = StageApprover.objects.filter(stage=OuterRef("pk"), user=user)
    return Exists(is_approver) & ~(Q(request__target=user) | Q(request__requestor=user))


def declare_scopes():
    """Who sees the approvals' rows: they follow their request's catalog, like assignments;
    anybody sees the stages they approve (``restrict(user, "approve")``)."""
    permissions.declare_scope(
        RequestApprovalStage,
        permissions.ASSIGNMENTS,
        "request__access_package__catalog",
        approve=_approvable,
    )
    permissions.declare_scope(
        StageApprover, permissions.ASSIGNMENTS, "stage__request__access_package__catalog"
    )


def _authority():
    """Whose say a StageApprover row is: the approver's, also when their delegate decides."""
    return Coalesce("on_behalf_of_id", "user_id")


def decided_in_place_of(row):
    """The decided row of the same stage that spoke for ``row``'s approver (the approver
    themselves, or their delegate), or None: an approver and their delegate decide once."""
    authority = row.on_behalf_of_id or row.user_id
    return (
        StageApprover.objects.filter(stage_id=row.stage_id)
        .exclude(pk=row.pk)
        .exclude(decision=ReviewResult.NOT_REVIEWED)
        .filter(Q(user_id=authority) | Q(on_behalf_of_id=authority))
        .select_related("user", "on_behalf_of")
        .first()
    )


def pending_stages_for(*, user, now=None):
    """Open stages waiting for ``user``'s decision, oldest deadline first (a quorum stage they
    already approved waits for the others, not for them; nor one their approver, or their
    delegate, already decided for them)."""
    my_authority = (
        StageApprover.objects.filter(stage=OuterRef(OuterRef("pk")), user=user)
        .annotate(authority=_authority())
        .values("authority")[:1]
    )
    decided = (
        StageApprover.objects.filter(stage=OuterRef("pk"))
        .exclude(decision=ReviewResult.NOT_REVIEWED)
        .annotate(authority=_authority())
        .filter(Q(user=user) | Q(authority=Subquery(my_authority)))
    )
    return (
        RequestApprovalStage.objects.restrict(user, "approve")
        .filter(
            Q(deadline__isnull=True) | Q(deadline__gt=now or timezone.now()),
            ~Exists(decided),
            status__in=OPEN_STAGE_STATUSES,
            request__state=RequestState.PENDING_APPROVAL,
        )
        .select_related(*_RELATED)
        .order_by("deadline", "pk")
    )


def decisions_by(*, user):
    """Stages ``user`` decided, newest decision first (the Approvals history): also those of
    a quorum stage another approver completed. Each carries the person's own decision
    (``my_decision``, ``my_decided_datetime``, ``my_justification``, ``my_row_id``, and
    ``my_on_behalf_of_name`` when they decided as someone's delegate)."""
    mine = StageApprover.objects.filter(stage=OuterRef("pk"), user=user).exclude(
        decision=ReviewResult.NOT_REVIEWED
    )
    return (
        RequestApprovalStage.objects.filter(Exists(mine))
        .annotate(
            my_row_id=Subquery(mine.values("pk")[:1]),
            my_decision=Subquery(mine.values("decision")[:1]),
            my_decided_datetime=Subquery(mine.values("decided_datetime")[:1]),
            my_justification=Subquery(mine.values("justification")[:1]),
            my_on_behalf_of_name=Subquery(mine.values("on_behalf_of__display_name")[:1]),
        )
        .select_related(*_RELATED)
        .order_by(F("my_decided_datetime").desc(nulls_last=True), "pk")
    )


def can_decide(*, user, stage):
    """Whether ``user`` may decide ``stage`` now (the same rules stage_decide enforces)."""
    if user is None or not user.is_authenticated or not stage.is_open:
        return False
    request = stage.request
    if request.state != RequestState.PENDING_APPROVAL:
        return False
    if user.pk in (request.target_id, request.requestor_id):
        return False
    row = StageApprover.objects.filter(
        stage=stage, user=user, decision=ReviewResult.NOT_REVIEWED
    ).first()
    return row is not None and decided_in_place_of(row) is None


def delegations_of(*, user):
    """The delegations ``user`` made (as an approver), latest first: the one list My Access
    shows them and the rows only they may end."""
    return (
        ApprovalDelegation.objects.filter(delegator=user)
        .select_related("delegate")
        .order_by("-start", "pk")
    )


def delegations_to(*, user, now=None):
    """The delegations naming ``user`` as delegate that are in force or still to come."""
    return (
        ApprovalDelegation.objects.filter(delegate=user, end__gt=now or timezone.now())
        .exclude(end=F("start"))
        .select_related("delegator")
        .order_by("start", "pk")
    )


def approvals_given_by(*, user):
    """The approvals ``user`` gave (their own StageApprover rows decided Approved): the only
    ones they may revoke."""
    return StageApprover.objects.filter(user=user, decision=ReviewResult.APPROVED).select_related(
        "stage__request__access_package",
        "stage__request__target",
        "stage__request__requestor",
        "on_behalf_of",
    )
