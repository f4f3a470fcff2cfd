"""Signed decision links in approvers' emails.

A link is bound to one approver, one request stage and the phase the stage was in when the
email went out (before or after escalation). It carries no authority by itself: the page asks
the approver to sign in as that same person, shows the request and decides only on POST. It
stops working once anyone decides the stage, after the deadline, once escalation moves the
stage to another phase, or when the person is no longer an approver of the stage.
"""

from dataclasses import dataclass

from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from notifications.templatetags.sentences import one_full_stop

from .models import ReviewResult, StageApprover, StageStatus
from .selectors import decided_in_place_of

SALT = "approvals.decision-link.v1"
DECISIONS = {"approve": ReviewResult.APPROVED, "deny": ReviewResult.DENIED}


def stage_phase(stage):
    """The phase a link is bound to: links sent before an escalation die with it."""
    return "escalated" if stage.escalated_datetime else "primary"


def decision_token(*, stage, approver):
    return signing.dumps(
        {"s": str(stage.pk), "u": str(approver.pk), "p": stage_phase(stage)},
        salt=SALT,
        compress=True,
    )


def decision_url(*, stage, approver, decision=None, absolute=True):
    from django.conf import settings

    path = reverse(
        "approvals:email_decision", args=[decision_token(stage=stage, approver=approver)]
    )
    if decision:
        path += f"?decision={decision}"
    return (settings.SITE_URL + path) if absolute else path


@dataclass
class LinkCheck:
    """What a decision link allows now: ``problem`` is None when the approver may decide."""

    stage: object = None
    approver_id: str = ""
    problem: str | None = None
    on_behalf_of: object = None  # the approver the signed-in person decides for, if a delegate


def link_check(token, *, user, now=None):
    """Verify a token for the signed-in ``user``; every refusal comes with a sentence to show."""
    from .models import RequestApprovalStage

    now = now or timezone.now()
    try:
        data = signing.loads(token, salt=SALT)
        stage_id, approver_id, phase = data["s"], data["u"], data["p"]
    except (signing.BadSignature, KeyError, TypeError):
        return LinkCheck(problem=_("This link is not valid. Open the request from My Access."))
    stage = (
        RequestApprovalStage.objects.select_related(
            "request__access_package", "request__target", "request__requestor", "reviewed_by"
        )
        .filter(pk=stage_id)
        .first()
    )
    if stage is None:
        return LinkCheck(problem=_("This request no longer exists."))
    check = LinkCheck(stage=stage, approver_id=approver_id)
    if str(user.pk) != approver_id:
        check.problem = _(
            "This link was sent to another approver. Sign out and sign in as the person "
            "who received the email."
        )
    elif stage.status == StageStatus.COMPLETED:
        verb = _("approved") if stage.review_result == ReviewResult.APPROVED else _("denied")
        check.problem = one_full_stop(
            _("This request was already %(verb)s by %(name)s at %(time)s.")
            % {
                "verb": verb,
                "name": stage.reviewed_by.display_name if stage.reviewed_by else _("someone"),
                "time": date_format(timezone.localtime(stage.reviewed_datetime), "DATETIME_FORMAT"),
            }
        )
    elif stage.status == StageStatus.EXPIRED or (stage.deadline and stage.deadline <= now):
        check.problem = _("The time to decide on this request has passed.")
    elif stage.status == StageStatus.CANCELED:
        check.problem = _("This request was canceled.")
    elif not stage.is_open:
        check.problem = _("This request is not waiting for a decision.")
    elif phase != stage_phase(stage):
        check.problem = _(
            "This request was forwarded to other approvers after this email was sent. "
            "Open it from My Access to see whether you can still decide."
        )
    else:
        row = (
            StageApprover.objects.filter(stage=stage, user_id=user.pk)
            .select_related("on_behalf_of")
            .first()
        )
        if row is not None:
            check.on_behalf_of = row.on_behalf_of
        if row is None:
            check.problem = _("You are no longer an approver of this request.")
        elif row.decision != ReviewResult.NOT_REVIEWED:
            check.problem = _("You already decided this request; it waits for the other approvers.")
        elif (other := decided_in_place_of(row)) is not None:
            if row.on_behalf_of_id:
                check.problem = _(
                    "%(name)s already decided this request; you were asked on their behalf."
                ) % {"name": other.user.display_name}
            else:
                check.problem = _("%(name)s already decided this request on your behalf.") % {
                    "name": other.user.display_name
                }
    return check
