"""The page behind the Approve and Deny links of approvers' emails.

Opening a link (GET or HEAD, as mail scanners do) only shows the request; the decision is
taken on POST with the CSRF token, by the approver the link was sent to, signed in.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from entitlements.errors import DomainError
from entitlements.models import Channel

from .decorators import mfa_required_for_approvers
from .links import DECISIONS, link_check
from .models import ReviewResult
from .quorum import rule_of, stage_progress

# The "approve until" field of the page (a datetime-local input), read in the current zone.
APPROVED_END = forms.DateTimeField(required=False)


@login_required
@mfa_required_for_approvers
@require_http_methods(["GET", "HEAD", "POST"])
def email_decision(request, token):
    check = link_check(token, user=request.user)
    if check.problem:
        status = (
            403 if check.stage is not None and check.approver_id != str(request.user.pk) else 410
        )
        return render(
            request,
            "approvals/decision_refused.html",
            {"problem": check.problem, "stage": check.stage, "tab": "approvals"},
            status=status if check.stage is not None else 404,
        )
    stage = check.stage
    decision = request.POST.get("decision") or request.GET.get("decision") or ""
    justification = request.POST.get("justification", "").strip()
    may_shorten = stage.policy_stage.approvers_may_shorten
    # An end is only for approving: a bad one does not hold up a denial.
    approving = decision == "approve"
    approved_end_text = (
        request.POST.get("approved_end", "").strip() if may_shorten and approving else ""
    )
    errors = {}
    approved_end = None
    if approved_end_text:
        try:
            approved_end = APPROVED_END.clean(approved_end_text)
        except ValidationError:
            errors["approved_end"] = _("Enter the date and time the access should end.")
    if request.method == "POST" and not errors:
        if decision not in DECISIONS:
            errors["decision"] = _("Choose Approve or Deny.")
        elif stage.policy_stage.is_approver_justification_required and not justification:
            errors["justification"] = _("A justification is required for this request.")
        else:
            from .services import stage_decide

            try:
                stage_decide(
                    actor=request.user,
                    stage=stage,
                    decision=DECISIONS[decision],
                    justification=justification,
                    channel=Channel.EMAIL,
                    approved_end=approved_end,
                )
            except DomainError as exc:
                if exc.field in ("justification", "decision", "approved_end"):
                    errors[exc.field] = exc.message
                else:
                    return render(
                        request,
                        "approvals/decision_refused.html",
                        {"problem": exc.message, "stage": stage, "tab": "approvals"},
                        status=409,
                    )
            else:
                done = (
                    _("You approved the request of %(name)s for %(package)s.")
                    if DECISIONS[decision] == ReviewResult.APPROVED
                    else _("You denied the request of %(name)s for %(package)s.")
                )
                messages.success(
                    request,
                    done
                    % {
                        "name": stage.request.target.display_name,
                        "package": stage.request.access_package.display_name,
                    },
                )
                return redirect("approvals:email_decision_done")
    answers = stage.request.answers.select_related("question").order_by("question__sequence")
    return render(
        request,
        "approvals/decision.html",
        {
            "stage": stage,
            "req": stage.request,
            "answers": answers,
            "decision": decision if decision in DECISIONS else "",
            "justification": justification,
            "may_shorten": may_shorten,
            "approved_end": approved_end_text,
            "progress": stage_progress(stage) if rule_of(stage).is_quorum else None,
            "on_behalf_of": check.on_behalf_of,
            "errors": errors,
            "tab": "approvals",
        },
        status=400 if errors else 200,
    )


@login_required
def email_decision_done(request):
    return render(request, "approvals/decision_done.html", {"tab": "approvals"})
