"""Approvals: the stages waiting for me, one decision, many decisions, my past decisions."""

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Prefetch, Subquery
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from approvals import selectors as approval_selectors
from approvals.decorators import mfa_required_for_approvers
from approvals.models import ApprovalRevocation, ReviewResult, StageApprover
from approvals.quorum import rule_of, stage_progress
from approvals.services import stage_decide, stages_decide
from entitlements.errors import DomainError
from entitlements.models import Channel, RequestAnswer
from myaccess.forms import BulkDecisionForm, DecisionForm
from notifications.templatetags.sentences import one_full_stop

from .common import apply_domain_error, get_from, now, paginate
from .delegation import revocable_in_history

# A refusal reason ends a sentence of its own; in the list of reasons it loses its full stop.
_TRAILING_FULL_STOP = re.compile(r"(?<!\.)\.$")


def _pending(user):
    # Asked as someone's delegate: the page says on whose behalf (a subquery, no extra query).
    mine = StageApprover.objects.filter(stage=OuterRef("pk"), user=user)
    return (
        approval_selectors.pending_stages_for(user=user)
        .annotate(on_behalf_of_name=Subquery(mine.values("on_behalf_of__display_name")[:1]))
        .select_related(
            "policy_stage",
            "request__access_package",
            "request__target",
            "request__requestor",
        )
        .prefetch_related(
            Prefetch(
                "request__answers",
                queryset=RequestAnswer.objects.select_related("question").order_by(
                    "question__sequence"
                ),
            )
        )
        .order_by("deadline", "created")
    )


@login_required
@mfa_required_for_approvers
def approval_list(request):
    page = paginate(request, _pending(request.user))
    form = BulkDecisionForm()
    return render(
        request,
        "myaccess/approvals/list.html",
        {"tab": "approvals", "page": page, "form": form, "subtab": "pending"},
    )


@login_required
@mfa_required_for_approvers
@require_http_methods(["GET", "POST"])
def approval_detail(request, pk):
    stage = get_from(_pending(request.user), pk)
    required = stage.policy_stage.is_approver_justification_required
    form = DecisionForm(
        request.POST if request.method == "POST" else None,
        justification_required=required,
        may_shorten=stage.policy_stage.approvers_may_shorten,
    )
    if request.method == "POST" and form.is_valid():
        decision = form.cleaned_data["decision"]
        try:
            stage_decide(
                actor=request.user,
                stage=stage,
                decision=decision,
                justification=form.cleaned_data["justification"],
                channel=Channel.PORTAL,
                approved_end=form.cleaned_data.get("approved_end"),
                now=now(),
            )
        except DomainError as error:
            apply_domain_error(form, error)
        else:
            template = (
                _("You approved %(who)s's request for %(package)s.")
                if decision == ReviewResult.APPROVED
                else _("You denied %(who)s's request for %(package)s.")
            )
            messages.success(
                request,
                template
                % {
                    "who": stage.request.target.display_name,
                    "package": stage.request.access_package.display_name,
                },
            )
            return redirect("myaccess:approvals")
    return render(
        request,
        "myaccess/approvals/detail.html",
        {
            "tab": "approvals",
            "stage": stage,
            "req": stage.request,
            "form": form,
            "progress": stage_progress(stage) if rule_of(stage).is_quorum else None,
        },
    )


@login_required
@mfa_required_for_approvers
@require_POST
def approval_bulk(request):
    """Decide several stages with one justification; report what was done and what was not."""
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("myaccess:approvals")
    ids = set(form.cleaned_data["stages"])
    stages = list(_pending(request.user).filter(pk__in=ids))
    decision = form.cleaned_data["decision"]
    result = stages_decide(
        actor=request.user,
        stages=stages,
        decision=decision,
        justification=form.cleaned_data["justification"],
        channel=Channel.PORTAL,
        now=now(),
    )
    done, refused = len(result.done), list(result.refused)
    refused += [(None, _("it no longer waits for your decision"))] * (len(ids) - len(stages))
    _report(request, decision, done, refused)
    return redirect("myaccess:approvals")


def _report(request, decision, done, refused):
    """One message in words: how many were decided, and why each of the others was not."""
    approved = decision == ReviewResult.APPROVED
    if approved:
        summary = ngettext("You approved %(n)d request.", "You approved %(n)d requests.", done)
    else:
        summary = ngettext("You denied %(n)d request.", "You denied %(n)d requests.", done)
    summary %= {"n": done}
    if not refused:
        messages.success(request, summary)
        return
    reasons = "; ".join(
        _TRAILING_FULL_STOP.sub("", str(message))
        if stage is None
        else _("%(who)s – %(package)s: %(why)s")
        % {
            "who": stage.request.target.display_name,
            "package": stage.request.access_package.display_name,
            "why": _TRAILING_FULL_STOP.sub("", str(message)),
        }
        for stage, message in refused
    )
    n = len(refused)
    if done and approved:
        text = ngettext(
            "%(n)d other request could not be approved: %(reasons)s.",
            "%(n)d other requests could not be approved: %(reasons)s.",
            n,
        )
    elif done:
        text = ngettext(
            "%(n)d other request could not be denied: %(reasons)s.",
            "%(n)d other requests could not be denied: %(reasons)s.",
            n,
        )
    elif approved:
        text = ngettext(
            "The request could not be approved: %(reasons)s.",
            "None of the %(n)d requests could be approved: %(reasons)s.",
            n,
        )
    else:
        text = ngettext(
            "The request could not be denied: %(reasons)s.",
            "None of the %(n)d requests could be denied: %(reasons)s.",
            n,
        )
    text = one_full_stop(text % {"n": n, "reasons": reasons})
    if done:
        messages.warning(request, f"{summary} {text}")
    else:
        messages.error(request, text)


@login_required
@mfa_required_for_approvers
def approval_history(request):
    decisions = approval_selectors.decisions_by(user=request.user).annotate(
        revoked=Exists(
            ApprovalRevocation.objects.filter(
                approval__stage=OuterRef("pk"), approval__user=request.user
            )
        ),
    )
    page = paginate(request, decisions)
    moment = now()
    for stage in page.object_list:
        # The person's own decision: in a quorum stage it may not be the one that decided it.
        stage.my_decision_label = ReviewResult(stage.my_decision).label
        stage.revocable = revocable_in_history(stage, moment)
    return render(
        request,
        "myaccess/approvals/history.html",
        {"tab": "approvals", "page": page, "subtab": "history"},
    )
