"""The emails of the approval flow: who is told what when a stage opens, is decided, runs out.

Receivers of the approval and request signals call ``notifications.services.notify`` with
the stage the email is about; the kinds registered here read the stage back when the email
is rendered and add the signed approve and deny links (``approvals.links``).
"""

from celery import shared_task
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from entitlements import signals as lifecycle
from entitlements.models import ApprovalStage
from notifications import kinds
from notifications.models import NotificationKind
from notifications.services import notify

from . import quorum, signals
from .describe import shortened_sentence
from .links import decision_url
from .models import (
    OPEN_STAGE_STATUSES,
    ApprovalRevocation,
    RequestApprovalStage,
    ReviewResult,
    StageApprover,
    StageStatus,
)

# Emails that ask an approver to decide, with the approve and deny links and the deadline.
APPROVER_ACTION_KINDS = (
    NotificationKind.APPROVAL_REQUIRED,
    NotificationKind.APPROVAL_REMINDER,
    NotificationKind.APPROVAL_FORWARDED,
)
# Emails to the requestor; a policy can switch these off.
REQUESTOR_KINDS = (
    NotificationKind.STAGE_APPROVED,
    NotificationKind.REQUEST_DENIED,
    NotificationKind.REQUEST_EXPIRED,
)


def _stage(notification, recipient=None):
    if notification.about_id is None:
        return None
    # The policy stage says whether the stage has a quorum (the approvers' emails say so).
    stages = RequestApprovalStage.objects.select_related("reviewed_by", "policy_stage")
    if recipient is not None:
        row = StageApprover.objects.filter(stage=OuterRef("pk"), user=recipient)
        stages = stages.annotate(
            on_behalf_of_name=Subquery(row.values("on_behalf_of__display_name")[:1])
        )
    return stages.filter(pk=notification.about_id).first()


def _decider(stage):
    """Who decided ``stage``, in words: "Ben Example on behalf of Ann Example" when they
    decided as someone's delegate; "" when nobody did."""
    if stage is None or stage.reviewed_by_id is None:
        return ""
    row = (
        StageApprover.objects.filter(stage=stage, user_id=stage.reviewed_by_id)
        .select_related("on_behalf_of")
        .first()
    )
    return on_behalf_words(stage.reviewed_by, row.on_behalf_of if row else None)


def on_behalf_words(person, on_behalf_of):
    if on_behalf_of is None:
        return person.display_name
    return _("%(who)s on behalf of %(whom)s") % {
        "who": person.display_name,
        "whom": on_behalf_of.display_name,
    }


def stage_context(notification):
    stage = _stage(notification)
    return {"stage": stage, "decider": _decider(stage)}


def stage_approved_context(notification):
    stage = _stage(notification)
    if stage is None:
        return {"stage": None}
    count = ApprovalStage.objects.filter(policy_id=stage.request.assignment_policy_id).count()
    stage_count = max(count, stage.sequence)
    return {
        "stage": stage,
        "decider": _decider(stage),
        "stage_count": stage_count,
        "is_last_stage": stage.sequence >= stage_count,
        "next_stage": stage.sequence + 1,
        # "Approved until 15 March 2027 instead of 30 June 2027 by Ann Example."
        "shortened": [
            shortened_sentence(row)
            for row in stage.approvers.exclude(approved_end=None).select_related("user")
        ],
    }


def decision_context(notification):
    stage = _stage(notification, recipient=notification.recipient)
    # Only the people asked to decide read a deadline; to the requestor it means nothing.
    return {
        "stage": stage,
        "decide_by": stage.deadline if stage else None,
        # Asked as someone's delegate: the email says for whom (read with the stage).
        "on_behalf_of": getattr(stage, "on_behalf_of_name", None),
    }


def revocation_context(notification):
    revocation = (
        ApprovalRevocation.objects.select_related("revoked_by", "approval__on_behalf_of")
        .filter(pk=notification.about_id)
        .first()
        if notification.about_id
        else None
    )
    if revocation is None:
        return {"revocation": None}
    return {
        "revocation": revocation,
        "revoker": on_behalf_words(revocation.revoked_by, revocation.approval.on_behalf_of),
        "access_removed": revocation.outcome == ApprovalRevocation.Outcome.ACCESS_REMOVED,
    }


def decision_links(notification, context):
    stage, approver = context["stage"], notification.recipient
    if stage is None:
        return {}
    return {
        "approve_url": decision_url(stage=stage, approver=approver, decision="approve"),
        "deny_url": decision_url(stage=stage, approver=approver, decision="deny"),
    }


def register_kinds():
    for kind in APPROVER_ACTION_KINDS:
        kinds.register(kind, context=approver_context, links=decision_links)
    kinds.register(NotificationKind.APPROVAL_EXPIRED, context=stage_context)
    kinds.register(NotificationKind.APPROVAL_DECIDED_BY_OTHER, context=stage_context)
    kinds.register(
        NotificationKind.STAGE_APPROVED, context=stage_approved_context, to_requestor=True
    )
    kinds.register(NotificationKind.REQUEST_DENIED, context=stage_context, to_requestor=True)
    kinds.register(NotificationKind.REQUEST_EXPIRED, to_requestor=True)
    kinds.register(NotificationKind.APPROVAL_REVOKED, context=revocation_context, to_requestor=True)


