"""The audit trail in the admin: strictly read-only, filterable, exportable as CSV, and, for
superusers, as the chain's evidence export (docs/audit.md)."""

import datetime
import json

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseBadRequest, HttpResponseNotAllowed, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from entitlements.audit import audit_evidence
from entitlements.csvexport import csv_response
from entitlements.models import AuditEvent

from .base import CatalogFilter, InputFilter, PackageFilter, ReadOnlyScopedAdmin, _uuid_or_none

CSV_COLUMNS = [
    ("created", _("time")),
    ("actor_display", _("actor")),
    ("channel", _("channel")),
    ("action", _("action")),
    ("object_type", _("object type")),
    ("object_id", _("object id")),
    ("before", _("before")),
    ("after", _("after")),
    ("reason", _("reason")),
    ("target__email", _("user")),
    ("access_package__display_name", _("access package")),
    ("request_id", _("request")),
    ("data", _("details")),
]


def stream_csv(queryset, filename):
    fields = [field for field, _label in CSV_COLUMNS]

    def rows():
        yield [str(label) for _field, label in CSV_COLUMNS]
        # Details (a configuration change's values before and after) as JSON, not a repr.
        for *row, data in queryset.values_list(*fields).iterator(chunk_size=2000):
            yield [*row, json.dumps(data, sort_keys=True) if data else ""]

    return csv_response(rows(), filename)


class EvidenceForm(forms.Form):
    """The period of an evidence export: whole days, both included."""

    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Events created on these days, both included (server time zone)."),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            raise ValidationError(_("The first day must not be after the last one."))
        # Beyond these years a day's midnight (or the one after it) is not a datetime.
        days = [cleaned[name] for name in ("start", "end") if cleaned.get(name)]
        if any(not 1900 <= day.year <= 9998 for day in days):
            raise ValidationError(_("Choose days from the year 1900 to 9998."))
        return cleaned

    def period(self):
        """[start, end) as aware datetimes: midnight of the first day to the one after the last."""
        start, end = self.cleaned_data["start"], self.cleaned_data["end"]
        midnight = datetime.time()
        return (
            timezone.make_aware(datetime.datetime.combine(start, midnight)),
            timezone.make_aware(datetime.datetime.combine(end, midnight))
            + datetime.timedelta(days=1),
        )


class UserFilter(InputFilter):
    title = _("user (email)")
    parameter_name = "user"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(Q(target__email__icontains=value) | Q(actor__email__icontains=value))


class RequestFilter(InputFilter):
    title = _("request id")
    parameter_name = "request"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        request_id = _uuid_or_none(value)
        return queryset.filter(request_id=request_id) if request_id else queryset.none()


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "created",
        "actor_display",
        "channel",
        "action",
        "object_type",
        "before",
        "after",
        "target",
        "access_package",
        "request_id",
    ]
    list_filter = [
        "channel",
        "action",
        UserFilter,
        PackageFilter,
        RequestFilter,
        CatalogFilter.on("access_package__catalog"),
    ]
    list_select_related = ["target", "access_package"]
    search_fields = ["actor_display", "target__email", "action", "object_id", "reason"]
    show_full_result_count = False
    actions = ["export_csv"]

    def get_urls(self):
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name="entitlements_auditevent_export",
        )
        evidence = path(
            "evidence/",
            self.admin_site.admin_view(self.evidence_view),
            name="entitlements_auditevent_evidence",
        )
        return [export, evidence, *super().get_urls()]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Export the selected events as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return stream_csv(queryset, self._filename())

    def export_view(self, request):
        """Every event matching the changelist's filters and search, streamed as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("These filters are not valid."))
        return stream_csv(changelist.get_queryset(request), self._filename())

    def evidence_view(self, request):
        """Superusers: the form for a period, then its evidence export as a JSON Lines file."""
        if not request.user.is_superuser:
            raise PermissionDenied
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        form = EvidenceForm(request.GET if request.GET else None)
        if form.is_valid():
            start, end = form.period()
            response = StreamingHttpResponse(
                audit_evidence(start=start, end=end), content_type="application/jsonl"
            )
            name = f"audit-evidence-{form.cleaned_data['start']}-{form.cleaned_data['end']}.jsonl"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _t("Evidence export"),
            "form": form,
        }
        return TemplateResponse(request, "admin/entitlements/auditevent/evidence.html", context)

    def _filename(self):
        return f"audit-events-{timezone.now():%Y%m%d-%H%M%S}.csv"
