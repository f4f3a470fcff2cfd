"""Admin pages for catalogs, the admin roles held in them, and their resources."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from entitlements import permissions
from entitlements.configuration import catalog_save, resource_add, resources_sync_roles
from entitlements.forms import ResourceAddForm, RoleAssignmentForm
from entitlements.models import (
    CATALOG_SCOPED_ROLES,
    AccessPackage,
    AdminRole,
    Catalog,
    Channel,
    Resource,
    ResourceRole,
    RoleAssignment,
)

from .base import (
    CatalogFilter,
    ConfigurationAdmin,
    ReadOnlyInlineMixin,
    ScopedAdmin,
    ScopedInlineMixin,
    _uuid_or_none,
)


class CatalogRoleAssignmentInline(ScopedInlineMixin, admin.TabularInline):
    model = RoleAssignment
    fields = ["principal", "role", "source"]
    readonly_fields = ["source"]
    autocomplete_fields = ["principal"]
    extra = 0
    verbose_name = _("administrator")
    verbose_name_plural = _(
        "administrators of this catalog (roles delivered by access packages are listed under "
        "role assignments and change only through their packages)"
    )

    def get_queryset(self, request):
        # A delivered role is revoked by its assignment; editing it here would orphan it.
        return super().get_queryset(request).filter(source=RoleAssignment.Source.DIRECT)

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role":
            kwargs["choices"] = [(r, AdminRole(r).label) for r in CATALOG_SCOPED_ROLES]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class CatalogResourceInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Resource
    fk_name = "catalog"
    fields = ["display_name", "origin_system"]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = _("resources (add them from the resource page)")

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=Resource)


class CatalogPackageInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = AccessPackage
    fields = ["display_name", "is_hidden"]
    readonly_fields = fields
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=AccessPackage)


@admin.register(Catalog)
class CatalogAdmin(ConfigurationAdmin):
    list_display = ["display_name", "state", "is_externally_visible", "catalog_type"]
    list_filter = ["state", "is_externally_visible", "catalog_type"]
    search_fields = ["display_name", "description"]
    fields = ["display_name", "description", "state", "is_externally_visible", "catalog_type"]
    readonly_fields = ["catalog_type"]
    inlines = [CatalogRoleAssignmentInline, CatalogResourceInline, CatalogPackageInline]

    def save_model(self, request, obj, form, change):
        catalog_save(actor=request.user, catalog=obj, channel=Channel.ADMIN)


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(ConfigurationAdmin):
    """Every admin role, including the product-wide catalog creator role."""

    form = RoleAssignmentForm
    list_display = ["principal", "role", "catalog", "source", "created"]
    list_filter = ["role", "source", CatalogFilter.on("catalog")]
    list_select_related = ["principal", "catalog"]
    search_fields = ["principal__email", "principal__display_name", "catalog__display_name"]
    autocomplete_fields = ["principal", "catalog"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.user = request.user
        return form


class ResourceRoleInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ResourceRole
    fields = ["display_name", "origin_id", "description"]
    readonly_fields = fields
    verbose_name_plural = _("roles a package can grant")

    def has_view_permission(self, request, obj=None):
        return permissions.can(request.user, "view", obj, model=ResourceRole)


@admin.register(Resource)
class ResourceAdmin(ConfigurationAdmin):
    list_display = ["display_name", "origin_system", "catalog"]
    list_filter = ["origin_system", CatalogFilter.on("catalog")]
    list_select_related = ["catalog"]
    search_fields = ["display_name", "description"]
    autocomplete_fields = ["catalog", "group", "application", "site", "role_catalog"]
    inlines = [ResourceRoleInline]
    actions = ["sync_roles"]
    change_fields = ["display_name", "description", "drift_mode"]
    origin_fields = [
        "catalog",
        "origin_system",
        "origin_id",
        "group",
        "application",
        "site",
        "role_catalog",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ResourceAddForm.Meta.fields
        return [*self.origin_fields, *self.change_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.origin_fields if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ResourceAddForm
        form = super().get_form(request, obj, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # Adding goes through the configuration service so the resource's roles exist at once.
        resource = resource_add(
            actor=request.user,
            channel=Channel.ADMIN,
            catalog=obj.catalog,
            origin_system=obj.origin_system,
            group=obj.group,
            application=obj.application,
            site=obj.site,
            role_catalog=obj.role_catalog,
            display_name=obj.display_name,
            description=obj.description,
        )
        obj.pk, obj.origin_id, obj.display_name = (
            resource.pk,
            resource.origin_id,
            resource.display_name,
        )
        obj.created = resource.created
        obj._state.adding = False
        obj._state.db = resource._state.db

    @admin.action(
        description=_("Add the roles the resource gained since it was added"),
        permissions=["change"],
    )
    def sync_roles(self, request, queryset):
        resources = [r for r in queryset if permissions.can(request.user, "change", r)]
        resources_sync_roles(actor=request.user, resources=resources, channel=Channel.ADMIN)
        self.message_user(
            request, _("Roles brought up to date for %(n)s resources.") % {"n": len(resources)}
        )
        if len(resources) < len(queryset):
            self.message_user(
                request,
                _("Skipped resources of catalogs you do not own."),
                level=messages.WARNING,
            )


@admin.register(ResourceRole)
class ResourceRoleAdmin(ScopedAdmin):
    """The roles resources offer; created with their resource, listed for lookup only."""

    list_display = ["display_name", "resource", "origin_id"]
    list_filter = [CatalogFilter.on("resource__catalog"), "resource__origin_system"]
    list_select_related = ["resource"]
    search_fields = ["display_name", "resource__display_name"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("resource")

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # The package page's role picker asks for the roles of the package's own catalog.
        catalog_id = _uuid_or_none(request.GET.get("catalog", ""))
        if catalog_id is not None:
            queryset = queryset.filter(resource__catalog_id=catalog_id)
        return queryset, may_have_duplicates

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
