"""Read-only admin pages for the approval stages of requests and their resolved approvers."""

from django.contrib import admin
from django.utils.translation import gettext as _

from entitlements import permissions
from entitlements.admin.base import CatalogFilter, ReadOnlyInlineMixin, ReadOnlyScopedAdmin

from .models import Notification, RequestApprovalStage, StageApprover
from .notifications import notifications_retry


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


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Emails sent or waiting: for superusers, since they name people and requests."""

    list_display = ["created", "kind", "recipient", "state", "attempts", "sent_datetime"]
    list_filter = ["state", "kind"]
    list_select_related = ["recipient"]
    search_fields = ["recipient__email", "subject"]
    readonly_fields = [f.name for f in Notification._meta.fields] + ["message_id"]
    show_full_result_count = False
    actions = ["retry"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send the failed notifications again"))
    def retry(self, request, queryset):
        count = notifications_retry(actor=request.user, notifications=queryset)
        self.message_user(request, _("%(n)s notifications queued again.") % {"n": count})
