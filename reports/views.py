"""The report pages of the admin site: filters as GET parameters, bounded pages, a CSV export.

Each report is a ``Report``: a filter form, a selector (``reports.selectors``) and the cells
of its rows, shared by the page and the CSV. A page shows ``PAGE_SIZE`` rows and counts at
most ``COUNT_LIMIT`` (above it the count reads "10,000+", and later pages are reached by
narrowing the filters or through the CSV, which streams every row).
"""

from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _

from entitlements import permissions
from entitlements.csvexport import csv_response
from entitlements.models import Assignment
from reviews.models import ReviewStatus

from . import selectors

PAGE_SIZE = 50
COUNT_LIMIT = 10_000
MAX_PAGE = 20  # the first 1,000 rows; the CSV has them all
CSV_CHUNK = 1000
# Up to this many matching rows, a page is read by their ids (found with the count): the
# planner would otherwise walk an index in the page's order hoping to meet matches early,
# which is fast when matches are many and seconds long when a few are spread over 300,000.
BY_IDS_UP_TO = 2000


def may_see_reports(user):
    """Anybody who may view assignments in at least one catalog (superusers: all of them)."""
    return permissions.can(user, "view", model=Assignment)


@dataclass(frozen=True)
class Link:
    """A cell that links to the admin page of its object; the CSV gets the text only."""

    text: str
    url: str

    def __str__(self):
        return self.text


@dataclass(frozen=True)
class Time:
    """A time as a page shows it (local, to the minute); the CSV keeps ISO 8601."""

    date: str
    clock: str


def _shown(cell):
    if isinstance(cell, datetime):
        local = timezone.localtime(cell)
        return Time(date_format(local, "Y-m-d"), date_format(local, "H:i"))
    return cell


def _person(user):
    return f"{user.display_name} <{user.email}>"


def _admin_url(name, pk):
    return reverse(f"admin:{name}_change", args=[pk])


# ---- filter forms --------------------------------------------------------------------------


class ReportForm(forms.Form):
    """The filters of one report, read from the query string; every field is optional."""


def _text_field(label):
    return forms.CharField(label=label, required=False, max_length=256, strip=True)


def _catalog_field():
    return _text_field(_("Catalog (name contains)"))


def _days_field(label):
    return forms.IntegerField(label=label, required=False, min_value=0, max_value=3650)


class AccessForm(ReportForm):
    user = _text_field(_("User (name or email contains)"))
    package = _text_field(_("Access package (name contains)"))
    resource = _text_field(_("Resource (name contains)"))
    catalog = _catalog_field()


class EndingForm(ReportForm):
    days = forms.IntegerField(
        label=_("Ending within (days)"), required=False, min_value=1, max_value=3650
    )
    user = _text_field(_("User (name or email contains)"))
    package = _text_field(_("Access package (name contains)"))
    catalog = _catalog_field()


class PendingForm(ReportForm):
    older_than_days = _days_field(_("Waiting at least (days)"))
    user = _text_field(_("User (name or email contains)"))
    approver = _text_field(_("Approver (name or email contains)"))
    catalog = _catalog_field()


class ApproverForm(ReportForm):
    older_than_days = _days_field(_("Stage open at least (days)"))
    approver = _text_field(_("Approver (name or email contains)"))
    catalog = _catalog_field()


class ConflictForm(ReportForm):
    KIND_CHOICES = [("packages", _("another access package")), ("groups", _("a group"))]

    kind = forms.ChoiceField(label=_("In conflict with"), required=False, choices=KIND_CHOICES)
    user = _text_field(_("User (name or email contains)"))
    package = _text_field(_("Access package (name contains)"))
    catalog = _catalog_field()


class ReviewForm(ReportForm):
    package = _text_field(_("Access package (name contains)"))
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *ReviewStatus.choices]
    )
    catalog = _catalog_field()


class InactiveForm(ReportForm):
    DAY_CHOICES = [(30, _("30 days")), (60, _("60 days")), (90, _("90 days"))]

    days = forms.TypedChoiceField(
        label=_("No sign-in for"), required=False, coerce=int, choices=DAY_CHOICES, empty_value=30
    )
    user = _text_field(_("User (name or email contains)"))
    department = _text_field(_("Department (contains)"))
    catalog = _catalog_field()


