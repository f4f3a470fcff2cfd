"""Read-only admin pages for the approval stages of requests and their resolved approvers."""

from django.contrib import admin

from entitlements import permissions
from entitlements.admin.base import CatalogFilter, ReadOnlyInlineMixin, ReadOnlyScopedAdmin

from .models import RequestApprovalStage, StageApprover


class StageApproverInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = StageApprover
    fields = ["user", "kind", "notified_datetime"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=StageApprover)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


@admin.register(RequestApprovalStage)
class RequestApprovalStageAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "request",
        "sequence",
        "status",
        "review_result",
        "reviewed_by",
        "deadline",
    ]
    list_filter = [
        "status",
        "review_result",
        CatalogFilter.on("request__access_package__catalog"),
    ]
    list_select_related = ["request__target", "request__access_package", "reviewed_by"]
    search_fields = ["request__target__email", "request__target__display_name"]
    show_full_result_count = False
    inlines = [StageApproverInline]