def _requestor_and_target(request):
    return [request.target] + ([request.requestor] if request.requestor_id else [])


def _notify_about_stage(kind, stage, recipients):
    return notify(
        kind=kind, recipients=recipients, key=f"{stage.pk}", request=stage.request, about=stage
    )


# --- Receivers: approval and request events → notifications ---------------------------------


@receiver(signals.stage_opened)
def on_stage_opened(sender, stage, approvers=(), **kwargs):
    _notify_about_stage(NotificationKind.APPROVAL_REQUIRED, stage, approvers)


@receiver(signals.stage_escalated)
def on_stage_escalated(sender, stage, approvers=(), **kwargs):
    _notify_about_stage(NotificationKind.APPROVAL_FORWARDED, stage, approvers)


@receiver(signals.stage_decided)
def on_stage_decided(sender, stage, **kwargs):
    # Those who already approved a quorum stage need no "decided by someone else" email.
    others = [
        a.user
        for a in stage.approvers.select_related("user")
        if a.user_id != stage.reviewed_by_id and a.decided_datetime is None
    ]
    _notify_about_stage(NotificationKind.APPROVAL_DECIDED_BY_OTHER, stage, others)
    if stage.review_result == ReviewResult.APPROVED:
        _notify_about_stage(
            NotificationKind.STAGE_APPROVED, stage, _requestor_and_target(stage.request)
        )


@receiver(lifecycle.request_denied)
def on_request_denied(sender, request, stage=None, reason="", **kwargs):
    if ApprovalRevocation.objects.filter(approval__stage__request=request).exists():
        return  # the revocation's own email says why (on_approval_revoked)
    notify(
        kind=NotificationKind.REQUEST_DENIED,
        recipients=_requestor_and_target(request),
        key=f"{request.pk}",
        request=request,
        about=stage,
        context={"reason": reason or (stage.justification if stage else "")},
    )


@receiver(signals.approval_revoked)
def on_approval_revoked(sender, revocation, **kwargs):
    request = revocation.approval.stage.request
    notify(
        kind=NotificationKind.APPROVAL_REVOKED,
        recipients=_requestor_and_target(request),
        key=f"{revocation.pk}",
        request=request,
        about=revocation,
    )


@receiver(lifecycle.request_expired)
def on_request_expired(sender, request, **kwargs):
    notify(
        kind=NotificationKind.REQUEST_EXPIRED,
        recipients=_requestor_and_target(request),
        key=f"{request.pk}",
        request=request,
    )
    stage = request.approval_stages.order_by("-sequence").first()
    # Approvers hear of it only when their stage ran out of time (not when the period did).
    if stage is not None and stage.status == StageStatus.EXPIRED:
        notify(
            kind=NotificationKind.APPROVAL_EXPIRED,
            recipients=[a.user for a in stage.approvers.select_related("user")],
            key=f"{request.pk}",
            request=request,
            about=stage,
        )


# --- Reminders --------------------------------------------------------------------------------


def stages_send_reminders(*, now=None):
    """Remind approvers half-way to the deadline of a stage nobody has decided yet."""
    now = now or timezone.now()
    open_stages = RequestApprovalStage.objects.filter(
        status__in=OPEN_STAGE_STATUSES,
        reminder_sent_datetime__isnull=True,
        deadline__gt=now,
        opened_datetime__isnull=False,
    )
    count = 0
    for stage in open_stages.select_related("request").iterator(chunk_size=500):
        # The half-way point in Python: SQLite cannot halve the difference of two datetimes.
        if stage.opened_datetime + (stage.deadline - stage.opened_datetime) / 2 > now:
            continue
        with transaction.atomic():
            claimed = RequestApprovalStage.objects.filter(
                pk=stage.pk, reminder_sent_datetime__isnull=True
            ).update(reminder_sent_datetime=now)
            if not claimed:
                continue
            notify(
                kind=NotificationKind.APPROVAL_REMINDER,
                recipients=[
                    a.user
                    for a in stage.approvers.select_related("user")
                    if a.decided_datetime is None  # a quorum stage's approvers who decided
                ],
                key=f"{stage.pk}",
                request=stage.request,
                about=stage,
            )
        count += 1
    return count


@shared_task(acks_late=True)
def send_approval_reminders():
    return stages_send_reminders()


def approver_context(notification):
    """What an approver's email says, and for a quorum stage how far it is ("1 of 2
    approvals; still needed: one from Security.")."""
    context = decision_context(notification)
    stage = context["stage"]
    rule = quorum.rule_of(stage) if stage is not None else None
    is_quorum = rule is not None and rule.is_quorum
    context["quorum"] = quorum.stage_progress(stage).sentence if is_quorum else ""
    context["quorum_needs"] = quorum.requirement_sentence(rule) if is_quorum else ""
    return context
