"""Read-only admin pages for requests, assignments and the resource roles delivered for them.

Their state changes only through the lifecycle services; the actions here call them, and the
services refuse (with a message shown per item) what the person's roles do not allow.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from entitlements import permissions
from entitlements.errors import DomainError
from entitlements.models import (
    Assignment,
    AssignmentRequest,
    AssignmentResourceRole,
    Channel,
    RequestAnswer,
)

from .base import CatalogFilter, PackageFilter, ReadOnlyInlineMixin, ReadOnlyScopedAdmin


class RequestAnswerInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = RequestAnswer
    fields = ["question", "display_value"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=RequestAnswer)


@admin.register(AssignmentRequest)
class AssignmentRequestAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "created",
        "target",
        "access_package",
        "catalog",
        "request_type",
        "state",
        "status",
        "requestor",
    ]
    list_filter = [
        "state",
        "request_type",
        CatalogFilter.on("access_package__catalog"),
        PackageFilter,
    ]
    list_select_related = ["target", "requestor", "access_package__catalog"]
    search_fields = ["target__email", "target__display_name", "requestor__email"]
    show_full_result_count = False
    # No date_hierarchy: its year links read the date of every request (a full scan at
    # 300,000 rows; tests/performance/test_bounded_cost.py).
    inlines = [RequestAnswerInline]
    actions = ["cancel_requests"]

    @admin.display(description=_("catalog"), ordering="access_package__catalog__display_name")
    def catalog(self, obj):
        return obj.access_package.catalog

    @admin.action(description=_("Cancel the selected requests"), permissions=["manage"])
    def cancel_requests(self, request, queryset):
        from entitlements.services.requests import request_cancel

        done = 0
        for item in queryset.select_related("access_package__catalog", "target"):
            try:
                request_cancel(actor=request.user, request=item, channel=Channel.ADMIN)
                done += 1
            except DomainError as error:
                messages.error(request, f"{item}: {error}")
        if done:
            messages.success(request, _("%(n)s requests canceled.") % {"n": done})


class GrantInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = AssignmentResourceRole
    fields = ["resource_role", "state", "attempts", "error", "delivered_datetime"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=AssignmentResourceRole)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("resource_role__resource", "target")


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "target",
        "access_package",
        "catalog",
        "assignment_policy",
        "state",
        "schedule_start",
        "schedule_end",
    ]
    list_filter = ["state", CatalogFilter.on("access_package__catalog"), PackageFilter]
    list_select_related = ["target", "access_package__catalog", "assignment_policy__access_package"]
    search_fields = ["target__email", "target__display_name"]
    show_full_result_count = False
    inlines = [GrantInline]
    actions = ["reprocess_assignments", "remove_assignments"]

    @admin.display(description=_("catalog"), ordering="access_package__catalog__display_name")
    def catalog(self, obj):
        return obj.access_package.catalog

    @admin.action(
        description=_("Retry delivery of the selected assignments"), permissions=["manage"]
    )
    def reprocess_assignments(self, request, queryset):
        from entitlements.services.delivery import assignment_reprocess

        done = 0
        for item in queryset.select_related("access_package__catalog", "target"):
            try:
                assignment_reprocess(actor=request.user, assignment=item, channel=Channel.ADMIN)
                done += 1
            except DomainError as error:
                messages.error(request, f"{item}: {error}")
        if done:
            messages.success(request, _("Delivery retried for %(n)s assignments.") % {"n": done})

    @admin.action(description=_("Remove the selected assignments"), permissions=["manage"])
    def remove_assignments(self, request, queryset):
        from entitlements.services.ending import assignments_remove

        result = assignments_remove(
            actor=request.user,
            assignments=list(queryset.select_related("access_package__catalog", "target")),
            channel=Channel.ADMIN,
            reason=str(_("Removed by an administrator")),
        )
        for item, message in result.refused:
            messages.error(request, f"{item}: {message}")
        if result.done:
            messages.success(request, _("%(n)s assignments removed.") % {"n": len(result.done)})


@admin.register(AssignmentResourceRole)
class AssignmentResourceRoleAdmin(ReadOnlyScopedAdmin):
    list_display = ["target", "resource_role", "package", "state", "attempts", "error", "modified"]
    list_filter = [
        "state",
        CatalogFilter.on("assignment__access_package__catalog"),
        PackageFilter.on("assignment__access_package"),
    ]
    list_select_related = ["target", "resource_role__resource", "assignment__access_package"]
    search_fields = ["target__email", "target__display_name", "resource_role__display_name"]
    show_full_result_count = False

    @admin.display(description=_("access package"))
    def package(self, obj):
        return obj.assignment.access_package
