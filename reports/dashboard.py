"""The dashboard: five charts over requests, approvals, assignments and reviews.

Each chart is one aggregate query over the rows the viewer may see
(``Model.objects.restrict(user, "view")``, entitlements/permissions.py), so the page costs the
same handful of queries at ten rows or three hundred thousand
(tests/reports/test_dashboard.py pins the count).
"""

import statistics
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import admin
from django.db import connection
from django.db.models import Aggregate, Count, DurationField, F, Q
from django.db.models.functions import TruncWeek
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from approvals.models import OPEN_STAGE_STATUSES, RequestApprovalStage
from entitlements.models import (
    ADD_REQUEST_TYPES,
    OPEN_ASSIGNMENT_STATES,
    OPEN_REQUEST_STATES,
    AccessPackage,
    Assignment,
    AssignmentRequest,
    RequestState,
    RequestType,
)
from reviews.models import Decision, ReviewInstance, ReviewItem, ReviewStatus

from . import charts

WEEKS = 12
TOP_PACKAGES = 10
REVIEWS_SHOWN = 8
RECENT_REVIEWS = timedelta(days=90)

# What became of a request, in the order the stacked bars show it.
OUTCOMES = [
    ("delivered", [RequestState.DELIVERED, RequestState.PARTIALLY_DELIVERED]),
    ("denied", [RequestState.DENIED]),
    ("canceled", [RequestState.CANCELED]),
    ("failed", [RequestState.DELIVERY_FAILED]),
    ("open", OPEN_REQUEST_STATES),
]
# Requests people made; automatic assignments (systemAdd) come by the thousand and would hide
# them.
PEOPLE_REQUEST_TYPES = [t for t in ADD_REQUEST_TYPES if t != RequestType.SYSTEM_ADD]
# How long approvals have been waiting: (upper bound in days, or None for "longer").
AGE_BUCKETS = [1, 3, 7, 14, None]


def _outcome_names():
    return {
        "delivered": _("Delivered"),
        "denied": _("Denied"),
        "canceled": _("Canceled"),
        "failed": _("Delivery failed"),
        "open": _("Still open"),
    }


class Median(Aggregate):
    """PostgreSQL's median (percentile_cont works on intervals too)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False


@dataclass
class Dashboard:
    """The charts, in the order the page shows them."""

    requests_by_outcome: charts.Chart
    time_to_access: charts.Chart
    approvals_by_age: charts.Chart
    assignments_by_package: charts.Chart
    review_completion: charts.Chart

    def __iter__(self):
        return iter(
            [
                self.requests_by_outcome,
                self.time_to_access,
                self.approvals_by_age,
                self.assignments_by_package,
                self.review_completion,
            ]
        )


def _week_starts(now):
    local = timezone.localtime(now)
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return [monday - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]


def _week_label(start):
    return formats.date_format(start, "M j")


def requests_by_outcome(*, user, weeks):
    """Requests made per week (add requests by people), split by what became of them."""
    rows = (
        AssignmentRequest.objects.restrict(user, "view")
        .filter(created__gte=weeks[0], request_type__in=PEOPLE_REQUEST_TYPES)
        .annotate(week=TruncWeek("created"))
        .values_list("week", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    outcome_of = {state: key for key, states in OUTCOMES for state in states}
    index = {start.date(): i for i, start in enumerate(weeks)}
    counts = {key: [0] * len(weeks) for key, _states in OUTCOMES}
    for week, state, n in rows:
        i = index.get(timezone.localtime(week).date() if timezone.is_aware(week) else week.date())
        if i is not None and state in outcome_of:
            counts[outcome_of[state]][i] += n
    names = _outcome_names()
    return charts.stacked_bar_chart(
        title=_("Requests per week, by outcome"),
        description=_(
            "Access requests made by people each week (automatic assignments left out), "
            "split by what became of them, over the last %(n)d weeks."
        )
        % {"n": len(weeks)},
        labels=[_week_label(w) for w in weeks],
        series=[(names[key], counts[key]) for key, _states in OUTCOMES],
    )


def _median_delays(queryset):
    """{week: median timedelta} of the requests' time from submission to delivery."""
    delay = F("completed_datetime") - F("created")
    by_week = queryset.annotate(week=TruncWeek("completed_datetime")).order_by()
    if connection.vendor == "postgresql":
        rows = by_week.values_list("week").annotate(
            median=Median(delay, output_field=DurationField())
        )
        return dict(rows)
    # SQLite (the demo) has no median; its few rows are sorted here.
    found = {}
    for week, created, completed in by_week.values_list("week", "created", "completed_datetime"):
        found.setdefault(week, []).append(completed - created)
    return {week: statistics.median_low(values) for week, values in found.items()}


def time_to_access(*, user, weeks):
    """The median time from request to delivered access, per week of delivery."""
    delivered = AssignmentRequest.objects.restrict(user, "view").filter(
        completed_datetime__gte=weeks[0],
        request_type__in=PEOPLE_REQUEST_TYPES,
        state__in=[RequestState.DELIVERED, RequestState.PARTIALLY_DELIVERED],
    )
    index = {start.date(): i for i, start in enumerate(weeks)}
    medians = [None] * len(weeks)
    for week, median in _median_delays(delivered).items():
        i = index.get(timezone.localtime(week).date() if timezone.is_aware(week) else week.date())
        if i is not None and median is not None:
            medians[i] = median.total_seconds() / 3600
    known = [m for m in medians if m is not None]
    in_days = bool(known) and max(known) >= 72
    if in_days:
        values = [None if m is None else round(m / 24, 1) for m in medians]
        unit, name = _(" d"), _("Median days")
    else:
        values = [None if m is None else round(m, 1) for m in medians]
        unit, name = _(" h"), _("Median hours")
    return charts.line_chart(
        title=_("Median time from request to access"),
        description=_(
            "For the requests delivered each week: the median time from the request to the "
            "access being delivered, in %(unit)s. A gap is a week without deliveries."
        )
        % {"unit": _("days") if in_days else _("hours")},
        labels=[_week_label(w) for w in weeks],
        values=values,
        name=name,
        unit=unit,
    )


