"""The Access reviews tab of My Access: the items waiting for me, deciding one or many."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, Q, Value, When
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from entitlements.errors import DomainError

from . import selectors
from .forms import ReviewDecisionForm
from .models import Decision, ReviewInstance
from .services import review_accept_recommendations, review_items_decide

PAGE_SIZE = 100
# A success message names the people decided when there are at most this many.
NAMED_IN_MESSAGE = 10


def _parse_uuids(values):
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return ids


def _items(user):
    return (
        selectors.reviewable_items(user=user)
        .select_related("instance__policy", "instance__access_package", "target", "decided_by")
        .annotate(
            undecided_first=Case(
                When(decision=Decision.NOT_REVIEWED, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("instance__end", "instance_id", "undecided_first", "target__display_name", "pk")
    )


@login_required
def review_list(request):
    user = request.user
    page = Paginator(_items(user), PAGE_SIZE).get_page(request.GET.get("page"))
    undecided = dict(
        selectors.reviewable_items(user=user)
        .values_list("instance_id")
        .annotate(n=Count("pk", filter=Q(decision=Decision.NOT_REVIEWED)))
        .order_by()
    )
    own, groups = [], []
    for item in page.object_list:
        if item.target_id == user.pk:
            own.append(item)
            continue
        if not groups or groups[-1]["instance"].pk != item.instance_id:
            groups.append(
                {
                    "instance": item.instance,
                    "items": [],
                    "undecided": undecided.get(item.instance_id, 0),
                }
            )
        groups[-1]["items"].append(item)
    return render(
        request,
        "reviews/list.html",
        {
            "tab": "reviews",
            "page": page,
            "own": own,
            "groups": groups,
            "form": ReviewDecisionForm(),
            "pending": sum(undecided.values()),
        },
    )


@login_required
@require_POST
def review_decide(request):
    """Decide the chosen items one way; report what was done and, per refused item, why."""
    ids = _parse_uuids(request.POST.getlist("items"))
    if not ids:
        messages.error(request, _("Choose at least one person to review."))
        return redirect("reviews:list")
    form = ReviewDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("reviews:list")
    items = list(
        selectors.reviewable_items(user=request.user)
        .filter(pk__in=ids)
        .select_related("instance__policy", "instance__access_package", "target")
        .order_by("target__display_name", "pk")
    )
    decision = form.cleaned_data["decision"]
    result = review_items_decide(
        actor=request.user,
        items=items,
        decision=decision,
        justification=form.cleaned_data["justification"],
        now=timezone.now(),
    )
    _report(request, decision, result)
    missing = len(set(ids)) - len(items)
    if missing:
        messages.error(
            request,
            ngettext(
                "%(n)d item is not waiting for your review; nothing was changed for it.",
                "%(n)d items are not waiting for your review; nothing was changed for them.",
                missing,
            )
            % {"n": missing},
        )
    return redirect("reviews:list")


@login_required
@require_POST
def accept_recommendations(request, pk):
    ids = _parse_uuids([pk])
    instance = (
        ReviewInstance.objects.filter(
            pk__in=selectors.reviewable_items(user=request.user).values("instance_id")
        )
        .filter(pk__in=ids)
        .select_related("policy", "access_package")
        .first()
    )
    if instance is None:
        raise Http404
    try:
        result = review_accept_recommendations(
            actor=request.user, instance=instance, now=timezone.now()
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        n = len(result.done)
        messages.success(
            request,
            ngettext(
                "Accepted the recommendation for %(n)d person.",
                "Accepted the recommendations for %(n)d people.",
                n,
            )
            % {"n": n},
        )
    return redirect("reviews:list")


def _summary(decision, n):
    if decision == Decision.APPROVE:
        return ngettext(
            "You approved the access of %(n)d person", "You approved the access of %(n)d people", n
        ) % {"n": n}
    if decision == Decision.DENY:
        return ngettext(
            "You denied the access of %(n)d person", "You denied the access of %(n)d people", n
        ) % {"n": n}
    return ngettext(
        "You marked the access of %(n)d person as don't know",
        "You marked the access of %(n)d people as don't know",
        n,
    ) % {"n": n}


def _label(item):
    return f"{item.target.display_name} – {item.instance.access_package.display_name}"


def _report(request, decision, result):
    done = result.done
    if done:
        summary = _summary(decision, len(done))
        if len(done) <= NAMED_IN_MESSAGE:
            summary += ": " + "; ".join(_label(item) for item in done)
        messages.success(request, summary + ".")
    for item, message in result.refused:
        messages.error(request, f"{_label(item)}: {message}")
