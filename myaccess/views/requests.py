"""Request history: my requests, one request's timeline, cancel, and what happens next."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from approvals.describe import shortened_sentence
from approvals.emails import on_behalf_words
from approvals.models import RequestApprovalStage, ReviewResult, StageApprover
from approvals.quorum import progress_of, rule_of
from entitlements import selectors
from entitlements.errors import DomainError
from entitlements.models import (
    ADD_REQUEST_TYPES,
    REQUEST_STATE_RANK,
    AuditEvent,
    Channel,
    RequestAnswer,
    RequestState,
)
from entitlements.services.requests import format_when, request_cancel
from extensions.selectors import waiting_callouts
from myaccess import describe

from .common import get_from, now, paginate

RESUBMITTABLE_STATES = [RequestState.DENIED, RequestState.CANCELED, RequestState.DELIVERY_FAILED]


def _request_detail_queryset(user):
    return selectors.user_requests(user=user).prefetch_related(
        Prefetch(
            "answers",
            queryset=RequestAnswer.objects.select_related("question").order_by(
                "question__sequence"
            ),
        ),
        Prefetch(
            "approval_stages",
            queryset=RequestApprovalStage.objects.select_related("reviewed_by", "policy_stage")
            .prefetch_related(
                Prefetch(
                    "approvers",
                    queryset=StageApprover.objects.select_related(
                        "user", "on_behalf_of", "revocation__revoked_by"
                    ),
                )
            )
            .order_by("sequence"),
        ),
    )


@login_required
def request_list(request):
    page = paginate(request, selectors.user_requests(user=request.user))
    return render(request, "myaccess/requests/list.html", {"tab": "requests", "page": page})


# Audit actions shown on a request's timeline in words; stage decisions come from the
# stage rows themselves (they carry the approver's justification).
TIMELINE_LABELS = {
    "submitted": gettext_lazy("Request submitted"),
    "pendingApproval": gettext_lazy("Waiting for approval"),
    "scheduled": gettext_lazy("Approved; access is scheduled to start"),
    "delivering": gettext_lazy("Approved; delivering access"),
    "delivered": gettext_lazy("Access delivered"),
    "partiallyDelivered": gettext_lazy("Access partly delivered"),
    "deliveryFailed": gettext_lazy("Delivery failed; an administrator has been told"),
    "denied": gettext_lazy("Request denied"),
    "canceled": gettext_lazy("Request canceled"),
}


# The states a person's own act leads to; the others follow from the system or an approver
# (the stage entries say who decided), so the timeline names nobody for them.
STATES_A_PERSON_CAUSES = {RequestState.SUBMITTED, RequestState.CANCELED, RequestState.DENIED}


def _timeline(request_obj):
    """Events of a request in time order: state changes from the audit trail, decisions
    from the approval stages."""
    entries = []
    for event in AuditEvent.objects.filter(request=request_obj).order_by("created"):
        if event.object_type != "entitlements.AssignmentRequest" or not event.after:
            continue
        if (
            event.after == RequestState.DENIED
            and request_obj.approval_stages.all()
            and any(
                s.review_result == ReviewResult.DENIED for s in request_obj.approval_stages.all()
            )
        ):
            continue  # the denying stage below says who and why
        label = TIMELINE_LABELS.get(event.after, event.after)
        if event.after == RequestState.DENIED and (request_obj.status or "").lower() == "expired":
            label = _("Expired: no decision before the deadline")
        tone = {"denied": "bad", "deliveryFailed": "bad", "delivered": "ok"}.get(event.after, "")
        entries.append(
            {
                "when": event.created,
                "label": label,
                "who": (
                    event.actor_display.split(" <")[0]
                    if event.actor_display and event.after in STATES_A_PERSON_CAUSES
                    else ""
                ),
                "text": event.reason if event.after in ("canceled", "denied") else "",
                "tone": tone,
                # A request moves forward only: changes made at one moment sort by state.
                "rank": REQUEST_STATE_RANK.get(event.after, 0),
            }
        )
    for stage in request_obj.approval_stages.all():
        entries += _approver_entries(stage)
        if stage.review_result == ReviewResult.NOT_REVIEWED:
            if stage.is_open:
                waiting = [a for a in stage.approvers.all() if not a.decided_datetime]
                names = describe.join_or([a.user.display_name for a in waiting])
                entries.append(
                    {
                        "when": stage.opened_datetime or request_obj.created,
                        "label": _("Stage %(n)d waiting for %(who)s")
                        % {"n": stage.sequence, "who": names or _("the approvers")},
                        "text": _quorum_words(stage),
                        "deadline": stage.deadline,
                        "tone": "waiting",
                        "sort_last": True,
                    }
                )
            continue
        approved = stage.review_result == ReviewResult.APPROVED
        entries.append(
            {
                "when": stage.reviewed_datetime,
                "label": (_("Stage %(n)d approved") if approved else _("Stage %(n)d denied"))
                % {"n": stage.sequence},
                "who": _decider_words(stage),
                "text": stage.justification,
                "tone": "ok" if approved else "bad",
                # A decision and the state change it causes share a time: the cause comes first.
                "sort_first": True,
            }
        )
    entries += _revocation_entries(request_obj)
    for callout in waiting_callouts(request=request_obj):
        entries.append(
            {
                "when": callout.created,
                "label": _("Waiting for %(name)s since %(since)s, until %(until)s")
                % {
                    "name": callout.custom_extension.display_name,
                    "since": format_when(callout.created),
                    "until": format_when(callout.wait_until),
                },
                "tone": "waiting",
                "sort_last": True,
            }
        )
    entries.sort(
        key=lambda e: (
            e.get("sort_last", False),
            e["when"] or request_obj.created,
            not e.get("sort_first", False),
            e.get("rank", 0),
        )
    )
    return entries


def _quorum_words(stage):
    """ "1 of 2 approvals; still needed: one from Security." for an open quorum stage."""
    rule = rule_of(stage)
    if not rule.is_quorum:
        return ""
    approvers = list(stage.approvers.all())
    return progress_of(rule=rule, approvers=approvers).sentence


def _approver_entries(stage):
    """The approvals of a quorum stage before the one that completed it, and the approvals
    that shortened the access, in words."""
    entries = []
    for row in stage.approvers.all():
        if row.decision != ReviewResult.APPROVED:
            continue
        shortened = shortened_sentence(row)
        if row.user_id != stage.reviewed_by_id:
            label = _("Stage %(n)d: one approval") % {"n": stage.sequence}
            who, text = row.user.display_name, row.justification
        elif shortened:
            label, who, text = _("Access shortened"), "", ""
        else:
            continue
        entries.append(
            {
                "when": row.decided_datetime,
                "label": label,
                "who": who,
                "text": " ".join(part for part in (text, shortened) if part),
                "tone": "ok",
                "sort_first": True,
            }
        )
    return entries


def _decider_words(stage):
    """ "Ben Example", or "Ben Example on behalf of Ann Example" when a delegate decided."""
    if stage.reviewed_by is None:
        return ""
    row = next((a for a in stage.approvers.all() if a.user_id == stage.reviewed_by_id), None)
    return on_behalf_words(stage.reviewed_by, row.on_behalf_of if row else None)


def _revocation_entries(request_obj):
    """An approval taken back, with who took it back and why."""
    for stage in request_obj.approval_stages.all():
        for approver in stage.approvers.all():
            revocation = getattr(approver, "revocation", None)
            if revocation is None:
                continue
            yield {
                "when": revocation.created,
                "label": _("Stage %(n)d: approval revoked") % {"n": stage.sequence},
                "who": on_behalf_words(revocation.revoked_by, approver.on_behalf_of),
                "text": revocation.reason,
                "tone": "bad",
                "sort_first": True,
            }


def what_happens_next(request_obj):
    """A sentence about the next step of an open request, for the requestor."""
    waiting = waiting_callouts(request=request_obj)
    if waiting:
        # Held for a custom extension: neither approvers nor delivery act until it answers.
        return {
            "text": _("Waiting for %(names)s (until %(until)s).")
            % {
                "names": ", ".join(c.custom_extension.display_name for c in waiting),
                "until": format_when(max(c.wait_until for c in waiting)),
            }
        }
    if request_obj.state == RequestState.PENDING_APPROVAL:
        stage = next((s for s in request_obj.approval_stages.all() if s.is_open), None)
        if stage is not None:
            names = [a.user.display_name for a in stage.approvers.all()]
            return {
                "stage": stage,
                "approvers": describe.join_or(names),
                "deadline": stage.deadline,
            }
        return {"text": _("Your request is waiting for approval.")}
    if request_obj.state in (RequestState.SUBMITTED, RequestState.DELIVERING):
        return {"text": _("You will get access in a moment.")}
    if request_obj.state == RequestState.SCHEDULED:
        return {"text": _("Your request is approved; access starts at the time you asked for.")}
    return None


@login_required
def request_detail(request, pk):
    request_obj = get_from(_request_detail_queryset(request.user), pk)
    return render(
        request,
        "myaccess/requests/detail.html",
        {
            "tab": "requests",
            "req": request_obj,
            "timeline": _timeline(request_obj),
            "next": what_happens_next(request_obj),
            # My Access is the requestor's door; administrators cancel from the admin.
            "can_cancel": selectors.request_cancelable(request=request_obj),
            "resubmit_url": _resubmit_url(request_obj),
        },
    )


def _resubmit_url(request_obj):
    if request_obj.state not in RESUBMITTABLE_STATES:
        return None
    if request_obj.request_type not in ADD_REQUEST_TYPES:
        return None
    url = reverse("myaccess:request_create", args=[request_obj.access_package_id])
    query = {"resubmit": request_obj.pk}
    if request_obj.requestor_id and request_obj.requestor_id != request_obj.target_id:
        query["target"] = request_obj.target_id
    return f"{url}?{urlencode(query)}"


@login_required
def request_submitted(request, pk):
    """The page after submitting: what happens next, who approves and by when."""
    request_obj = get_from(_request_detail_queryset(request.user), pk)
    return render(
        request,
        "myaccess/requests/submitted.html",
        {
            "tab": "requests",
            "req": request_obj,
            "next": what_happens_next(request_obj),
            "period_sentence": describe.period_sentence(request_obj),
        },
    )


@login_required
@require_POST
def request_cancel_view(request, pk):
    request_obj = get_from(selectors.user_requests(user=request.user), pk)
    try:
        request_cancel(actor=request.user, request=request_obj, channel=Channel.PORTAL, now=now())
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Your request for %(package)s is canceled.")
            % {"package": request_obj.access_package.display_name},
        )
    return redirect("myaccess:request_detail", pk=request_obj.pk)
