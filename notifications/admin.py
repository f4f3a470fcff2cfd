"""The outbox in the admin: emails sent or waiting, and sending failed ones again."""

from django.contrib import admin
from django.utils.translation import gettext as _

from .models import Notification
from .services import notifications_retry


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
