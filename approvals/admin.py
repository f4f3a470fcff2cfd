"""Read-only admin pages for the approval stages of requests and their resolved approvers."""

from django.contrib import admin

from entitlements import permissions
from entitlements.admin.base import (
    BoundedListMixin,
    CatalogFilter,
    ReadOnlyInlineMixin,
    ReadOnlyScopedAdmin,
)
from entitlements.admin.connectors import SuperuserOnly

from .models import ApprovalDelegation, RequestApprovalStage, StageApprover


class StageApproverInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = StageApprover
    fields = ["user", "kind", "on_behalf_of", "notified_datetime"]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=StageApprover)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "on_behalf_of")


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


@admin.register(ApprovalDelegation)
class ApprovalDelegationAdmin(SuperuserOnly, BoundedListMixin, admin.ModelAdmin):
    """Who approves for whom, and when: written only in My Access, read here by superusers
    (a delegation reaches every catalog its approver decides for)."""

    list_display = ["delegator", "delegate", "start", "end", "ended_datetime", "created"]
    list_select_related = ["delegator", "delegate"]
    search_fields = [
        "delegator__email",
        "delegator__display_name",
        "delegate__email",
        "delegate__display_name",
    ]
    readonly_fields = ["delegator", "delegate", "start", "end", "note", "ended_datetime"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
