"""Connected systems in the admin: where resources live, how to reach them, how they fare."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from entitlements.models import ConnectedSystem

HEALTH_FIELDS = [
    "last_success_datetime",
    "last_error",
    "last_error_datetime",
    "consecutive_failures",
]


@admin.register(ConnectedSystem)
class ConnectedSystemAdmin(admin.ModelAdmin):
    """Superusers only: a connected system's settings reach every catalog's resources."""

    list_display = ["name", "kind", "enabled", "last_success_datetime", "consecutive_failures"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    readonly_fields = HEALTH_FIELDS
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        (_("Connection"), {"fields": ["settings", "secret_reference"]}),
        (_("Health"), {"fields": HEALTH_FIELDS}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The built-in directory's kind is what makes it the built-in one.
        if obj is not None and obj.kind == ConnectedSystem.Kind.BUILTIN:
            return [*HEALTH_FIELDS, "kind"]
        return HEALTH_FIELDS

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and not (
            obj is not None and (obj.kind == ConnectedSystem.Kind.BUILTIN or obj.resources.exists())
        )
