"""Directory imports in the admin (superusers only, like the connected systems they read).

Saving and deleting go through the audited configuration services. "Run now" enqueues a run
for the worker (the same task the schedule sends); the last run's changes, examples and
errors are shown read-only on the import's page.
"""

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from entitlements.admin.connectors import SuperuserOnly
from entitlements.configuration import config_delete, config_save
from entitlements.models import Channel
from entitlements.queue import enqueue_named

from .importing import RUN_TASK
from .models.importing import DirectoryImport

LAST_RUN = ["last_started", "last_finished", "running", "last_summary", "last_error"]


@admin.register(DirectoryImport)
class DirectoryImportAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = [
        "name",
        "system",
        "flavor",
        "enabled",
        "next_run",
        "last_finished",
        "last_counts",
    ]
    list_filter = ["enabled", "flavor"]
    list_select_related = ["system"]
    search_fields = ["name"]
    readonly_fields = LAST_RUN
    actions = ["run_now"]
    fieldsets = [
        (None, {"fields": ["name", "system", "flavor", "enabled", "interval", "next_run"]}),
        (
            _("People"),
            {
                "fields": [
                    "user_base",
                    "user_filter",
                    "key_attribute",
                    "attribute_map",
                    "disabled_filter",
                    "disable_missing",
                    "disable_limit",
                ]
            },
        ),
        (
            _("Groups"),
            {
                "fields": [
                    "import_groups",
                    "group_base",
                    "group_filter",
                    "group_name_attribute",
                    "member_attribute",
                ]
            },
        ),
        (_("Last run"), {"fields": LAST_RUN}),
    ]

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        config_save(actor=request.user, obj=obj, channel=Channel.ADMIN)

    def delete_model(self, request, obj):
        config_delete(actor=request.user, objs=[obj], channel=Channel.ADMIN)

    def delete_queryset(self, request, queryset):
        config_delete(actor=request.user, objs=queryset, channel=Channel.ADMIN)

    @admin.display(description=_("running"), boolean=True)
    def running(self, obj):
        return obj.lease_expires is not None

    @admin.display(description=_("last run"))
    def last_counts(self, obj):
        counts = (obj.last_result or {}).get("counts")
        if obj.last_error:
            return _t("failed")
        if not counts:
            return "-"
        return _t("%(created)s created, %(updated)s updated, %(disabled)s disabled") % {
            "created": counts.get("created", 0),
            "updated": counts.get("updated", 0),
            "disabled": counts.get("disabled", 0),
        }

    @admin.display(description=_("last run's changes"))
    def last_summary(self, obj):
        if not obj.last_result:
            return "-"
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.last_result, indent=2, ensure_ascii=False)
        )

    @admin.action(description=_("Run the selected imports now"))
    def run_now(self, request, queryset):
        names = []
        for directory_import in queryset:
            enqueue_named(RUN_TASK, str(directory_import.pk))
            names.append(directory_import.name)
        self.message_user(
            request,
            _t("A run of %(names)s was queued; its changes appear here when it ends.")
            % {"names": ", ".join(names)},
            messages.SUCCESS,
        )