# ---- the reports ---------------------------------------------------------------------------


class Report:
    """One report: its name, filters, selector and the cells of a page of its rows."""

    slug = ""
    title = ""
    description = ""
    form_class = ReportForm
    columns = ()
    by_ids = True  # pages of few rows read by id (see BY_IDS_UP_TO); False for grouped rows

    @property
    def url_name(self):
        return f"reports:{self.slug}"

    @property
    def csv_url_name(self):
        return f"reports:{self.slug}-csv"

    def queryset(self, *, viewer, now, filters):
        raise NotImplementedError

    def rows(self, objects, *, viewer, filters):
        """The cells of ``objects`` (one page or one CSV chunk), in ``columns`` order."""
        raise NotImplementedError


class AccessReport(Report):
    slug = "access"
    title = _("Who has access to what")
    description = _(
        "Every resource role a person holds through an access package that is still assigned, "
        "with the package that gives it. Filter by user, package or resource."
    )
    form_class = AccessForm
    columns = (
        _("User"),
        _("Resource"),
        _("Role"),
        _("Through access package"),
        _("Catalog"),
        _("Delivery"),
        _("Since"),
        _("Ends"),
    )

    def queryset(self, *, viewer, now, filters):
        return selectors.access_held(viewer=viewer, **filters)

    def rows(self, objects, *, viewer, filters):
        for grant in objects:
            assignment = grant.assignment
            package = assignment.access_package
            yield [
                _person(grant.target),
                grant.resource_role.resource.display_name,
                grant.resource_role.display_name,
                Link(package.display_name, _admin_url("entitlements_assignment", assignment.pk)),
                package.catalog.display_name,
                grant.get_state_display(),
                assignment.schedule_start,
                assignment.schedule_end,
            ]


class EndingReport(Report):
    slug = "ending"
    title = _("Assignments ending soon")
    description = _("Assignments that end in the next days, soonest first (30 days unless set).")
    form_class = EndingForm
    columns = (_("Ends"), _("User"), _("Access package"), _("Catalog"), _("Policy"), _("Since"))
    default_days = 30

    def queryset(self, *, viewer, now, filters):
        filters = {**filters, "days": filters.get("days") or self.default_days}
        return selectors.assignments_ending(viewer=viewer, now=now, **filters)

    def rows(self, objects, *, viewer, filters):
        for assignment in objects:
            package = assignment.access_package
            yield [
                assignment.schedule_end,
                _person(assignment.target),
                Link(package.display_name, _admin_url("entitlements_assignment", assignment.pk)),
                package.catalog.display_name,
                assignment.assignment_policy.display_name,
                assignment.schedule_start,
            ]


class PendingReport(Report):
    slug = "pending"
    title = _("Pending requests by age")
    description = _(
        "Requests waiting for an approval, oldest first, with the stage they wait in and "
        "who may decide it."
    )
    form_class = PendingForm
    columns = (
        _("Waiting since (request)"),
        _("Waiting (days)"),
        _("User"),
        _("Access package"),
        _("Catalog"),
        _("Stage"),
        _("Approvers"),
    )

    def queryset(self, *, viewer, now, filters):
        self.now = now
        filters = {**filters, "older_than_days": filters.get("older_than_days") or 0}
        return selectors.pending_requests(viewer=viewer, now=now, **filters)

    def rows(self, objects, *, viewer, filters):
        objects = list(objects)
        stages = selectors.open_stages_of(objects)
        for request in objects:
            stage = stages.get(request.pk)
            approvers = ", ".join(_person(a.user) for a in stage.approvers.all()) if stage else ""
            yield [
                request.created,
                (self.now - request.created).days,
                _person(request.target),
                Link(
                    request.access_package.display_name,
                    _admin_url("entitlements_assignmentrequest", request.pk),
                ),
                request.access_package.catalog.display_name,
                stage.sequence if stage else "",
                approvers,
            ]


