"""What every admin page of the entitlement model shares: permissions and list filters.

Every decision about who may see or change what is delegated to ``entitlements.permissions``.
"""

import uuid

from django.apps import apps
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from entitlements import permissions
from entitlements.configuration import config_delete, config_save
from entitlements.models import AccessPackage, Channel
from entitlements.pagination import BoundedCountPaginator


def _autocomplete_source(request):
    """(model, field name) an autocomplete request fills in, or None for other requests."""
    params = request.GET
    if not {"app_label", "model_name", "field_name"} <= params.keys():
        return None
    try:
        return apps.get_model(params["app_label"], params["model_name"]), params["field_name"]
    except LookupError:
        return None


class ChoicesRestrictedMixin:
    """Foreign-key and many-to-many choices, in forms and autocomplete, limited by role."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = permissions.choices_for(
                request.user, self.model, db_field.name, field.queryset
            )
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = permissions.choices_for(
                request.user, self.model, db_field.name, field.queryset
            )
        return field


class BoundedListMixin:
    """A changelist whose cost does not grow with the rows it does not show: the paginator
    counts at most ``pagination.CAP`` rows, the total is never counted, and the default
    order ends with the id in the same direction, so one index serves it (the admin would
    add ``-pk``, which no ascending index can serve)."""

    paginator = BoundedCountPaginator
    show_full_result_count = False

    def get_ordering(self, request):
        ordering = list(super().get_ordering(request) or self.model._meta.ordering or [])
        names = {str(field).lstrip("-") for field in ordering}
        if ordering and not names & {"pk", "id"} and isinstance(ordering[-1], str):
            ordering.append("-pk" if ordering[-1].startswith("-") else "pk")
        return ordering


class ScopedAdmin(BoundedListMixin, ChoicesRestrictedMixin, admin.ModelAdmin):
    """Rows that belong to a catalog: people see and change what their roles there allow."""

    def get_queryset(self, request):
        return permissions.restrict(super().get_queryset(request), request.user)

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        source = _autocomplete_source(request)
        if source is not None:
            model, field_name = source
            queryset = permissions.choices_for(request.user, model, field_name, queryset)
        return queryset, may_have_duplicates

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=self.model)

    def has_add_permission(self, request):
        return permissions.can(request.user, "add", model=self.model)

    def has_change_permission(self, request, obj=None):
        return permissions.can(request.user, "change", obj, model=self.model)

    def has_delete_permission(self, request, obj=None):
        return permissions.can(request.user, "delete", obj, model=self.model)


class ConfigurationAdmin(ScopedAdmin):
    """Configuration rows: saving and deleting them, and the rows of their inlines, goes
    through the audited configuration services."""

    def save_model(self, request, obj, form, change):
        m2m = {
            field.name: form.cleaned_data[field.name]
            for field in obj._meta.many_to_many
            if field.name in form.cleaned_data
        }
        config_save(actor=request.user, obj=obj, m2m=m2m, channel=Channel.ADMIN)

    def delete_model(self, request, obj):
        config_delete(actor=request.user, objs=[obj], channel=Channel.ADMIN)

    def delete_queryset(self, request, queryset):
        config_delete(actor=request.user, objs=queryset, channel=Channel.ADMIN)

    def save_related(self, request, form, formsets, change):
        # The form's many-to-many values were saved by config_save with the row itself.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        formset.save(commit=False)
        config_delete(actor=request.user, objs=formset.deleted_objects, channel=Channel.ADMIN)
        changed = [obj for obj, _fields in formset.changed_objects]
        for obj in [*changed, *formset.new_objects]:
            config_save(actor=request.user, obj=obj, channel=Channel.ADMIN)


class ReadOnlyScopedAdmin(ScopedAdmin):
    """Rows written only by service functions: the admin shows them and never edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_permission(self, request):
        """May the person run the actions that call the lifecycle services?"""
        return permissions.can(request.user, "change", model=self.model)


class ScopedInlineMixin(ChoicesRestrictedMixin):
    """An inline whose permissions follow the catalog of the object it is shown on."""

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=self.model)

    def has_add_permission(self, request, obj):
        return permissions.can(request.user, "add", obj, model=self.model)

    def has_change_permission(self, request, obj=None):
        return permissions.can(request.user, "change", obj, model=self.model)

    def has_delete_permission(self, request, obj=None):
        return permissions.can(request.user, "delete", obj, model=self.model)


class ReadOnlyInlineMixin:
    """An inline that lists related rows; they are changed on their own pages or by services."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --------------------------------------------------------------------------------------
# List filters
# --------------------------------------------------------------------------------------


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class CatalogFilter(admin.SimpleListFilter):
    """Filter by one of the catalogs the person may see; ``path`` leads from the row to it."""

    title = _("catalog")
    parameter_name = "catalog"
    path = "access_package__catalog"

    @classmethod
    def on(cls, path):
        return type(cls.__name__, (cls,), {"path": path})

    def lookups(self, request, model_admin):
        return [(str(c.pk), c.display_name) for c in permissions.catalogs_for(request.user)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        catalog_id = _uuid_or_none(self.value())
        return queryset.filter(**{self.path: catalog_id}) if catalog_id else queryset.none()


class PackageFilter(CatalogFilter):
    title = _("access package")
    parameter_name = "package"
    path = "access_package"

    MAX_LISTED = 200

    def lookups(self, request, model_admin):
        packages = AccessPackage.objects.restrict(request.user)
        # With thousands of packages the list narrows to the chosen catalog's.
        catalog_id = _uuid_or_none(request.GET.get(CatalogFilter.parameter_name, ""))
        if catalog_id is not None:
            packages = packages.filter(catalog_id=catalog_id)
        packages = packages.only("display_name")[: self.MAX_LISTED]
        return [(str(p.pk), p.display_name) for p in packages]


class InputFilter(admin.SimpleListFilter):
    """A filter with a text box instead of a list, for values with too many choices to list."""

    template = "admin/input_filter.html"

    def lookups(self, request, model_admin):
        return [("", "")]  # a filter with no lookups is not shown at all

    def choices(self, changelist):
        yield {
            "value": self.value() or "",
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "hidden": [
                (key, value)
                for key, value in changelist.get_filters_params().items()
                if key != self.parameter_name
            ]
            + [(key, changelist.params[key]) for key in ("q", "o") if changelist.params.get(key)],
        }
