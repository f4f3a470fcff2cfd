"""Direct and bulk assignment, and bulk removal, from the access package's admin page.

Pick people (autocomplete) or upload a CSV of emails; the preview (a ``BulkJob`` row, nothing
else) shows who would be assigned or lose the package and who is refused, and why; *Start*
queues the job, whose page shows its progress and then its report (also as CSV). Every view
asks ``permissions.can_manage_assignments`` for the package's catalog; the services decide.
"""

import csv
import io
import re

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from directory.models import User
from entitlements import permissions
from entitlements.csvexport import csv_response
from entitlements.errors import DomainError
from entitlements.models import AssignmentPolicy, AssignmentRequest, BulkJob
from entitlements.services.bulk import (
    MAX_USERS,
    bulk_job_prepare,
    bulk_job_rows,
    bulk_job_start,
    job_is_stale,
    users_by_email,
)

from .widgets import PeopleAutocomplete

MAX_CSV_BYTES = 8 * 1024 * 1024  # 50,000 rows with names and a few columns
PREVIEW_LIMIT = 200  # refused rows listed on the page; the CSV report has everyone
ACCEPTED_LIMIT = 50  # people listed as "would be assigned" on the preview
# NUL and the other C0 controls but tab, line feed and carriage return: not text to read.
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def read_email_csv(upload):
    """[(row number, email)] from an uploaded CSV: an ``email`` column, else the first one.

    Raises ValidationError for a file that cannot be read at all (too large, not text, empty).
    """
    if upload.size > MAX_CSV_BYTES:
        raise ValidationError(
            _("The file is larger than %(mb)d MB; split it.") % {"mb": MAX_CSV_BYTES // 2**20}
        )
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            _(
                "The file is not UTF-8 text (unreadable byte at position %(at)d); save it as "
                "“CSV UTF-8” and upload it again."
            )
            % {"at": exc.start}
        ) from exc
    bad = CONTROL_CHARACTER.search(text)
    if bad is not None:
        bad, line = bad.start(), text.count("\n", 0, bad.start()) + 1
        raise ValidationError(
            _(
                "The file holds a control character (code %(code)d) on line %(line)d; it is "
                "not a CSV file of emails."
            )
            % {"code": ord(text[bad]), "line": line}
        )
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise ValidationError(_("The file is not a readable CSV file: %(e)s") % {"e": exc}) from exc
    column, first = 0, 0
    if rows:
        header = [cell.strip().lower() for cell in rows[0]]
        for name in ("email", "mail", "e-mail", "userprincipalname"):
            if name in header:
                column, first = header.index(name), 1
                break
        else:
            # "Email address", "E-mail (work)": a header that starts with it.
            for i, cell in enumerate(header):
                if cell.startswith(("email", "e-mail")):
                    column, first = i, 1
                    break
    found = [
        (number, row[column].strip())
        for number, row in enumerate(rows[first:], start=first + 1)
        if len(row) > column and row[column].strip()
    ]
    if not found:
        raise ValidationError(_("The file lists no email addresses."))
    if len(found) > MAX_USERS:
        raise ValidationError(
            _("The file lists more than %(n)d people; split it.") % {"n": MAX_USERS}
        )
    return found


def resolve_emails(rows):
    """([(user, row)], [(row, email, why)]) for the CSV's rows: one query for all of them."""
    users = users_by_email([email for _n, email in rows])
    found, problems, seen = [], [], {}
    for number, email in rows:
        key = email.lower()
        try:
            validate_email(email)
        except ValidationError:
            problems.append((number, email, _("This is not an email address.")))
            continue
        if key in seen:
            problems.append(
                (number, email, _("Listed already on row %(row)d.") % {"row": seen[key]})
            )
            continue
        seen[key] = number
        user = users.get(key)
        if user is None:
            problems.append((number, email, _("Nobody in the directory has this email address.")))
        else:
            found.append((user, number))
    return found, problems