class ApproverReport(Report):
    slug = "approvers"
    title = _("Pending requests by approver")
    description = _(
        "Who the pending requests wait on: per approver, how many requests and since when, "
        "the busiest first."
    )
    form_class = ApproverForm
    columns = (_("Approver"), _("Requests waiting"), _("Stage open since"))
    by_ids = False

    def queryset(self, *, viewer, now, filters):
        filters = {**filters, "older_than_days": filters.get("older_than_days") or 0}
        return selectors.approver_backlog(viewer=viewer, now=now, **filters)

    def rows(self, objects, *, viewer, filters):
        for row in objects:
            yield [
                f"{row['user__display_name']} <{row['user__email']}>",
                row["waiting"],
                row["oldest"],
            ]


class ConflictReport(Report):
    slug = "conflicts"
    title = _("Separation of duties conflicts")
    description = _(
        "People who already hold an access package together with an incompatible one, or "
        "while being in a group incompatible with it."
    )
    form_class = ConflictForm
    columns = (_("User"), _("Access package"), _("Catalog"), _("In conflict with"), _("Since"))

    def queryset(self, *, viewer, now, filters):
        filters = dict(filters)
        kind = filters.pop("kind", "") or "packages"
        selector = selectors.group_conflicts if kind == "groups" else selectors.package_conflicts
        return selector(viewer=viewer, **filters)

    def rows(self, objects, *, viewer, filters):
        groups = filters.get("kind") == "groups"
        for row in objects:
            template = _g("group %(name)s") if groups else _g("access package %(name)s")
            yield [
                f"{row['user_name']} <{row['user_email']}>",
                Link(row["package"], _admin_url("entitlements_assignment", row["assignment_id"])),
                row["catalog"],
                template % {"name": row["other"]},
                row["since"],
            ]


class ReviewReport(Report):
    slug = "reviews"
    title = _("Access review results")
    description = _(
        "Per access review: how many decisions were made and not made, and how much access "
        "applying the results removed."
    )
    form_class = ReviewForm
    columns = (
        _("Access review"),
        _("Catalog"),
        _("Status"),
        _("Ends"),
        _("Items"),
        _("Decided"),
        _("Undecided"),
        _("Approved"),
        _("Denied"),
        _("Don't know"),
        _("Access removed"),
    )

    def queryset(self, *, viewer, now, filters):
        return selectors.reviews(viewer=viewer, **filters)

    def rows(self, objects, *, viewer, filters):
        objects = list(objects)
        counts = selectors.review_counts(objects)
        empty = dict.fromkeys(
            ["items", "decided", "undecided", "approved", "denied", "dont_know", "removed"], 0
        )
        for instance in objects:
            n = counts.get(instance.pk, empty)
            yield [
                Link(str(instance), _admin_url("reviews_reviewinstance", instance.pk)),
                instance.access_package.catalog.display_name,
                instance.get_status_display(),
                instance.end,
                n["items"],
                n["decided"],
                n["undecided"],
                n["approved"],
                n["denied"],
                n["dont_know"],
                n["removed"],
            ]


class InactiveReport(Report):
    slug = "inactive"
    title = _("People with access who do not sign in")
    description = _(
        "Active people holding access who have not signed in for 30, 60 or 90 days, or never."
    )
    form_class = InactiveForm
    columns = (
        _("User"),
        _("Department"),
        _("Last sign-in"),
        _("Open assignments"),
        _("In the directory since"),
    )

    def queryset(self, *, viewer, now, filters):
        filters = {**filters, "days": filters.get("days") or 30}
        return selectors.inactive_holders(viewer=viewer, now=now, **filters)

    def rows(self, objects, *, viewer, filters):
        objects = list(objects)
        counts = selectors.open_assignment_counts(
            viewer=viewer, people=objects, catalog=filters.get("catalog")
        )
        for person in objects:
            yield [
                _person(person),
                person.department,
                person.last_login or _g("never"),
                counts.get(person.pk, 0),
                person.created,
            ]


REPORTS = {
    report.slug: report
    for report in (
        AccessReport,
        EndingReport,
        PendingReport,
        ApproverReport,
        ConflictReport,
        ReviewReport,
        InactiveReport,
    )
}


# ---- views ---------------------------------------------------------------------------------


def _report_or_404(slug):
    try:
        return REPORTS[slug]()
    except KeyError:
        raise Http404(_("There is no such report.")) from None


