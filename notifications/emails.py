"""The emails about access itself: delivered, ending soon, ended.

Receivers of the lifecycle signals of ``entitlements`` record them; the approval and review
emails are registered and sent by ``approvals.emails`` and ``reviews.emails``.
"""

from django.dispatch import receiver

from entitlements import signals as lifecycle
from entitlements.models import Assignment

from . import kinds
from .models import NotificationKind
from .services import notify, notify_bulk


def register_kinds():
    for kind in (
        NotificationKind.ACCESS_DELIVERED,
        NotificationKind.ACCESS_EXPIRING,
        NotificationKind.ACCESS_ENDED,
    ):
        kinds.register(kind, to_requestor=True)


@receiver(lifecycle.assignment_delivered)
def on_assignment_delivered(sender, assignment, request=None, **kwargs):
    # A direct assignment its administrator made silently (the request's ``notify`` off)
    # tells nobody; otherwise the policy's email setting decides (in ``notify``).
    if request is not None and not request.notify:
        return
    notify(
        kind=NotificationKind.ACCESS_DELIVERED,
        recipients=[assignment.target],
        key=f"{assignment.pk}",
        request=request,
        assignment=assignment,
    )


@receiver(lifecycle.assignment_ended)
def on_assignment_ended(sender, assignment, reason="", **kwargs):
    # The signal's ``notify`` argument (False for a silent admin removal) would shadow notify().
    if kwargs.get("notify") is False:
        return
    notify(
        kind=NotificationKind.ACCESS_ENDED,
        recipients=[assignment.target],
        key=f"{assignment.pk}",
        assignment=assignment,
        context={"reason": reason},
    )


@receiver(lifecycle.assignments_ended)
def on_assignments_ended(sender, assignment_ids, reason="", **kwargs):
    """Set-based twin of on_assignment_ended for the batches of the expiry job."""
    rows = Assignment.objects.filter(
        id__in=assignment_ids,
        target__is_active=True,
        assignment_policy__is_assignment_notification_disabled=False,
    ).values_list("id", "target_id")
    notify_bulk(
        kind=NotificationKind.ACCESS_ENDED,
        rows=[(target_id, f"{pk}", {"assignment_id": pk}) for pk, target_id in rows],
        context={"reason": reason},
    )
