"""Connected systems in the admin: where resources live, how to reach them, how they fare.

Superusers only. A system's page tests its connection (the connector's sentence, or its
error) and links to its groups: "Discover groups" searches them page by page and adds one to
a catalog through ``configuration.resource_add`` (the ownership rule included). Drift reports
are listed read-only, with their differences.
"""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from entitlements.configuration import resource_add
from entitlements.connectors import ConnectorError, connector_for_system
from entitlements.errors import InvalidRequest, PermissionDenied
from entitlements.models import (
    Catalog,
    Channel,
    ConnectedSystem,
    DriftItem,
    DriftReport,
    OriginSystem,
    Resource,
)
from entitlements.services.drift import drift_item_keep

HEALTH_FIELDS = [
    "health",
    "last_success_datetime",
    "last_error",
    "last_error_datetime",
    "consecutive_failures",
]
PAGE_SIZE = 25


class SuperuserOnly:
    """A connected system's settings reach every catalog's resources: superusers only."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)


class ConnectedSystemForm(forms.ModelForm):
    class Meta:
        model = ConnectedSystem
        fields = ["name", "kind", "enabled", "settings", "secret_reference"]

    def clean_settings(self):
        value = self.cleaned_data.get("settings")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Settings are a JSON object, e.g. {"url": "..."}.'))
        return value

    def clean(self):
        data = super().clean()
        kind, settings = data.get("kind"), data.get("settings") or {}
        if kind == ConnectedSystem.Kind.LDAP:
            url = str(settings.get("url", ""))
            if not url.startswith(("ldap://", "ldaps://")):
                self.add_error(
                    "settings",
                    _("An LDAP system needs a url such as ldap://host:389 or ldaps://host:636."),
                )
        return data


@admin.register(ConnectedSystem)
class ConnectedSystemAdmin(SuperuserOnly, admin.ModelAdmin):
    form = ConnectedSystemForm
    list_display = ["name", "kind", "enabled", "health", "last_success_datetime"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    readonly_fields = HEALTH_FIELDS
    change_form_template = "admin/entitlements/connectedsystem/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        (_("Connection"), {"fields": ["settings", "secret_reference"]}),
        (_("Health"), {"fields": HEALTH_FIELDS}),
    ]

    @admin.display(description=_("health"))
    def health(self, obj):
        if obj.pk is None:
            return "-"
        if not obj.enabled:
            return _t("Disabled")
        if obj.is_unhealthy:
            return _t("Unhealthy: %(count)s failures in a row; its work waits") % {
                "count": obj.consecutive_failures
            }
        if obj.consecutive_failures:
            return _t("Failing: %(count)s in a row") % {"count": obj.consecutive_failures}
        return _t("Healthy")

    def get_readonly_fields(self, request, obj=None):
        # The built-in directory's kind is what makes it the built-in one.
        if obj is not None and obj.kind == ConnectedSystem.Kind.BUILTIN:
            return [*HEALTH_FIELDS, "kind"]
        return HEALTH_FIELDS

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and not (
            obj is not None and (obj.kind == ConnectedSystem.Kind.BUILTIN or obj.resources.exists())
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:pk>/test-connection/",
                view(self.test_connection_view),
                name="entitlements_connectedsystem_test",
            ),
            path(
                "<uuid:pk>/discover/",
                view(self.discover_view),
                name="entitlements_connectedsystem_discover",
            ),
            *super().get_urls(),
        ]

    def _system(self, request, pk):
        if not self.has_change_permission(request):
            raise DjangoPermissionDenied
        return get_object_or_404(ConnectedSystem, pk=pk)

    def test_connection_view(self, request, pk):
        return require_POST(self._test_connection)(request, pk)

    def _test_connection(self, request, pk):
        system = self._system(request, pk)
        try:
            sentence = connector_for_system(system).call("test_connection")
        except ConnectorError as exc:
            messages.error(request, _t("Test failed: %(error)s") % {"error": exc})
        except NotImplementedError:
            messages.error(request, _t("This kind of system has no connection to test."))
        else:
            messages.success(request, sentence)
        return redirect("admin:entitlements_connectedsystem_change", system.pk)

    def discover_view(self, request, pk):
        system = self._system(request, pk)
        if request.method == "POST":
            return self._add_to_catalog(request, system)
        query = request.GET.get("q", "").strip()[:256]
        cursor = request.GET.get("cursor") or None
        groups, next_cursor, error = [], None, ""
        try:
            groups, next_cursor = connector_for_system(system).call(
                "search_groups", query, cursor, PAGE_SIZE
            )
        except ConnectorError as exc:
            error = str(exc)
        except ValueError:
            error = _t("That page does not exist; start the search again.")
        added = set(
            Resource.objects.filter(
                connected_system=system, origin_id__in=[g.origin_id for g in groups]
            ).values_list("origin_id", "catalog__display_name")
        )
        in_catalogs = {}
        for origin_id, catalog in added:
            in_catalogs.setdefault(origin_id, []).append(catalog)
        rows = [(g, sorted(in_catalogs.get(g.origin_id, []))) for g in groups]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _t("Discover groups of %(system)s") % {"system": system},
            "system": system,
            "query": query,
            "rows": rows,
            "error": error,
            "next_cursor": next_cursor,
            "cursor": cursor,
            "catalog_choices": list(Catalog.objects.order_by("display_name")),
        }
        return TemplateResponse(
            request, "admin/entitlements/connectedsystem/discover.html", context
        )

    def _add_to_catalog(self, request, system):
        """Add the posted group to the chosen catalog, as the connector describes it."""
        back = reverse("admin:entitlements_connectedsystem_discover", args=[system.pk])
        back += "?" + request.GET.urlencode() if request.GET else ""
        origin_id = request.POST.get("origin_id", "").strip()
        catalog = Catalog.objects.filter(pk=_uuid_or_none(request.POST.get("catalog"))).first()
        if not origin_id or catalog is None:
            messages.error(request, _t("Choose a group and a catalog."))
            return redirect(back)
        try:
            group = _discovered(system, origin_id)
            resource = resource_add(
                actor=request.user,
                catalog=catalog,
                origin_system=OriginSystem.GROUP,
                connected_system=system,
                discovered=group,
                channel=Channel.ADMIN,
            )
        except (ConnectorError, InvalidRequest, PermissionDenied) as exc:
            messages.error(request, str(exc))
            return redirect(back)
        roles = ", ".join(resource.roles.values_list("display_name", flat=True))
        messages.success(
            request,
            _t("%(group)s was added to %(catalog)s with the roles %(roles)s.")
            % {"group": resource.display_name, "catalog": catalog.display_name, "roles": roles},
        )
        return redirect(back)


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _discovered(system, origin_id):
    """The group as the system describes it now (never as the form posted it)."""
    connector = connector_for_system(system)
    name = origin_id.split(",", 1)[0].split("=", 1)[-1]
    cursor = None
    while True:
        groups, cursor = connector.call("search_groups", name, cursor, 200)
        for group in groups:
            if group.origin_id.lower() == origin_id.lower():
                return group
        if cursor is None:
            raise InvalidRequest(
                _t("%(system)s has no group %(group)s any more.")
                % {"system": system, "group": origin_id}
            )


@admin.register(DriftReport)
class DriftReportAdmin(SuperuserOnly, admin.ModelAdmin):
    """What each drift run found; read-only, with the one action "keep" on an extra member."""

    list_display = [
        "system",
        "started",
        "roles_checked",
        "missing_count",
        "extra_count",
        "corrected_count",
        "failed",
    ]
    list_filter = ["system"]
    list_select_related = ["system"]
    date_hierarchy = "started"
    readonly_fields = [
        "system",
        "started",
        "finished",
        "roles_checked",
        "missing_count",
        "extra_count",
        "corrected_count",
        "error",
    ]
    fields = readonly_fields
    change_form_template = "admin/entitlements/driftreport/change_form.html"
    shown_items = 500

    @admin.display(boolean=True, description=_("error"))
    def failed(self, obj):
        return bool(obj.error)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<uuid:pk>/keep/<uuid:item>/",
                self.admin_site.admin_view(require_POST(self.keep_view)),
                name="entitlements_driftreport_keep",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        items = DriftItem.objects.filter(report_id=_uuid_or_none(object_id)).select_related(
            "resource_role__resource"
        )
        extra_context = {
            **(extra_context or {}),
            "drift_items": items[: self.shown_items],
            "drift_items_more": max(0, items.count() - self.shown_items),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def keep_view(self, request, pk, item):
        if not self.has_view_permission(request):
            raise DjangoPermissionDenied
        row = get_object_or_404(
            DriftItem.objects.select_related("resource_role"), pk=item, report_id=pk
        )
        try:
            drift_item_keep(actor=request.user, item=row, channel=Channel.ADMIN)
        except InvalidRequest as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _t("%(member)s is kept in %(role)s as a direct membership.")
                % {"member": row.key, "role": row.resource_role},
            )
        return redirect("admin:entitlements_driftreport_change", pk)