def _check(request):
    if not may_see_reports(request.user):
        raise PermissionDenied


def _read_filters(request, report):
    """The report's form bound to the query string, and its cleaned filters (None if invalid)."""
    form = report.form_class(request.GET)
    if not form.is_valid():
        return form, None
    return form, {name: value for name, value in form.cleaned_data.items() if value != ""}


def _page_number(request):
    try:
        number = int(request.GET.get("page", 1))
    except ValueError:
        return None
    return number if 1 <= number <= MAX_PAGE else None


def _query_string(request, **changes):
    query = request.GET.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value is not None:
            query[key] = value
    return query.urlencode()


def index(request):
    _check(request)
    context = {
        **admin.site.each_context(request),
        "title": _("Reports"),
        "reports": [report() for report in REPORTS.values()],
    }
    return render(request, "admin/reports/index.html", context)


def _context(request, report, form):
    return {
        **admin.site.each_context(request),
        "title": report.title,
        "report": report,
        "form": form,
        "columns": report.columns,
        "max_rows": number_format(COUNT_LIMIT, force_grouping=True),
        "max_rows_int": COUNT_LIMIT,
        "rows": None,
    }


def _refused(request, report, form, error):
    """The page again with the filters and what is wrong with them; nothing is listed."""
    context = {**_context(request, report, form), "error": error}
    return render(request, "admin/reports/report.html", context, status=400)


def report_view(request, slug):
    """One page of a report: its filters, the count (bounded), ``PAGE_SIZE`` rows."""
    _check(request)
    report = _report_or_404(slug)
    form, filters = _read_filters(request, report)
    if filters is None:
        return _refused(request, report, form, _("These filters are not valid."))
    number = _page_number(request)
    if number is None:
        message = _("Pages go from 1 to %(max)s; narrow the filters or export the CSV.")
        return _refused(request, report, form, message % {"max": MAX_PAGE})
    queryset = report.queryset(viewer=request.user, now=timezone.now(), filters=filters)
    matching = queryset.order_by()
    if matching._fields is None:  # rows are objects: the count needs none of their relations
        matching = matching.select_related(None)
    matching = matching[: COUNT_LIMIT + 1]
    if report.by_ids:
        ids = list(matching.values_list("pk", flat=True))
        counted = len(ids)
        if counted <= BY_IDS_UP_TO:
            queryset = queryset.filter(pk__in=ids)
    else:
        counted = matching.count()
    offset = (number - 1) * PAGE_SIZE
    objects = list(queryset[offset : offset + PAGE_SIZE])
    pages = min(MAX_PAGE, max(1, -(-counted // PAGE_SIZE)))
    count_text = number_format(min(counted, COUNT_LIMIT), force_grouping=True)
    context = {
        **_context(request, report, form),
        "rows": [
            [_shown(cell) for cell in row]
            for row in report.rows(objects, viewer=request.user, filters=filters)
        ],
        "count": counted,
        "count_text": count_text + ("+" if counted > COUNT_LIMIT else ""),
        "page": number,
        "pages": pages,
        "previous_query": _query_string(request, page=number - 1) if number > 1 else None,
        "next_query": _query_string(request, page=number + 1) if number < pages else None,
        "csv_query": _query_string(request, page=None),
    }
    return render(request, "admin/reports/report.html", context)


def report_csv(request, slug):
    """Every row of a report under the same filters, streamed as formula-safe CSV."""
    _check(request)
    report = _report_or_404(slug)
    form, filters = _read_filters(request, report)
    if filters is None:
        return _refused(request, report, form, _("These filters are not valid."))
    viewer = request.user
    queryset = report.queryset(viewer=viewer, now=timezone.now(), filters=filters)

    def lines():
        yield [str(label) for label in report.columns]
        objects = queryset.iterator(chunk_size=CSV_CHUNK)
        while chunk := list(islice(objects, CSV_CHUNK)):
            for row in report.rows(chunk, viewer=viewer, filters=filters):
                yield [str(cell) if isinstance(cell, Link) else cell for cell in row]

    return csv_response(lines(), f"{slug}-{timezone.now():%Y%m%d-%H%M%S}.csv")
