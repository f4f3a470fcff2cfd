"""My assignments: extend (a request of its own) and remove (confirmation, then POST)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from entitlements import selectors
from entitlements.errors import DomainError
from entitlements.models import Channel
from entitlements.services.ending import assignment_remove
from entitlements.services.requests import request_extend
from myaccess import describe
from myaccess.forms import ExtendForm

from .common import apply_domain_error, get_from, now


def _my_open_assignment(request, pk):
    return get_from(selectors.user_assignments(user=request.user, active=True), pk)


@login_required
@require_http_methods(["GET", "POST"])
def assignment_extend(request, pk):
    assignment = _my_open_assignment(request, pk)
    policy = assignment.assignment_policy
    form = ExtendForm(request.POST if request.method == "POST" else None, policy=policy)
    if request.method == "POST" and form.is_valid():
        try:
            extension = request_extend(
                actor=request.user,
                assignment=assignment,
                justification=form.cleaned_data.get("justification", ""),
                schedule_end=form.cleaned_data.get("schedule_end"),
                channel=Channel.PORTAL,
                now=now(),
            )
        except DomainError as error:
            apply_domain_error(form, error)
        else:
            messages.success(request, _("Your extension request is submitted."))
            return redirect("myaccess:request_detail", pk=extension.pk)
    return render(
        request,
        "myaccess/assignments/extend.html",
        {
            "tab": "packages",
            "assignment": assignment,
            "form": form,
            "duration": describe.duration_sentence(policy),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def assignment_remove_view(request, pk):
    assignment = _my_open_assignment(request, pk)
    if request.method == "POST":
        try:
            assignment_remove(
                actor=request.user,
                assignment=assignment,
                channel=Channel.PORTAL,
                reason=_("Removed by the user in My Access."),
                now=now(),
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _("Your access to %(package)s is being removed.")
                % {"package": assignment.access_package.display_name},
            )
            return redirect("myaccess:expired_assignments")
    return render(
        request,
        "myaccess/assignments/remove.html",
        {"tab": "packages", "assignment": assignment},
    )