class _PeopleForm(forms.Form):
    users = forms.ModelMultipleChoiceField(
        label=gettext_lazy("People"), queryset=User.objects.all(), required=False
    )
    csv_file = forms.FileField(
        label=gettext_lazy("Or a CSV file of emails"),
        required=False,
        help_text=gettext_lazy(
            "One email address per line, or a column named “email”; UTF-8, at most 8 MB."
        ),
    )
    justification = forms.CharField(
        label=gettext_lazy("Justification"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        source = AssignmentRequest._meta.get_field("target")
        field = self.fields["users"]
        field.widget = PeopleAutocomplete(source, admin_site)
        field.widget.choices = field.choices

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        return read_email_csv(upload) if upload else []

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("users") and not data.get("csv_file"):
            raise ValidationError(_("Choose people, or upload a CSV file of their emails."))
        return data

    def people(self):
        """([(user, row or None)], problems): the picked people, then the file's."""
        picked = [(user, None) for user in self.cleaned_data["users"]]
        from_file, problems = resolve_emails(self.cleaned_data["csv_file"])
        chosen = {user.pk for user, _r in picked}
        return picked + [(u, r) for u, r in from_file if u.pk not in chosen], problems


class AssignForm(_PeopleForm):
    policy = forms.ModelChoiceField(
        label=gettext_lazy("Policy"), queryset=AssignmentPolicy.objects.none()
    )
    schedule_start = forms.DateTimeField(
        label=gettext_lazy("Starts"),
        required=False,
        help_text=gettext_lazy("Empty: now. For example 2026-12-24 09:00."),
    )
    schedule_end = forms.DateTimeField(
        label=gettext_lazy("Ends"),
        required=False,
        help_text=gettext_lazy("Empty: as the policy's expiration says."),
    )
    include_out_of_scope = forms.BooleanField(
        label=gettext_lazy("Also assign people outside the policy's scope"), required=False
    )
    notify = forms.BooleanField(
        label=gettext_lazy("Tell each person by email that they have the access"),
        required=False,
        initial=True,
        help_text=gettext_lazy("Untick to assign silently: nobody is emailed about it."),
    )
    field_order = [
        "users",
        "csv_file",
        "policy",
        "schedule_start",
        "schedule_end",
        "justification",
        "notify",
        "include_out_of_scope",
    ]

    def __init__(self, *args, access_package, **kwargs):
        super().__init__(*args, **kwargs)
        policies = AssignmentPolicy.objects.filter(access_package=access_package).order_by(
            "display_name"
        )
        self.fields["policy"].queryset = policies
        if len(policies) == 1:
            self.fields["policy"].initial = policies[0].pk


class RemoveForm(_PeopleForm):
    notify = forms.BooleanField(
        label=gettext_lazy("Tell each person by email that the access has ended"),
        required=False,
    )


class PackageAssignmentMixin:
    """The package page's direct and bulk assignment and bulk removal (AccessPackageAdmin)."""

    def get_urls(self):
        view = self.admin_site.admin_view
        name = "entitlements_accesspackage_"
        return [
            path("<str:object_id>/assign/", view(self.assign_view), name=name + "assign"),
            path(
                "<str:object_id>/remove-assignments/",
                view(self.bulk_remove_view),
                name=name + "bulk_remove",
            ),
            path(
                "<str:object_id>/bulk-jobs/<uuid:job_id>/",
                view(self.bulk_job_view),
                name=name + "bulk_job",
            ),
            path(
                "<str:object_id>/bulk-jobs/<uuid:job_id>/status/",
                view(self.bulk_job_status_view),
                name=name + "bulk_job_status",
            ),
            path(
                "<str:object_id>/bulk-jobs/<uuid:job_id>/report.csv",
                view(self.bulk_job_report_view),
                name=name + "bulk_job_report",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["may_assign"] = obj is not None and permissions.can_manage_assignments(
            request.user, obj.catalog
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # ----------------------------------------------------------------------------------

    def _package_for_assignment(self, request, object_id):
        """The package, when ``request.user`` may assign it; otherwise 403."""
        package = self.get_object(request, object_id)
        if package is None or not permissions.can_manage_assignments(request.user, package.catalog):
            raise PermissionDenied
        return package

    def _job(self, package, job_id, defer=()):
        job = BulkJob.objects.filter(pk=job_id, access_package=package).defer(*defer).first()
        if job is None:
            raise Http404
        return job

    def _context(self, request, package, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": package,
            "package": package,
            "title": title,
            **extra,
        }

    def _job_url(self, package, job):
        return reverse(
            f"{self.admin_site.name}:entitlements_accesspackage_bulk_job",
            args=[package.pk, job.pk],
        )

    def _people_view(self, request, object_id, kind):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        package = self._package_for_assignment(request, object_id)
        is_add = kind == BulkJob.Kind.ADD
        form_class = AssignForm if is_add else RemoveForm
        extra = {"access_package": package} if is_add else {}
        if request.method == "POST":
            form = form_class(request.POST, request.FILES, admin_site=self.admin_site, **extra)
            if form.is_valid():
                people, problems = form.people()
                data = form.cleaned_data
                try:
                    job = bulk_job_prepare(
                        actor=request.user,
                        kind=kind,
                        access_package=package,
                        users=people,
                        policy=data.get("policy"),
                        schedule_start=data.get("schedule_start"),
                        schedule_end=data.get("schedule_end"),
                        justification=data["justification"],
                        notify=data["notify"],
                        include_out_of_scope=data.get("include_out_of_scope", False),
                        problems=problems,
                    )
                except DomainError as error:
                    form.add_error(
                        error.field if error.field in form.fields else None, error.message
                    )
                else:
                    return redirect(self._job_url(package, job))
        else:
            form = form_class(admin_site=self.admin_site, **extra)
        title = (
            _("Assign %(package)s directly") if is_add else _("Remove %(package)s from people")
        ) % {"package": package.display_name}
        context = self._context(
            request,
            package,
            title,
            form=form,
            is_add=is_add,
            media=self.media + form.media,
            policy_notifications=list(
                AssignmentPolicy.objects.filter(access_package=package).values_list(
                    "display_name", "is_assignment_notification_disabled"
                )
            )
            if is_add
            else [],
        )
        return TemplateResponse(request, "admin/entitlements/assign/form.html", context)

    def assign_view(self, request, object_id):
        return self._people_view(request, object_id, BulkJob.Kind.ADD)

    def bulk_remove_view(self, request, object_id):
        return self._people_view(request, object_id, BulkJob.Kind.REMOVE)

    def bulk_job_view(self, request, object_id, job_id):
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        package = self._package_for_assignment(request, object_id)
        job = self._job(package, job_id)
        error = ""
        if request.method == "POST":
            try:
                bulk_job_start(actor=request.user, job=job)
            except DomainError as exc:
                error = exc.message
            else:
                return redirect(self._job_url(package, job))
        accepted = []
        if job.state == BulkJob.State.PREVIEW:
            ids = [pk for pk, _row in job.user_ids[:ACCEPTED_LIMIT]]
            names = {str(u.pk): u for u in User.objects.filter(pk__in=ids)}
            accepted = [names[pk] for pk in ids if pk in names]
        refused = [r for r in job.results if r["outcome"] == "refused"]
        refused.sort(key=lambda r: (r["row"] is None, r["row"] or 0))
        if job.kind == BulkJob.Kind.ADD:
            title = _("Direct assignment of %(package)s") % {"package": package.display_name}
        else:
            title = _("Removal of %(package)s") % {"package": package.display_name}
        context = self._context(
            request,
            package,
            title,
            job=job,
            error=error,
            accepted=accepted,
            more_accepted=max(0, len(job.user_ids) - len(accepted)),
            refused=refused[:PREVIEW_LIMIT],
            more_refused=max(0, len(refused) - PREVIEW_LIMIT),
            counts=job.counts(),
            status_url=reverse(
                f"{self.admin_site.name}:entitlements_accesspackage_bulk_job_status",
                args=[package.pk, job.pk],
            ),
            report_url=reverse(
                f"{self.admin_site.name}:entitlements_accesspackage_bulk_job_report",
                args=[package.pk, job.pk],
            ),
            may_start=job.actor_id == request.user.pk,
            # The service's rule: the message or the worker may be lost.
            may_requeue=job_is_stale(job),
        )
        return TemplateResponse(request, "admin/entitlements/assign/job.html", context)

    def bulk_job_status_view(self, request, object_id, job_id):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        package = self._package_for_assignment(request, object_id)
        # Polled every 1.5 s: not the list of people (up to 50,000 ids).
        job = self._job(package, job_id, defer=("user_ids", "results"))
        return JsonResponse(
            {
                "state": job.state,
                "processed": job.processed,
                "total": job.total,
                "percent": job.percent,
                **job.counts(),
            }
        )

    def bulk_job_report_view(self, request, object_id, job_id):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        package = self._package_for_assignment(request, object_id)
        job = self._job(package, job_id)
        return csv_response(bulk_job_rows(job), f"bulk-{job.kind}-{job.pk}.csv")
