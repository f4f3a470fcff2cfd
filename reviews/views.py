"""The Access reviews tab of My Access: the items waiting for me, deciding one or many."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from entitlements.errors import DomainError
from entitlements.pagination import CAP

from . import selectors
from .forms import ReviewDecisionForm
from .models import Decision, ReviewInstance, ReviewItemReviewer, ReviewStatus
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


class _ReviewQueue:
    """The items ``user`` may decide, in the order of the tab: reviews ending first, in each
    the undecided people first, then by name. Each (review, undecided or not) is a segment
    counted once; a page reads only the segments it overlaps, by name through the users'
    name index, so its cost does not grow with the items of a 100,000-item review that are
    not shown (a single ORDER BY over the whole set joined and sorted every item). Segment
    counts stop at ``pagination.CAP``: past it the tab says "more than"."""

    def __init__(self, user):
        self.items = selectors.reviewable_items(user=user)
        instances = ReviewInstance.objects.filter(
            status=ReviewStatus.IN_PROGRESS,
            pk__in=ReviewItemReviewer.objects.filter(user_id=user.pk).values("instance_id"),
        ).order_by("end", "pk")
        self.undecided, self.capped, self.segments = {}, False, []
        for instance_id in instances.values_list("pk", flat=True):
            for undecided in (True, False):
                n = self._segment(instance_id, undecided).order_by()[: CAP + 1].count()
                self.capped = self.capped or n > CAP
                self.segments.append((instance_id, undecided, min(n, CAP)))
                if undecided:
                    self.undecided[instance_id] = n  # CAP + 1 reads "more than CAP"

    def _segment(self, instance_id, undecided):
        rows = self.items.filter(instance_id=instance_id)
        condition = Q(decision=Decision.NOT_REVIEWED)
        return rows.filter(condition) if undecided else rows.exclude(condition)

    def count(self):
        return sum(n for _instance, _undecided, n in self.segments)

    def __len__(self):
        return self.count()

    def __getitem__(self, bounds):
        start, stop = bounds.start or 0, bounds.stop
        found, offset = [], 0
        for instance_id, undecided, n in self.segments:
            lo, hi = max(start - offset, 0), min(stop - offset, n)
            offset += n
            if hi <= lo:
                continue
            found += (
                self._segment(instance_id, undecided)
                .select_related(
                    "instance__policy", "instance__access_package", "target", "decided_by"
                )
                .order_by("target__display_name", "target_id", "pk")[lo:hi]
            )
        return found


@login_required
def review_list(request):
    user = request.user
    queue = _ReviewQueue(user)
    page = Paginator(queue, PAGE_SIZE).get_page(request.GET.get("page"))
    undecided = queue.undecided
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
            "capped": queue.capped,
            "cap": CAP,
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
