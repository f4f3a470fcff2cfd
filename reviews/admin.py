"""Admin pages for access reviews: progress and results, items, stop and apply, CSV export.

Rows are written only by the services; the admin shows them and calls the services. Who may
see a review follows the catalog of its package, as for assignments: the scopes are declared
in reviews.selectors and answered by ``restrict()`` and ``permissions.can()``.
"""

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from entitlements import permissions
from entitlements.admin.base import BoundedListMixin, InputFilter, _uuid_or_none
from entitlements.csvexport import csv_response
from entitlements.errors import DomainError

from . import selectors
from .models import ApplyResult, Decision, ReviewInstance, ReviewItem, ReviewStatus
from .services import review_instance_apply, review_instance_stop

CSV_COLUMNS = [
    "review",
    "user",
    "email",
    "decision",
    "justification",
    "decided by",
    "decided",
    "recommendation",
    "last sign-in",
    "result",
    "applied",
]


class ReviewAdminBase(BoundedListMixin, admin.ModelAdmin):
    """Read-only; who sees a review follows its package's catalog (reviews.selectors)."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=self.model)

    def has_manage_permission(self, request):
        return permissions.can(request.user, "change", model=self.model)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _item_count(condition):
    """The instance's items meeting ``condition``, counted for the listed rows only (a
    GROUP BY join would count the items of every instance before the page is cut)."""
    items = (
        ReviewItem.objects.filter(condition, instance=OuterRef("pk"))
        .order_by()
        .values("instance")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(items, output_field=IntegerField()), 0)


def _item_rows(items):
    yield CSV_COLUMNS
    for item in items.iterator(chunk_size=2000):
        yield [
            str(item.instance),
            item.target.display_name,
            item.target.email,
            item.decision,
            item.justification,
            item.decided_by.email if item.decided_by else "",
            item.decided_datetime,
            item.recommendation,
            item.last_sign_in,
            item.apply_result,
            item.applied_datetime,
        ]


def stream_items_csv(items, filename):
    """A streamed CSV of review items: one row per item, written as it is read."""
    return csv_response(_item_rows(items), filename)


@admin.register(ReviewInstance)
class ReviewInstanceAdmin(ReviewAdminBase):
    list_display = [
        "__str__",
        "policy",
        "start",
        "end",
        "status",
        "progress",
        "results",
        "items_link",
    ]
    list_filter = ["status"]
    search_fields = ["access_package__display_name", "policy__display_name"]
    date_hierarchy = "start"
    list_select_related = ["access_package", "policy"]
    readonly_fields = [
        "policy",
        "access_package",
        "start",
        "end",
        "status",
        "progress",
        "results",
        "stopped_by",
        "stopped_datetime",
        "applied_by",
        "applied_datetime",
        "started_notice_datetime",
        "midpoint_reminder_datetime",
        "ending_reminder_datetime",
        "items_link",
    ]
    fields = readonly_fields
    actions = ["stop_and_apply", "apply_results", "export_items"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                total_items=_item_count(Q()),
                decided_items=_item_count(~Q(decision=Decision.NOT_REVIEWED)),
                removed_items=_item_count(Q(apply_result=ApplyResult.REMOVED)),
                kept_items=_item_count(Q(apply_result=ApplyResult.KEPT)),
            )
        )

    @admin.display(description=_("decided"))
    def progress(self, obj):
        return f"{obj.decided_items}/{obj.total_items}"

    @admin.display(description=_("results"))
    def results(self, obj):
        if obj.status != ReviewStatus.APPLIED:
            return "—"
        return _("%(removed)d removed, %(kept)d kept") % {
            "removed": obj.removed_items,
            "kept": obj.kept_items,
        }

    @admin.display(description=_("items"))
    def items_link(self, obj):
        url = reverse("admin:reviews_reviewitem_changelist") + f"?instance={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Items"))

    def _act(self, request, queryset, service, done_message):
        done = 0
        for instance in queryset.select_related("access_package", "policy"):
            try:
                service(actor=request.user, instance=instance, now=timezone.now())
            except DomainError as error:
                self.message_user(request, f"{instance}: {error.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, done_message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Stop and apply"), permissions=["manage"])
    def stop_and_apply(self, request, queryset):
        self._act(
            request,
            queryset,
            review_instance_stop,
            _("Stopped %(n)d review(s); results are applied where the policy says so."),
        )

    @admin.action(description=_("Apply results"), permissions=["manage"])
    def apply_results(self, request, queryset):
        self._act(
            request,
            queryset,
            review_instance_apply,
            _("Applying the results of %(n)d review(s)."),
        )

    @admin.action(description=_("Export items as CSV"))
    def export_items(self, request, queryset):
        items = (
            ReviewItem.objects.filter(instance__in=queryset.values("pk"))
            .select_related("instance__access_package", "target", "decided_by")
            .order_by("instance__start", "target__display_name", "pk")
        )
        return stream_items_csv(items, f"access-review-items-{timezone.now():%Y%m%d-%H%M}.csv")


class InstanceFilter(InputFilter):
    title = _("review (id)")
    parameter_name = "instance"

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        pk = _uuid_or_none(self.value())
        return queryset.filter(instance_id=pk) if pk else queryset.none()


@admin.register(ReviewItem)
class ReviewItemAdmin(ReviewAdminBase):
    list_display = [
        "target",
        "instance",
        "decision",
        "decided_by",
        "decided_datetime",
        "recommendation",
        "last_sign_in",
        "apply_result",
    ]
    list_filter = [InstanceFilter, "decision", "recommendation", "apply_result"]
    list_select_related = ["target", "decided_by", "instance__access_package"]
    search_fields = ["target__display_name", "target__email"]
    readonly_fields = [
        "instance",
        "assignment",
        "target",
        "decision",
        "justification",
        "decided_by",
        "decided_datetime",
        "recommendation",
        "last_sign_in",
        "apply_result",
        "applied_datetime",
        "reviewers",
    ]
    fields = readonly_fields
    actions = ["export_items"]

    @admin.display(description=_("reviewers"))
    def reviewers(self, obj):
        return ", ".join(str(user) for user in selectors.reviewers_of(item=obj)) or "—"

    @admin.action(description=_("Export selected items as CSV"))
    def export_items(self, request, queryset):
        items = queryset.select_related("instance__access_package", "target", "decided_by")
        return stream_items_csv(items, f"access-review-items-{timezone.now():%Y%m%d-%H%M}.csv")