def _age_labels():
    return [
        _("under 1 day"),
        _("1–3 days"),
        _("3–7 days"),
        _("1–2 weeks"),
        _("over 2 weeks"),
    ]


def approvals_by_age(*, user, now):
    """Approval stages waiting for a decision, by how long they have been waiting."""
    terms, lower = {}, 0
    for i, upper in enumerate(AGE_BUCKETS):
        condition = Q(opened_datetime__lte=now - timedelta(days=lower))
        if upper is not None:
            condition &= Q(opened_datetime__gt=now - timedelta(days=upper))
            lower = upper
        terms[f"b{i}"] = Count("id", filter=condition)
    counts = (
        RequestApprovalStage.objects.restrict(user, "view")
        .filter(status__in=OPEN_STAGE_STATUSES)
        .aggregate(**terms)
    )
    return charts.bar_chart(
        title=_("Approvals waiting, by age"),
        description=_(
            "Approval stages waiting for a decision now, by how long they have been open."
        ),
        labels=_age_labels(),
        values=[counts[f"b{i}"] for i in range(len(AGE_BUCKETS))],
        name=_("Waiting"),
    )


def assignments_by_package(*, user):
    """Open assignments per access package: the largest, and the rest together."""
    open_assignments = Assignment.objects.restrict(user, "view").filter(
        state__in=OPEN_ASSIGNMENT_STATES
    )
    # Grouped by the package's id alone, the count reads only assignment_package_state_idx;
    # the names of the few largest are read afterwards.
    top = list(
        open_assignments.values_list("access_package_id")
        .annotate(n=Count("id"))
        .order_by("-n", "access_package_id")[: TOP_PACKAGES + 1]
    )
    shown = top[:TOP_PACKAGES]
    names = dict(
        AccessPackage.objects.filter(pk__in=[pk for pk, _n in shown]).values_list(
            "pk", "display_name"
        )
    )
    labels = [names.get(pk, "") for pk, _n in shown]
    values = [n for _pk, n in shown]
    rest = None
    if len(top) > TOP_PACKAGES:
        rest = (_("all other packages"), open_assignments.count() - sum(values))
    return charts.horizontal_bar_chart(
        title=_("Assignments by access package"),
        description=_("People holding each access package now, the largest %(n)d first.")
        % {"n": TOP_PACKAGES},
        labels=labels,
        values=values,
        name=_("Assignments"),
        rest=rest,
    )


def review_completion(*, user, now):
    """For the reviews in progress and those ended lately: items decided and not decided."""
    instances = list(
        ReviewInstance.objects.restrict(user, "view")
        .filter(Q(status=ReviewStatus.IN_PROGRESS) | Q(end__gte=now - RECENT_REVIEWS))
        .values_list("pk", "access_package__display_name", "end")
        .order_by("-end", "pk")[:REVIEWS_SHOWN]
    )
    instances.reverse()
    # Counted for the instances shown only, by review_item_decision_idx.
    decided, undecided = {}, {}
    items = (
        ReviewItem.objects.filter(instance_id__in=[pk for pk, _name, _end in instances])
        .values_list("instance_id")
        .annotate(
            decided=Count("id", filter=~Q(decision=Decision.NOT_REVIEWED)),
            undecided=Count("id", filter=Q(decision=Decision.NOT_REVIEWED)),
        )
        .order_by()
    )
    for pk, n_decided, n_undecided in items:
        decided[pk], undecided[pk] = n_decided, n_undecided
    labels = [
        _("%(package)s, to %(end)s")
        % {"package": name if len(name) <= 14 else f"{name[:13]}…", "end": _short_date(end)}
        for _pk, name, end in instances
    ]
    return charts.stacked_bar_chart(
        title=_("Access review completion"),
        description=_(
            "For the reviews in progress and those ended in the last 90 days: the items "
            "decided and those still without a decision."
        ),
        labels=labels,
        series=[
            (_("Decided"), [decided.get(pk, 0) for pk, _n, _e in instances]),
            (_("Not decided"), [undecided.get(pk, 0) for pk, _n, _e in instances]),
        ],
    )


def _short_date(value):
    return formats.date_format(timezone.localtime(value), "M j")


def dashboard_for(*, user, now=None):
    """The dashboard's charts over what ``user`` may see."""
    now = now or timezone.now()
    weeks = _week_starts(now)
    return Dashboard(
        requests_by_outcome=requests_by_outcome(user=user, weeks=weeks),
        time_to_access=time_to_access(user=user, weeks=weeks),
        approvals_by_age=approvals_by_age(user=user, now=now),
        assignments_by_package=assignments_by_package(user=user),
        review_completion=review_completion(user=user, now=now),
    )


def dashboard_view(request):
    """The dashboard page of the admin site (GET only; it changes nothing)."""
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "dashboard": dashboard_for(user=request.user),
    }
    return TemplateResponse(request, "admin/reports/dashboard.html", context)
