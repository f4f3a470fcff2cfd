"""Approvals: delegating my approvals for a period, and revoking an approval I gave."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from approvals import selectors as approval_selectors
from approvals.decorators import mfa_required_for_approvers
from approvals.models import ReviewResult
from approvals.services import (
    DELIVERED_OR_TRIED,
    NOT_YET_DELIVERED,
    approval_revoke,
    delegation_create,
    delegation_end,
    revoke_deadline,
    revoke_removes_access,
)
from entitlements.errors import DomainError
from entitlements.models import ADD_REQUEST_TYPES, Channel
from myaccess.forms import DelegationForm, RevokeForm

from .common import apply_domain_error, get_from, now


@login_required
@mfa_required_for_approvers
@require_http_methods(["GET", "POST"])
def delegation_list(request):
    """My delegations (in force, to come, past), the ones naming me, and the form for a new
    one."""
    moment = now()
    form = DelegationForm(
        request.POST if request.method == "POST" else None, user=request.user, now=moment
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            delegation = delegation_create(
                actor=request.user,
                delegate=data["delegate"],
                start=data.get("start"),
                end=data["end"],
                note=data.get("note", ""),
                channel=Channel.PORTAL,
                now=moment,
            )
        except DomainError as error:
            apply_domain_error(form, error)
        else:
            messages.success(
                request,
                _("%(name)s now also receives the requests waiting for your approval.")
                % {"name": delegation.delegate.display_name}
                if delegation.start <= moment
                else _("%(name)s will also receive the requests waiting for your approval.")
                % {"name": delegation.delegate.display_name},
            )
            return redirect("myaccess:approval_delegation")
    mine = list(approval_selectors.delegations_of(user=request.user)[:50])
    for delegation in mine:
        delegation.is_current = delegation.end > moment and delegation.end != delegation.start
        delegation.is_in_force = delegation.is_current and delegation.start <= moment
    return render(
        request,
        "myaccess/approvals/delegation.html",
        {
            "tab": "approvals",
            "subtab": "delegation",
            "form": form,
            "delegations": mine,
            "delegated_to_me": approval_selectors.delegations_to(user=request.user, now=moment),
            "now": moment,
            "time_zone": timezone.get_current_timezone_name(),
        },
    )


@login_required
@mfa_required_for_approvers
@require_POST
def delegation_end_view(request, pk):
    delegation = get_from(approval_selectors.delegations_of(user=request.user), pk)
    try:
        delegation_end(actor=request.user, delegation=delegation, channel=Channel.PORTAL, now=now())
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(name)s no longer receives the requests waiting for your approval.")
            % {"name": delegation.delegate.display_name},
        )
    return redirect("myaccess:approval_delegation")


def _offers_revoke(*, approved, revoked, request, moment):
    """Whether a page offers to revoke an approval given at ``approved`` (the service
    decides again when it is posted)."""
    window = settings.APPROVAL_REVOKE_WINDOW
    if approved is None or revoked or not window or approved + window <= moment:
        return False
    # Once delivered, only what an add request gave can be taken back: an applied extension
    # is refused by approval_revoke, so it is not offered.
    return request.state in NOT_YET_DELIVERED or (
        request.state in DELIVERED_OR_TRIED
        and request.assignment_id is not None
        and request.request_type in ADD_REQUEST_TYPES
    )


def revocable(approval, moment):
    return _offers_revoke(
        approved=approval.decided_datetime,
        revoked=_is_revoked(approval),
        request=approval.stage.request,
        moment=moment,
    )


def _is_revoked(approval):
    try:
        return approval.revocation is not None
    except approval.__class__.revocation.RelatedObjectDoesNotExist:
        return False


@login_required
@mfa_required_for_approvers
@require_http_methods(["GET", "POST"])
def approval_revoke_view(request, pk):
    """Confirm, with a reason, then take back an approval I gave."""
    approval = get_from(
        approval_selectors.approvals_given_by(user=request.user).select_related("revocation"), pk
    )
    req = approval.stage.request
    form = RevokeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            revocation = approval_revoke(
                actor=request.user,
                approval=approval,
                reason=form.cleaned_data["reason"],
                channel=Channel.PORTAL,
                now=now(),
            )
        except DomainError as error:
            apply_domain_error(form, error)
        else:
            details = {
                "who": req.target.display_name,
                "package": req.access_package.display_name,
            }
            if revocation.outcome == revocation.Outcome.ACCESS_REMOVED:
                text = _(
                    "You revoked your approval: %(who)s's access to %(package)s is being removed."
                )
            else:
                text = _("You revoked your approval: %(who)s's request for %(package)s is denied.")
            messages.success(request, text % details)
            return redirect("myaccess:approval_history")
    return render(
        request,
        "myaccess/approvals/revoke.html",
        {
            "tab": "approvals",
            "subtab": "history",
            "approval": approval,
            "req": req,
            "form": form,
            "can_revoke": revocable(approval, now()),
            "deadline": revoke_deadline(approval),
            "delivered": revoke_removes_access(req),
        },
    )


def revocable_in_history(stage, moment):
    """Whether the history offers to revoke the viewer's approval of ``stage`` (annotated by
    the history view with that approval, its time and whether it was revoked)."""
    if stage.my_decision != ReviewResult.APPROVED:
        return False
    return _offers_revoke(
        approved=stage.my_decided_datetime,
        revoked=stage.revoked,
        request=stage.request,
        moment=moment,
    )
