"""The admin of custom extensions: a catalog's owners configure its extensions and the
policy stages that call them; the callouts (the outbox) are shown, never edited."""

import json

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from entitlements import permissions
from entitlements.admin.base import (
    CatalogFilter,
    ConfigurationAdmin,
    ReadOnlyScopedAdmin,
    ScopedInlineMixin,
)

from .models import (
    CustomExtension,
    CustomExtensionCallout,
    CustomExtensionStageSetting,
    masked_url,
)


class StageSettingInline(ScopedInlineMixin, admin.TabularInline):
    model = CustomExtensionStageSetting
    fk_name = "custom_extension"
    fields = ["policy", "stage"]
    extra = 0
    autocomplete_fields = []
    verbose_name = _("policy stage that calls it")
    verbose_name_plural = _("policy stages that call it")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "policy" and field is not None:
            field.queryset = permissions.restrict(
                field.queryset.select_related("access_package"), request.user, "change"
            )
        return field


@admin.register(CustomExtension)
class CustomExtensionAdmin(ConfigurationAdmin):
    list_display = ["display_name", "catalog", "endpoint", "behavior", "timeout_seconds"]
    list_filter = [CatalogFilter.on("catalog"), "behavior"]
    list_select_related = ["catalog"]
    search_fields = ["display_name", "endpoint_url"]
    fields = [
        "catalog",
        "display_name",
        "description",
        "endpoint_url",
        "secret_reference",
        "timeout_seconds",
        "behavior",
        "max_wait",
    ]
    inlines = [StageSettingInline]

    def get_readonly_fields(self, request, obj=None):
        return ["catalog"] if obj is not None else []

    @admin.display(description=_("endpoint URL"), ordering="endpoint_url")
    def endpoint(self, obj):
        return masked_url(obj.endpoint_url)


@admin.register(CustomExtensionCallout)
class CustomExtensionCalloutAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "created",
        "custom_extension",
        "stage",
        "state",
        "attempt_count",
        "next_attempt_datetime",
        "target",
    ]
    list_filter = ["state", "stage", CatalogFilter.on("custom_extension__catalog")]
    list_select_related = ["custom_extension", "request__target", "assignment__target"]
    fields = [
        "id",
        "custom_extension",
        "stage",
        "state",
        "request",
        "assignment",
        "waits",
        "wait_until",
        "attempt_count",
        "next_attempt_datetime",
        "attempt_list",
        "sent_datetime",
        "callback_datetime",
        "callback_state",
        "callback_detail",
        "body",
    ]
    readonly_fields = fields

    @admin.display(description=_("for"))
    def target(self, obj):
        subject = obj.request or obj.assignment
        return subject.target.display_name if subject else ""

    @admin.display(description=_("attempts"))
    def attempt_list(self, obj):
        return format_html_join(
            "\n",
            "<div>{} · {} · {} ms{}</div>",
            (
                (
                    attempt.get("at", ""),
                    attempt.get("status") or _("no answer"),
                    attempt.get("durationMs", ""),
                    f" · {attempt['error']}" if attempt.get("error") else "",
                )
                for attempt in obj.attempts
            ),
        ) or _("None yet")

    @admin.display(description=_("body"))
    def body(self, obj):
        return json.dumps(obj.payload, indent=2, sort_keys=True)
