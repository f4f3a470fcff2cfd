"""The guest lifecycle in the admin: which guests are blocked, and when each will be removed.

Read only: the lifecycle's services write these rows; an administrator gives a blocked guest
back their account by enabling it on the person's page, which cancels the removal.
"""

from django.contrib import admin
from django.db.models import DateTimeField, ExpressionWrapper, F, Value
from django.utils.translation import gettext_lazy as _

from directory.models import EntitlementManagementSettings

from .models.guests import GuestLifecycle, GuestState

Action = EntitlementManagementSettings.ExternalUserLifecycleAction


@admin.register(GuestLifecycle)
class GuestLifecycleAdmin(admin.ModelAdmin):
    list_display = ["user", "state", "blocked_at", "removal_due", "deleted_at"]
    list_filter = ["state"]
    list_select_related = ["user"]
    search_fields = ["user__email", "user__display_name"]
    ordering = ["-blocked_at"]
    fields = ["user", "state", "last_assignment_ended", "blocked_at", "removal_due", "deleted_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        # The settings in force decide when a blocked guest goes (read once, not per row).
        current = EntitlementManagementSettings.current()
        due = Value(None, output_field=DateTimeField())
        if current.external_user_lifecycle_action == Action.BLOCK_SIGN_IN_AND_DELETE:
            wait = current.duration_until_external_user_deleted_after_blocked
            due = ExpressionWrapper(F("blocked_at") + Value(wait), output_field=DateTimeField())
        return super().get_queryset(request).annotate(_removal_due=due)

    @admin.display(description=_("removal due"), ordering="_removal_due")
    def removal_due(self, obj):
        return obj._removal_due if obj.state == GuestState.BLOCKED else None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
